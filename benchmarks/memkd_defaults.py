"""``skkd bench memkd_defaults``: what a user gets without choosing a recipe.

On every data set of ``skkd bench memkd`` (the same resampling to 100 steps),
three models are fitted as a new user would write them, with no learning
rate, epochs, batch size or validation split given::

    teacher = TimeSeriesClassifier(LSTMClassifier, module__hidden_size=100,
                                   module__num_layers=3, random_state=0)
    base = TimeSeriesClassifier(LSTMClassifier, module__hidden_size=8,
                                random_state=seed)
    memkd = MemKDClassifier(FrozenEstimator(teacher), module__hidden_size=8,
                            random_state=seed)

on the whole official training set (the estimators' defaults take the
recurrent recipe of :mod:`skkd.recipes`: no early stopping). Each is compared
with the same model of the benchmark's recipe (``docs/benchmarks/memkd.csv``
and the cached teachers: 80/20 split, early stopping with patience 50, lambda
chosen on validation), on the official test set: the target is at least 90%
of the recipe's test AUC-PRC on every data set. Writes
``memkd_defaults.{csv,md,png}``.
"""

import math
import pickle
import sys
import time

import numpy as np

from ._cli import default_teacher_cache, output_folder, suite_parser

__all__ = ["fit_defaults", "main"]

#: the models compared, as (name in this suite, method of ``skkd bench memkd``)
MODELS = (("teacher", "Teacher"), ("Base", "Base"), ("MemKD", "MemKD"))
#: share of the recipe's test AUC-PRC the defaults must reach
TARGET = 0.9


def fit_defaults(dataset, seeds, *, max_length=100, data_home=None, cache_dir=None):
    """Fit the default-configured teacher, Base and MemKD students of a data set.

    Parameters
    ----------
    dataset : str
        A data set of ``skkd bench memkd``.
    seeds : sequence of int
        ``random_state`` of the students (the teacher is fitted once, seed 0).
    max_length : int, default=100
        Series are resampled to this length, as in ``skkd bench memkd``.
    data_home : str, optional
        UCI-HAR folder.
    cache_dir : path-like, optional
        Where the default teacher is pickled and reused.

    Returns
    -------
    rows : list of dict
        One row per model and seed: test AUC-PRC, accuracy, macro-F1 (%),
        epochs and fit seconds.
    """
    from pathlib import Path

    import torch
    from sklearn.frozen import FrozenEstimator

    from skkd import TimeSeriesClassifier
    from skkd.distillers.memkd import MemKDClassifier
    from skkd.nn import LSTMClassifier

    from .memkd import TEACHER_VERSION, _scores, load_bench_dataset

    torch.set_num_threads(1)
    X, y, X_test, y_test = load_bench_dataset(
        dataset, data_home=data_home, max_length=max_length
    )
    rows = []

    def record(name, seed, make):
        start = time.perf_counter()
        est = make()
        seconds = time.perf_counter() - start
        rows.append(
            {
                "model": name,
                "model_seed": seed,
                **{f"test_{k}": v for k, v in _scores(est, X_test, y_test).items()},
                "epochs": len(est.history_),
                "fit_seconds": seconds,
            }
        )
        return est

    path = None
    if cache_dir is not None:
        # versioned like the recipe's teachers: a change of the recurrent
        # defaults must not reuse a teacher trained with the former ones
        name = f"{dataset}_defaults_L{max_length}_{TEACHER_VERSION}"
        path = Path(cache_dir) / f"{name}.pkl"
    if path is not None and path.exists():
        with open(path, "rb") as handle:
            teacher, row = pickle.load(handle)
        rows.append(row)
    else:
        teacher = record(
            "teacher",
            0,
            lambda: TimeSeriesClassifier(
                LSTMClassifier,
                module__hidden_size=100,
                module__num_layers=3,
                random_state=0,
            ).fit(X, y),
        )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                pickle.dump((teacher, rows[-1]), handle)
    for seed in seeds:
        record(
            "Base",
            seed,
            lambda seed=seed: TimeSeriesClassifier(
                LSTMClassifier, module__hidden_size=8, random_state=seed
            ).fit(X, y),
        )
        record(
            "MemKD",
            seed,
            lambda seed=seed: MemKDClassifier(
                FrozenEstimator(teacher), module__hidden_size=8, random_state=seed
            ).fit(X, y),
        )
    return rows


def _job(dataset, seeds, memkd_default_memory_weight, **settings):
    # the weight is recorded, not passed: MemKD is fitted with its default
    return fit_defaults(dataset, seeds, **settings)


def recipe_scores(rows, teachers, seeds, hidden=8):
    """Mean test AUC-PRC of the benchmark recipe per (data set, model).

    Parameters
    ----------
    rows : list of dict
        ``memkd.csv`` rows of the run to compare with.
    teachers : dict
        Data set to its recipe teacher's result row.
    seeds : sequence of int
        Seeds of the students to average.
    hidden : int, default=8
        Student hidden size.

    Returns
    -------
    dict of (str, str) to float

    Examples
    --------
    >>> rows = [{"dataset": "A", "method": "Base", "hidden": 8, "seed": s,
    ...          "status": "ok", "test_auprc": v} for s, v in [(0, 80), (1, 90)]]
    >>> recipe_scores(rows, {"A": {"test_auprc": 95.0}}, [0, 1])
    {('A', 'teacher'): 95.0, ('A', 'Base'): 85.0}
    """
    out = {}
    for dataset, row in teachers.items():
        out[(dataset, "teacher")] = float(row["test_auprc"])
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for name, method in MODELS[1:]:
            values = [
                float(r["test_auprc"])
                for r in rows
                if r["dataset"] == dataset
                and r["method"] == method
                and int(r["hidden"]) == hidden
                and int(r["seed"]) in seeds
                and r.get("status") == "ok"
            ]
            if values:
                out[(dataset, name)] = float(np.mean(values))
    return out


def _recipe(args, out_dir, cache_root):
    """The recipe's scores, from the main run's CSV and cached teachers."""
    from . import memkd
    from ._runner import read_rows, rows_with

    defaults = memkd._parser().parse_args([])
    teachers = memkd.cached_teacher_rows(
        cache_root / "memkd",
        args.datasets,
        defaults.teacher_epochs,
        defaults.teacher_patience,
        args.max_length,
        defaults.har_subjects,
    )
    csv_path = out_dir / "memkd.csv"
    rows = read_rows(csv_path) if csv_path.exists() else []
    rows = rows_with(
        rows,
        main_hidden=defaults.hidden,
        lambdas=tuple(defaults.lambdas),
        student_epochs=defaults.student_epochs,
        student_patience=defaults.student_patience,
    )
    return recipe_scores(rows, teachers, args.seeds, defaults.hidden)


def _report(rows, recipe, out_dir, stem, env, wall, args):
    from ._report import markdown_table, mean_std, write_report

    ok = [r for r in rows if r.get("status") == "ok"]
    table, ratios = [], {}
    for dataset in args.datasets:
        entry = {"dataset": dataset}
        for name, _ in MODELS:
            values = [
                r["test_auprc"]
                for r in ok
                if r["dataset"] == dataset and r["model"] == name
            ]
            default = mean_std(values)
            reference = recipe.get((dataset, name), math.nan)
            entry[f"{name} recipe"] = reference
            entry[f"{name} defaults"] = default
            ratio = default[0] / reference if reference > 0 else math.nan
            entry[f"{name} ratio"] = ratio
            ratios[(dataset, name)] = ratio
        table.append(entry)
    columns, headers = ["dataset"], ["data set"]
    for name, _ in MODELS:
        columns += [f"{name} recipe", f"{name} defaults", f"{name} ratio"]
        headers += [f"{name}: recipe", "defaults", "ratio"]
    body = markdown_table(table, columns, headers)
    targets = []
    for name, _ in MODELS:
        values = {d: ratios[(d, name)] for d in args.datasets}
        below = [f"{d} ({v:.2f})" for d, v in values.items() if not v >= TARGET]
        finite = [v for v in values.values() if not math.isnan(v)]
        worst = min(finite) if finite else math.nan
        verdict = "met" if not below else "not met"
        targets.append(
            f"- {name}: defaults reach ≥ {TARGET:.0%} of the recipe on "
            f"{len(values) - len(below)} of {len(values)} data sets, lowest ratio "
            f"{worst:.2f}: **{verdict}**"
            + (f" (below: {', '.join(below)})" if below else "")
        )
    intro = (
        __doc__.split("\n\n", 1)[1].split("Writes")[0].strip()
        + f" Seeds {args.seeds}; the ratio is the mean test AUC-PRC (%) of the "
        "defaults over that of the recipe."
    )
    png = _plot(table, out_dir / f"{stem}.png")
    sections = [
        ("Targets", "\n".join(targets)),
        (
            "Test macro AUC-PRC (%): recipe against defaults",
            body + f"\n\n![defaults over recipe per data set]({png.name})",
        ),
    ]
    return write_report(
        out_dir / f"{stem}.md",
        "MemKD: default-configured models against the benchmark recipe",
        intro,
        sections,
        env,
        wall,
        rows,
    )


def _plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(MODELS)
    for i, (name, _) in enumerate(MODELS):
        xs = np.arange(len(table)) + (i - (len(MODELS) - 1) / 2) * width
        ax.bar(xs, [e[f"{name} ratio"] for e in table], width, label=name)
    ax.axhline(TARGET, color="k", lw=0.8, ls="--", label=f"target {TARGET:.0%}")
    ax.set_xticks(np.arange(len(table)))
    ax.set_xticklabels([e["dataset"] for e in table], rotation=30, ha="right")
    ax.set_ylabel("defaults / recipe (test AUC-PRC)")
    ax.set_title("Default-configured models against the benchmark recipe")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    """Run the suite; ``skkd bench memkd_defaults --help`` lists the options."""
    from pathlib import Path

    from . import memkd
    from ._report import environment
    from ._runner import rows_with, run_jobs

    p = suite_parser(
        "memkd_defaults",
        __doc__,
        quick="smoke run (ItalyPowerDemand, 1 seed)",
        n_jobs=2,
        teacher_cache="where fitted teachers are kept (default OUT/.teacher-cache)",
    )
    p.add_argument("--datasets", nargs="+", default=list(memkd.DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--max-length", type=int, default=100)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds = ["ItalyPowerDemand"], args.seeds[:1]
    out_dir = output_folder(args, "memkd_defaults")
    stem = "memkd_defaults_quick" if args.quick else "memkd_defaults"
    cache_root = Path(args.teacher_cache or default_teacher_cache(out_dir))
    from skkd.distillers.memkd import MemKDClassifier

    # part of the job: a run after a change of the default is a new run
    default_weight = MemKDClassifier().get_params()["memory_weight"]
    env = environment(["memkd_defaults", *argv], threads=1)
    start = time.perf_counter()
    # biggest first so the two workers finish together
    order = {d: i for i, d in enumerate(["UCIHAR", "PLAID", "OSULeaf"])}
    jobs = [
        {
            "dataset": d,
            "seeds": tuple(args.seeds),
            "max_length": args.max_length,
            "memkd_default_memory_weight": default_weight,
            "data_home": args.data_home,
            "cache_dir": str(cache_root / "memkd_defaults"),
        }
        for d in sorted(args.datasets, key=lambda d: order.get(d, 99))
    ]
    rows = run_jobs(
        jobs,
        _job,
        csv_path=out_dir / f"{stem}.csv",
        key=["dataset", "seeds", "max_length", "memkd_default_memory_weight"],
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        desc="memkd defaults",
        command=env["command"],
    )
    wall = time.perf_counter() - start
    # the CSV keeps earlier runs' rows: report only this run's settings
    rows = rows_with(
        rows,
        seeds=tuple(args.seeds),
        max_length=args.max_length,
        memkd_default_memory_weight=default_weight,
    )
    rows = [r for r in rows if r.get("dataset") in args.datasets]
    recipe = _recipe(args, out_dir, cache_root)
    path = _report(rows, recipe, out_dir, stem, env, wall, args)
    print(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":  # python -m benchmarks.memkd_defaults
    sys.exit(main())
