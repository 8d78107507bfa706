"""Every public skkd estimator, as a tiny fast instance (shared by test matrices).

An estimator joins every matrix that uses this module by being exported from
``skkd`` (a subclass of :class:`skkd.base.BaseTimeSeriesClassifier`), as in
``tests/test_estimator_checks.py``. Distillers get a small teacher of their
student's backbone family, fitted once per session on :func:`tiny_data`.
"""

import functools
import hashlib
import inspect

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils import get_tags

import skkd
from skkd import (
    BaseDistiller,
    BaseTimeSeriesClassifier,
    DANNClassifier,
    TimeSeriesClassifier,
)
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier

#: every public estimator
ALL_ESTIMATORS = [
    obj
    for name in skkd.__all__
    if inspect.isclass(obj := getattr(skkd, name))
    and issubclass(obj, BaseTimeSeriesClassifier)
    and not name.startswith("Base")
]
DISTILLERS = [cls for cls in ALL_ESTIMATORS if issubclass(cls, BaseDistiller)]

#: tiny networks of each backbone family (student; teacher)
STUDENT = {
    CNN1D: {"module__widths": (4,)},
    LSTMClassifier: {"module__hidden_size": 4},
    GRUClassifier: {"module__hidden_size": 4},
}
TEACHER = {
    CNN1D: {"module__widths": (4,)},
    LSTMClassifier: {"module__hidden_size": 5},
    GRUClassifier: {"module__hidden_size": 5},
}
N, C, T, N_TGT, K = 12, 2, 16, 10, 3


def ids(cls):
    return cls.__name__


def tiny_data(seed=0):
    """``X (12, 2, 16)``, ``y`` with 3 classes, ``X_tgt (10, 2, 16)``, float32."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, C, T)).astype(np.float32)
    y = np.arange(N) % K
    X_tgt = rng.normal(size=(N_TGT, C, T)).astype(np.float32)
    X[y == 1, 0] += 1.0  # some signal, so that classes can be told apart
    return X, y, X_tgt


def default_module(cls):
    """The student family of ``cls`` (a teacher copy, e.g. ITMC's, is a CNN1D)."""
    return inspect.signature(cls).parameters["module"].default or CNN1D


#: distillers that read the teacher's domain discriminator (a DANN teacher's)
DANN_TEACHER = {"RCDKDClassifier"}


@functools.cache
def teacher_for(family, dann=False):
    """A fitted tiny teacher of a backbone family (shared; never modified)."""
    X, y, X_tgt = tiny_data()
    cls = DANNClassifier if dann else TimeSeriesClassifier
    teacher = cls(
        module=family, max_epochs=1, batch_size=N, random_state=0, **TEACHER[family]
    )
    return teacher.fit(X, y, X_tgt) if dann else teacher.fit(X, y)


def make(cls, teacher="default", **params):
    """A tiny instance of ``cls`` (1 epoch, one batch), with a teacher if needed."""
    family = default_module(cls)
    kwargs = {
        **STUDENT.get(family, {}),
        "max_epochs": 1,
        "batch_size": N,
        "random_state": 0,
        **params,
    }
    if issubclass(cls, BaseDistiller):
        if isinstance(teacher, str) and teacher == "default":
            teacher = FrozenEstimator(teacher_for(family, cls.__name__ in DANN_TEACHER))
        return cls(teacher, **kwargs)
    return cls(**kwargs)


def target_use(cls):
    """How ``cls`` uses ``X_tgt``: its ``time_series.target`` tag."""
    return get_tags(make(cls, teacher=None)).time_series.target


def accepts_target(cls):
    """Whether ``cls.fit`` takes ``X_tgt`` (DKD, for one, refuses it)."""
    return target_use(cls) != "refused"


def fit_args(cls, X, y, X_tgt):
    """``fit`` arguments for ``cls``: ``X_tgt`` only where the method takes it."""
    return (X, y, X_tgt) if accepts_target(cls) else (X, y)


def fingerprint(obj):
    """Bytes-level hash of arrays, tensors, modules and fitted nets."""
    digest = hashlib.sha256()

    def feed(value):
        if value is None:
            digest.update(b"none")
        elif isinstance(value, FrozenEstimator):
            feed(value.estimator)
        elif isinstance(value, torch.nn.Module):
            digest.update(str(value.training).encode())
            for name, tensor in value.state_dict().items():
                digest.update(name.encode())
                feed(tensor)
            for p in value.parameters():
                digest.update(str(p.requires_grad).encode())
        elif torch.is_tensor(value):
            digest.update(str((value.dtype, value.device, value.shape)).encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(value, np.ndarray):
            digest.update(str((value.dtype, value.shape, value.strides)).encode())
            digest.update(str(value.flags.writeable).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif hasattr(value, "module_"):  # a fitted skorch net
            feed(value.module_)
            digest.update(str(len(value.history_)).encode())
        else:
            digest.update(repr(value).encode())

    feed(obj)
    return digest.hexdigest()
