"""``skkd bench itmc``: quick end-to-end run, resume, and the report tables."""

from benchmarks._runner import read_rows
from benchmarks.itmc import build_report


def test_itmc_quick_end_to_end_and_resume(tmp_path, capsys):
    from skkd.cli import main

    out = tmp_path / "itmc"
    argv = ["bench", "itmc", "--quick", "--out", str(out)]
    assert main([*argv, "--methods", "source_only", "itmc"]) == 0
    rows = read_rows(out / "itmc.csv")
    assert sorted(r["method"] for r in rows) == ["itmc", "source_only"]
    for r in rows:
        assert r["status"] == "ok" and r["budget"] == "13.4k" and r["epochs"] == 2
        assert 0 <= r["macro_f1"] <= 100 and r["macs"] > 0 and r["latency_ms"] > 0
    itmc = next(r for r in rows if r["method"] == "itmc")
    source = next(r for r in rows if r["method"] == "source_only")
    # equal parameter count: pruned to at most the CNN1D 16/32/32 student
    assert source["params"] == 13_366 and 12_000 < itmc["params"] <= 13_366
    assert itmc["start_params"] == 200_902
    page = (out / "itmc.md").read_text()
    assert "`skkd bench itmc --quick" in page and "| ITMC |" in page
    assert f"{itmc['macro_f1']:.2f}" in page
    assert (out / "itmc.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main([*argv, "--methods", "source_only", "itmc"]) == 0
    assert "0 job(s)" in capsys.readouterr().err


def _row(method, budget, scenario, seed, f1, **extra):
    return {
        "tag": "default",
        "variant": "",
        "scenario": scenario,
        "seed": seed,
        "epochs": 10,
        "status": "ok",
        "method": method,
        "budget": budget,
        "macro_f1": f1,
        "accuracy": f1 + 1,
        "params": 13_000,
        "macs": 10**6,
        "latency_ms": 0.3,
        "fit_seconds": 5.0,
        **extra,
    }


def test_report_compares_at_equal_budget_on_shared_runs():
    rows = []
    for seed, (u1, u2, i1, i2) in enumerate([(80, 90, 82, 86), (70, 80, 75, 79)]):
        rows += [
            _row("unikd", "13.4k", "2->11", seed, u1),
            _row("unikd", "13.4k", "7->13", seed, u2),
            _row("itmc", "13.4k", "2->11", seed, i1, start_latency_ms=1.0),
            _row("itmc", "13.4k", "7->13", seed, i2, start_latency_ms=1.0),
        ]
    rows.append(_row("itmc", "3.6k", "2->11", 0, 60.0, start_latency_ms=1.0))
    rows.append({**_row("unikd", "13.4k", "2->11", 0, 0.0), "status": "error"})
    sections, plot = build_report(rows, 10, ["2->11", "7->13"])
    text = dict(sections)
    # per-seed averages: UNI-KD 85, 75; ITMC 84, 77 -> differences -1, +2
    diff = text["ITMC minus UNI-KD at equal parameter count"]
    assert "| 13.4k | 0.50 ± 2.12 | 2 / 4 |" in diff
    main = next(v for k, v in text.items() if k.startswith("Macro-F1"))
    assert "| UNI-KD | 75.00 ± 7.07 | 85.00 ± 7.07 | 80.00 ± 7.07 |" in main
    assert plot["ITMC"][0] == [13_000, 13_000]  # one point per budget
    latency = text["ITMC: pruned student against the unpruned start"]
    assert "| 13.4k | 1.000 | 0.300 | 4 / 4 |" in latency


def test_itmc_quick_teacher_option_keys_rows_and_adds_its_section(tmp_path):
    from skkd.cli import main

    out = tmp_path / "itmc"
    argv = ["bench", "itmc", "--quick", "--out", str(out), "--methods", "kd"]
    assert main([*argv, "--teacher", "vada"]) == 0
    assert main(argv) == 0
    rows = read_rows(out / "itmc.csv")
    assert sorted(r["teacher"] for r in rows) == ["dann", "vada"]
    assert all(r["status"] == "ok" and 0 < r["teacher_macro_f1"] for r in rows)
    page = (out / "itmc.md").read_text()
    vada = next(r for r in rows if r["teacher"] == "vada")
    assert "## Teacher `vada`: macro-F1" in page
    assert (
        f"| Teacher (vada) | - | - | - | {vada['teacher_macro_f1']:.2f} ± 0.00 |"
        in (page)
    )


def test_report_teacher_sections_read_the_teacher_column():
    rows = []
    for seed, (t, k) in enumerate([(70.0, 60.0), (90.0, 80.0)]):
        rows.append(_row("kd", "13.4k", "2->11", seed, 50.0, teacher_macro_f1=40.0))
        extra = {"teacher": "vada", "teacher_macro_f1": t}
        rows.append(_row("kd", "13.4k", "2->11", seed, k, **extra))
    sections, _ = build_report(rows, 10, ["2->11"])
    text = dict(sections)
    main = next(v for k, v in text.items() if k.startswith("Macro-F1"))
    assert "| KD (Hinton) | 50.00 ± 0.00 | 50.00 ± 0.00 |" in main  # dann only
    vada = text["Teacher `vada`: macro-F1 (%) of the teacher and its students"]
    assert "| Teacher (vada) | - | - | - | 80.00 ± 14.14 |" in vada
    assert "| KD (Hinton), distilled from the picked teacher | - | - | - | 80.00 |" in (
        vada
    )
