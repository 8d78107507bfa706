"""Shared fixtures: tiny seeded data, one thread, a fitted tiny teacher."""

from pathlib import Path

import pytest

from skkd import TimeSeriesClassifier
from skkd.datasets import make_domain_shift

#: the UCI-HAR subjects beside the checkout (tests and CI only; the package
#: itself never reads this path)
SHARED_HAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_har"

TINY = {"module__widths": (4, 8), "max_epochs": 2, "batch_size": 16}


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
