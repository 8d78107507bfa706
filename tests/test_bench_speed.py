"""``skkd bench speed``: the quick run writes its tables; helpers behave."""

import csv

import numpy as np
import pytest
import torch

from benchmarks import speed
from skkd.export import to_onnx
from skkd.nn import CNN1D

pytest.importorskip("onnxruntime")


def test_time_calls_counts_calls():
    calls = []
    times = speed.time_calls(lambda: calls.append(1), repeats=7, warmup=3)
    assert len(calls) == 10
    assert times.shape == (7,)
    assert np.all(times >= 0)


def test_peak_memory_grows_with_batch(tmp_path):
    path = to_onnx(CNN1D(9, 6, widths=(32, 64)), tmp_path / "m.onnx", n_timepoints=128)
    mem = speed.measure_peak_memory("onnx", path, (9, 128), batch_sizes=(1, 256))
    assert mem["method"] in {"VmHWM after clear_refs", "ru_maxrss"}
    assert mem[1] > 0
    assert mem[256] >= mem[1]


@pytest.mark.slow
def test_quick_run_writes_report(tmp_path):
    torch.set_num_threads(1)
    assert speed.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "speed.md").read_text()
    assert "skkd bench speed --quick" in text
    assert "MAC ratio (ideal)" in text
    assert "Fit speed: frozen-teacher cache" in text
    with open(tmp_path / "speed.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # 2 pairs x (teacher, student, int8 student) x (eager, ONNX Runtime)
    assert len(rows) == 12
    assert {r["runtime"] for r in rows} == {"PyTorch eager", "ONNX Runtime"}
    assert all(float(r["p50_ms_1t"]) > 0 for r in rows)
    assert all(float(r["throughput_1t"]) > 0 for r in rows)
    ort_rows = [r for r in rows if r["runtime"] == "ONNX Runtime"]
    assert all(float(r["peak_mib_b256"]) > 0 for r in ort_rows)
    student = next(r for r in rows if r["model"] == "student")
    teacher = next(r for r in rows if r["model"] == "teacher")
    assert int(student["macs"]) < int(teacher["macs"])
    assert (tmp_path / "speed_accuracy.csv").exists()


def test_fit_rows_pair_cached_and_uncached_fits():
    torch.set_num_threads(1)
    args = speed._parser().parse_args(["--fit-repeats", "1", "--fit-epochs", "1"])
    rows = speed._fit_rows(args, "2->11")
    assert [r["method"] for r in rows] == list(speed.FIT_METHODS)
    for r in rows:
        assert r["epoch_s_uncached"] > 0 and r["epoch_s_cached"] > 0
        assert r["epoch_speedup"] > 0 and r["fit_speedup"] > 0
    target = speed._fit_target(rows)
    assert target["verdict"] in {"met", "NOT met"}
    assert "UNI-KD" in target["measured"]
