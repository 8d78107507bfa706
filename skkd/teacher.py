"""The frozen teacher: resolve, copy, probe, read outputs and features, cache.

Everything a distiller does with its teacher that is not the method itself.
:class:`skkd.base.BaseDistiller` composes these pieces; they are plain
functions and one cache class, usable on their own.
"""

import copy
import itertools

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from ._skada import is_skada_net, skada_teacher
from .compression import _is_wrapper

__all__ = [
    "TEACHER_CACHE_MAX_BYTES",
    "TeacherCache",
    "frozen_copy",
    "probe",
    "resolve_teacher",
    "teacher_features",
    "teacher_logits",
]

#: largest teacher-output cache a fit holds (bytes); above it the teacher runs
#: once per step
TEACHER_CACHE_MAX_BYTES = 1 << 30
#: rows per teacher forward while the cache is filled
_CACHE_CHUNK = 256


def resolve_teacher(teacher, owner="the distiller"):
    """Return ``(module, classes)`` of a fitted teacher without modifying it.

    Accepted: a trained ``torch.nn.Module`` (classes unknown), a fitted
    skorch/skkd estimator (``module_``, and ``classes_`` when it has them), or
    either wrapped in ``sklearn.frozen.FrozenEstimator``.

    Parameters
    ----------
    teacher : object
        The teacher.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    module : torch.nn.Module
        The teacher's network (the caller's object: copy before use).
    classes : ndarray or None
        The teacher's classes when it is an estimator.

    Examples
    --------
    >>> from torch import nn
    >>> module, classes = resolve_teacher(nn.Linear(3, 2))
    >>> classes is None
    True
    """
    if teacher is None:
        raise ValueError(
            f"{owner} needs a fitted teacher: pass teacher=FrozenEstimator(fitted_net)"
            " or a trained torch.nn.Module."
        )
    obj = teacher
    while _is_wrapper(obj):
        obj = obj.estimator  # sklearn.frozen.FrozenEstimator and similar wrappers
    if isinstance(obj, nn.Module):
        return obj, None
    if hasattr(obj, "initialized_") or hasattr(obj, "module"):  # skorch-style net
        if not getattr(obj, "initialized_", False) or not hasattr(obj, "module_"):
            raise NotFittedError(
                f"The teacher {type(obj).__name__} is not fitted. Fit it first "
                "(skkd never retrains a teacher silently), then pass "
                "FrozenEstimator(teacher)."
            )
        try:
            classes = obj.classes_
        except (AttributeError, ValueError):  # skorch nets may not know their classes
            classes = None
        if is_skada_net(obj):  # stored activations, masked label in classes_
            return skada_teacher(obj, classes)
        return obj.module_, None if classes is None else np.asarray(classes)
    raise TypeError(
        f"teacher must be a trained torch.nn.Module, a fitted skorch/skkd "
        f"estimator, or one wrapped in FrozenEstimator; got {type(obj).__name__}."
    )


def frozen_copy(module, device=None, *, trainable=False):
    """A deep copy of the teacher network in eval mode, on ``device``.

    The caller's teacher stays where it is (a CUDA teacher can teach a CPU
    student); a teacher whose parameters hold no data (``meta`` device) is a
    clear error.

    Parameters
    ----------
    module : torch.nn.Module
        The teacher network.
    device : str or torch.device, optional
        Where the copy goes.
    trainable : bool, default=False
        Keep ``requires_grad`` (methods that train their own copy).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> from torch import nn
    >>> teacher = nn.Linear(3, 2)
    >>> copy_ = frozen_copy(teacher)
    >>> copy_ is teacher, copy_.training, copy_.weight.requires_grad
    (False, False, False)
    """
    devices = {
        p.device.type for p in itertools.chain(module.parameters(), module.buffers())
    }
    if "meta" in devices:
        raise ValueError(
            f"The teacher {type(module).__name__} has parameters on the 'meta' "
            "device, which hold no values. Load its trained weights first "
            "(e.g. module.to_empty(device='cpu') then load_state_dict)."
        )
    teacher = copy.deepcopy(module).eval()
    if device is not None:
        teacher = teacher.to(device)
    for param in teacher.parameters():
        param.requires_grad_(trainable)
    return teacher


def probe(forward, X):
    """``forward(X)`` without gradient; a failure is a clear ValueError.

    Parameters
    ----------
    forward : callable
        The teacher (copy), or one of its methods (``forward_sequence``).
    X : torch.Tensor of shape (batch, n_channels, n_timepoints)
        A few training series.

    Returns
    -------
    The output of ``forward``.

    Examples
    --------
    >>> import torch
    >>> probe(torch.nn.Linear(4, 2), torch.zeros(1, 1, 4)).shape
    torch.Size([1, 1, 2])
    """
    try:
        with torch.no_grad():
            return forward(X)
    except Exception as exc:
        raise ValueError(
            f"The teacher failed on inputs of shape {tuple(X.shape[1:])} "
            f"(channels, timepoints): {exc}. Pass data shaped as the teacher "
            "was trained on."
        ) from exc


def teacher_logits(teacher, X):
    """The teacher's logits (the first output when it returns a tuple).

    Examples
    --------
    >>> import torch
    >>> teacher_logits(torch.nn.Linear(3, 2), torch.zeros(4, 3)).shape
    torch.Size([4, 2])
    """
    out = teacher(X)
    return out[0] if isinstance(out, tuple) else out


def teacher_features(teacher, X, layer=None, with_logits=False):
    """The teacher's features, and its logits from the same forward if asked.

    Features are ``forward_features(X)`` of skkd backbones, or the output of
    the layer named ``layer`` (as in ``named_modules()``), averaged over time
    when 3-D and flattened.

    Parameters
    ----------
    teacher : torch.nn.Module
    X : torch.Tensor
    layer : str, optional
        Name of the feature layer for teachers without ``forward_features``.
    with_logits : bool, default=False
        Return ``(features, logits)``.

    Returns
    -------
    features : torch.Tensor of shape (batch, n_features)
    logits : torch.Tensor, only with ``with_logits``

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(2, 3, widths=(4, 8))
    >>> f, z = teacher_features(net, torch.zeros(5, 2, 16), with_logits=True)
    >>> tuple(f.shape), tuple(z.shape)
    ((5, 8), (5, 3))
    """
    if layer is None:
        if not hasattr(teacher, "forward_features"):
            raise TypeError(
                f"The teacher {type(teacher).__name__} has no forward_features(x), "
                "and the method needs its features. Name its feature layer with "
                "teacher_feature_layer=<name>, one of: "
                f"{[n for n, _ in teacher.named_modules() if n][:20]}."
            )
        features = teacher.forward_features(X)
        if not with_logits:
            return features
        if hasattr(teacher, "head"):
            return features, teacher.head(features)
        return features, teacher_logits(teacher, X)
    layers = dict(teacher.named_modules())
    if layer not in layers:
        raise ValueError(
            f"teacher_feature_layer={layer!r} is not a layer of the teacher; "
            f"choose one of {[n for n in layers if n][:20]}."
        )
    captured = []
    handle = layers[layer].register_forward_hook(
        lambda _module, _inputs, output: captured.append(output)
    )
    try:
        out = teacher(X)
    finally:
        handle.remove()
    features = captured[0][0] if isinstance(captured[0], tuple) else captured[0]
    if features.ndim == 3:  # (batch, channels, time) -> average over time
        features = features.mean(dim=-1)
    features = features.flatten(start_dim=1)
    if with_logits:
        return features, out[0] if isinstance(out, tuple) else out
    return features


class TeacherCache:
    """Teacher outputs of the distinct training rows, looked up by content.

    A fit computes the frozen teacher's outputs once on its training series
    (source and target) instead of once per step. Rows are gathered chunk by
    chunk, so the arrays are never copied whole.

    Parameters
    ----------
    index : dict of bytes to int
        Row bytes to the row of ``outputs``.
    outputs : dict of str to torch.Tensor
        Each teacher output, one row per distinct series.

    Examples
    --------
    >>> import numpy as np, torch
    >>> X = np.arange(12, dtype="float32").reshape(3, 1, 4)
    >>> cache = TeacherCache.build(lambda b: {"logits": b.sum(-1)}, [X])
    >>> cache.lookup(torch.from_numpy(X[[2, 0]]))["logits"].ravel().tolist()
    [38.0, 6.0]
    >>> cache.lookup(torch.zeros(1, 1, 4)) is None
    True
    """

    def __init__(self, index, outputs):
        self.index = index
        self.outputs = outputs

    @classmethod
    def build(cls, forward, arrays, max_bytes=None):
        """Run ``forward`` over the distinct rows of ``arrays``.

        Parameters
        ----------
        forward : callable
            Batch of series (tensor) -> dict of output tensors, without gradient.
        arrays : list of ndarray
            The training series.
        max_bytes : int, optional
            Give up (return None) when the outputs would take more; default
            :data:`TEACHER_CACHE_MAX_BYTES`.

        Returns
        -------
        TeacherCache or None
        """
        max_bytes = TEACHER_CACHE_MAX_BYTES if max_bytes is None else max_bytes
        index = {}
        for a, X in enumerate(arrays):
            for i, row in enumerate(X):
                index.setdefault(row.tobytes(), (a, i))
        where = list(index.values())

        def chunk(start):
            rows = np.stack(
                [arrays[a][i] for a, i in where[start : start + _CACHE_CHUNK]]
            )
            return forward(torch.from_numpy(rows))

        chunks = [chunk(0)]
        per_row = sum(v.element_size() * v[0].numel() for v in chunks[0].values())
        if per_row * len(where) > max_bytes:
            return None
        chunks += [chunk(s) for s in range(_CACHE_CHUNK, len(where), _CACHE_CHUNK)]
        outputs = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        return cls({key: j for j, key in enumerate(index)}, outputs)

    def lookup(self, X):
        """The cached outputs of a batch, or None if a row is not cached.

        Parameters
        ----------
        X : torch.Tensor
            A batch of series on the CPU (row bytes need host memory).

        Returns
        -------
        dict of str to torch.Tensor or None
        """
        if X.device.type != "cpu":
            return None
        rows = [self.index.get(row.tobytes()) for row in X.detach().numpy()]
        if None in rows:
            return None
        rows = torch.as_tensor(rows, dtype=torch.long)
        return {k: v[rows] for k, v in self.outputs.items()}
