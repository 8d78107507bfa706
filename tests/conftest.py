"""Every fixture of the test suite: tiny seeded data, small fitted teachers,
skada's packed form, a loopback Dask cluster, and settings (one thread,
metadata routing on, no ``SKKD_DATA``) that test modules opt into with
``pytestmark = pytest.mark.usefixtures(...)``."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import sklearn
import torch
from sklearn.frozen import FrozenEstimator
from torch import nn

from skkd import DANNClassifier, TimeSeriesClassifier, UniKDClassifier
from skkd.datasets import make_domain_shift
from skkd.nn import LSTMClassifier

#: the UCI-HAR subjects beside the checkout (tests and CI only; the package
#: itself never reads this path)
SHARED_HAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_har"

TINY = {"module__widths": (4, 8), "max_epochs": 2, "batch_size": 16}
FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}


@pytest.fixture(scope="session")
def shift_data():
    """A small seeded source/target problem: 3 channels, 32 points, 3 classes."""
    return make_domain_shift(
        n_samples=48, n_target=40, n_test=30, n_timepoints=32, random_state=0
    )


@pytest.fixture(scope="session")
def fitted_teacher(shift_data):
    """A small fitted teacher (never modified by the tests that use it)."""
    teacher = TimeSeriesClassifier(
        module__widths=(8, 8), max_epochs=2, batch_size=16, random_state=0
    )
    return teacher.fit(shift_data.X_src, shift_data.y_src)


@pytest.fixture
def no_env_data_home(monkeypatch):
    """A developer's SKKD_DATA must not change what the tests exercise."""
    monkeypatch.delenv("SKKD_DATA", raising=False)


@pytest.fixture
def one_thread():
    """One torch thread (tests that export or time small nets)."""
    torch.set_num_threads(1)


@pytest.fixture
def routing_on():
    """scikit-learn's metadata routing on, as ``import skada`` leaves it."""
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture(scope="session")
def dann_teacher(shift_data):
    """A small fitted DANN teacher."""
    teacher = DANNClassifier(module__widths=(8, 12), max_epochs=2, random_state=0)
    return teacher.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


@pytest.fixture(scope="session")
def lstm_teacher(shift_data):
    """A small fitted recurrent teacher."""
    teacher = TimeSeriesClassifier(module=LSTMClassifier, module__hidden_size=8, **FAST)
    return teacher.fit(shift_data.X_src, shift_data.y_src)


@pytest.fixture(scope="session")
def lstm_clf(shift_data):
    """A fitted LSTM classifier wide enough to quantize."""
    return TimeSeriesClassifier(
        LSTMClassifier,
        module__hidden_size=32,
        max_epochs=2,
        batch_size=16,
        random_state=0,
    ).fit(shift_data.X_src, shift_data.y_src)


@pytest.fixture(scope="session")
def unikd_student(shift_data, fitted_teacher):
    """A fitted tiny UNI-KD student of ``fitted_teacher``."""
    d = shift_data
    student = UniKDClassifier(
        FrozenEstimator(fitted_teacher), **{**FAST, "module__widths": (4,)}
    )
    return student.fit(d.X_src, d.y_src, d.X_tgt)


@pytest.fixture(scope="session")
def packed(shift_data):
    """``shift_data`` in skada's packed form ``(X, y, sample_domain)``."""
    d = shift_data
    X = np.concatenate([d.X_src, d.X_tgt])
    y = np.concatenate([d.y_src, -np.ones(len(d.X_tgt), dtype=int)])
    sd = np.r_[np.ones(len(d.X_src), int), -2 * np.ones(len(d.X_tgt), int)]
    return X, y, sd


class SkadaNet(nn.Module):
    """A network in skada's convention: forward accepts sample_weight."""

    def __init__(self, n_channels=3, n_classes=3, width=8):
        super().__init__()
        self.embed = nn.Sequential(
            nn.Conv1d(n_channels, width, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, n_classes)

    def forward(self, x, sample_weight=None):
        return self.head(self.embed(x))


@pytest.fixture(scope="module")
def skada_dann(packed):
    """A skada DANN fitted on the packed form (skada imported only here)."""
    from skada.deep import DANN

    X, y, sd = packed
    torch.manual_seed(0)
    net = DANN(
        SkadaNet(),
        layer_name="embed",
        num_features=8,
        max_epochs=2,
        batch_size=16,
        train_split=None,
        verbose=0,
    )
    return net.fit(X.astype(np.float32), y, sample_domain=sd)


@pytest.fixture(scope="module")
def client():
    """A loopback Dask cluster of 2 single-thread worker processes."""
    import distributed

    import skkd

    # workers import the skkd under test (not another installed copy)
    root = str(Path(skkd.__file__).resolve().parents[1])
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        env={"PYTHONPATH": root, "OMP_NUM_THREADS": "1"},
    )
    with distributed.Client(cluster) as client:
        # a broadcast reaches only the workers registered when it is sent
        client.wait_for_workers(2, timeout=120)
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def new_method_example():
    """The namespace of examples/plot_new_distiller.py after running it (it
    trains on UCI-HAR 2->11 and asserts it beats chance itself)."""
    root = Path(__file__).resolve().parents[1]
    return runpy.run_path(str(root / "examples" / "plot_new_distiller.py"))


@pytest.fixture(scope="module")
def teacher_ensemble(shift_data):
    """A fitted ensemble of 3 tiny teachers (seeds 0, 1, 2)."""
    from skkd.ensemble import TeacherEnsemble

    d = shift_data
    member = TimeSeriesClassifier(module__widths=(4, 8), max_epochs=1, batch_size=16)
    return TeacherEnsemble(member, n_members=3).fit(d.X_src, d.y_src, d.X_tgt)


@pytest.fixture(scope="module")
def fitted_vada(shift_data):
    """A tiny VADA teacher fitted for one epoch."""
    from skkd import VADAClassifier

    est = VADAClassifier(**{**TINY, "max_epochs": 1}, random_state=0)
    return est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


@pytest.fixture(scope="module")
def fitted_dirtt(fitted_vada, shift_data):
    """DIRT-T refinement of ``fitted_vada``, moved away from its previous
    network so that the KL term is positive."""
    from skkd import DIRTTClassifier

    est = DIRTTClassifier(FrozenEstimator(fitted_vada), max_epochs=1, random_state=0)
    est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    with torch.no_grad():
        for p in est.module_.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return est
