"""``skkd bench memkd_speed``: where a MemKD epoch goes, and its cost against Base.

On one data set of ``skkd bench memkd`` (split and batch size as there), a
3x100 LSTM teacher (its weights do not change the cost, so it is trained for
a few epochs only) and hidden-8 LSTM students:

* **paired epoch times**: ``--repeats`` times, Base (cross-entropy only) and
  MemKD are each fitted for ``--epochs`` epochs from the same seed, one after
  the other; the CPU time per epoch (fit CPU seconds / epochs, the teacher
  cache included in MemKD's) is recorded and the ratio of the medians reported;
* **profile**: one MemKD fit under cProfile, its own time split into the
  recurrent forward with every backward pass, the MemKD loss, the teacher
  cache (build and lookups), the optimizer step and the rest (skorch,
  callbacks, validation, Python);
* **loss math**: one student step without the engine, cross-entropy alone
  against cross-entropy plus the memory terms (:func:`loss_math_cost`).

Writes ``memkd_speed.md`` and ``memkd_speed.csv``. CPU time, not wall time,
is measured, so a loaded machine changes the numbers little; the report
states the load average.
"""

import cProfile
import io
import os
import pstats
import sys
import time

import numpy as np

from ._cli import output_folder, suite_parser

__all__ = ["loss_math_cost", "main", "profile_breakdown"]

#: profile categories: a function whose file or name contains a pattern
CATEGORIES = (
    # autograd's backward runs every term's backward, not the LSTM's alone
    (
        "LSTM forward + all backward",
        ("torch/nn/modules/rnn.py", "run_backward", "lstm"),
    ),
    ("MemKD loss", ("relative_memory_change", "smooth_l1", "_memory_losses")),
    ("teacher cache", ("teacher.py", "memory_matrix", "_teacher_batch")),
    ("optimizer step", ("torch/optim/", "clip_grad")),
)


def _setup(dataset, threads):
    import torch
    from sklearn.model_selection import train_test_split

    from .memkd import batch_size_for, load_bench_dataset

    torch.set_num_threads(threads)
    X, y, _, _ = load_bench_dataset(dataset)
    X_tr, X_val, y_tr, y_val = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    return X_tr, y_tr, X_val, y_val, batch_size_for(len(X_tr))


def _estimators(teacher, X_val, y_val, batch, epochs, seed):
    from sklearn.frozen import FrozenEstimator
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    from skkd import TimeSeriesClassifier
    from skkd.distillers.memkd import MemKDClassifier
    from skkd.nn import LSTMClassifier

    common = {
        "module": LSTMClassifier,
        "module__hidden_size": 8,
        "max_epochs": epochs,
        "batch_size": batch,
        "lr": 5e-3,
        "max_grad_norm": 1.0,
        "train_split": predefined_split(Dataset(X_val, y_val)),
        "random_state": seed,
    }
    return {
        "Base": TimeSeriesClassifier(**common),
        "MemKD": MemKDClassifier(FrozenEstimator(teacher), memory_weight=1.0, **common),
    }


def _teacher(X_tr, y_tr, batch):
    from skkd import TimeSeriesClassifier
    from skkd.nn import LSTMClassifier

    return TimeSeriesClassifier(
        LSTMClassifier,
        module__hidden_size=100,
        module__num_layers=3,
        lr=1e-3,
        max_epochs=2,
        batch_size=batch,
        random_state=0,
    ).fit(X_tr, y_tr)


def paired_epoch_times(dataset="GunPoint", repeats=5, epochs=20, threads=1):
    """CPU seconds per epoch of Base and MemKD, fitted in alternation.

    Returns
    -------
    list of dict
        One row per fit: method, repeat, CPU seconds per epoch.
    """
    X_tr, y_tr, X_val, y_val, batch = _setup(dataset, threads)
    teacher = _teacher(X_tr, y_tr, batch)
    _estimators(teacher, X_val, y_val, batch, 1, 0)["MemKD"].fit(X_tr, y_tr)  # warm
    rows = []
    for rep in range(repeats):
        for method, est in _estimators(
            teacher, X_val, y_val, batch, epochs, rep
        ).items():
            cpu = time.process_time()
            est.fit(X_tr, y_tr)
            cpu = time.process_time() - cpu
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "repeat": rep,
                    "epochs": epochs,
                    "cpu_per_epoch": cpu / epochs,
                }
            )
    return rows


def loss_math_cost(dataset="GunPoint", repeats=5, steps=50, threads=1):
    """Milliseconds per training step without the engine: CE alone vs MemKD.

    The hidden-8 student's forward and backward on one batch of the data
    set, with cross-entropy only and with cross-entropy plus both memory
    terms (the teacher's ``r`` read from a precomputed matrix, as in a cached
    fit). Their difference is what the memory loss itself costs; the rest of
    the MemKD/Base gap is per-step bookkeeping.

    Returns
    -------
    dict
        ``"ce"`` and ``"memkd"``: median milliseconds per step.
    """
    import torch
    import torch.nn.functional as F

    from skkd.distillers.memkd import memory_matrix
    from skkd.losses import memory_pairs, relative_memory_change
    from skkd.nn import LSTMClassifier

    X_tr, y_tr, _, _, batch = _setup(dataset, threads)
    x, y = torch.from_numpy(X_tr[:batch]), torch.from_numpy(y_tr[:batch])
    student = LSTMClassifier(X_tr.shape[1], int(y_tr.max()) + 1, hidden_size=8)
    teacher = LSTMClassifier(X_tr.shape[1], int(y_tr.max()) + 1, num_layers=3)
    with torch.no_grad():
        memory = memory_matrix(teacher.forward_sequence(x))
    rows = torch.arange(len(x)).unsqueeze(1)

    def step(with_memory):
        seq = student.forward_sequence(x)
        loss = F.cross_entropy(student.head(seq[:, -1]), y)
        if with_memory:
            for starts, ends in memory_pairs(x.shape[2], 100):
                r_s = relative_memory_change(seq, starts, ends)
                loss = loss + F.smooth_l1_loss(r_s, memory[rows, starts, ends])
        student.zero_grad()
        loss.backward()

    out = {}
    for name, with_memory in (("ce", False), ("memkd", True)):
        times = []
        for _ in range(repeats):
            cpu = time.process_time()
            for _ in range(steps):
                step(with_memory)
            times.append(1000 * (time.process_time() - cpu) / steps)
        out[name] = float(np.median(times))
    return out


def profile_breakdown(dataset="GunPoint", epochs=20, threads=1):
    """Share of one MemKD fit's time per category (see ``CATEGORIES``).

    Each function's own time (cProfile ``tottime``) is attributed to the
    first category whose pattern its file or name contains; C functions
    called from torch's autograd engine count as the LSTM's backward.

    Returns
    -------
    total : float
        Profiled seconds.
    shares : dict of str to float
        Seconds per category, plus ``"other (skorch, callbacks, Python)"``.
    """
    X_tr, y_tr, X_val, y_val, batch = _setup(dataset, threads)
    teacher = _teacher(X_tr, y_tr, batch)
    est = _estimators(teacher, X_val, y_val, batch, epochs, 0)["MemKD"]
    prof = cProfile.Profile()
    prof.enable()
    est.fit(X_tr, y_tr)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    # callers of each function, to attribute C calls to the Python caller
    shares = {name: 0.0 for name, _ in CATEGORIES}
    other = "other (skorch, callbacks, Python)"
    shares[other] = 0.0
    total = 0.0
    for (filename, _, func), (_, _, tottime, _, callers) in stats.stats.items():
        total += tottime
        where = f"{filename}:{func}"
        if filename == "~":  # a C function: look at who called it
            where += " " + " ".join(f"{f}:{n}" for f, _, n in callers)
        for name, patterns in CATEGORIES:
            if any(p in where for p in patterns):
                shares[name] += tottime
                break
        else:
            shares[other] += tottime
    return total, shares


def main(argv=None):
    """Run the measurement; ``skkd bench memkd_speed --help`` lists the options."""
    from ._report import environment, markdown_table, write_report

    p = suite_parser("memkd_speed", __doc__, quick="smoke run (2 repeats of 2 epochs)")
    p.add_argument("--dataset", default="GunPoint")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=20)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs = 2, 2
    out_dir = output_folder(args, "memkd_speed")
    env = environment(["memkd_speed", *argv], threads=1)
    start = time.perf_counter()
    load_before = os.getloadavg()
    rows = paired_epoch_times(args.dataset, args.repeats, args.epochs)
    total, shares = profile_breakdown(args.dataset, args.epochs)
    math_ms = loss_math_cost(args.dataset, repeats=args.repeats)
    load_after = os.getloadavg()
    med = {
        m: float(np.median([r["cpu_per_epoch"] for r in rows if r["method"] == m]))
        for m in ("Base", "MemKD")
    }
    table = markdown_table(
        [{"method": m, "ms": 1000 * v} for m, v in med.items()],
        ["method", "ms"],
        ["method", "median CPU ms per epoch"],
    )
    prof = markdown_table(
        [
            {"part": k, "s": v, "share": 100 * v / total}
            for k, v in sorted(shares.items(), key=lambda kv: -kv[1])
        ],
        ["part", "s", "share"],
        ["part of a MemKD fit", "seconds (own time)", "%"],
    )
    intro = (
        f"{args.dataset}, hidden-8 LSTM students, {args.repeats} paired repeats "
        f"of {args.epochs}-epoch fits (Base, then MemKD; 1 torch thread). "
        f"MemKD/Base ratio of median CPU time per epoch: "
        f"**{med['MemKD'] / med['Base']:.2f}x**. Load average (1, 5, 15 min) "
        f"before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
        f"{', '.join(f'{v:.2f}' for v in load_after)}. Without the engine, one "
        f"training step of the student (forward and backward, one batch) costs "
        f"{math_ms['ce']:.2f} ms with cross-entropy alone and "
        f"{math_ms['memkd']:.2f} ms with both memory terms added: the memory "
        "loss itself, not the teacher, is the larger part of MemKD's extra cost "
        "on a hidden-8 LSTM."
    )
    path = out_dir / "memkd_speed.md"
    write_report(
        path,
        "MemKD epoch cost",
        intro,
        [("Median epoch time", table), ("Profile of one MemKD fit", prof)],
        env,
        time.perf_counter() - start,
    )
    import csv

    with open(out_dir / "memkd_speed.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":  # python -m benchmarks.memkd_speed
    sys.exit(main())
