"""Model-size and cost measurements for comparing teachers and students.

Parameters, multiply-accumulate operations (MACs), serialized size and CPU
latency, plus :func:`compression_report` that puts a teacher and a student
side by side. MACs follow the convention of ``thop`` used by UNI-KD (Xu et
al., 2023, "Distilling universal and joint knowledge for cross-domain model
compression on time series data", IJCAI): only convolutions, linear and
recurrent layers are counted; normalization, activations, pooling and
additions are not.
"""

import copy
import io
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = [
    "CompressionReport",
    "as_module",
    "compression_report",
    "count_macs",
    "count_parameters",
    "measure_latency",
    "model_bytes",
]


def _is_wrapper(obj):
    """Whether ``obj`` wraps the estimator or module that holds the network.

    ``FrozenEstimator`` (and :class:`skkd.distributed.ScatteredTeacher`) hold
    the teacher in ``estimator``; a fitted ensemble also has an ``estimator``
    parameter (the template of its members) but is itself the fitted (or
    unfitted) net: it holds ``module_`` or declares ``initialized_``.
    """
    own = getattr(obj, "__dict__", {})
    return (
        not isinstance(obj, nn.Module)
        and hasattr(obj, "estimator")
        and "module_" not in own
        and "initialized_" not in own
        and not hasattr(type(obj), "initialized_")
    )


def as_module(obj):
    """Return the ``torch.nn.Module`` behind a module or a fitted estimator.

    Rule: an ``nn.Module`` is returned as is; an object with a ``module_``
    attribute (a fitted skorch or skkd net, a fitted ``TeacherEnsemble``)
    gives its ``module_``; else an object with an ``estimator`` attribute
    (e.g. ``sklearn.frozen.FrozenEstimator``) is unwrapped to it first.

    Parameters
    ----------
    obj : torch.nn.Module or estimator
        A module, a fitted net exposing ``module_``, or a wrapper exposing
        ``estimator``.

    Returns
    -------
    torch.nn.Module
        The underlying module (not copied).

    Raises
    ------
    TypeError
        If no module can be found.

    Examples
    --------
    >>> from torch import nn
    >>> from skkd.compression import as_module
    >>> lin = nn.Linear(2, 3)
    >>> class Fitted:
    ...     module_ = lin
    >>> as_module(Fitted()) is lin
    True
    """
    if isinstance(obj, nn.Module):
        return obj
    # a fitted meta-estimator (TeacherEnsemble) has its own module_ and an
    # unfitted ``estimator`` template: its module_ comes first
    module = getattr(obj, "module_", None)
    if isinstance(module, nn.Module):
        return module
    if _is_wrapper(obj):
        obj = obj.estimator
        if isinstance(obj, nn.Module):
            return obj
    module = getattr(obj, "module_", None)
    if isinstance(module, nn.Module):
        return module
    raise TypeError(
        "Expected a torch.nn.Module, a fitted estimator with a `module_` attribute "
        "(skorch/skkd net) or a wrapper with an `estimator` attribute "
        f"(e.g. sklearn FrozenEstimator); got {type(obj).__name__}."
    )


def _eval_copy(obj):
    # Work on a copy so the caller's module keeps its training flag and state.
    module = copy.deepcopy(as_module(obj))
    module.eval()
    return module


def _dummy_input(module, input_shape, batch_size=1):
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.randn(batch_size, *tuple(input_shape), device=device)


def count_parameters(module_or_estimator, trainable_only=False):
    """Count the parameters of a module or fitted estimator.

    Parameters
    ----------
    module_or_estimator : torch.nn.Module or estimator
        Anything accepted by :func:`as_module`.
    trainable_only : bool, default=False
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int
        Number of scalar parameters.

    Examples
    --------
    >>> from torch import nn
    >>> from skkd.compression import count_parameters
    >>> count_parameters(nn.Linear(4, 2))
    10
    """
    module = as_module(module_or_estimator)
    return sum(
        p.numel() for p in module.parameters() if p.requires_grad or not trainable_only
    )


def _rnn_macs(mod, inputs, gates):
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        n_steps = int(x.batch_sizes.shape[0])
    elif x.dim() == 2:  # unbatched (time, features)
        n_steps = x.shape[0]
    else:
        n_steps = x.shape[1] if mod.batch_first else x.shape[0]
    h = mod.hidden_size
    n_dir = 2 if mod.bidirectional else 1
    total = 0
    for layer in range(mod.num_layers):
        # Deeper layers read the (possibly bidirectional) output of the previous.
        n_in = mod.input_size if layer == 0 else h * n_dir
        total += n_dir * n_steps * gates * (n_in * h + h * h)
    return total


def count_macs(module, input_shape):
    """Count multiply-accumulates of one forward pass at batch size 1.

    Forward hooks count, per call:

    * ``Conv1d``: ``L_out * C_out * (C_in / groups) * kernel_size``;
    * ``Linear``: ``in_features * out_features`` per row (times the leading
      length for 3-D inputs);
    * ``LSTM``: ``4 * (in * h + h * h)`` per layer, direction and time step;
      ``GRU``: ``3 * (...)``; vanilla ``RNN``: ``1 * (...)``.

    Biases, normalization, activations, pooling and additions are not counted
    (the ``thop`` convention used by UNI-KD, Xu et al., 2023, IJCAI).

    Parameters
    ----------
    module : torch.nn.Module or estimator
        Model (anything accepted by :func:`as_module`); it is not modified.
    input_shape : tuple of int
        ``(n_channels, n_timepoints)`` of one sample.

    Returns
    -------
    int
        Number of MACs.

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> from skkd.compression import count_macs
    >>> count_macs(CNN1D(9, 6, widths=(16, 32, 32)), (9, 128))
    649408
    """
    model = _eval_copy(module)
    counts = []

    def conv_hook(mod, inputs, output):
        kernel = int(np.prod(mod.kernel_size))
        counts.append(output.numel() * (mod.in_channels // mod.groups) * kernel)

    def linear_hook(mod, inputs, output):
        # output.numel() / out_features is the number of rows (batch is 1).
        counts.append(output.numel() * mod.in_features)

    def rnn_hook(gates):
        def hook(mod, inputs, output):
            counts.append(_rnn_macs(mod, inputs, gates))

        return hook

    handles = []
    for sub in model.modules():
        if isinstance(sub, nn.Conv1d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
        elif isinstance(sub, nn.LSTM):
            handles.append(sub.register_forward_hook(rnn_hook(4)))
        elif isinstance(sub, nn.GRU):
            handles.append(sub.register_forward_hook(rnn_hook(3)))
        elif isinstance(sub, nn.RNN):
            handles.append(sub.register_forward_hook(rnn_hook(1)))
    try:
        with torch.no_grad():
            model(_dummy_input(model, input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return int(sum(counts))


def model_bytes(module):
    """Size in bytes of the serialized ``state_dict``.

    Parameters
    ----------
    module : torch.nn.Module or estimator
        Anything accepted by :func:`as_module`.

    Returns
    -------
    int
        Number of bytes written by ``torch.save(module.state_dict())``.

    Examples
    --------
    >>> from torch import nn
    >>> from skkd.compression import model_bytes
    >>> model_bytes(nn.Linear(100, 10)) > 4 * 1010
    True
    """
    buffer = io.BytesIO()
    torch.save(as_module(module).state_dict(), buffer)
    return buffer.getbuffer().nbytes


def measure_latency(module, input_shape, batch_size=1, repeats=30, warmup=5):
    """Measure wall-clock inference latency of a forward pass.

    The model is deep-copied, put in eval mode and run under
    ``torch.no_grad`` on random input; each of ``repeats`` forwards (after
    ``warmup`` untimed ones) is timed with ``time.perf_counter``.

    Parameters
    ----------
    module : torch.nn.Module or estimator
        Anything accepted by :func:`as_module`; it is not modified.
    input_shape : tuple of int
        ``(n_channels, n_timepoints)`` of one sample.
    batch_size : int, default=1
        Batch size of the timed forward.
    repeats : int, default=30
        Number of timed forwards.
    warmup : int, default=5
        Number of untimed forwards run first.

    Returns
    -------
    dict
        ``{"median": float, "p90": float}`` in seconds per forward.

    Examples
    --------
    >>> from torch import nn
    >>> from skkd.compression import measure_latency
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    >>> lat = measure_latency(net, (2, 4), repeats=3, warmup=1)
    >>> sorted(lat), lat["median"] > 0
    (['median', 'p90'], True)
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    model = _eval_copy(module)
    x = _dummy_input(model, input_shape, batch_size)
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return {
        "median": float(statistics.median(times)),
        "p90": float(np.percentile(times, 90)),
    }


def _ratio(a, b):
    return float(a) / float(b) if b else float("inf")


@dataclass
class CompressionReport:
    """Teacher versus student cost comparison returned by :func:`compression_report`.

    Parameters
    ----------
    teacher : dict
        Keys ``params``, ``macs``, ``bytes`` and, when measured,
        ``latency_s`` (median seconds) and ``latency_p90_s``.
    student : dict
        Same keys for the student.
    ratios : dict
        Teacher/student ratios ``params``, ``macs``, ``bytes`` and
        ``latency`` (when measured).

    Examples
    --------
    >>> from skkd.compression import CompressionReport
    >>> rep = CompressionReport({"params": 10}, {"params": 5}, {"params": 2.0})
    >>> rep.as_dict()["ratios"]
    {'params': 2.0}
    """

    teacher: dict = field(default_factory=dict)
    student: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)

    def as_dict(self):
        """Return the report as a nested plain dict.

        Returns
        -------
        dict
            ``{"teacher": {...}, "student": {...}, "ratios": {...}}``.
        """
        return {
            "teacher": dict(self.teacher),
            "student": dict(self.student),
            "ratios": dict(self.ratios),
        }

    def to_markdown(self):
        """Render the report as a Markdown table.

        Returns
        -------
        str
            One row per metric with teacher, student and ratio columns.
        """
        rows = [
            ("Parameters", "params", "params", "{:,}"),
            ("MACs", "macs", "macs", "{:,}"),
            ("Size (bytes)", "bytes", "bytes", "{:,}"),
            ("Latency (ms)", "latency_s", "latency", "{:.3f}"),
        ]
        lines = ["| Metric | Teacher | Student | Ratio |", "|---|---:|---:|---:|"]
        for label, key, ratio_key, fmt in rows:
            if key not in self.teacher:
                continue
            t, s = self.teacher[key], self.student[key]
            if key == "latency_s":
                t, s = t * 1e3, s * 1e3
            ratio = self.ratios.get(ratio_key, float("nan"))
            lines.append(
                f"| {label} | {fmt.format(t)} | {fmt.format(s)} | {ratio:.2f}x |"
            )
        return "\n".join(lines)

    def __str__(self):
        return self.to_markdown()


def _profile(module, input_shape, latency, batch_size):
    stats = {
        "params": count_parameters(module),
        "macs": count_macs(module, input_shape),
        "bytes": model_bytes(module),
    }
    if latency:
        lat = measure_latency(module, input_shape, batch_size=batch_size)
        stats["latency_s"] = lat["median"]
        stats["latency_p90_s"] = lat["p90"]
    return stats


def compression_report(teacher, student, input_shape, *, latency=True, batch_size=1):
    """Compare the size and cost of a teacher and a student.

    Parameters
    ----------
    teacher : torch.nn.Module or estimator
        Teacher model (anything accepted by :func:`as_module`).
    student : torch.nn.Module or estimator
        Student model.
    input_shape : tuple of int
        ``(n_channels, n_timepoints)`` of one sample.
    latency : bool, default=True
        Also measure CPU latency with :func:`measure_latency`.
    batch_size : int, default=1
        Batch size used for latency.

    Returns
    -------
    CompressionReport
        Per-model statistics and teacher/student ratios (``as_dict()`` for a
        plain dict, ``str()`` for a Markdown table).

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> from skkd.compression import compression_report
    >>> rep = compression_report(
    ...     CNN1D(9, 6), CNN1D(9, 6, widths=(16, 32, 32)), (9, 128), latency=False
    ... )
    >>> round(rep.ratios["params"], 2), round(rep.ratios["macs"], 2)
    (15.03, 14.29)
    """
    teacher, student = as_module(teacher), as_module(student)
    t = _profile(teacher, input_shape, latency, batch_size)
    s = _profile(student, input_shape, latency, batch_size)
    ratios = {key: _ratio(t[key], s[key]) for key in ("params", "macs", "bytes")}
    if latency:
        ratios["latency"] = _ratio(t["latency_s"], s["latency_s"])
    return CompressionReport(teacher=t, student=s, ratios=ratios)
