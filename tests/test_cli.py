"""The ``skkd demo`` command, and how ``skkd bench`` finds the suites."""

from pathlib import Path

import pytest

from skkd import cli
from skkd.cli import find_checkout, main, run_demo

#: the checkout these tests run from
ROOT = Path(__file__).resolve().parents[1]


def _touch(*paths):
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return paths[0]


def test_demo_prints_the_table(capsys):
    assert main(["demo", "--epochs", "1", "--seed", "3"]) == 0
    out = capsys.readouterr()
    for row in ("Teacher (DANN)", "Student, source only", "Student, KD (Hinton)"):
        assert row in out.out
    assert "15.0x" in out.out  # 200,902 / 13,366 parameters
    assert "[student: KD] done" in out.err  # progress goes to stderr


@pytest.mark.slow
def test_demo_claim_kd_student_beats_the_source_only_student():
    # guards the README's numbers: HAR 2->11, 10 epochs, seed 0
    rows = {r["model"]: r for r in run_demo("2->11", epochs=10, seed=0, threads=1)}
    kd, source_only = rows["Student, KD (Hinton)"], rows["Student, source only"]
    assert kd["macro_f1"] > source_only["macro_f1"] + 10
    assert rows["Teacher (DANN)"]["params"] == 200_902 and kd["params"] == 13_366


def _demo_scores(text):
    """``{model: (macro-F1, accuracy, parameters)}`` of the first demo table."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith(("Teacher", "Student")):
            rows[cells[0]] = (cells[1], cells[2], cells[3])
        elif rows and not line.startswith("|"):
            break  # the end of the first table (the README has others)
    return rows


DEMO_MD = ROOT / "docs" / "benchmarks" / "demo.md"


def test_readme_demo_table_is_the_committed_demo_run():
    readme = _demo_scores((ROOT / "README.md").read_text())
    committed = _demo_scores(DEMO_MD.read_text())
    assert len(committed) == 4
    assert readme == committed


@pytest.mark.slow
def test_committed_demo_table_reproduces_on_the_same_machine_and_torch():
    import torch

    header = DEMO_MD.read_text().splitlines()[0]
    here = f"torch {torch.__version__}, 1 thread(s)"
    machine = f"{cli.platform.machine()}, {cli.cpu_name()}."
    if here not in header or not header.endswith(machine):
        pytest.skip(f"the table was made elsewhere: {header}")
    rows = run_demo("2->11", epochs=10, seed=0, threads=1)
    fresh = _demo_scores(cli.format_table(rows, "2->11", 10, 0, threads=1))
    assert fresh == _demo_scores(DEMO_MD.read_text())


def test_bench_finds_the_checkout_beside_the_package_or_in_the_current_folder(
    tmp_path,
):
    # a non-editable install: the package sits in site-packages, not in a checkout
    installed = _touch(tmp_path / "venv" / "site-packages" / "skkd" / "__init__.py")
    clone = tmp_path / "clone"
    _touch(
        clone / "skkd" / "__init__.py",
        clone / "benchmarks" / "__init__.py",
        clone / "pyproject.toml",
    )
    assert find_checkout(installed, cwd=clone) == clone.resolve()
    assert find_checkout(installed, cwd=clone / "skkd") is None  # root only
    assert find_checkout(installed, cwd=tmp_path) is None
    # an editable install or a run from the checkout: whatever the current folder
    assert find_checkout(clone / "skkd" / "cli.py", cwd=tmp_path) == clone.resolve()
    # another project's benchmarks/ folder is not skkd's
    other = tmp_path / "other"
    _touch(other / "benchmarks" / "__init__.py", other / "pyproject.toml")
    assert find_checkout(installed, cwd=other) is None
    # this very checkout
    assert find_checkout() == ROOT


def test_bench_of_a_non_editable_install_runs_from_the_checkout_root(
    tmp_path, monkeypatch, capsys
):
    installed = _touch(tmp_path / "site-packages" / "skkd" / "cli.py")
    monkeypatch.setattr(cli, "__file__", str(installed))
    monkeypatch.chdir(ROOT)  # as CI runs ``skkd bench har --quick``
    assert cli.bench_suites() == [
        "epoch_time",
        "har",
        "itmc",
        "memkd",
        "memkd_defaults",
        "memkd_recipe",
        "memkd_speed",
        "memory",
        "overhead",
        "released",
        "revisions",
        "selection",
        "speed",
        "teacher_selection",
        "threads",
    ]
    assert main(["bench", "nope"]) == 2
    assert "choose a suite: epoch_time, har, itmc" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "memory", "--help"])
    assert exit_info.value.code == 0
    assert "usage: skkd bench memory" in capsys.readouterr().out


def test_bench_without_a_checkout_says_where_the_suites_live(
    tmp_path, monkeypatch, capsys
):
    installed = _touch(tmp_path / "site-packages" / "skkd" / "cli.py")
    monkeypatch.setattr(cli, "__file__", str(installed))
    monkeypatch.chdir(tmp_path)
    assert cli.bench_suites() == []
    assert main(["bench", "har", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "source repository" in err and "benchmarks/" in err
    assert 'pip install -e ".[bench]"' in err and "skkd bench har" in err
