"""``skkd bench selection``: the scorer-vs-oracle comparison."""

import math

import pytest

from benchmarks import selection


def _rows(oracle, **scores):
    return [
        {
            "scenario": "a",
            "seed": 0,
            "oracle_macro_f1": f,
            **{k: v[i] for k, v in scores.items()},
        }
        for i, f in enumerate(oracle)
    ]


def test_summarise_correlation_and_regret():
    oracle = [60.0, 70.0, 80.0]
    rows = _rows(
        oracle,
        teacher_agreement=[0.1, 0.2, 0.3],
        teacher_kl=[-1.0, -2.0, -3.0],
        target_entropy=[0.5, 0.5, 0.5],
        source_accuracy=[0.9, 0.3, 0.5],
    )
    out = {s["scorer"]: s for s in selection.summarise(rows)}
    assert out["teacher_agreement"]["spearman"] == pytest.approx(1.0)
    assert out["teacher_agreement"]["regret"] == 0.0
    assert out["teacher_kl"]["spearman"] == pytest.approx(-1.0)
    assert out["teacher_kl"]["regret"] == 20.0
    assert math.isnan(out["target_entropy"]["spearman"])  # a constant scorer
    assert out["source_accuracy"]["chosen_f1"] == 60.0


def test_quick_run_writes_report(tmp_path, monkeypatch):
    monkeypatch.setattr(
        selection,
        "GRID",
        {"temperature": [1.0, 4.0], "lambda_ukd": [1.0], "module__widths": [(4,)]},
    )
    monkeypatch.setattr(selection, "TEACHER_WIDTHS", (8,))
    assert selection.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "selection.md").read_text()
    for name in selection.SCORERS:
        assert name in text
    assert (tmp_path / "selection.png").exists()
    assert len((tmp_path / "selection.csv").read_text().splitlines()) == 3


def test_teacher_selection_quick_run_scores_every_candidate(tmp_path):
    from benchmarks import teacher_selection

    argv = ["--quick", "--out", str(tmp_path), "--teacher-cache", str(tmp_path / "c")]
    assert teacher_selection.main(argv) == 0
    rows = (tmp_path / "teacher_selection.csv").read_text().splitlines()
    assert len(rows) == 3  # header and the two DANN seeds of 2->11
    text = (tmp_path / "teacher_selection.md").read_text()
    for name in teacher_selection.SCORERS:
        assert f"| {name} |" in text
    assert "## Choosing the seed of one kind" in text
    # the teachers went to the shared cache, named as skkd bench har names them
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "dann-2to11-seed0-ep2.pkl",
        "dann-2to11-seed1-ep2.pkl",
    ]


def test_collapse_then_entropy_ranks_a_collapsed_teacher_last():
    from benchmarks.teacher_selection import SCORERS, build_report

    def row(seed, f1, collapse_then_entropy):
        scores = dict.fromkeys(SCORERS, 0.0)
        scores["collapse_then_entropy"] = collapse_then_entropy
        return {
            "scenario": "a",
            "kind": "dann",
            "teacher_seed": seed,
            "oracle_macro_f1": f1,
            **scores,
        }

    rows = [row(0, 40.0, float("-inf")), row(1, 90.0, -0.5)]
    sections, _ = build_report(rows)
    table = dict(sections)["Choosing among every candidate of a scenario"]
    line = next(x for x in table.splitlines() if x.startswith("| collapse_then"))
    assert "| 90.00 ± 0.00 |" in line
