"""Post-training int8 quantization: PyTorch dynamic and ONNX Runtime paths."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skkd import TimeSeriesClassifier
from skkd.compression import as_module, model_bytes
from skkd.export import OnnxClassifier, to_torchscript
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier
from skkd.quantization import (
    QuantizationReport,
    QuantizedClassifier,
    quantization_report,
    quantize,
)

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("cls", [LSTMClassifier, GRUClassifier])
def test_dynamic_quantization_close_and_smaller(cls, shift_data):
    torch.manual_seed(0)
    module = cls(3, 3, hidden_size=32).eval()
    q = quantize(module, "dynamic")
    assert isinstance(q, QuantizedClassifier)
    assert "quantized.dynamic" in type(q.module_.rnn).__module__
    assert "quantized.dynamic" in type(q.module_.head).__module__
    X = shift_data.X_tgt_test
    with torch.no_grad():
        ref = torch.softmax(module(torch.from_numpy(X)), 1).numpy()
    proba = q.predict_proba(X)
    assert np.abs(proba - ref).max() < 0.05
    assert np.mean(proba.argmax(1) == ref.argmax(1)) >= 0.9
    assert model_bytes(q) < model_bytes(module)
    # the float module is untouched
    assert type(module.rnn) is cls._rnn_cls


def test_dynamic_quantization_of_estimator_predicts(lstm_clf, shift_data):
    q = quantize(lstm_clf)
    X, y = shift_data.X_tgt_test, shift_data.y_tgt_test
    np.testing.assert_array_equal(q.classes_, lstm_clf.classes_)
    assert q.n_timepoints_in_ == lstm_clf.n_timepoints_in_
    agreement = np.mean(q.predict(X) == lstm_clf.predict(X))
    assert agreement >= 0.9
    assert 0 <= q.score(X, y) <= 1
    assert as_module(q) is q.module_


def test_quantized_module_exports_to_torchscript(lstm_clf, shift_data, tmp_path):
    q = quantize(lstm_clf)
    path = to_torchscript(q, tmp_path / "q.pt", X_verify=shift_data.X_tgt_test[:8])
    loaded = torch.jit.load(path)
    assert loaded(torch.zeros(2, 3, 32)).shape == (2, 3)


def test_onnx_static_quantization_of_cnn(shift_data, tmp_path):
    clf = TimeSeriesClassifier(
        CNN1D, module__widths=(16, 32), max_epochs=2, batch_size=16, random_state=0
    ).fit(shift_data.X_src, shift_data.y_src)
    q = quantize(
        clf, "onnx-static", X_calib=shift_data.X_tgt, path=tmp_path / "int8.onnx"
    )
    assert isinstance(q, OnnxClassifier)
    assert (tmp_path / "int8.onnx").exists()
    X = shift_data.X_tgt_test
    pred = q.predict(X)
    assert pred.shape == (len(X),)
    assert set(pred) <= set(clf.classes_)
    assert np.mean(pred == clf.predict(X)) >= 0.8
    rep = quantization_report(clf, q, X, shift_data.y_tgt_test, repeats=3, warmup=1)
    assert isinstance(rep, QuantizationReport)
    assert rep.runtime == "onnxruntime"
    assert rep.int8["bytes"] < rep.float["bytes"]
    assert "macro-F1" in rep.to_markdown()


def test_onnx_dynamic_quantization_of_lstm(lstm_clf, shift_data):
    q = quantize(lstm_clf, "onnx-dynamic")
    X = shift_data.X_tgt_test
    assert np.mean(q.predict(X) == lstm_clf.predict(X)) >= 0.9


def test_report_pytorch(lstm_clf, shift_data):
    q = quantize(lstm_clf)
    rep = quantization_report(
        lstm_clf, q, shift_data.X_tgt_test, shift_data.y_tgt_test, repeats=3, warmup=1
    ).as_dict()
    assert rep["runtime"] == "pytorch"
    assert set(rep["changes"]) >= {"macro_f1_points", "accuracy_points", "size_ratio"}
    assert rep["changes"]["size_ratio"] > 1
    assert rep["float"]["latency_ms"] > 0


def test_errors(shift_data):
    with pytest.raises(ValueError, match="method must be one of"):
        quantize(CNN1D(3, 2), "int4")
    with pytest.raises(ValueError, match="needs X_calib"):
        quantize(CNN1D(3, 2), "onnx-static", n_timepoints=32)
    with pytest.raises(NotFittedError):
        quantize(TimeSeriesClassifier())
