"""``skkd bench har``: the UNI-KD (IJCAI 2023) UCI-HAR cross-subject benchmark.

One job is one (scenario, seed): it trains the DANN teacher once (target
labels never used), then every requested student method on the same data and
teacher, and returns one row per method scored on the FULL target test set
(macro-F1 and accuracy, in %), plus the released code's truncated scoring for
comparison. Rows stream into ``har.csv`` (resumable); ``har.md`` and
``har.png`` are rebuilt from the whole CSV.
"""

import ast
import os
import sys
import time
from pathlib import Path

import joblib

from ._cli import output_folder, suite_parser
from ._report import bar_plot, environment, markdown_table, mean_std, write_report
from ._runner import read_rows, run_jobs

__all__ = ["METHODS", "PUBLISHED", "available_methods", "main", "run_scenario"]

TEACHER_WIDTHS = (64, 128, 128)
STUDENT_WIDTHS = (16, 32, 32)
#: the released code's test loader drops the last partial batch of this size
RELEASED_BATCH_SIZE = 32
#: CSV fields that identify one job (``methods`` lists what it still had to run)
JOB_KEY = ("tag", "variant", "scenario", "seed", "epochs", "methods")

#: Published UCI-HAR macro-F1 (%), Xu et al., "Distilling Universal and Joint
#: Knowledge for Cross-Domain Model Compression on Time Series Data", IJCAI 2023:
#: ``avg10`` from the table averaged over all 10 scenarios, ``additional`` from
#: the additional-scenarios table (mean of 3 runs); transcribed in specs/unikd.md.
PUBLISHED = {
    "teacher": {"additional": 97.00},
    "source_only": {"avg10": 65.48, "additional": 72.71},
    "jku": {"avg10": 81.32, "additional": 84.93},
    "aad": {"avg10": 83.78, "additional": 84.56},
    "mobileda": {"avg10": 84.33, "additional": 84.99},
    "unikd": {"avg10": 90.80, "additional": 94.76},
}

#: The released UNI-KD code (ijcai2023/UNI_KD) run unchanged on our data, one
#: DANN teacher per scenario, 3 student seeds, its truncated scoring (main 5,
#: additional 5, all 10); from specs/unikd.md, "Reference run".
RELEASED_CODE = {
    "teacher": (71.69, 80.46, 76.07),
    "unikd": (81.39, 90.41, 85.90),
}

#: method -> (display name, teacher it distils: None, "dann" or "source")
METHODS = {
    "teacher": ("Teacher (DANN, 64/128/128)", None),
    "source_only": ("Student, source only", None),
    "dann_student": ("Student, DANN", None),
    "kd": ("KD (Hinton)", "dann"),
    "fitnet": ("FitNet", "dann"),
    "mobileda": ("MobileDA", "source"),
    "aad": ("AAD", "source"),
    "jku": ("JKU", "dann"),
    "unikd": ("UNI-KD", "dann"),
}

#: estimator class (in ``skkd``) each student method needs
_CLASSES = {
    "source_only": "TimeSeriesClassifier",
    "dann_student": "DANNClassifier",
    "kd": "KDClassifier",
    "fitnet": "FitNetClassifier",
    "mobileda": "MobileDAClassifier",
    "aad": "AADClassifier",
    "jku": "JKUClassifier",
    "unikd": "UniKDClassifier",
}


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _skkd_class(name):
    """``skkd.<name>``; ImportError when that estimator does not exist (yet)."""
    import importlib

    cls = getattr(importlib.import_module("skkd"), name, None)
    if cls is None:
        raise ImportError(f"skkd has no {name}")
    return cls


def available_methods():
    """Methods whose estimators exist in this skkd, in benchmark order.

    Returns
    -------
    methods : list of str
        Keys of :data:`METHODS` (always including ``"teacher"``).

    Examples
    --------
    >>> methods = available_methods()
    >>> methods[:3]
    ['teacher', 'source_only', 'dann_student']
    """
    found = ["teacher"]
    for method, cls_name in _CLASSES.items():
        try:
            _skkd_class(cls_name)
        except ImportError:
            continue
        found.append(method)
    return found


def _student(method, teacher, seed, epochs, params):
    """Build the unfitted student of ``method`` (``teacher`` already fitted)."""
    from sklearn.frozen import FrozenEstimator

    from skkd.nn import CNN1D

    common = {
        "module": CNN1D,
        "module__widths": STUDENT_WIDTHS,
        "max_epochs": epochs,
        "random_state": seed,
        **params,
    }
    cls = _skkd_class(_CLASSES[method])
    if METHODS[method][1] is None:
        return cls(**common)
    return cls(FrozenEstimator(teacher), **common)


def _scores(model, data):
    from skkd.compression import count_parameters
    from skkd.metrics import macro_f1

    y_true = data.y_tgt_test
    y_pred = model.predict(data.X_tgt_test)
    n = len(y_true) // RELEASED_BATCH_SIZE * RELEASED_BATCH_SIZE
    return {
        "macro_f1": 100 * macro_f1(y_true, y_pred),
        "accuracy": 100 * float((y_pred == y_true).mean()),
        "macro_f1_truncated": 100 * macro_f1(y_true[:n], y_pred[:n]),
        "n_test": len(y_true),
        "n_test_truncated": n,
        "params": count_parameters(model),
    }


def parse_variant(variant):
    """Parse ``"key=value key2=value2"`` into constructor parameters.

    Values are read as Python literals when they are one (``1e-2``, ``True``,
    ``(8, 16)``), else kept as strings.

    Parameters
    ----------
    variant : str
        Space-separated ``KEY=VALUE`` pairs (empty for none).

    Returns
    -------
    params : dict

    Examples
    --------
    >>> parse_variant("target_kd_on=source_logits lambda_ukd=0.5 detach_weights=True")
    {'target_kd_on': 'source_logits', 'lambda_ukd': 0.5, 'detach_weights': True}
    """
    params = {}
    for item in variant.split():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--variant expects KEY=VALUE, got {item!r}")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def load_or_fit_teacher(kind, scenario, seed, epochs, data, cache=None):
    """A fitted HAR teacher and its fit seconds, from ``cache`` when there.

    Parameters
    ----------
    kind : {"dann", "source"}
        A :class:`~skkd.DANNClassifier` (fitted with the unlabelled target
        series) or a source-only :class:`~skkd.TimeSeriesClassifier`, both
        CNN1D with :data:`TEACHER_WIDTHS`.
    scenario : str
        UCI-HAR ``"source->target"`` subjects (for the cache file name).
    seed, epochs : int
        ``random_state`` and ``max_epochs``.
    data : skkd.datasets.DomainShiftData
        The scenario's arrays.
    cache : str, optional
        Folder of cached teachers (``{kind}-{scenario}-seed{seed}-ep{epochs}.pkl``),
        shared by ``skkd bench har`` and ``skkd bench itmc``.

    Returns
    -------
    teacher, seconds : fitted estimator, float

    Examples
    --------
    >>> from skkd.datasets import load_har_scenario
    >>> data = load_har_scenario("2->11")
    >>> teacher, seconds = load_or_fit_teacher("source", "2->11", 0, 1, data)
    >>> teacher.classes_.tolist()
    [0, 1, 2, 3, 4, 5]
    """
    from skkd import DANNClassifier, TimeSeriesClassifier
    from skkd.nn import CNN1D

    path = None
    if cache:
        name = f"{kind}-{scenario.replace('->', 'to')}-seed{seed}-ep{epochs}.pkl"
        path = Path(cache) / name
        if path.exists():
            return joblib.load(path)
    cls = DANNClassifier if kind == "dann" else TimeSeriesClassifier
    model = cls(
        module=CNN1D,
        module__widths=TEACHER_WIDTHS,
        max_epochs=epochs,
        random_state=seed,
    )
    start = time.perf_counter()
    model.fit(data.X_src, data.y_src, *([data.X_tgt] if kind == "dann" else []))
    result = (model, time.perf_counter() - start)
    if path is not None:
        # write then rename: a parallel job never reads a half-written file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        joblib.dump(result, tmp)
        os.replace(tmp, path)
    return result


def run_scenario(
    scenario,
    seed,
    epochs,
    methods,
    data_home=None,
    tag="default",
    variant="",
    threads=1,
    teacher_epochs=None,
    teacher_cache=None,
):
    """Train the teacher(s) and the student methods on one scenario and seed.

    Parameters
    ----------
    scenario : str
        UCI-HAR ``"source->target"`` subjects, e.g. ``"2->11"``.
    seed : int
        ``random_state`` of every model.
    epochs : int
        ``max_epochs`` of every model.
    methods : str
        Space-separated keys of :data:`METHODS` to run and report.
    data_home : str, optional
        UCI-HAR folder (see :func:`skkd.datasets.load_har_scenario`).
    tag : str, default="default"
        Label of the run (recorded by the runner, not used here).
    variant : str, default=""
        ``KEY=VALUE`` constructor parameters of the UNI-KD student.
    threads : int, default=1
        ``torch.set_num_threads`` in this worker (1 is fastest for these
        small nets on a few cores).
    teacher_epochs : int, optional
        ``max_epochs`` of the teachers (default: ``epochs``); still trained
        without target labels.
    teacher_cache : str, optional
        Folder where fitted teachers are stored and reused (key: kind,
        scenario, seed, epochs), so ablations distil the very same teacher.

    Returns
    -------
    rows : list of dict
        One per method: ``method``, ``macro_f1``, ``accuracy``,
        ``macro_f1_truncated`` (%), ``params``, ``fit_seconds``; a method that
        fails gives ``status="error"`` and the error text instead.

    Examples
    --------
    >>> rows = run_scenario("2->11", 0, 1, "teacher kd")  # doctest: +SKIP
    """
    import torch

    from skkd.datasets import load_har_scenario

    from ._runner import _error_text

    torch.set_num_threads(threads)
    methods = methods.split()
    data = load_har_scenario(scenario, data_home=data_home)
    where = f"[har {scenario} seed {seed}{'' if tag == 'default' else ' ' + tag}]"
    teacher_epochs = epochs if teacher_epochs is None else teacher_epochs

    def timed_fit(estimator, *args):
        start = time.perf_counter()
        estimator.fit(data.X_src, data.y_src, *args)
        return time.perf_counter() - start

    teachers, teacher_seconds = {}, {}
    needs = {METHODS[m][1] for m in methods} | (
        {"dann"} if "teacher" in methods else set()
    )
    # each teacher is trained once per job and shared (the DANN one is also
    # the "teacher" row); with a cache, once per (scenario, seed, epochs)
    for kind in sorted(needs - {None}):
        teachers[kind], teacher_seconds[kind] = load_or_fit_teacher(
            kind, scenario, seed, teacher_epochs, data, teacher_cache
        )

    params = parse_variant(variant)
    rows = []
    for method in methods:
        row = {"method": method}
        try:
            if method == "teacher":
                model, seconds = teachers["dann"], teacher_seconds["dann"]
            else:
                kind = METHODS[method][1]
                model = _student(
                    method,
                    teachers.get(kind),
                    seed,
                    epochs,
                    params if method == "unikd" else {},
                )
                uses_target = method != "source_only"
                seconds = timed_fit(model, *([data.X_tgt] if uses_target else []))
            row.update(_scores(model, data), fit_seconds=seconds)
            _log(f"{where} {method}: macro-F1 {row['macro_f1']:.2f} ({seconds:.1f} s)")
        except Exception as exc:  # noqa: BLE001 - one method must not sink the job
            row.update(status="error", error=_error_text(exc))
            _log(f"{where} {method}: error {row['error']}")
        rows.append(row)
    return rows


# ----------------------------------------------------------------- report


def _ok_rows(rows, epochs, keys=("method",)):
    """Last ok row per (tag, variant, scenario, seed, *keys) at ``epochs``."""
    latest = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("method") in ("", None):
            continue
        if r.get("epochs") != epochs:
            continue
        variant = "" if r.get("variant") is None else str(r.get("variant"))
        k = (str(r["tag"]), variant, str(r["scenario"]), r["seed"])
        k += tuple(str(r[key]) for key in keys)
        latest[k] = {**r, "variant": variant, "tag": str(r["tag"])}
    return list(latest.values())


def _group_average(cells, scenarios, metric):
    """Mean ± std over seeds of the per-seed average over ``scenarios``.

    ``cells`` maps (scenario, seed) -> row; only seeds present in every
    scenario count (the protocol averages runs, then scenarios).
    """
    if not scenarios:
        return None
    seeds = {s for (_, s) in cells}
    complete = sorted(s for s in seeds if all((sc, s) in cells for sc in scenarios))
    per_seed = [
        sum(cells[(sc, s)][metric] for sc in scenarios) / len(scenarios)
        for s in complete
    ]
    return mean_std(per_seed) if per_seed else None


def build_report(rows, epochs, scenarios_order):
    """Tables (Markdown) and plot data of the HAR benchmark, from CSV rows.

    Parameters
    ----------
    rows : list of dict
        Rows of ``har.csv`` (from :func:`benchmarks._runner.read_rows`).
    epochs : int
        Only rows trained for this many epochs are reported.
    scenarios_order : list of str
        Scenario columns, in order (scenarios without rows are dropped).

    Returns
    -------
    sections : list of (str, str)
        Report sections for :func:`benchmarks._report.write_report`.
    plot : dict
        ``categories``, ``series`` and ``title`` for the bar plot.

    Examples
    --------
    >>> rows = [{"tag": "default", "variant": "", "scenario": "2->11", "seed": 0,
    ...          "method": "kd", "epochs": 2, "status": "ok", "macro_f1": 80.0,
    ...          "accuracy": 82.0, "macro_f1_truncated": 79.0, "params": 13366,
    ...          "fit_seconds": 1.0}]
    >>> sections, plot = build_report(rows, 2, ["2->11"])
    >>> plot["categories"]
    ['KD (Hinton)']
    """
    from skkd.datasets import HAR_ADDITIONAL_SCENARIOS, HAR_MAIN_SCENARIOS

    ok = _ok_rows(rows, epochs)
    default = [r for r in ok if r["tag"] == "default" and r["variant"] == ""]
    present = {r["scenario"] for r in ok}
    scenarios = [s for s in scenarios_order if s in present]
    scenarios += sorted(present - set(scenarios))
    groups = {
        "main 5": [s for s in HAR_MAIN_SCENARIOS],
        "additional 5": [s for s in HAR_ADDITIONAL_SCENARIOS],
        "all 10": [*HAR_MAIN_SCENARIOS, *HAR_ADDITIONAL_SCENARIOS],
    }
    methods = [m for m in METHODS if any(r["method"] == m for r in default)]
    by_method = {
        m: {(r["scenario"], r["seed"]): r for r in default if r["method"] == m}
        for m in methods
    }

    def averages(cells, metric):
        out = {}
        for name, group in groups.items():
            complete = all(any(k[0] == s for k in cells) for s in group)
            # "-" until every scenario of the group ran
            out[name] = _group_average(cells, group, metric) if complete else "-"
        run = sorted({k[0] for k in cells})
        out["run"] = _group_average(cells, run, metric)
        return out

    # main table: methods x scenarios, then group averages and published numbers
    table_rows, trunc_rows, info_rows = [], [], []
    plot_means, plot_stds, paper = [], [], []
    for m in methods:
        cells = by_method[m]
        row = {"method": METHODS[m][0]}
        for sc in scenarios:
            values = [r["macro_f1"] for (s, _), r in cells.items() if s == sc]
            row[sc] = mean_std(values) if values else None
        avg = averages(cells, "macro_f1")
        row.update(
            {
                "main": avg["main 5"],
                "additional": avg["additional 5"],
                "all": avg["all 10"],
                "run": avg["run"],
                "paper_avg10": PUBLISHED.get(m, {}).get("avg10"),
                "paper_additional": PUBLISHED.get(m, {}).get("additional"),
            }
        )
        table_rows.append(row)
        headline = avg["run"] if avg["all 10"] == "-" else avg["all 10"]
        headline = headline or (float("nan"), 0.0)
        plot_means.append(headline[0])
        plot_stds.append(headline[1])
        paper.append(PUBLISHED.get(m, {}).get("avg10", float("nan")))

        tavg = averages(cells, "macro_f1_truncated")
        released = RELEASED_CODE.get(m, (None, None, None))
        trunc_rows.append(
            {
                "method": METHODS[m][0],
                "main": tavg["main 5"],
                "additional": tavg["additional 5"],
                "all": tavg["all 10"],
                "run": tavg["run"],
                "released": " / ".join(f"{v:.2f}" for v in released if v) or "",
            }
        )
        aavg = averages(cells, "accuracy")
        all_rows = list(cells.values())
        fit = sorted(r["fit_seconds"] for r in all_rows)
        info_rows.append(
            {
                "method": METHODS[m][0],
                "acc": aavg["run"] if aavg["all 10"] == "-" else aavg["all 10"],
                "params": f"{int(all_rows[0]['params']):,}",
                "fit": fit[len(fit) // 2],
                "runs": len(all_rows),
            }
        )

    n_seeds = len({r["seed"] for r in default})
    columns = ["method", *scenarios, "main", "additional", "all", "run"]
    headers = ["method", *scenarios, "main 5", "additional 5", "all 10"]
    headers += ["scenarios run", "paper 10-avg", "paper additional"]
    columns += ["paper_avg10", "paper_additional"]
    sections = [
        (
            "Macro-F1 (%) on the full target test set",
            f"Mean ± std over {n_seeds} seed(s) per scenario; the averages take "
            "the per-seed mean over the scenarios of the group, then mean ± std "
            "over seeds (a group shows `-` until all its scenarios ran). "
            "`paper` columns: published UNI-KD (IJCAI 2023) numbers on UCI-HAR.\n\n"
            + markdown_table(table_rows, columns, headers),
        ),
        (
            "Macro-F1 (%) with the released code's truncated scoring",
            "Only the first floor(n/32)*32 target test windows, in order, as the "
            "released UNI-KD code's test loader scores them; for comparison with "
            "the released code run on our data (main 5 / additional 5 / all 10, "
            "its own teachers and scoring, from specs/unikd.md).\n\n"
            + markdown_table(
                trunc_rows,
                ["method", "main", "additional", "all", "run", "released"],
                [
                    "method",
                    "main 5",
                    "additional 5",
                    "all 10",
                    "scenarios run",
                    "released code",
                ],
            ),
        ),
        (
            "Accuracy, size and fit time",
            "Accuracy (%) on the full target test set (all 10 if complete, else "
            "the scenarios run); parameters of the model; median fit time of "
            "one model (a student's time excludes its teacher's).\n\n"
            + markdown_table(
                info_rows,
                ["method", "acc", "params", "fit", "runs"],
                ["method", "accuracy (%)", "parameters", "median fit (s)", "runs"],
            ),
        ),
    ]

    # ablations: each method of a non-default tag (a UNI-KD variant, another
    # teacher recipe ...) against the same method of the default run, same runs
    tags = sorted({(r["tag"], r["variant"]) for r in ok if r["tag"] != "default"})
    for tag, variant in tags:
        tagged = [r for r in ok if (r["tag"], r["variant"]) == (tag, variant)]
        ran = sorted({r["scenario"] for r in tagged})
        abl_rows = []
        for method in [m for m in METHODS if any(r["method"] == m for r in tagged)]:
            variant_cells = {
                (r["scenario"], r["seed"]): r for r in tagged if r["method"] == method
            }
            for label, cells in (
                (f"{METHODS[method][0]}, {tag}", variant_cells),
                (f"{METHODS[method][0]}, default", by_method.get(method, {})),
            ):
                shared = {k: v for k, v in cells.items() if k in variant_cells}
                abl_rows.append(
                    {
                        "label": label,
                        "f1": _group_average(shared, ran, "macro_f1"),
                        "trunc": _group_average(shared, ran, "macro_f1_truncated"),
                        "runs": len(shared),
                    }
                )
        sections.append(
            (
                f"Ablation `{tag}`",
                f"`{variant or 'defaults'}` (tag `{tag}`) against the default run "
                f"on the same scenarios ({', '.join(ran)}) and seeds; "
                "macro-F1 (%), per-seed mean over these scenarios, mean ± std "
                "over seeds.\n\n"
                + markdown_table(
                    abl_rows,
                    ["label", "f1", "trunc", "runs"],
                    ["variant", "macro-F1", "truncated macro-F1", "runs"],
                ),
            )
        )

    complete = all(averages(by_method[m], "macro_f1")["all 10"] != "-" for m in methods)
    what = "all 10 scenarios" if complete and methods else "the scenarios run"
    series = {f"skkd, mean over {what} (± std over seeds)": (plot_means, plot_stds)}
    if what == "all 10 scenarios":  # published numbers are 10-scenario averages
        series["published (IJCAI 2023)"] = (paper, [float("nan")] * len(paper))
    plot = {
        "categories": [METHODS[m][0] for m in methods],
        "series": series,
        "title": f"UCI-HAR macro-F1, {what}, {epochs} epochs",
    }
    return sections, plot


# ----------------------------------------------------------------- command


def _parser():
    from skkd.datasets import HAR_ADDITIONAL_SCENARIOS, HAR_MAIN_SCENARIOS

    p = suite_parser(
        "har",
        "UNI-KD UCI-HAR benchmark: DANN teacher, then every student "
        "method per (scenario, seed); writes har.csv, har.md, har.png.",
        quick="smoke run: scenario 2->11, seed 0, 2 epochs",
        n_jobs=1,
        threads=1,
        teacher_cache="folder to store and reuse fitted teachers (ablations reuse "
        "them; default: none)",
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        default=[*HAR_MAIN_SCENARIOS, *HAR_ADDITIONAL_SCENARIOS],
        help="source->target pairs (default: the main 5 and additional 5)",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help=f"subset of: {' '.join(METHODS)} (default: all available)",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--teacher-epochs",
        type=int,
        default=None,
        help="epochs of the teachers (default: --epochs); needs --tag",
    )
    p.add_argument("--tag", default="default", help="label of an ablation run")
    p.add_argument(
        "--variant",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra UniKDClassifier parameters (needs --tag)",
    )
    return p


def main(argv=None):
    """Run the HAR benchmark (``skkd bench har``).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments after ``skkd bench har`` (see ``--help``).

    Returns
    -------
    status : int
        0 on success (failed jobs are recorded in the CSV, not raised), 2 for
        unknown methods or a ``--variant`` without ``--tag``.

    Examples
    --------
    >>> main(["--quick", "--methods", "source_only"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.quick:
        args.scenarios, args.seeds, args.epochs = ["2->11"], [0], 2
    out = output_folder(args, "har")
    variant = " ".join(args.variant)
    try:
        parse_variant(variant)
    except ValueError as exc:
        parser.error(str(exc))
    if variant and args.tag == "default":
        parser.error("--variant needs --tag NAME (ablations are reported apart)")
    if args.teacher_epochs not in (None, args.epochs) and args.tag == "default":
        parser.error("--teacher-epochs needs --tag NAME (reported apart)")

    available = available_methods()
    requested = args.methods or available
    unknown = [m for m in requested if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    missing = [m for m in requested if m not in available]
    if missing:
        _log(f"har: skipping {', '.join(missing)}: not (yet) in this skkd")
    methods = [m for m in METHODS if m in requested and m in available]

    csv_path = out / "har.csv"
    done = {
        (str(r["tag"]), str(r["variant"]), str(r["scenario"]), r["seed"], r["method"])
        for r in _ok_rows(read_rows(csv_path), args.epochs)
    }
    jobs = []
    for scenario in args.scenarios:
        for seed in args.seeds:
            todo = [
                m for m in methods if (args.tag, variant, scenario, seed, m) not in done
            ]
            if todo:
                jobs.append(
                    {
                        "tag": args.tag,
                        "variant": variant,
                        "scenario": scenario,
                        "seed": seed,
                        "epochs": args.epochs,
                        "methods": " ".join(todo),
                        "data_home": args.data_home,
                        "threads": args.threads,
                        "teacher_epochs": args.teacher_epochs or args.epochs,
                        "teacher_cache": args.teacher_cache,
                    }
                )
    skipped = len(args.scenarios) * len(args.seeds) - len(jobs)
    _log(
        f"har: {len(jobs)} job(s) of {', '.join(methods)} to run, {skipped} "
        f"already done in {csv_path}; {args.epochs} epochs, out {out}"
    )
    env = environment(["har", *argv], threads=args.threads)
    rows = run_jobs(
        jobs,
        run_scenario,
        csv_path=csv_path,
        key=JOB_KEY,
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        desc="har",
        command=env["command"],
    )
    order = [*parser.get_default("scenarios")]
    sections, plot = build_report(rows, args.epochs, order)
    wall = time.perf_counter() - start
    # rows of one job share its "seconds": count each job once
    jobs_seconds = {
        tuple(str(r.get(k)) for k in JOB_KEY): float(r["seconds"]) for r in rows
    }
    compute = sum(jobs_seconds.values())
    errors = [r for r in rows if r.get("status") == "error"]
    intro = (
        "UNI-KD (Xu et al., IJCAI 2023) protocol on UCI-HAR cross-subject "
        "scenarios: per (scenario, seed) a DANN teacher (CNN 64/128/128) is trained "
        "once without target labels, then each student (CNN 16/32/32) on the same "
        "data and teacher; MobileDA and AAD distil a source-only teacher. "
        f"{args.epochs} epochs, the model after the last epoch, scored on the FULL "
        "target test set. "
        f"Every number below is computed from `{csv_path.name}` ({len(rows)} rows, "
        f"{len(errors)} error rows; job time summed over the CSV: {compute:.0f} s)."
    )
    if missing:
        intro += f" Not run (estimator missing in this skkd): {', '.join(missing)}."
    write_report(
        out / "har.md",
        "UCI-HAR cross-subject benchmark (UNI-KD protocol)",
        intro,
        sections,
        env,
        wall,
        rows=rows,
    )
    if plot["categories"]:
        bar_plot(
            out / "har.png",
            plot["categories"],
            plot["series"],
            "macro-F1 (%)",
            plot["title"],
        )
    _log(f"har: wrote {out / 'har.csv'}, {out / 'har.md'}, {out / 'har.png'}")
    return 0


if __name__ == "__main__":  # python -m benchmarks.har
    sys.exit(main())
