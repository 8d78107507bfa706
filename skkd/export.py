"""Export fitted students to ONNX and TorchScript, verified against PyTorch.

:func:`to_onnx` writes an ONNX file with a dynamic batch axis that runs in
ONNX Runtime without skkd or torch installed; :func:`to_torchscript` writes a
traced TorchScript file that runs with torch alone. Both check the written file
against the PyTorch model in eval mode on random inputs and on caller-provided
real inputs (``X_verify``) and refuse to leave a file whose outputs differ by
more than ``atol``. :class:`OnnxClassifier` runs an ONNX file with an
sklearn-style ``predict``/``predict_proba``.

ONNX support is an optional extra: ``pip install "skkd[export]"`` (onnx,
onnxruntime, onnxscript).
"""

import contextlib
import copy
import json
import os
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from ._validation import check_time_series
from .compression import _is_wrapper, as_module

__all__ = [
    "ExportError",
    "OnnxClassifier",
    "load_onnx",
    "measure_onnx_latency",
    "to_onnx",
    "to_torchscript",
    "verify_onnx",
]

_EXTRA_HINT = 'pip install "skkd[export]"'
_INPUT_NAME = "input"
_OUTPUT_NAME = "logits"
_VERIFY_BATCH = 256


class ExportError(RuntimeError):
    """The model cannot be written in the requested format (e.g. an operator
    ONNX cannot express)."""


def _require(name):
    """Import an optional export dependency or raise an ImportError naming the extra."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export and inference need the optional package {name!r}, which is "
            f"not installed. Install the export extra: {_EXTRA_HINT}"
        ) from exc


def _ort_session(path, threads=None):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(
        os.fspath(path), options, providers=["CPUExecutionProvider"]
    )


# ------------------------------------------------------------------ resolving
def _resolve(estimator_or_module, n_timepoints, n_channels):
    """Return ``(eval copy of the module, n_channels, n_timepoints, classes)``."""
    obj = estimator_or_module
    if _is_wrapper(obj):
        obj = obj.estimator  # sklearn FrozenEstimator
    classes = None
    if isinstance(obj, torch.nn.Module):
        module = obj
        if n_timepoints is None:
            raise ValueError(
                "n_timepoints is required when exporting a bare torch.nn.Module: pass "
                "the series length the model will receive, e.g. "
                "to_onnx(module, path, n_timepoints=128). (A fitted estimator "
                "knows it from fit as n_timepoints_in_.)"
            )
        n_channels = n_channels or getattr(module, "n_channels", None)
        if n_channels is None:
            raise ValueError(
                "n_channels is unknown for this module (it has no `n_channels` "
                "attribute): pass n_channels=..."
            )
    else:
        check = getattr(obj, "check_is_fitted", None)
        fitted = getattr(obj, "module_", None) is not None
        if check is not None:
            try:
                check()
            except Exception as exc:  # sklearn NotFittedError, skorch NotInitialized
                if not isinstance(exc, NotFittedError) and "NotInitialized" not in (
                    type(exc).__name__
                ):
                    raise
                fitted = False
        if not fitted:
            raise NotFittedError(
                f"Cannot export this {type(obj).__name__}: it is not fitted yet, so "
                "it has no trained network to export. Call fit(X, y) first."
            )
        module = as_module(obj)
        n_channels = n_channels or getattr(obj, "n_channels_in_", None)
        n_channels = n_channels or getattr(module, "n_channels", None)
        if n_timepoints is None:
            n_timepoints = getattr(obj, "n_timepoints_in_", None)
        if n_channels is None or n_timepoints is None:
            raise ValueError(
                f"{type(obj).__name__} does not record its input shape "
                "(n_channels_in_, n_timepoints_in_): pass n_channels= and "
                "n_timepoints=."
            )
        with contextlib.suppress(AttributeError):
            classes = np.asarray(obj.classes_)
    model = copy.deepcopy(module).cpu().float().eval()
    n_channels, n_timepoints = int(n_channels), int(n_timepoints)
    _check_length(model, n_channels, n_timepoints)
    return model, n_channels, n_timepoints, classes


def _check_length(model, n_channels, n_timepoints):
    if n_timepoints < 1:
        raise ValueError(f"n_timepoints must be >= 1, got {n_timepoints}.")
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, n_channels, n_timepoints))
    except Exception as exc:  # any failure here means the shape is not accepted
        raise ValueError(
            f"The model cannot take inputs of shape (batch, {n_channels}, "
            f"{n_timepoints}): its forward pass fails with {type(exc).__name__}: "
            f"{exc}. Pass the n_timepoints (and n_channels) it was built for."
        ) from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ValueError(
            "Only models returning one logits tensor of shape (batch, n_classes) can "
            f"be exported; this one returned {type(out).__name__}"
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else ''}."
        )


def _verification_inputs(n_channels, n_timepoints, X_verify, n_random, random_state):
    rng = np.random.default_rng(random_state)
    inputs = {
        "random": rng.standard_normal((n_random, n_channels, n_timepoints)).astype(
            np.float32
        ),
        "random, batch 1": rng.standard_normal((1, n_channels, n_timepoints)).astype(
            np.float32
        ),
    }
    if X_verify is not None:
        X = check_time_series(X_verify, name="X_verify", n_channels=n_channels)
        if X.shape[2] != n_timepoints:
            raise ValueError(
                f"X_verify has {X.shape[2]} time points but the model is exported for "
                f"n_timepoints={n_timepoints}."
            )
        inputs["X_verify"] = X
    return inputs


def _torch_outputs(model, X):
    with torch.no_grad():
        return np.concatenate(
            [
                model(torch.from_numpy(X[i : i + _VERIFY_BATCH])).numpy()
                for i in range(0, len(X), _VERIFY_BATCH)
            ]
        )


def _max_abs_diff(a, b):
    if a.shape != b.shape:
        return float("inf")
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float("inf") if not np.all(np.isfinite(diff)) else float(diff.max())


def _check_diffs(diffs, atol, path, fmt):
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        detail = ", ".join(f"{k}: {v:.3g}" for k, v in diffs.items())
        raise ValueError(
            f"{fmt} verification failed: the exported model's outputs differ from "
            f"PyTorch's by more than atol={atol:g} (max abs diff {detail}). The "
            f"partial file {os.fspath(path)!r} was removed."
        )


def _run_session(session, X):
    name = session.get_inputs()[0].name
    return np.concatenate(
        [
            session.run(None, {name: X[i : i + _VERIFY_BATCH]})[0]
            for i in range(0, len(X), _VERIFY_BATCH)
        ]
    )


# ----------------------------------------------------------------------- ONNX
def to_onnx(
    estimator_or_module,
    path,
    n_timepoints=None,
    *,
    n_channels=None,
    X_verify=None,
    atol=1e-4,
    opset_version=17,
    n_random=8,
    random_state=0,
):
    """Export a fitted estimator or module to ONNX and verify it.

    The graph takes ``input`` of shape ``(batch, n_channels, n_timepoints)``
    (float32, dynamic ``batch``) and returns ``logits`` ``(batch, n_classes)``.
    It is written with the TorchScript-based exporter
    (``torch.onnx.export(..., dynamo=False)``), which keeps the batch axis of
    LSTM/GRU graphs dynamic. The file is then run in ONNX Runtime (CPU) on
    random inputs (batch ``n_random`` and batch 1) and on ``X_verify``, and
    compared with the PyTorch model in eval mode. The estimator's ``classes_``,
    ``n_channels`` and ``n_timepoints`` are stored as metadata, read back by
    :func:`load_onnx`.

    Parameters
    ----------
    estimator_or_module : estimator or torch.nn.Module
        A fitted skkd/skorch estimator (or ``FrozenEstimator`` of one) or a
        module.
    path : str or os.PathLike
        Output ``.onnx`` file.
    n_timepoints : int, optional
        Series length of the exported graph; default the estimator's
        ``n_timepoints_in_``. Required for a bare module.
    n_channels : int, optional
        Number of channels; default the estimator's ``n_channels_in_`` or the
        module's ``n_channels``.
    X_verify : array-like of shape (n_samples, n_channels, n_timepoints), optional
        Real inputs on which outputs are compared as well.
    atol : float, default=1e-4
        Largest accepted absolute difference of the logits.
    opset_version : int, default=17
        ONNX opset (17 or higher).
    n_random : int, default=8
        Batch size of the random verification input.
    random_state : int, default=0
        Seed of the random verification inputs.

    Returns
    -------
    str
        The written path.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If the model cannot take inputs of length ``n_timepoints``, if
        ``n_timepoints`` is missing for a bare module, or if verification fails
        (the file is then removed).
    ExportError
        If the model uses an operator ONNX cannot express.
    ImportError
        If onnx/onnxruntime are missing (``pip install "skkd[export]"``).

    Examples
    --------
    >>> import numpy as np, onnxruntime as ort, tempfile, os
    >>> from skkd.nn import CNN1D
    >>> from skkd.export import to_onnx
    >>> net = CNN1D(3, 4, widths=(4, 8))
    >>> path = to_onnx(net, os.path.join(tempfile.mkdtemp(), "s.onnx"), n_timepoints=32)
    >>> sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    >>> x = np.random.default_rng(0).normal(size=(5, 3, 32)).astype(np.float32)
    >>> sess.run(None, {"input": x})[0].shape
    (5, 4)
    """
    onnx = _require("onnx")
    _require("onnxruntime")
    if opset_version < 17:
        raise ValueError(f"opset_version must be >= 17, got {opset_version}.")
    model, n_channels, n_timepoints, classes = _resolve(
        estimator_or_module, n_timepoints, n_channels
    )
    path = os.fspath(path)
    example = torch.zeros(1, n_channels, n_timepoints)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                path,
                input_names=[_INPUT_NAME],
                output_names=[_OUTPUT_NAME],
                dynamic_axes={_INPUT_NAME: {0: "batch"}, _OUTPUT_NAME: {0: "batch"}},
                opset_version=opset_version,
                dynamo=False,
            )
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        if type(exc).__name__ == "UnsupportedOperatorError":
            raise ExportError(
                f"Cannot export {type(model).__name__} to ONNX: it uses an operator "
                f"ONNX opset {opset_version} cannot express ({exc}). Replace that "
                "operation, or use to_torchscript instead."
            ) from exc
        raise ExportError(
            f"Exporting {type(model).__name__} to ONNX failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc

    proto = onnx.load(path)
    meta = {"skkd.n_channels": n_channels, "skkd.n_timepoints": n_timepoints}
    if classes is not None:
        meta["skkd.classes"] = json.dumps(classes.tolist())
    onnx.helper.set_model_props(proto, {k: str(v) for k, v in meta.items()})
    onnx.save(proto, path)

    inputs = _verification_inputs(
        n_channels, n_timepoints, X_verify, n_random, random_state
    )
    try:
        diffs = verify_onnx(path, model, inputs)
    except Exception:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        raise
    _check_diffs(diffs, atol, path, "ONNX")
    return path


def verify_onnx(path, estimator_or_module, inputs):
    """Largest absolute difference between an ONNX file and PyTorch.

    Parameters
    ----------
    path : str or os.PathLike
        ONNX file written by :func:`to_onnx`.
    estimator_or_module : estimator or torch.nn.Module
        The model it was exported from (run in eval mode on a copy).
    inputs : array-like or dict of str to array-like
        Input batch ``(n, n_channels, n_timepoints)``, or named batches.

    Returns
    -------
    dict
        Max absolute logit difference per named input.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skkd.nn import GRUClassifier
    >>> from skkd.export import to_onnx, verify_onnx
    >>> net = GRUClassifier(2, 3, hidden_size=4)
    >>> path = to_onnx(net, os.path.join(tempfile.mkdtemp(), "g.onnx"), n_timepoints=10)
    >>> x = np.ones((3, 2, 10), dtype=np.float32)
    >>> verify_onnx(path, net, x)["input"] < 1e-4
    True
    """
    model = copy.deepcopy(as_module(estimator_or_module)).cpu().float().eval()
    if not isinstance(inputs, dict):
        inputs = {"input": inputs}
    session = _ort_session(path)
    diffs = {}
    for name, X in inputs.items():
        X = np.ascontiguousarray(X, dtype=np.float32)
        diffs[name] = _max_abs_diff(_run_session(session, X), _torch_outputs(model, X))
    return diffs


# ---------------------------------------------------------------- TorchScript
def to_torchscript(
    estimator_or_module,
    path,
    n_timepoints=None,
    *,
    n_channels=None,
    X_verify=None,
    atol=1e-4,
    n_random=8,
    random_state=0,
):
    """Export a fitted estimator or module to a traced TorchScript file and verify it.

    The model is traced with ``torch.jit.trace`` on a batch-1 example, saved,
    loaded back with ``torch.jit.load`` and compared with the PyTorch model on
    random inputs (batch ``n_random`` and 1) and ``X_verify``. The file runs
    with torch alone (``torch.jit.load(path)``), without skkd. Dynamically
    quantized modules (:func:`skkd.quantization.quantize`) can be exported too.

    Parameters
    ----------
    estimator_or_module : estimator or torch.nn.Module
        A fitted estimator (or ``FrozenEstimator``), a quantized wrapper, or a
        module.
    path : str or os.PathLike
        Output ``.pt`` file.
    n_timepoints : int, optional
        Series length; default the estimator's ``n_timepoints_in_``; required
        for a bare module.
    n_channels : int, optional
        Number of channels (default from the estimator or module).
    X_verify : array-like, optional
        Real inputs on which outputs are compared as well.
    atol : float, default=1e-4
        Largest accepted absolute difference of the logits.
    n_random : int, default=8
        Batch size of the random verification input.
    random_state : int, default=0
        Seed of the random verification inputs.

    Returns
    -------
    str
        The written path.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        Wrong input length, missing ``n_timepoints``, or failed verification
        (the file is then removed).
    ExportError
        If the model cannot be traced.

    Examples
    --------
    >>> import torch, tempfile, os
    >>> from skkd.nn import LSTMClassifier
    >>> from skkd.export import to_torchscript
    >>> net = LSTMClassifier(3, 2, hidden_size=4)
    >>> path = to_torchscript(net, os.path.join(tempfile.mkdtemp(), "m.pt"),
    ...                       n_timepoints=16)
    >>> torch.jit.load(path)(torch.zeros(5, 3, 16)).shape
    torch.Size([5, 2])
    """
    model, n_channels, n_timepoints, _ = _resolve(
        estimator_or_module, n_timepoints, n_channels
    )
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(
                model, torch.zeros(1, n_channels, n_timepoints), check_trace=False
            )
            torch.jit.save(traced, path)
            loaded = torch.jit.load(path)
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        raise ExportError(
            f"Tracing {type(model).__name__} to TorchScript failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    inputs = _verification_inputs(
        n_channels, n_timepoints, X_verify, n_random, random_state
    )
    diffs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, X in inputs.items():
            diffs[name] = _max_abs_diff(
                _torch_outputs(loaded, X), _torch_outputs(model, X)
            )
    _check_diffs(diffs, atol, path, "TorchScript")
    return path


# ------------------------------------------------------------------ inference
def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return z / z.sum(axis=1, keepdims=True)


class OnnxClassifier:
    """Run an exported ONNX classifier with ONNX Runtime, sklearn-style.

    Only numpy and onnxruntime are used at prediction time. The session is
    created on first use (and re-created after unpickling).

    Parameters
    ----------
    path : str or os.PathLike
        ONNX file whose graph maps ``input`` ``(batch, c, t)`` to logits.
    classes : array-like, optional
        Class labels; default the ``skkd.classes`` metadata written by
        :func:`to_onnx`, else ``0 .. n_classes - 1``.
    threads : int, optional
        ONNX Runtime intra-op threads (default: its own choice).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or None
        Labels, ``None`` until known from metadata or the first prediction.
    n_channels_in_, n_timepoints_in_ : int or None
        Input shape recorded in the metadata.
    n_bytes_ : int
        Size of the file in bytes.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skkd.nn import CNN1D
    >>> from skkd.export import to_onnx, OnnxClassifier
    >>> path = to_onnx(CNN1D(2, 3, widths=(4,)), os.path.join(tempfile.mkdtemp(),
    ...                "m.onnx"), n_timepoints=20)
    >>> clf = OnnxClassifier(path)
    >>> clf.predict_proba(np.zeros((4, 2, 20))).shape
    (4, 3)
    """

    def __init__(self, path, classes=None, threads=None):
        self.path = os.fspath(path)
        self.threads = threads
        self._session = None
        meta = self._get_session().get_modelmeta().custom_metadata_map
        self.n_channels_in_ = (
            int(meta["skkd.n_channels"]) if "skkd.n_channels" in meta else None
        )
        self.n_timepoints_in_ = (
            int(meta["skkd.n_timepoints"]) if "skkd.n_timepoints" in meta else None
        )
        if classes is None and "skkd.classes" in meta:
            classes = json.loads(meta["skkd.classes"])
        self.classes_ = None if classes is None else np.asarray(classes)
        self.n_bytes_ = os.path.getsize(self.path)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_session"] = None
        return state

    def __sklearn_is_fitted__(self):
        return True

    def _get_session(self):
        if self._session is None:
            self._session = _ort_session(self.path, self.threads)
        return self._session

    def decision_function(self, X):
        """Logits of shape ``(n_samples, n_classes)``."""
        X = check_time_series(X, n_channels=self.n_channels_in_, action="predicting")
        return _run_session(self._get_session(), np.ascontiguousarray(X))

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns as ``classes_``."""
        return _softmax(self.decision_function(X).astype(np.float64))

    def predict(self, X):
        """Predicted labels."""
        proba = self.predict_proba(X)
        if self.classes_ is None:
            self.classes_ = np.arange(proba.shape[1])
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y):
        """Accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


def load_onnx(path, classes=None, threads=None):
    """Open an ONNX file as an :class:`OnnxClassifier`.

    Parameters
    ----------
    path : str or os.PathLike
        ONNX file.
    classes : array-like, optional
        Labels (default from the file's metadata).
    threads : int, optional
        ONNX Runtime intra-op threads.

    Returns
    -------
    OnnxClassifier

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skkd.nn import CNN1D
    >>> from skkd.export import to_onnx, load_onnx
    >>> path = to_onnx(CNN1D(1, 2, widths=(4,)), os.path.join(tempfile.mkdtemp(),
    ...                "m.onnx"), n_timepoints=8)
    >>> load_onnx(path, classes=["a", "b"]).predict(np.zeros((2, 8))).shape
    (2,)
    """
    return OnnxClassifier(path, classes=classes, threads=threads)


def measure_onnx_latency(
    path, input_shape, batch_size=1, repeats=30, warmup=5, threads=None
):
    """Wall-clock latency of one ONNX Runtime call on random input.

    Same protocol as :func:`skkd.compression.measure_latency`: ``warmup``
    untimed calls, then ``repeats`` calls timed with ``time.perf_counter``.

    Parameters
    ----------
    path : str or os.PathLike
        ONNX file.
    input_shape : tuple of int
        ``(n_channels, n_timepoints)`` of one sample.
    batch_size : int, default=1
        Batch size of each call.
    repeats : int, default=30
        Number of timed calls.
    warmup : int, default=5
        Number of untimed calls first.
    threads : int, optional
        ONNX Runtime intra-op threads.

    Returns
    -------
    dict
        ``{"median", "p90", "p99"}`` in seconds per call.

    Examples
    --------
    >>> import tempfile, os
    >>> from skkd.nn import CNN1D
    >>> from skkd.export import to_onnx, measure_onnx_latency
    >>> path = to_onnx(CNN1D(2, 3, widths=(4,)), os.path.join(tempfile.mkdtemp(),
    ...                "m.onnx"), n_timepoints=20)
    >>> measure_onnx_latency(path, (2, 20), repeats=3, warmup=1)["median"] > 0
    True
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    session = _ort_session(path, threads)
    x = (
        np.random.default_rng(0)
        .standard_normal((batch_size, *tuple(input_shape)))
        .astype(np.float32)
    )
    feed = {session.get_inputs()[0].name: x}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return {
        "median": float(statistics.median(times)),
        "p90": float(np.percentile(times, 90)),
        "p99": float(np.percentile(times, 99)),
    }
