"""``skkd bench teacher_selection``: choosing a teacher without target labels.

On the 10 UCI-HAR cross-subject scenarios, the candidates of one scenario are
the label-free teachers of the ``har`` suite (``--kinds``, default DANN with
skkd's defaults, DANN with AdaTime's recipe, VADA, DIRT-T and the 5-seed DANN
ensemble) for each seed (``--seeds``), loaded from the shared teacher cache
(fitted when missing, without target labels). Every candidate is scored by
skada's label-free scorers (through :class:`skkd.metrics.SkadaView`), by
skkd's collapse criterion, by the collapse criterion followed by the
prediction entropy, and by its accuracy on the (training) source data; the
*oracle* is its macro-F1 on the FULL labelled target test set. The report
gives, per scorer, the Spearman rank correlation with the oracle and the
oracle macro-F1 of the teacher it picks, (a) among every candidate of a
scenario and (b) among the seeds of one kind (the label-free counterpart of
the ``har`` report's "teacher picked per scenario with target labels").
"""

import sys
import time
import warnings

from ._cli import output_folder, suite_parser
from ._report import bar_plot, environment, markdown_table, mean_std, write_report
from ._runner import run_jobs
from ._teachers import DEFAULT_TEACHER, load_or_fit_teacher, teacher_epochs
from .selection import summarise

__all__ = [
    "KINDS",
    "SCORERS",
    "build_report",
    "main",
    "run_scenario",
    "score_teacher",
    "students_of_choice",
]

#: default candidate kinds (teacher names of ``benchmarks._teachers``)
KINDS = ("dann", "dann-adatime", "vada", "dirtt", "ensemble")
#: scorer column -> what it is (greater is better for every one)
SCORERS = {
    "entropy": "skada PredictionEntropyScorer (negative mean target entropy)",
    "snd": "skada SoftNeighborhoodDensity",
    "dev": "skada DeepEmbeddedValidation (negative weighted source risk)",
    "iwcv": "skada ImportanceWeightedScorer (density-ratio weighted source accuracy)",
    "mano": "skada MaNoScorer",
    "collapse": "skkd: normalised entropy of the predicted-class histogram "
    "(CollapseFilter's score)",
    "collapse_then_entropy": "skkd: CollapseFilter's max-class-share test, then "
    "the prediction entropy among the candidates it keeps",
    "source_accuracy": "accuracy on the source training data",
}
JOB_KEY = ("scenario", "epochs", "kinds", "seeds")


def _log(message):
    print(message, file=sys.stderr, flush=True)


def score_teacher(teacher, data, random_state=0):
    """Every label-free score of one fitted teacher (greater is better).

    Parameters
    ----------
    teacher : fitted classifier
        A skkd estimator or :class:`~skkd.ensemble.TeacherEnsemble`.
    data : skkd.datasets.DomainShiftData
        Source series and labels, and the unlabelled target series ``X_tgt``.
    random_state : int, default=0
        Seed of the scorers that split or sample.

    Returns
    -------
    scores : dict
        One value per key of :data:`SCORERS` (NaN when a scorer fails).

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(n_samples=60, random_state=0)
    >>> net = TimeSeriesClassifier(max_epochs=1, random_state=0).fit(d.X_src, d.y_src)
    >>> sorted(score_teacher(net, d)) == sorted(SCORERS)
    True
    """
    import numpy as np
    from sklearn import config_context
    from sklearn.exceptions import ConvergenceWarning

    from skkd.ensemble import CollapseFilter
    from skkd.metrics import SkadaView, prediction_collapse

    view = SkadaView(teacher)
    n_src, n_tgt = len(data.X_src), len(data.X_tgt)
    X = np.concatenate([data.X_src, data.X_tgt])
    y = np.concatenate([data.y_src, -np.ones(n_tgt, dtype=data.y_src.dtype)])
    domain = np.concatenate([np.ones(n_src, dtype=int), -2 * np.ones(n_tgt, dtype=int)])
    # skada's scorers request sample_domain through metadata routing (and
    # importing skada turns routing on for good: keep that inside the context)
    with config_context(enable_metadata_routing=True):
        from skada.metrics import (
            DeepEmbeddedValidation,
            ImportanceWeightedScorer,
            MaNoScorer,
            PredictionEntropyScorer,
            SoftNeighborhoodDensity,
        )

        skada_scorers = {
            "entropy": PredictionEntropyScorer(),
            "snd": SoftNeighborhoodDensity(),
            "dev": DeepEmbeddedValidation(random_state=random_state),
            "iwcv": ImportanceWeightedScorer(),
            "mano": MaNoScorer(),
        }
        scores = {}
        for name, scorer in skada_scorers.items():
            try:
                with warnings.catch_warnings():
                    # DEV's domain classifier on raw features: lbfgs's iteration cap
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    scores[name] = float(scorer(view, X, y, sample_domain=domain))
            except Exception as exc:  # noqa: BLE001 - one scorer must not sink the rest
                _log(f"teacher_selection: {name} failed: {exc}")
                scores[name] = float("nan")
    collapse = prediction_collapse(teacher.predict(data.X_tgt), teacher.classes_)
    scores["collapse"] = float(collapse.entropy)
    # the filter's default limit: halfway between even and one class
    kept = collapse.max_class_share <= CollapseFilter()._threshold(
        len(teacher.classes_)
    )
    scores["collapse_then_entropy"] = scores["entropy"] if kept else float("-inf")
    scores["source_accuracy"] = float(teacher.score(data.X_src, data.y_src))
    return scores


def run_scenario(scenario, epochs, kinds, seeds, data_home=None, cache=None, threads=1):
    """Load (or fit) every candidate teacher of one scenario and score it.

    Parameters
    ----------
    scenario : str
        UCI-HAR ``"source->target"`` subjects.
    epochs : int
        Teacher epochs (a recipe's own epochs win, as in ``skkd bench har``).
    kinds, seeds : str
        Space-separated teacher names and seeds of the candidates.
    data_home : str, optional
        UCI-HAR folder.
    cache : str, optional
        Teacher cache shared with ``skkd bench har``.
    threads : int, default=1
        ``torch.set_num_threads`` in this worker.

    Returns
    -------
    rows : list of dict
        One per candidate: ``kind``, ``teacher_seed``, every scorer of
        :data:`SCORERS`, ``oracle_macro_f1`` and ``oracle_accuracy`` (%).

    Examples
    --------
    >>> rows = run_scenario("2->11", 10, "dann vada", "0 1")  # doctest: +SKIP
    """
    import torch

    from skkd.datasets import load_har_scenario
    from skkd.metrics import target_scores

    torch.set_num_threads(threads)
    data = load_har_scenario(scenario, data_home=data_home)
    rows = []
    for kind in kinds.split():
        for seed in map(int, seeds.split()):
            teacher, _ = load_or_fit_teacher(kind, scenario, seed, epochs, data, cache)
            oracle = target_scores(teacher, data.X_tgt_test, data.y_tgt_test)
            row = {
                "kind": kind,
                "teacher_seed": seed,
                "teacher_epochs": teacher_epochs(kind, epochs),
                "oracle_macro_f1": 100 * oracle["macro_f1"],
                "oracle_accuracy": 100 * oracle["accuracy"],
                **score_teacher(teacher, data, random_state=seed),
            }
            _log(
                f"[teacher_selection {scenario}] {kind} seed {seed}: oracle F1 "
                f"{row['oracle_macro_f1']:.2f}, entropy {row['entropy']:.3f}, "
                f"dev {row['dev']:.3f}"
            )
            rows.append(row)
    return rows


def _finite(rows):
    """Non-finite scores (a failed scorer, a collapsed candidate) rank last."""
    import math

    out = []
    for r in rows:
        r = dict(r)
        for s in SCORERS:
            value = float(r[s])
            r[s] = value if math.isfinite(value) else -1e300
        out.append(r)
    return out


def _summary_table(summary, baseline_label, baseline):
    import numpy as np

    rows = []
    for scorer in SCORERS:
        mine = [s for s in summary if s["scorer"] == scorer]
        rho = [s["spearman"] for s in mine if np.isfinite(s["spearman"])]
        rows.append(
            {
                "scorer": scorer,
                "spearman": mean_std(rho),
                "chosen_f1": mean_std([s["chosen_f1"] for s in mine]),
                "regret": mean_std([s["regret"] for s in mine]),
            }
        )
    best = [s["best_f1"] for s in summary if s["scorer"] == next(iter(SCORERS))]
    rows.append({"scorer": baseline_label, "chosen_f1": mean_std(baseline)})
    rows.append({"scorer": "oracle (target labels)", "chosen_f1": mean_std(best)})
    return rows


def students_of_choice(rows, har_rows, scorer="collapse", methods=("unikd", "kd")):
    """Students distilled from the seed a scorer picks, from ``har.csv``'s rows.

    Per kind and scenario the seed whose teacher scores best by ``scorer``
    (label-free) and the seed with the best target macro-F1 (labels) are
    picked; their students are looked up among the default rows of
    ``skkd bench har`` run with that teacher (nothing is retrained).

    Parameters
    ----------
    rows : list of dict
        Candidate rows of :func:`run_scenario`.
    har_rows : list of dict
        Rows of ``har.csv``.
    scorer : str, default="collapse"
        Key of :data:`SCORERS`.
    methods : sequence of str, default=("unikd", "kd")
        Student methods of ``skkd bench har``.

    Returns
    -------
    table : list of dict
        One per (kind, method) found: ``mean`` (over seeds), ``chosen``,
        ``labels`` (%), means over the scenarios.

    Examples
    --------
    >>> rows = [{"scenario": "a", "kind": "vada", "teacher_seed": s,
    ...          "oracle_macro_f1": 80.0 + s, "collapse": -s} for s in (0, 1)]
    >>> har = [{"teacher": "vada", "tag": "default", "variant": "", "status": "ok",
    ...         "scenario": "a", "seed": s, "method": "kd", "macro_f1": 70.0 + 10 * s}
    ...        for s in (0, 1)]
    >>> students_of_choice(rows, har, methods=["kd"])
    [{'kind': 'vada', 'method': 'kd', 'mean': 75.0, 'chosen': 70.0, 'labels': 80.0}]
    """
    import numpy as np

    student = {}
    for r in har_rows:
        if (r.get("tag"), str(r.get("variant") or ""), r.get("status")) == (
            "default",
            "",
            "ok",
        ):
            # rows written before --teacher existed distilled the default DANN
            teacher = r.get("teacher") or DEFAULT_TEACHER
            key = (teacher, str(r["scenario"]), int(r["seed"]), r["method"])
            student[key] = float(r["macro_f1"])
    table = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        by_scenario = {}
        for r in rows:
            if r["kind"] == kind:
                by_scenario.setdefault(str(r["scenario"]), []).append(r)
        for method in methods:
            cells = []
            for scenario, candidates in by_scenario.items():
                seeds = [int(c["teacher_seed"]) for c in candidates]
                f1 = [student.get((kind, scenario, s, method)) for s in seeds]
                if any(v is None for v in f1):
                    continue
                chosen = int(np.argmax([float(c[scorer]) for c in candidates]))
                labels = int(
                    np.argmax([float(c["oracle_macro_f1"]) for c in candidates])
                )
                cells.append((np.mean(f1), f1[chosen], f1[labels]))
            if cells:
                columns = zip(*cells, strict=True)
                mean, chosen, labels = (float(np.mean(c)) for c in columns)
                table.append(
                    {
                        "kind": kind,
                        "method": method,
                        "mean": mean,
                        "chosen": chosen,
                        "labels": labels,
                    }
                )
    return table


def build_report(rows, har_rows=()):
    """Markdown sections and plot data of the two selection problems.

    Parameters
    ----------
    rows : list of dict
        Candidate rows of :func:`run_scenario`.
    har_rows : list of dict, optional
        Rows of ``har.csv``: adds the students of the chosen teachers (see
        :func:`students_of_choice`).

    Returns
    -------
    sections : list of (str, str)
    plot : dict

    Examples
    --------
    >>> rows = [{"scenario": "a", "kind": k, "teacher_seed": s,
    ...          "oracle_macro_f1": 50.0 + 10 * s + (k == "vada"),
    ...          **{c: float(s) for c in SCORERS}}
    ...         for k in ("dann", "vada") for s in (0, 1)]
    >>> sections, plot = build_report(rows)
    >>> [title for title, _ in sections][0]
    'Choosing among every candidate of a scenario'
    """
    import numpy as np

    rows = _finite(rows)
    columns = ["scorer", "spearman", "chosen_f1", "regret"]
    headers = [
        "scorer",
        "Spearman with oracle",
        "target macro-F1 of its choice (%)",
        "regret (F1 points)",
    ]
    everyone = summarise(rows, list(SCORERS), group=("scenario",))
    mean_candidate = [
        np.mean([float(r["oracle_macro_f1"]) for r in rows if r["scenario"] == s])
        for s in sorted({r["scenario"] for r in rows})
    ]
    table_all = _summary_table(everyone, "any candidate (mean)", mean_candidate)
    sections = [
        (
            "Choosing among every candidate of a scenario",
            "Per scenario one choice among every kind and seed; mean ± std over "
            "the scenarios.\n\n" + markdown_table(table_all, columns, headers),
        )
    ]
    per_kind = summarise(rows, list(SCORERS), group=("scenario", "kind"))
    kind_rows = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [s for s in per_kind if s["kind"] == kind]
        seeds_mean = [
            np.mean(
                [
                    float(r["oracle_macro_f1"])
                    for r in rows
                    if r["kind"] == kind and r["scenario"] == s["scenario"]
                ]
            )
            for s in mine
            if s["scorer"] == next(iter(SCORERS))
        ]
        row = {"kind": kind, "any": np.mean(seeds_mean)}
        for scorer in SCORERS:
            row[scorer] = np.mean(
                [s["chosen_f1"] for s in mine if s["scorer"] == scorer]
            )
        row["oracle"] = np.mean(
            [s["best_f1"] for s in mine if s["scorer"] == next(iter(SCORERS))]
        )
        kind_rows.append(row)
    sections.append(
        (
            "Choosing the seed of one kind",
            "Per scenario and kind, one choice among its seeds: the mean target "
            "macro-F1 (%) over the scenarios of the teacher each scorer picks, "
            "against the mean seed (what a user gets without choosing) and the "
            "seed picked with target labels (the `har` report's label-picked "
            "row).\n\n"
            + markdown_table(
                kind_rows,
                ["kind", "any", *SCORERS, "oracle"],
                ["kind", "mean seed", *SCORERS, "oracle (labels)"],
            ),
        )
    )
    chosen_students = students_of_choice(_finite(rows), har_rows)
    if chosen_students:
        sections.append(
            (
                "Students of the chosen teacher",
                "Per kind and scenario, the students that `skkd bench har` "
                "distilled from the seed picked by the `collapse` score (no "
                "target labels) and from the seed picked with target labels, "
                "against the mean over seeds; target macro-F1 (%), mean over the "
                "scenarios (nothing retrained; from `har.csv`).\n\n"
                + markdown_table(
                    chosen_students,
                    ["kind", "method", "mean", "chosen", "labels"],
                    [
                        "teacher kind",
                        "student",
                        "mean seed",
                        "seed picked by collapse (label-free)",
                        "seed picked with target labels",
                    ],
                ),
            )
        )
    per_scenario = markdown_table(
        everyone,
        ["scenario", "scorer", "spearman", "chosen_f1", "best_f1", "regret"],
        [
            "scenario",
            "scorer",
            "Spearman",
            "chosen F1 (%)",
            "oracle best F1 (%)",
            "regret",
        ],
    )
    sections.append(("Per scenario (every candidate)", per_scenario))
    plot = {
        "categories": list(SCORERS),
        "series": {
            "Spearman with oracle": (
                [r["spearman"][0] for r in table_all[: len(SCORERS)]],
                [r["spearman"][1] for r in table_all[: len(SCORERS)]],
            )
        },
    }
    return sections, plot


def _parser():
    from skkd.datasets import HAR_ADDITIONAL_SCENARIOS, HAR_MAIN_SCENARIOS

    p = suite_parser(
        "teacher_selection",
        "Label-free teacher selection on UCI-HAR: Spearman correlation of "
        "skada's scorers and skkd's collapse criterion with the target-label "
        "oracle over the har suite's teachers; writes teacher_selection.csv/.md/.png.",
        quick="smoke run: 2->11, DANN seeds 0 and 1, 2 epochs",
        n_jobs=1,
        threads=1,
        teacher_cache="teacher cache shared with skkd bench har (default: none)",
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        default=[*HAR_MAIN_SCENARIOS, *HAR_ADDITIONAL_SCENARIOS],
    )
    p.add_argument("--kinds", nargs="+", default=list(KINDS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10, help="teacher epochs")
    return p


def main(argv=None):
    """Run the teacher-selection benchmark (``skkd bench teacher_selection``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench teacher_selection`` (see ``--help``).

    Returns
    -------
    status : int
        0 on success, 1 when no job succeeded.

    Examples
    --------
    >>> main(["--quick"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    if args.quick:
        args.scenarios, args.kinds, args.seeds, args.epochs = (
            ["2->11"],
            ["dann"],
            [0, 1],
            2,
        )
    out = output_folder(args, "teacher_selection")
    csv_path = out / "teacher_selection.csv"
    kinds, seeds = " ".join(args.kinds), " ".join(map(str, args.seeds))
    jobs = [
        {
            "scenario": s,
            "epochs": args.epochs,
            "kinds": kinds,
            "seeds": seeds,
            "data_home": args.data_home,
            "cache": args.teacher_cache,
            "threads": args.threads,
        }
        for s in args.scenarios
    ]
    rows = run_jobs(
        jobs,
        run_scenario,
        csv_path=csv_path,
        key=JOB_KEY,
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        desc="teacher_selection",
    )
    rows = [
        r
        for r in rows
        if r.get("status") == "ok"
        and int(r["epochs"]) == args.epochs
        and r["kinds"] == kinds
        and str(r["seeds"]) == seeds
        and str(r["scenario"]) in args.scenarios
    ]
    if not rows:
        _log("teacher_selection: no successful rows to report")
        return 1
    from ._runner import read_rows

    har_csv = out / "har.csv"
    sections, plot = build_report(rows, read_rows(har_csv) if har_csv.exists() else ())
    compute = sum(
        {tuple(str(r[k]) for k in JOB_KEY): float(r["seconds"]) for r in rows}.values()
    )
    described = "; ".join(f"`{k}`: {v}" for k, v in SCORERS.items())
    intro = (
        "Which label-free criterion picks the teacher a user with target labels "
        f"would pick? Candidates per scenario: the teachers {', '.join(args.kinds)} "
        f"of seeds {seeds} ({args.epochs} epochs unless a recipe sets its own), "
        "each trained without target labels (the `har` suite's teachers, from "
        "its cache). Scorers (greater is better, computed on the source "
        f"training data and the unlabelled target set): {described}. The oracle "
        "is the macro-F1 on the FULL labelled target test set. Spearman is the "
        "rank correlation with the oracle over the candidates (NaN when a "
        "scorer ties every candidate, left out of the mean); regret is the "
        "oracle macro-F1 lost by taking the scorer's top candidate instead of "
        f"the oracle's. Every number is computed from `{csv_path.name}` "
        f"({len(rows)} rows; job time summed over the CSV: {compute:.0f} s)."
    )
    write_report(
        out / "teacher_selection.md",
        "Teacher selection without target labels (UCI-HAR)",
        intro,
        sections,
        environment(["teacher_selection", *argv], threads=args.threads),
        time.perf_counter() - start,
    )
    bar_plot(
        out / "teacher_selection.png",
        plot["categories"],
        plot["series"],
        "Spearman with target-label oracle",
        "Label-free teacher selection vs the oracle (UCI-HAR)",
    )
    _log(f"teacher_selection: wrote {csv_path}, {out / 'teacher_selection.md'}")
    print(sections[0][1])
    return 0


if __name__ == "__main__":  # python -m benchmarks.teacher_selection
    sys.exit(main())
