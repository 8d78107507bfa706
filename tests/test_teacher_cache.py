"""The engine's per-fit cache of the frozen teacher's outputs (``cache_teacher``)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator

import skkd.teacher
from skkd import (
    AADClassifier,
    FitNetClassifier,
    JKUClassifier,
    KDClassifier,
    MemKDClassifier,
    UniKDClassifier,
)
from skkd.nn import LSTMClassifier
from skkd.teacher import TeacherCache

from .conftest import TINY


class _ForwardCounter:
    """Counts the teacher's forward calls during fit (a forward hook)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, module, inputs, output):
        self.calls += 1


def _fit_counting(est, data):
    counter = _ForwardCounter()
    original = est.initialize_module

    def initialize_module():
        original()
        est.teacher_module_.register_forward_hook(counter)
        for name in ("forward_features", "forward_sequence"):
            method = getattr(est.teacher_module_, name, None)
            if method is not None:

                def counted(x, _method=method):
                    counter.calls += 1
                    return _method(x)

                setattr(est.teacher_module_, name, counted)
        return est

    est.initialize_module = initialize_module
    est.fit(data.X_src, data.y_src, data.X_tgt)
    del est.initialize_module  # back to the class method, so the estimator pickles
    return counter.calls


def torch_batch(X):
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))


@pytest.mark.parametrize(
    "cls", [KDClassifier, UniKDClassifier, FitNetClassifier, AADClassifier]
)
def test_cached_fit_equals_uncached_fit(cls, shift_data, fitted_teacher):
    kw = {**TINY, "random_state": 0}
    on = cls(FrozenEstimator(fitted_teacher), cache_teacher=True, **kw)
    off = cls(FrozenEstimator(fitted_teacher), cache_teacher=False, **kw)
    calls_on, calls_off = _fit_counting(on, shift_data), _fit_counting(off, shift_data)
    X = shift_data.X_tgt_test
    np.testing.assert_allclose(on.predict_proba(X), off.predict_proba(X), atol=1e-5)
    # one pass over source + target (88 rows, one chunk) instead of per step
    assert calls_on < calls_off
    assert calls_on <= 2  # forward_features + head, or the module once
    assert not hasattr(on, "_session")  # fit-time state is dropped


def _session(est, X):
    """A fit-time session whose teacher cache holds ``X``."""
    cache = TeacherCache.build(est.teacher_forward, [X])
    return SimpleNamespace(target=None, teacher_cache=cache)


def test_cache_is_keyed_by_content_not_position(shift_data, fitted_teacher):
    est = KDClassifier(FrozenEstimator(fitted_teacher), **{**TINY, "max_epochs": 0})
    est.fit(shift_data.X_src, shift_data.y_src)
    est._session = _session(est, shift_data.X_src)
    X = torch_batch(shift_data.X_src[[5, 0, 5]])
    cached = est.teacher_logits(X)
    del est._session
    np.testing.assert_allclose(cached, est.teacher_logits(X), atol=1e-6)


def test_unknown_series_fall_back_to_the_teacher(shift_data, fitted_teacher):
    est = KDClassifier(FrozenEstimator(fitted_teacher), **{**TINY, "max_epochs": 0})
    est.fit(shift_data.X_src, shift_data.y_src)
    est._session = _session(est, shift_data.X_src[:10])
    X = torch_batch(shift_data.X_tgt[:4])  # not in the cache
    out = est.teacher_logits(X)
    del est._session
    np.testing.assert_allclose(out, est.teacher_logits(X), atol=1e-6)


def test_no_cache_above_the_memory_limit(shift_data, fitted_teacher, monkeypatch):
    est = KDClassifier(FrozenEstimator(fitted_teacher), **{**TINY, "max_epochs": 0})
    est.fit(shift_data.X_src, shift_data.y_src)
    monkeypatch.setattr(skkd.teacher, "TEACHER_CACHE_MAX_BYTES", 100)
    assert TeacherCache.build(est.teacher_forward, [shift_data.X_src]) is None


def test_a_trained_teacher_copy_is_never_cached(shift_data, fitted_teacher):
    kw = {**TINY, "random_state": 0}
    est = JKUClassifier(FrozenEstimator(fitted_teacher), **kw)
    calls = _fit_counting(est, shift_data)
    steps = sum(len(row["batches"]) for row in est.history_)
    assert calls >= 2 * steps  # source and target forward in every step


def test_recurrent_cache_holds_hidden_sequences():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2, 12)).astype("float32")
    y = np.arange(20) % 2
    teacher = LSTMClassifier(2, 2, hidden_size=6)
    est = MemKDClassifier(teacher, module__hidden_size=3, max_epochs=0).fit(X, y)
    session = _session(est, X)
    assert session.teacher_cache.outputs["sequence"].shape == (20, 12, 6)
    est._session = session
    logits, seq = est.teacher_sequence(torch_batch(X[:3]))
    del est._session
    fresh_logits, fresh_seq = est.teacher_sequence(torch_batch(X[:3]))
    np.testing.assert_allclose(seq, fresh_seq, atol=1e-6)
    np.testing.assert_allclose(logits, fresh_logits, atol=1e-6)
