"""``skkd bench threads``: the smoke run writes its CSV, table and plot."""

import csv

import pytest
import torch

from benchmarks import threads


def test_thread_counts_compare_one_two_and_all():
    assert threads.thread_counts(1) == [1]
    assert threads.thread_counts(4) == [1, 2, 4]


@pytest.mark.slow
def test_quick_run_writes_report(tmp_path):
    pytest.importorskip("sktime")
    before = torch.get_num_threads()
    assert threads.main(["--quick", "--out", str(tmp_path)]) == 0
    assert torch.get_num_threads() == before  # n_threads restores torch's setting
    text = (tmp_path / "threads.md").read_text()
    assert "skkd bench threads --quick" in text and "Load average" in text
    with open(tmp_path / "threads.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = threads.thread_counts()
    assert {int(r["threads"]) for r in rows} == set(counts)
    assert {r["data"] for r in rows} == {"HAR", "BasicMotions"}
    assert all(float(r["seconds"]) > 0 for r in rows)
    assert (tmp_path / "threads.png").stat().st_size > 0
