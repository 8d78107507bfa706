"""The ``skkd demo`` command."""

import pytest

from skkd.cli import main, run_demo


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
