"""``skkd bench memkd --quick``: the suite runs end to end and writes its report."""

import numpy as np
import pytest

from benchmarks import memkd
from skkd.cli import main as cli_main


def test_auprc_macro_is_mean_of_per_class_average_precision():
    y = np.array([0, 0, 1, 2])
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8]]
    )
    # class 0: positives ranked 1st and 3rd -> AP (1 + 2/3) / 2 = 5/6; class 1:
    # x1 (0.6, negative) above x2 (0.5, positive) -> AP 0.5;
    # class 2: AP 1
    assert memkd.auprc_macro(y, proba) == pytest.approx((5 / 6 + 0.5 + 1) / 3)


def test_har_pool_loads_train_and_test_splits():
    # the embedded subjects 2 and 11 suffice: pooled train/test splits
    X, y, Xt, yt = memkd.load_bench_dataset("UCIHAR", har_subjects=(2, 11))
    assert X.shape[1:] == (9, 100) and Xt.shape[1:] == (9, 100)
    assert len(X) > 211 and len(Xt) > 91  # both subjects pooled (211/91 for 2)
    assert set(np.unique(y)) <= set(range(6)) and len(Xt) > 0


def test_quick_run_writes_csv_markdown_and_png(tmp_path):
    argv = ["bench", "memkd", "--quick", "--n-jobs", "1", "--out", str(tmp_path)]
    code = cli_main([*argv, "--teacher-cache", str(tmp_path / "teachers")])
    assert code == 0
    md = (tmp_path / "memkd_quick.md").read_text()
    assert "AUC-PRC" in md and "MemKD" in md and "548.7x" in md
    assert "teacher 3x100" in md
    assert (tmp_path / "memkd_quick.png").stat().st_size > 0
    rows = (tmp_path / "memkd_quick.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"method", "test_auprc", "params", "inference_bytes"} <= set(header)
    # 7 methods at hidden 8 + the sweep at hidden 4 (Base, KD, MemKD)
    assert len(rows) - 1 == 7 + 3
    assert "Teacher" in (tmp_path / "memkd_quick_teachers.csv").read_text()


# ------------------------------------------------------- the sktime loader
def test_sktime_loader_shapes_and_unequal_lengths():
    from skkd.datasets._sktime import load_sktime_dataset

    d = load_sktime_dataset("BasicMotions")
    assert d.X_train.shape == (40, 6, 100) and d.X_train.dtype == np.float32
    assert set(d.y_train) == {"badminton", "running", "standing", "walking"}
    jv = load_sktime_dataset("JapaneseVowels")
    assert jv.original_lengths == (7, 29) and jv.X_test.shape == (370, 12, 29)
    assert np.isfinite(jv.X_train).all()
    padded = load_sktime_dataset("JapaneseVowels", unequal_length="pad")
    assert padded.X_train.shape == jv.X_train.shape
    with pytest.raises(ValueError, match="unequal_length='resample' or 'pad'"):
        load_sktime_dataset("JapaneseVowels", unequal_length="error")
    short = load_sktime_dataset("GunPoint", n_timepoints=50)
    assert short.X_train.shape == (50, 1, 50)


def test_sktime_loader_errors(monkeypatch):
    import sys

    from skkd.datasets._sktime import load_sktime_dataset

    with pytest.raises(ValueError, match="not bundled with the installed sktime"):
        load_sktime_dataset("Chinatown")
    monkeypatch.setitem(sys.modules, "sktime", None)
    with pytest.raises(ImportError, match=r"skkd\[sktime\]"):
        load_sktime_dataset("GunPoint")


def test_recipe_study_quick_run_writes_its_tables(tmp_path):
    code = cli_main(["bench", "memkd_recipe", "--quick", "--out", str(tmp_path)])
    assert code == 0
    md = (tmp_path / "memkd_recipe_quick.md").read_text()
    assert "| bench |" in md and "| candidate |" in md
    assert "train acc" in md and "LSTM, candidate" in md


def test_speed_quick_run_reports_the_ratio_and_profile(tmp_path):
    code = cli_main(["bench", "memkd_speed", "--quick", "--out", str(tmp_path)])
    assert code == 0
    md = (tmp_path / "memkd_speed.md").read_text()
    assert "MemKD/Base ratio of median CPU time per epoch" in md
    assert "LSTM forward + all backward" in md


def test_ranks_and_targets_read_the_rows(tmp_path):
    """MemKD best on every block: rank 1, the gain target met; a collapsed
    GunPoint student and a 9-channel set below 500x are named."""
    from benchmarks.memkd import METHODS, _parser, _rank_section, _targets

    rows = []
    for d, c, teacher_acc in (("GunPoint", 1, 95.0), ("UCIHAR", 9, 99.0)):
        rows.append(
            {"dataset": d, "method": "Teacher", "hidden": 100, "seed": 0,
             "test_accuracy": teacher_acc, "test_auprc": 99.0, "params": 125_000}
        )  # fmt: skip
        for seed in (0, 1, 2):
            for i, m in enumerate(METHODS):
                auprc = 60.0 + i if d == "GunPoint" else 90.0 + i
                rows.append(
                    {"dataset": d, "method": m, "hidden": 8, "seed": seed,
                     "test_auprc": auprc + 0.1 * seed, "n_channels": c,
                     "n_classes": 2, "params": 250 if c == 1 else 600}
                )  # fmt: skip
    ranks = _rank_section(rows, 8, tmp_path / "cd.png")
    assert ranks["ranks"].index[0] == "MemKD"
    assert (tmp_path / "cd.png").stat().st_size > 0
    table = [
        {"dataset": "GunPoint", "MemKD - teacher": 66.2 - 99.0},
        {"dataset": "UCIHAR", "MemKD - teacher": 96.2 - 99.0},
    ]
    mean_row = {"MemKD": 81.2, "Base": 75.2}
    args = _parser().parse_args(["--seeds", "0", "1", "2"])
    text = "\n".join(_targets(rows, table, mean_row, 8, ranks, 60.0, args))
    assert "+6.00 (target: +3; met)" in text
    assert "Best average rank: MemKD" in text and "NOT met on GunPoint (-32.80)" in text
    assert "GunPoint (1 channel) 500x;" in text
    assert "UCIHAR (9 channels) 208x, 500x at hidden" in text
    assert "not the spec's full protocol" in text  # 3 seeds, not 5
    args = _parser().parse_args([])  # the default is the spec's protocol
    text = "\n".join(_targets(rows, table, mean_row, 8, ranks, 60.0, args))
    assert "500 student epochs, 5 lambdas, 5 seeds; the spec's full protocol" in text


def test_ablation_quick_run_changes_one_component_at_memkds_lambda(tmp_path):
    argv = ["bench", "memkd", "--quick", "--ablation", "--n-jobs", "1"]
    code = cli_main([*argv, "--out", str(tmp_path)])
    assert code == 0
    md = (tmp_path / "memkd_quick_ablation.md").read_text()
    assert "P1 only" in md and "curriculum" in md and "change vs MemKD" in md
    assert (tmp_path / "memkd_quick_ablation.png").stat().st_size > 0
    from benchmarks._runner import read_rows

    rows = read_rows(tmp_path / "memkd_quick_ablation.csv")
    assert [r["method"] for r in rows] == ["MemKD", *memkd.ABLATIONS]  # no sweep
    assert len({r["lambda"] for r in rows}) == 1  # every variant at MemKD's lambda


def test_trace_ships_with_tslearn():
    pytest.importorskip("tslearn")
    X, y, X_test, y_test = memkd.load_bench_dataset("Trace")
    assert X.shape == (100, 1, 100) and X_test.shape == (100, 1, 100)
    assert sorted(set(y.tolist())) == [0, 1, 2, 3]


def test_defaults_quick_run_compares_with_the_recipe_rows(tmp_path):
    """The ratio reads the main run's rows and cached teacher of the recipe."""
    import csv
    import pickle

    settings = {
        "main_hidden": 8,
        "lambdas": "(0.1, 0.5, 1.0, 10.0, 100.0)",
        "student_epochs": 500,
        "student_patience": 50,
        "hidden": 8,
        "seed": 0,
        "dataset": "ItalyPowerDemand",
        "status": "ok",
    }
    recipe_rows = [
        {**settings, "method": "Base", "test_auprc": 50.0},
        {**settings, "method": "MemKD", "test_auprc": 50.0},
        {**settings, "method": "MemKD", "test_auprc": 1.0, "student_epochs": 100},
    ]
    with open(tmp_path / "memkd.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(recipe_rows[0]))
        writer.writeheader()
        writer.writerows(recipe_rows)
    teacher = memkd._teacher_path(
        tmp_path / ".teacher-cache" / "memkd", "ItalyPowerDemand", 500, 50, 100, None
    )
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(pickle.dumps({"row": {"test_auprc": 200.0}}))
    code = cli_main(["bench", "memkd_defaults", "--quick", "--out", str(tmp_path)])
    assert code == 0
    md = (tmp_path / "memkd_defaults_quick.md").read_text()
    # a default teacher cannot reach 90% of 200; the students beat 50 easily
    assert "- teacher: defaults reach ≥ 90% of the recipe on 0 of 1" in md
    assert "**not met** (below: ItalyPowerDemand (0.4" in md
    for name in ("Base", "MemKD"):
        assert f"- {name}: defaults reach ≥ 90% of the recipe on 1 of 1" in md
    with open(tmp_path / "memkd_defaults_quick.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["teacher", "Base", "MemKD"]
    assert {r["memkd_default_memory_weight"] for r in rows} == {"0.1"}
