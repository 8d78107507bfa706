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
