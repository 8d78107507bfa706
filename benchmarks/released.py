"""``skkd bench released``: skkd's DANN and UNI-KD fits against the authors' code.

The released UNI-KD code (Xu et al., IJCAI 2023) is not part of skkd and is
not redistributed here. ``--released DIR`` names a folder prepared by hand
that holds the released code and a timing script ``time_released.py`` which
runs the released DANN teacher and UNI-KD student training on UCI-HAR 2->11
and writes JSON (``dann[0]["train_loop_s"]``, ``["steps"]``, likewise for
``unikd``); ``docs/benchmarks/speed.md`` says how that folder was made. Each
side runs in its own fresh process, after a one-epoch warm-up, with the same
thread count; runs alternate which side goes first. The released loop drops
the last partial batch (6 steps per epoch on 2->11) where skkd covers the
source set (7 steps), so the report gives fit time and time per step.
"""

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._cli import output_folder, suite_parser
from ._report import environment, markdown_table, write_csv, write_report

__all__ = ["main", "time_skkd"]

#: the sides of a paired run: the released code, skkd as shipped, and skkd
#: dropping the last partial batch as the released loaders do
SIDES = ("released", "skkd", "skkd-drop-last")
VARIANTS = {
    "skkd": "default (every source window)",
    "skkd-drop-last": "iterator_train__drop_last=True",
}

_SKKD_SCRIPT = """
import json, time
import torch
torch.set_num_threads({threads})
from sklearn.frozen import FrozenEstimator
from skkd import DANNClassifier, UniKDClassifier
from skkd.datasets import load_har_scenario
d = load_har_scenario("2->11")
fit = (d.X_src, d.y_src, d.X_tgt)
# drop_last: the released loaders drop the last partial batch of each epoch
common = dict(random_state={seed}, iterator_train__drop_last={drop_last})
teacher_kw = dict(module__widths=(64, 128, 128), **common)
student_kw = dict(module__widths=(16, 32, 32), **common)
warm = DANNClassifier(max_epochs=1, **teacher_kw).fit(*fit)
UniKDClassifier(FrozenEstimator(warm), max_epochs=1, **student_kw).fit(*fit)
out = {{}}
start = time.perf_counter()
teacher = DANNClassifier(max_epochs={epochs}, **teacher_kw).fit(*fit)
out["dann"] = (time.perf_counter() - start, teacher)
start = time.perf_counter()
student = UniKDClassifier(FrozenEstimator(teacher), max_epochs={epochs}, **student_kw)
student.fit(*fit)
out["unikd"] = (time.perf_counter() - start, student)
print(json.dumps({{
    name: {{"seconds": s, "steps": sum(len(r["batches"]) for r in est.history_)}}
    for name, (s, est) in out.items()
}}))
"""


#: how the ``--released`` folder of the published page was prepared
HOW_IT_WAS_RUN = (
    "The released code (GitHub ijcai2023/UNI_KD, commit 09e9a1d) was exported "
    "with `git archive`; its only changes are two one-line patches that make "
    "`import wandb` optional (wandb logs only inside the released `train()`, "
    "which is not called). The timing script converts our UCI-HAR subjects to "
    "the AdaTime `.pt` files the released loader reads, builds the released "
    "trainers from the released scripts' own argument defaults plus "
    "`--device cpu` (DANN: `trainer.cross_domain_trainer` with "
    "`--da_method DANN`, teacher `feature_dim` 64; UNI-KD: "
    "`proposed_uda_kd.adv_cross_domain_kd_trainer`, student `feature_dim` 16, "
    "the teacher loaded as the released script loads it), and runs the released "
    "epoch loop: `fix_randomness(seed)`, `load_data`, then per epoch "
    "`algorithm.train()` and `algorithm.update(...)` over "
    "`zip(src_train_dl, trg_train_dl)`. torchvision's `Normalize(0, 1)` in the "
    "released data set is replaced by the same arithmetic, because the only "
    "torchvision wheel here is a CUDA build that does not import beside the CPU "
    "torch. The released loop drops the last partial batch (6 steps per epoch "
    "on 2->11); skkd covers the source set (7 steps). The released UNI-KD step "
    "runs the student backbone 3 times and backward 3 times per batch (skkd: 2 "
    "and 2), and its teacher forwards keep their autograd graph."
)


def _log(message):
    print(message, file=sys.stderr, flush=True)


def time_skkd(threads=2, seed=0, epochs=10, drop_last=False):
    """Time skkd's DANN teacher and UNI-KD student fits in a fresh process.

    Parameters
    ----------
    threads : int, default=2
        ``torch.set_num_threads`` of the process.
    seed : int, default=0
        ``random_state`` of both fits.
    epochs : int, default=10
        ``max_epochs`` of both fits.
    drop_last : bool, default=False
        Drop each epoch's last partial source batch, as the released loaders
        do (``iterator_train__drop_last=True``): then both sides take the
        same number of steps.

    Returns
    -------
    dict
        ``{"dann": {"seconds", "steps"}, "unikd": {...}}``.

    Examples
    --------
    >>> time_skkd(epochs=1)["dann"]["steps"]  # doctest: +SKIP
    7
    """
    script = _SKKD_SCRIPT.format(
        threads=threads, seed=seed, epochs=epochs, drop_last=bool(drop_last)
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _time_released(folder, threads, seed, epochs):
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "released.json"
        subprocess.run(
            [
                sys.executable,
                "time_released.py",
                "--threads",
                str(threads),
                "--repeats",
                "1",
                "--seed",
                str(seed),
                "--epochs",
                str(epochs),
                "--out",
                str(result),
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=folder,
            env={**os.environ, "PYTHONPATH": ""},
        )
        data = json.loads(result.read_text())
    return {
        name: {
            "seconds": data[name][0]["train_loop_s"],
            "steps": data[name][0]["steps"],
        }
        for name in ("dann", "unikd")
    }


def _parser():
    p = suite_parser(
        "released",
        "skkd's DANN and UNI-KD fits against the released UNI-KD code, in "
        "alternating runs; writes released.csv and released.md.",
        data_home=False,
        threads=2,
    )
    p.add_argument(
        "--released",
        required=True,
        help="folder with the released code and its time_released.py",
    )
    p.add_argument("--repeats", type=int, default=5, help="paired runs")
    p.add_argument("--epochs", type=int, default=10)
    return p


def main(argv=None):
    """Run the released-code comparison (``skkd bench released``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench released`` (see ``--help``).

    Returns
    -------
    status : int
        0.

    Examples
    --------
    >>> main(["--released", "../released", "--repeats", "1"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    folder = Path(args.released).resolve()
    if not (folder / "time_released.py").exists():
        _parser().error(f"--released {args.released} has no time_released.py")
    start = time.perf_counter()
    rows = []
    for run in range(args.repeats):
        order = SIDES if run % 2 == 0 else SIDES[::-1]
        result = {}
        for side in order:
            if side == "released":
                result[side] = _time_released(folder, args.threads, run, args.epochs)
            else:
                result[side] = time_skkd(
                    args.threads, run, args.epochs, drop_last=side.endswith("last")
                )
        for skkd_side, phase in itertools.product(SIDES[1:], ("dann", "unikd")):
            ours, theirs = result[skkd_side][phase], result["released"][phase]
            rows.append(
                {
                    "phase": phase,
                    "skkd": skkd_side,
                    "run": run,
                    "first": order[0],
                    "released_s": theirs["seconds"],
                    "skkd_s": ours["seconds"],
                    "released_steps": theirs["steps"],
                    "skkd_steps": ours["steps"],
                    "fit_ratio": ours["seconds"] / theirs["seconds"],
                    "step_ratio": (ours["seconds"] / ours["steps"])
                    / (theirs["seconds"] / theirs["steps"]),
                }
            )
            _log(
                f"[{run + 1}/{args.repeats}] {phase}: released "
                f"{theirs['seconds']:.2f} s, {skkd_side} {ours['seconds']:.2f} s"
            )
    out = output_folder(args, "released")
    write_csv(out / "released.csv", rows)
    summary = []
    phases = (("dann", "DANN teacher"), ("unikd", "UNI-KD student"))
    for skkd_side, (phase, name) in itertools.product(SIDES[1:], phases):
        mine = [r for r in rows if r["phase"] == phase and r["skkd"] == skkd_side]
        summary.append(
            {
                "phase": name,
                "skkd": VARIANTS[skkd_side],
                "released_s": statistics.median(r["released_s"] for r in mine),
                "skkd_s": statistics.median(r["skkd_s"] for r in mine),
                "fit_ratio": statistics.median(r["fit_ratio"] for r in mine),
                "step_ratio": statistics.median(r["step_ratio"] for r in mine),
                "steps": f"{mine[0]['released_steps']} / {mine[0]['skkd_steps']}",
            }
        )
    table = markdown_table(
        summary,
        ["phase", "skkd", "released_s", "skkd_s", "fit_ratio", "step_ratio", "steps"],
        [
            "fit",
            "skkd setting",
            "released (s)",
            "skkd (s)",
            "skkd / released, fit",
            "skkd / released, per step",
            "steps (released / skkd)",
        ],
    )
    runs = markdown_table(
        rows,
        [
            "phase",
            "skkd",
            "run",
            "first",
            "released_s",
            "skkd_s",
            "fit_ratio",
            "step_ratio",
        ],
        [
            "fit",
            "skkd",
            "run",
            "ran first",
            "released (s)",
            "skkd (s)",
            "fit ratio",
            "step",
        ],
    )
    intro = (
        f"UCI-HAR 2->11, {args.epochs} epochs, {args.threads} torch thread(s), "
        "teacher CNN 64/128/128 (DANN), student CNN 16/32/32 (UNI-KD, distilled "
        f"from that teacher); {args.repeats} paired runs with seeds 0..."
        f"{args.repeats - 1}, alternating which side goes first. Times are of the "
        "training loop alone (released: its epoch loop including its data "
        "loader; skkd: `fit`), after a one-epoch warm-up in the same process. "
        "Numbers from `released.csv`.\n\n" + HOW_IT_WAS_RUN
    )
    write_report(
        out / "released.md",
        "skkd against the released UNI-KD code",
        intro,
        [("Medians", table), ("All runs", runs)],
        environment(["released", *argv], threads=args.threads),
        time.perf_counter() - start,
    )
    _log(f"released: wrote {out / 'released.md'}")
    return 0


if __name__ == "__main__":  # python -m benchmarks.released
    sys.exit(main())
