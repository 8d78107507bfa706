"""ONNX and TorchScript export: round trips, dynamic batch, verification, errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from torch import nn

from skkd import TimeSeriesClassifier
from skkd import export as export_mod
from skkd.export import (
    ExportError,
    OnnxClassifier,
    load_onnx,
    to_onnx,
    to_torchscript,
    verify_onnx,
)
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier, ResNet1D
from skkd.pruning import prune_to

ort = pytest.importorskip("onnxruntime")

C, T, K = 3, 32, 4

MODULES = {
    "cnn": lambda: CNN1D(C, K, widths=(4, 8)),
    "resnet": lambda: ResNet1D(C, K, n_filters=(4, 8)),
    "lstm": lambda: LSTMClassifier(C, K, hidden_size=6, num_layers=2),
    "gru": lambda: GRUClassifier(C, K, hidden_size=6),
    # physically pruned students (skkd.pruning): uneven widths, smaller hidden
    "pruned_cnn": lambda: prune_to(CNN1D(C, K, widths=(8, 16)), 0.4),
    "pruned_lstm": lambda: prune_to(
        LSTMClassifier(C, K, hidden_size=8, num_layers=2), 0.5
    ),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _x(n, t=T, seed=0):
    return np.random.default_rng(seed).standard_normal((n, C, t)).astype(np.float32)


def _torch_logits(module, X):
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


class FixedLength(nn.Module):
    """A model that needs its input length: flatten + linear."""

    def __init__(self, n_channels, n_classes, n_timepoints):
        super().__init__()
        self.n_channels = n_channels
        self.head = nn.Linear(n_channels * n_timepoints, n_classes)

    def forward(self, x):
        return self.head(torch.flatten(x, 1))


class Cummax(nn.Module):
    """Uses an operator (cummax) ONNX opset 17 cannot express."""

    def __init__(self):
        super().__init__()
        self.n_channels = C
        self.head = nn.Linear(C, K)

    def forward(self, x):
        return self.head(torch.cummax(x, dim=-1)[0][:, :, -1])


@pytest.mark.parametrize("name", list(MODULES))
def test_onnx_round_trip_dynamic_batch(name, tmp_path):
    torch.manual_seed(0)
    module = MODULES[name]().eval()
    X_real = _x(6, seed=1)
    path = to_onnx(module, tmp_path / f"{name}.onnx", n_timepoints=T, X_verify=X_real)
    assert os.path.exists(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    # exported at batch 1, run at batch 5 and batch 1
    for n in (5, 1):
        X = _x(n, seed=n)
        out = sess.run(None, {"input": X})[0]
        assert out.shape == (n, K)
        np.testing.assert_allclose(out, _torch_logits(module, X), atol=1e-4)
    assert max(verify_onnx(path, module, X_real).values()) < 1e-4


@pytest.mark.parametrize("name", ["cnn", "lstm", "gru", "pruned_cnn", "pruned_lstm"])
def test_torchscript_round_trip(name, tmp_path):
    torch.manual_seed(0)
    module = MODULES[name]().eval()
    path = to_torchscript(module, tmp_path / f"{name}.pt", n_timepoints=T)
    loaded = torch.jit.load(path)
    X = _x(5)
    with torch.no_grad():
        out = loaded(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, _torch_logits(module, X), atol=1e-4)


def test_estimator_export_keeps_classes_and_shapes(shift_data, tmp_path):
    y = np.array(["a", "b", "c"])[shift_data.y_src]
    clf = TimeSeriesClassifier(
        module__widths=(4, 8), max_epochs=1, batch_size=16, random_state=0
    ).fit(shift_data.X_src, y)
    X = shift_data.X_tgt_test
    path = to_onnx(FrozenEstimator(clf), tmp_path / "est.onnx", X_verify=X)
    onnx_clf = load_onnx(path)
    assert onnx_clf.n_timepoints_in_ == clf.n_timepoints_in_
    assert list(onnx_clf.classes_) == ["a", "b", "c"]
    np.testing.assert_array_equal(onnx_clf.predict(X), clf.predict(X))
    np.testing.assert_allclose(
        onnx_clf.predict_proba(X), clf.predict_proba(X), atol=1e-4
    )
    assert isinstance(onnx_clf, OnnxClassifier)


def test_failed_verification_removes_file(monkeypatch, tmp_path):
    module = MODULES["cnn"]()
    real = export_mod._torch_outputs
    monkeypatch.setattr(export_mod, "_torch_outputs", lambda m, X: real(m, X) + 1.0)
    path = tmp_path / "bad.onnx"
    with pytest.raises(ValueError, match="verification failed.*max abs diff"):
        to_onnx(module, path, n_timepoints=T)
    assert not path.exists()
    monkeypatch.undo()

    class Shifted(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) + 1.0

    real_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda p: Shifted(real_load(p)))
    pt_path = tmp_path / "bad.pt"
    with pytest.raises(ValueError, match="TorchScript verification failed"):
        to_torchscript(module, pt_path, n_timepoints=T)
    assert not pt_path.exists()


def test_unfitted_estimator_raises(tmp_path):
    clf = TimeSeriesClassifier(module__widths=(4,))
    with pytest.raises(NotFittedError, match="not fitted"):
        to_onnx(clf, tmp_path / "x.onnx")
    with pytest.raises(NotFittedError, match="not fitted"):
        to_torchscript(clf, tmp_path / "x.pt")
    assert not (tmp_path / "x.onnx").exists()


def test_bare_module_needs_n_timepoints(tmp_path):
    with pytest.raises(ValueError, match="n_timepoints is required"):
        to_onnx(MODULES["cnn"](), tmp_path / "x.onnx")


def test_wrong_length_raises(tmp_path):
    module = FixedLength(C, K, n_timepoints=T)
    with pytest.raises(
        ValueError, match=r"cannot take inputs of shape \(batch, 3, 20\)"
    ):
        to_onnx(module, tmp_path / "x.onnx", n_timepoints=20)
    with pytest.raises(ValueError, match="cannot take inputs"):
        to_torchscript(module, tmp_path / "x.pt", n_timepoints=20)
    assert not list(tmp_path.iterdir())
    # the length it was built for works
    assert os.path.exists(to_onnx(module, tmp_path / "ok.onnx", n_timepoints=T))


def test_wrong_length_from_fitted_estimator(shift_data, tmp_path):
    clf = TimeSeriesClassifier(FixedLength, max_epochs=1, random_state=0).fit(
        shift_data.X_src, shift_data.y_src
    )
    with pytest.raises(ValueError, match="cannot take inputs"):
        to_onnx(clf, tmp_path / "x.onnx", n_timepoints=clf.n_timepoints_in_ + 1)
    assert os.path.exists(to_onnx(clf, tmp_path / "ok.onnx"))


def test_unsupported_operator_raises(tmp_path):
    path = tmp_path / "cummax.onnx"
    with pytest.raises(ExportError, match="cummax"):
        to_onnx(Cummax(), path, n_timepoints=T)
    assert not path.exists()


def test_x_verify_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="X_verify has 10 time points"):
        to_onnx(
            MODULES["cnn"](), tmp_path / "x.onnx", n_timepoints=T, X_verify=_x(2, 10)
        )


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.delitem(sys.modules, "onnx", raising=False)
    with pytest.raises(ImportError, match=r'pip install "skkd\[export\]"'):
        to_onnx(MODULES["cnn"](), tmp_path / "x.onnx", n_timepoints=T)


_NO_SKKD = r"""
import sys
sys.modules["skkd"] = None  # any `import skkd` now fails
sys.path = [p for p in sys.path if "work/main" not in p and p not in ("", ".")]
try:
    import skkd  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("skkd is importable")
import numpy as np
import onnxruntime as ort
model, x_path, y_path = sys.argv[1:4]
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
out = sess.run(None, {"input": np.load(x_path)})[0]
diff = float(np.abs(out - np.load(y_path)).max())
print(diff)
assert diff < 1e-4, diff
"""


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_onnx_runs_without_skkd(name, tmp_path):
    module = MODULES[name]().eval()
    path = to_onnx(module, tmp_path / "m.onnx", n_timepoints=T)
    X = _x(7, seed=3)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", _torch_logits(module, X))
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _NO_SKKD,
            path,
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 1e-4
