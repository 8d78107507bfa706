"""``skkd bench selection``: how well label-free scorers choose hyperparameters.

On UCI-HAR cross-subject scenarios, one job is one (scenario, seed): a DANN
teacher is trained once without target labels, then every candidate of a small
UNI-KD grid is trained on 80% of the source data plus the unlabelled target
set and scored by each selection scorer of :mod:`skkd.metrics` (teacher
agreement and its KL variant, and target prediction entropy on the unlabelled
target set; accuracy on the 20% source hold-out) and by the *oracle*: macro-F1
on the FULL labelled target test set, which a user would not have. The report
gives, per scorer, the Spearman rank correlation of its scores with the
oracle's over the grid, and the oracle macro-F1 lost by choosing its
candidate instead of the oracle's best (regret).
"""

import itertools
import sys
import time

from ._cli import output_folder, suite_parser
from ._report import bar_plot, environment, markdown_table, mean_std, write_report
from ._runner import run_jobs

__all__ = ["GRID", "SCORERS", "main", "run_scenario", "summarise"]

TEACHER_WIDTHS = (64, 128, 128)
#: the UNI-KD grid searched (8 candidates)
GRID = {
    "temperature": [1.0, 4.0],
    "lambda_ukd": [0.1, 1.0],
    "module__widths": [(8, 16, 16), (16, 32, 32)],
}
#: scorer name -> column in the CSV (greater is better for every one)
SCORERS = ("teacher_agreement", "teacher_kl", "target_entropy", "source_accuracy")
JOB_KEY = ("scenario", "seed", "epochs")
DEFAULT_SCENARIOS = ["2->11", "6->23", "7->13", "18->27"]


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _candidates():
    keys = list(GRID)
    product = itertools.product(*GRID.values())
    return [dict(zip(keys, values, strict=True)) for values in product]


def run_scenario(scenario, seed, epochs, data_home=None, threads=1):
    """Train the teacher and every grid candidate on one scenario; score them.

    Parameters
    ----------
    scenario : str
        UCI-HAR ``"source->target"`` subjects.
    seed : int
        ``random_state`` of every model and of the source hold-out split.
    epochs : int
        ``max_epochs`` of the teacher and the students.
    data_home : str, optional
        UCI-HAR folder (see :func:`skkd.datasets.load_har_scenario`).
    threads : int, default=1
        ``torch.set_num_threads`` in this worker.

    Returns
    -------
    rows : list of dict
        One per candidate: its parameters, each scorer's value, and
        ``oracle_macro_f1`` / ``oracle_accuracy`` (%) on the target test set.

    Examples
    --------
    >>> rows = run_scenario("2->11", 0, 1)  # doctest: +SKIP
    """
    import torch
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import train_test_split

    from skkd import DANNClassifier, UniKDClassifier
    from skkd.datasets import load_har_scenario
    from skkd.metrics import selection_scorers, target_scores

    torch.set_num_threads(threads)
    data = load_har_scenario(scenario, data_home=data_home)
    X_fit, X_val, y_fit, y_val = train_test_split(
        data.X_src, data.y_src, test_size=0.2, stratify=data.y_src, random_state=seed
    )
    teacher = DANNClassifier(
        module__widths=TEACHER_WIDTHS, max_epochs=epochs, random_state=seed
    ).fit(X_fit, y_fit, data.X_tgt)
    teacher_f1 = (
        100 * target_scores(teacher, data.X_tgt_test, data.y_tgt_test)["macro_f1"]
    )
    scorers = selection_scorers(data.X_tgt)
    rows = []
    for params in _candidates():
        start = time.perf_counter()
        student = UniKDClassifier(
            FrozenEstimator(teacher), max_epochs=epochs, random_state=seed, **params
        ).fit(X_fit, y_fit, data.X_tgt)
        oracle = target_scores(student, data.X_tgt_test, data.y_tgt_test)
        row = {
            "candidate": " ".join(f"{k}={v}" for k, v in params.items()),
            "oracle_macro_f1": 100 * oracle["macro_f1"],
            "oracle_accuracy": 100 * oracle["accuracy"],
            "teacher_macro_f1": teacher_f1,
            "fit_seconds": time.perf_counter() - start,
        }
        for name, scorer in scorers.items():
            row[name] = scorer(student, X_val, y_val)
        _log(
            f"[selection {scenario} seed {seed}] {row['candidate']}: oracle F1 "
            f"{row['oracle_macro_f1']:.2f}, agreement {row['teacher_agreement']:.3f}"
        )
        rows.append(row)
    return rows


def summarise(rows, scorers=SCORERS, group=("scenario", "seed")):
    """Per scorer and scenario: Spearman correlation with the oracle and regret.

    Parameters
    ----------
    rows : list of dict
        Candidate rows of :func:`run_scenario` (several scenarios and seeds).
    scorers : sequence of str, default=SCORERS
        Columns to judge (greater is better).
    group : sequence of str, default=("scenario", "seed")
        Columns whose values make one choice among the candidates.

    Returns
    -------
    per_group : list of dict
        One per (scenario, seed, scorer): ``spearman``, ``chosen_f1``,
        ``best_f1``, ``regret`` (oracle macro-F1 points lost).

    Examples
    --------
    >>> rows = [{"scenario": "a", "seed": 0, "oracle_macro_f1": f, **{
    ...     s: f for s in SCORERS}} for f in (60.0, 70.0, 80.0)]
    >>> [round(r["spearman"], 2) for r in summarise(rows)]
    [1.0, 1.0, 1.0, 1.0]
    """
    import numpy as np
    from scipy.stats import spearmanr

    groups = {}
    for r in rows:
        groups.setdefault(tuple(str(r[k]) for k in group), []).append(r)
    out = []
    for values, candidates in groups.items():
        oracle = np.array([float(r["oracle_macro_f1"]) for r in candidates])
        for scorer in scorers:
            scores = np.array([float(r[scorer]) for r in candidates])
            if np.ptp(scores) == 0 or np.ptp(oracle) == 0:
                rho = float("nan")
            else:
                rho = float(spearmanr(scores, oracle).statistic)
            # ties: the first best candidate, as GridSearchCV's rank 1
            chosen = oracle[int(np.argmax(scores))]
            out.append(
                {
                    **dict(zip(group, values, strict=True)),
                    "scorer": scorer,
                    "spearman": rho,
                    "chosen_f1": float(chosen),
                    "best_f1": float(oracle.max()),
                    "regret": float(oracle.max() - chosen),
                }
            )
    return out


def _report(rows):
    import numpy as np

    summary = summarise(rows)
    overall = []
    for scorer in SCORERS:
        mine = [s for s in summary if s["scorer"] == scorer]
        rho = [s["spearman"] for s in mine if np.isfinite(s["spearman"])]
        overall.append(
            {
                "scorer": scorer,
                "spearman": mean_std(rho),
                "regret": mean_std([s["regret"] for s in mine]),
                "chosen_f1": mean_std([s["chosen_f1"] for s in mine]),
            }
        )
    best = mean_std([s["best_f1"] for s in summary if s["scorer"] == SCORERS[0]])
    overall.append({"scorer": "oracle (target labels)", "chosen_f1": best})
    table = markdown_table(
        overall,
        ["scorer", "spearman", "chosen_f1", "regret"],
        [
            "scorer",
            "Spearman with oracle",
            "target macro-F1 of its choice (%)",
            "regret (F1 points)",
        ],
    )
    per = markdown_table(
        summary,
        ["scenario", "seed", "scorer", "spearman", "chosen_f1", "best_f1", "regret"],
        [
            "scenario",
            "seed",
            "scorer",
            "Spearman",
            "chosen F1 (%)",
            "oracle best F1 (%)",
            "regret",
        ],
    )
    plot = {
        "categories": list(SCORERS),
        "series": {
            "Spearman with oracle": (
                [o["spearman"][0] for o in overall[:-1]],
                [o["spearman"][1] for o in overall[:-1]],
            )
        },
    }
    return table, per, plot


def _parser():
    p = suite_parser(
        "selection",
        description="Label-free model selection on UCI-HAR: Spearman correlation "
        "of each selection scorer with the target-label oracle over a UNI-KD "
        "grid; writes selection.csv, selection.md, selection.png.",
        quick="smoke run: 2->11, seed 0, 1 epoch",
        n_jobs=1,
        threads=1,
    )
    p.add_argument("--scenarios", nargs="+", default=DEFAULT_SCENARIOS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=5)
    return p


def main(argv=None):
    """Run the selection benchmark (``skkd bench selection``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench selection`` (see ``--help``).

    Returns
    -------
    status : int
        0 on success (failed jobs are recorded in the CSV).

    Examples
    --------
    >>> main(["--quick"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    if args.quick:
        args.scenarios, args.seeds, args.epochs = ["2->11"], [0], 1
    out = output_folder(args, "selection")
    csv_path = out / "selection.csv"
    jobs = [
        {
            "scenario": s,
            "seed": seed,
            "epochs": args.epochs,
            "data_home": args.data_home,
            "threads": args.threads,
        }
        for s in args.scenarios
        for seed in args.seeds
    ]
    rows = run_jobs(
        jobs,
        run_scenario,
        csv_path=csv_path,
        key=JOB_KEY,
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        desc="selection",
    )
    wanted = {(s, seed) for s in args.scenarios for seed in args.seeds}
    rows = [
        r
        for r in rows
        if r.get("status") == "ok"
        and int(r["epochs"]) == args.epochs
        and (str(r["scenario"]), int(r["seed"])) in wanted
    ]
    if not rows:
        _log("selection: no successful rows to report")
        return 1
    table, per, plot = _report(rows)
    n_candidates = len(_candidates())
    # rows of one job share its "seconds": count each job once
    compute = sum(
        {tuple(str(r[k]) for k in JOB_KEY): float(r["seconds"]) for r in rows}.values()
    )
    intro = (
        "Which label-free scorer picks UNI-KD hyperparameters that a user with "
        "target labels would also pick? Per (scenario, seed) a DANN teacher (CNN "
        f"64/128/128) is trained without target labels; each of the {n_candidates} "
        f"candidates of the grid `{GRID}` is trained on a stratified 80% of the "
        f"source data plus the unlabelled target set ({args.epochs} epochs) and "
        "scored by every scorer of `skkd.metrics.selection_scorers` (teacher "
        "agreement, teacher KL and prediction entropy on the unlabelled target "
        "set; accuracy on the 20% source hold-out). The oracle is the macro-F1 on "
        "the FULL labelled target test set. Spearman is the rank correlation of a "
        "scorer with the oracle over the grid (NaN when a scorer ties every "
        "candidate, left out of the mean); regret is the oracle macro-F1 lost by "
        "taking the scorer's top candidate instead of the oracle's. "
        f"Every number is computed from `{csv_path.name}` ({len(rows)} rows; "
        f"job time summed over the CSV: {compute:.0f} s)."
    )
    write_report(
        out / "selection.md",
        "Model selection without target labels (UCI-HAR, UNI-KD grid)",
        intro,
        [
            ("Summary (mean ± std over the scenario and seed runs)", table),
            ("Per scenario", per),
        ],
        environment(["selection", *argv], threads=args.threads),
        time.perf_counter() - start,
    )
    bar_plot(
        out / "selection.png",
        plot["categories"],
        plot["series"],
        "Spearman with target-label oracle",
        "Label-free scorers vs the oracle (UNI-KD grid, UCI-HAR)",
    )
    _log(f"selection: wrote {csv_path}, {out / 'selection.md'}, selection.png")
    print(table)
    return 0


if __name__ == "__main__":  # python -m benchmarks.selection
    sys.exit(main())
