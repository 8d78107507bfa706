"""Post-training int8 quantization of fitted students.

Three methods, all post-training (no retraining):

* ``"dynamic"``: PyTorch dynamic quantization
  (``torch.ao.quantization.quantize_dynamic``): ``Linear``, ``LSTM`` and ``GRU``
  weights are stored as int8 and activations are quantized on the fly. This is
  the method for recurrent students; in a CNN only the classifier head is
  quantized (convolutions stay float).
* ``"onnx-dynamic"``: export to ONNX (:func:`skkd.export.to_onnx`), then ONNX
  Runtime dynamic quantization (int8 weights; ``MatMul``/``Gemm``/``LSTM``/
  ``GRU``/``Conv``).
* ``"onnx-static"``: export to ONNX, then ONNX Runtime static QDQ quantization
  of weights *and* activations, with activation ranges calibrated on
  ``X_calib`` (take it from the training data ``X`` or the unlabelled target
  set ``X_tgt``). The method for CNN students.

:func:`quantization_report` states what quantization cost and bought: the
change of macro-F1 and accuracy on a test set, bytes and batch-1 latency.
"""

import copy
import os
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from ._validation import check_time_series
from .compression import _is_wrapper, as_module, measure_latency, model_bytes
from .export import OnnxClassifier, _require, measure_onnx_latency, to_onnx

__all__ = [
    "QuantizationReport",
    "QuantizedClassifier",
    "quantization_report",
    "quantize",
]

METHODS = ("dynamic", "onnx-dynamic", "onnx-static")


def _softmax(logits):
    return torch.softmax(logits.float(), dim=1).numpy().astype(np.float64)


class QuantizedClassifier:
    """A dynamically quantized PyTorch student with sklearn-style prediction.

    Returned by ``quantize(..., method="dynamic")``. It exposes the fitted
    attributes of the float estimator it came from, so
    :func:`skkd.compression.as_module`, :func:`skkd.compression.model_bytes`,
    :func:`skkd.compression.measure_latency` and
    :func:`skkd.export.to_torchscript` accept it.

    Parameters
    ----------
    module : torch.nn.Module
        The quantized module (eval mode).
    classes : array-like, optional
        Labels (default ``0 .. n_classes - 1``).
    n_channels : int, optional
        Number of input channels.
    n_timepoints : int, optional
        Series length seen in fit.
    batch_size : int, default=256
        Prediction batch size.

    Attributes
    ----------
    module_ : torch.nn.Module
        The quantized module.
    classes_ : ndarray or None
        Labels (set from the first prediction when not given).
    n_channels_in_, n_timepoints_in_ : int or None
        Input shape.

    Examples
    --------
    >>> import numpy as np
    >>> from skkd.nn import LSTMClassifier
    >>> from skkd.quantization import quantize
    >>> q = quantize(LSTMClassifier(3, 2, hidden_size=8), method="dynamic")
    >>> q.predict(np.zeros((4, 3, 10))).shape
    (4,)
    """

    def __init__(
        self, module, classes=None, n_channels=None, n_timepoints=None, batch_size=256
    ):
        self.module_ = module
        self.classes_ = None if classes is None else np.asarray(classes)
        self.n_channels_in_ = n_channels
        self.n_timepoints_in_ = n_timepoints
        self.batch_size = batch_size

    def __sklearn_is_fitted__(self):
        return True

    def decision_function(self, X):
        """Logits of shape ``(n_samples, n_classes)``."""
        X = check_time_series(X, n_channels=self.n_channels_in_, action="predicting")
        X = torch.from_numpy(X)
        self.module_.eval()
        with torch.no_grad():
            return torch.cat(
                [
                    self.module_(X[i : i + self.batch_size])
                    for i in range(0, len(X), self.batch_size)
                ]
            )

    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``."""
        return _softmax(self.decision_function(X))

    def predict(self, X):
        """Predicted labels."""
        proba = self.predict_proba(X)
        if self.classes_ is None:
            self.classes_ = np.arange(proba.shape[1])
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y):
        """Accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


def _shape_of(obj):
    classes = n_channels = n_timepoints = None
    est = obj.estimator if _is_wrapper(obj) else obj
    if not isinstance(est, nn.Module):
        try:
            classes = np.asarray(est.classes_)
        except AttributeError:
            classes = None
        n_channels = getattr(est, "n_channels_in_", None)
        n_timepoints = getattr(est, "n_timepoints_in_", None)
    module = as_module(obj)
    return (
        module,
        classes,
        n_channels or getattr(module, "n_channels", None),
        n_timepoints,
    )


class _CalibrationReader:
    """ONNX Runtime calibration reader yielding batches of ``X_calib``."""

    def __init__(self, X, input_name, batch_size=32):
        self.batches = iter(
            [
                {input_name: np.ascontiguousarray(X[i : i + batch_size])}
                for i in range(0, len(X), batch_size)
            ]
        )

    def get_next(self):
        return next(self.batches, None)


def quantize(
    estimator_or_module,
    method="dynamic",
    X_calib=None,
    *,
    path=None,
    n_timepoints=None,
    n_calib=512,
    random_state=0,
):
    """Quantize a fitted student to int8 for deployment.

    Parameters
    ----------
    estimator_or_module : estimator or torch.nn.Module
        A fitted skkd estimator (or ``FrozenEstimator`` of one) or a module.
        It is not modified.
    method : {"dynamic", "onnx-dynamic", "onnx-static"}, default="dynamic"
        ``"dynamic"``: PyTorch dynamic quantization of ``Linear``/``LSTM``/
        ``GRU``. ``"onnx-dynamic"``: ONNX Runtime dynamic quantization.
        ``"onnx-static"``: ONNX Runtime static (QDQ) quantization calibrated on
        ``X_calib`` (the method for CNNs).
    X_calib : array-like of shape (n_samples, n_channels, n_timepoints), optional
        Calibration series, required by ``"onnx-static"``: unlabelled data
        from the deployment distribution, e.g. the training ``X`` or the target
        set ``X_tgt``. At most ``n_calib`` randomly drawn rows are used.
    path : str or os.PathLike, optional
        Where to write the int8 ONNX file (ONNX methods); default a new
        temporary directory.
    n_timepoints : int, optional
        Series length for the ONNX export (default the estimator's
        ``n_timepoints_in_``; required for a bare module).
    n_calib : int, default=512
        Maximum number of calibration rows.
    random_state : int, default=0
        Seed of the calibration subsample.

    Returns
    -------
    QuantizedClassifier or skkd.export.OnnxClassifier
        An object with ``predict``, ``predict_proba``, ``score`` and
        ``classes_``: a :class:`QuantizedClassifier` for ``"dynamic"``, an
        :class:`~skkd.export.OnnxClassifier` over the int8 file (its ``path``)
        for the ONNX methods.

    Raises
    ------
    ValueError
        Unknown ``method``, or ``"onnx-static"`` without ``X_calib``.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from skkd.nn import CNN1D
    >>> from skkd.quantization import quantize
    >>> X = np.random.default_rng(0).normal(size=(16, 3, 32)).astype(np.float32)
    >>> q = quantize(CNN1D(3, 2, widths=(8, 8)), "onnx-static", X_calib=X,
    ...              n_timepoints=32)
    >>> q.predict(X).shape
    (16,)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if method == "dynamic":
        if not isinstance(estimator_or_module, nn.Module):
            # Raises NotFittedError for an unfitted estimator.
            from .export import _resolve

            _resolve(estimator_or_module, n_timepoints, None)
        module, classes, n_channels, n_tp = _shape_of(estimator_or_module)
        float_module = copy.deepcopy(module).cpu().float().eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qmodule = torch.ao.quantization.quantize_dynamic(
                float_module, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8
            )
        return QuantizedClassifier(
            qmodule.eval(), classes, n_channels, n_timepoints or n_tp
        )

    quant = _require("onnxruntime.quantization")
    if method == "onnx-static" and X_calib is None:
        raise ValueError(
            "method='onnx-static' calibrates activation ranges and needs X_calib: "
            "pass unlabelled series from the deployment distribution, e.g. the "
            "training X or the target set X_tgt."
        )
    workdir = tempfile.mkdtemp(prefix="skkd-quant-")
    float_path = to_onnx(
        estimator_or_module, os.path.join(workdir, "float.onnx"), n_timepoints
    )
    _, classes, _, _ = _shape_of(estimator_or_module)
    path = os.fspath(path) if path is not None else os.path.join(workdir, "int8.onnx")
    source = float_path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # shape inference + graph optimization, recommended before quantizing
            pre = os.path.join(workdir, "float.pre.onnx")
            quant.quant_pre_process(float_path, pre, skip_symbolic_shape=True)
            source = pre
        except Exception:  # pragma: no cover - optional optimization step
            source = float_path
        if method == "onnx-dynamic":
            quant.quantize_dynamic(source, path, weight_type=quant.QuantType.QInt8)
        else:
            float_clf = OnnxClassifier(float_path)
            X = check_time_series(X_calib, name="X_calib")
            if len(X) > n_calib:
                rng = np.random.default_rng(random_state)
                X = X[np.sort(rng.choice(len(X), n_calib, replace=False))]
            reader = _CalibrationReader(
                X, float_clf._get_session().get_inputs()[0].name
            )
            quant.quantize_static(
                source,
                path,
                reader,
                quant_format=quant.QuantFormat.QDQ,
                activation_type=quant.QuantType.QUInt8,
                weight_type=quant.QuantType.QInt8,
                per_channel=True,
            )
    return OnnxClassifier(path, classes=classes)


@dataclass
class QuantizationReport:
    """Float versus int8 comparison returned by :func:`quantization_report`.

    Parameters
    ----------
    float : dict
        ``macro_f1``, ``accuracy`` (in [0, 1]), ``bytes``, ``latency_ms``
        (median at batch 1) of the float model.
    int8 : dict
        The same for the quantized model.
    changes : dict
        ``macro_f1_points`` and ``accuracy_points`` (int8 minus float, in
        percentage points), ``size_ratio`` and ``speedup`` (float / int8),
        ``agreement`` (fraction of identical predictions).
    runtime : str
        ``"pytorch"`` or ``"onnxruntime"``: where both were measured.

    Examples
    --------
    >>> from skkd.quantization import QuantizationReport
    >>> QuantizationReport({"bytes": 4}, {"bytes": 1}, {"size_ratio": 4.0}).as_dict()[
    ...     "changes"]
    {'size_ratio': 4.0}
    """

    float: dict = field(default_factory=dict)
    int8: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)
    runtime: str = "pytorch"

    def as_dict(self):
        """Return the report as a nested plain dict."""
        return {
            "float": dict(self.float),
            "int8": dict(self.int8),
            "changes": dict(self.changes),
            "runtime": self.runtime,
        }

    def to_markdown(self):
        """Render the report as a Markdown table (scores in %)."""
        f, q, c = self.float, self.int8, self.changes
        return "\n".join(
            [
                f"| ({self.runtime}) | float | int8 | change |",
                "|---|---:|---:|---:|",
                f"| macro-F1 (%) | {100 * f['macro_f1']:.2f} | "
                f"{100 * q['macro_f1']:.2f} | {c['macro_f1_points']:+.2f} pts |",
                f"| accuracy (%) | {100 * f['accuracy']:.2f} | "
                f"{100 * q['accuracy']:.2f} | {c['accuracy_points']:+.2f} pts |",
                f"| size (bytes) | {f['bytes']:,} | {q['bytes']:,} | "
                f"{c['size_ratio']:.2f}x smaller |",
                f"| latency, batch 1 (ms) | {f['latency_ms']:.3f} | "
                f"{q['latency_ms']:.3f} | {c['speedup']:.2f}x faster |",
            ]
        )

    def __str__(self):
        return self.to_markdown()


def quantization_report(float_est, int8, X_test, y_test, *, repeats=100, warmup=10):
    """Accuracy change, size and latency of an int8 model against its float source.

    Both models are measured in the same runtime: for an ONNX int8 model the
    float model is exported to ONNX too, and bytes are file sizes and latency
    is ONNX Runtime's; for a PyTorch int8 model bytes are
    :func:`skkd.compression.model_bytes` and latency is
    :func:`skkd.compression.measure_latency` (eager). Latency is the median of
    ``repeats`` batch-1 calls with the current thread settings.

    Parameters
    ----------
    float_est : estimator
        The fitted float estimator (``predict`` and ``module_``).
    int8 : QuantizedClassifier or skkd.export.OnnxClassifier
        Result of :func:`quantize`.
    X_test : array-like of shape (n_samples, n_channels, n_timepoints)
        Test series (e.g. the target test set).
    y_test : array-like of shape (n_samples,)
        Test labels.
    repeats : int, default=100
        Timed calls per latency measurement.
    warmup : int, default=10
        Untimed calls first.

    Returns
    -------
    QuantizationReport

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> from skkd.nn import GRUClassifier
    >>> from skkd.quantization import quantize, quantization_report
    >>> d = make_domain_shift(random_state=0)
    >>> clf = TimeSeriesClassifier(GRUClassifier, module__hidden_size=32,
    ...                            max_epochs=1, random_state=0).fit(d.X_src, d.y_src)
    >>> rep = quantization_report(clf, quantize(clf), d.X_tgt_test, d.y_tgt_test,
    ...                           repeats=5, warmup=1)
    >>> rep.changes["size_ratio"] > 1
    True
    """
    X_test = check_time_series(X_test, name="X_test")
    y_test = np.asarray(y_test)
    input_shape = X_test.shape[1:]
    pred_f = np.asarray(float_est.predict(X_test))
    pred_q = np.asarray(int8.predict(X_test))
    stats = {}
    if isinstance(int8, OnnxClassifier):
        runtime = "onnxruntime"
        workdir = tempfile.mkdtemp(prefix="skkd-qreport-")
        float_path = to_onnx(
            float_est, os.path.join(workdir, "float.onnx"), input_shape[1]
        )
        for name, p in (("float", float_path), ("int8", int8.path)):
            lat = measure_onnx_latency(
                p, input_shape, repeats=repeats, warmup=warmup, threads=None
            )
            stats[name] = {
                "bytes": os.path.getsize(p),
                "latency_ms": 1e3 * lat["median"],
            }
    else:
        runtime = "pytorch"
        for name, m in (("float", float_est), ("int8", int8)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lat = measure_latency(m, input_shape, repeats=repeats, warmup=warmup)
            stats[name] = {"bytes": model_bytes(m), "latency_ms": 1e3 * lat["median"]}
    for name, pred in (("float", pred_f), ("int8", pred_q)):
        stats[name]["macro_f1"] = float(f1_score(y_test, pred, average="macro"))
        stats[name]["accuracy"] = float(accuracy_score(y_test, pred))
    f, q = stats["float"], stats["int8"]
    changes = {
        "macro_f1_points": 100 * (q["macro_f1"] - f["macro_f1"]),
        "accuracy_points": 100 * (q["accuracy"] - f["accuracy"]),
        "size_ratio": f["bytes"] / q["bytes"],
        "speedup": f["latency_ms"] / q["latency_ms"],
        "agreement": float(np.mean(pred_f == pred_q)),
    }
    return QuantizationReport(float=f, int8=q, changes=changes, runtime=runtime)
