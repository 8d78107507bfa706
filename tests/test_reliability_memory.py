"""Resource limits (issue #8, item 6): no needless copies of X and X_tgt.

Numbers (peak memory against dataset size) come from ``skkd bench memory``
and are in docs/reliability.rst; these tests check the behaviour behind them.
"""

import numpy as np
import pytest
from skorch.callbacks import Callback

from benchmarks.memory import measure
from skkd._validation import check_time_series

from ._estimators import ALL_ESTIMATORS, fit_args, ids, make, target_use, tiny_data


class SeesData(Callback):
    """Records whether training reads the caller's own buffers."""

    def __init__(self, X, X_tgt):
        self.X = X
        self.X_tgt = X_tgt

    def on_train_begin(self, net, X=None, **kwargs):
        self.shares_X = np.shares_memory(np.asarray(X), self.X)
        sampler = net._session.target
        self.shares_X_tgt = sampler is not None and np.shares_memory(
            sampler.X_tgt.numpy(), self.X_tgt
        )


def test_float32_input_is_not_copied():
    X = np.zeros((5, 2, 8), dtype=np.float32)
    assert check_time_series(X) is X
    # anything else is cast on a copy, never in place
    for other in (X.astype(np.float64), np.asfortranarray(X), X[:, :, ::2]):
        assert not np.shares_memory(check_time_series(other), other)
    read_only = X.copy()
    read_only.setflags(write=False)
    assert not np.shares_memory(check_time_series(read_only), read_only)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=ids)
def test_fit_streams_the_callers_arrays(cls):
    X, y, X_tgt = tiny_data()
    seen = SeesData(X, X_tgt)
    make(cls, callbacks=[("seen", seen)]).fit(*fit_args(cls, X, y, X_tgt))
    assert seen.shares_X
    if target_use(cls) in ("required", "optional"):
        assert seen.shares_X_tgt


def test_memory_benchmark_reports_its_measurements():
    row = measure(512, 64)
    assert row["n"] == 512 and row["batch_size"] == 64
    assert row["data_mb"] == pytest.approx(512 * 9 * 128 * 4 / 2**20)
    assert row["peak_mb"] >= row["baseline_mb"] > row["data_mb"]


def test_bench_memory_writes_csv_and_report(tmp_path):
    from benchmarks import memory

    argv = ["--n-samples", "64", "--batch-size", "32", "--method", "supervised"]
    argv += ["--dtype", "float32", "--out", str(tmp_path)]
    assert memory.main(argv) == 0
    text = (tmp_path / "memory.md").read_text()
    assert "skkd bench memory --n-samples 64" in text
    rows = (tmp_path / "memory.csv").read_text().splitlines()
    assert rows[0].startswith("method,dtype,n,batch_size")
    assert len(rows) == 2 and rows[1].startswith("supervised,float32,64,32")
