"""``skkd bench itmc``: ITMC against other students at equal parameter count.

UCI-HAR cross-subject scenarios (the UNI-KD protocol of ``skkd bench har``).
One job is one (scenario, seed): it loads (or trains and caches) the
label-free teacher (DANN by default, ``--teacher`` for another) and the
source-only teacher (CNN 64/128/128), then trains every planned
(method, budget) pair: the baselines are CNN1D students whose widths set the
budget, ITMC starts from a copy of the label-free teacher and is pruned to the
same parameter count. Rows (target macro-F1 and accuracy on the full target test
set, parameters, MACs, CPU latency) stream into ``itmc.csv`` (resumable);
``itmc.md`` and ``itmc.png`` are rebuilt from the whole CSV.
"""

import math
import sys
import time
from pathlib import Path

from ._cli import default_teacher_cache, output_folder, suite_parser
from ._report import environment, markdown_table, mean_std, write_report
from ._runner import read_rows, run_jobs
from ._teachers import (
    DEFAULT_TEACHER,
    add_teacher_arguments,
    load_or_fit_teacher,
    teacher_name,
)
from .har import (
    _group_average,
    _ok_rows,
    _teacher_order,
    job_label,
    other_teachers_note,
    parse_variant,
    teacher_section,
)

__all__ = ["BUDGETS", "METHODS", "build_report", "main", "run_scenario"]

#: parameter budgets: name -> widths of the CNN1D student that defines it
#: (9 channels, 6 classes: 3,614 / 13,366 (UNI-KD's student) / 51,302)
BUDGETS = {"3.6k": (8, 16, 16), "13.4k": (16, 32, 32), "51k": (32, 64, 64)}
MAIN_BUDGET = "13.4k"
#: method -> (display name, estimator, teacher: None, "dann" (the label-free
#: teacher chosen with ``--teacher``, DANN by default) or "source")
METHODS = {
    "source_only": ("Student, source only", "TimeSeriesClassifier", None),
    "kd": ("KD (Hinton)", "KDClassifier", "dann"),
    "mobileda": ("MobileDA", "MobileDAClassifier", "source"),
    "unikd": ("UNI-KD", "UniKDClassifier", "dann"),
    "itmc": ("ITMC", "ITMCClassifier", "dann"),
    "rcdkd": ("RCD-KD", "RCDKDClassifier", "dann"),
}
#: methods run at the budgets other than the main one (the comparison that
#: matters there, plus the cheap source-only reference)
EXTRA_BUDGET_METHODS = ("source_only", "unikd", "itmc")
JOB_KEY = ("tag", "variant", "teacher", "scenario", "seed", "epochs", "plan")
#: what tells two result rows of one job apart
ITEM_KEYS = ("method", "budget")


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _latency_ms(module, shape):
    from skkd.compression import measure_latency

    return 1000 * measure_latency(module, shape, batch_size=1, repeats=50)["median"]


def run_scenario(
    scenario,
    seed,
    epochs,
    plan,
    data_home=None,
    tag="default",
    variant="",
    threads=1,
    teacher_epochs=None,
    teacher_cache=None,
    teacher=DEFAULT_TEACHER,
):
    """Train the planned (method, budget) students on one scenario and seed.

    Parameters
    ----------
    scenario : str
        UCI-HAR ``"source->target"`` subjects.
    seed : int
        ``random_state`` of every model.
    epochs : int
        ``max_epochs`` of every student.
    plan : str
        Space-separated ``method@budget`` items (keys of :data:`METHODS` and
        :data:`BUDGETS`).
    data_home : str, optional
        UCI-HAR folder.
    tag : str, default="default"
        Label of the run (ablations).
    variant : str, default=""
        ``KEY=VALUE`` parameters of the ITMC student.
    threads : int, default=1
        ``torch.set_num_threads`` in this worker.
    teacher_epochs : int, optional
        ``max_epochs`` of the teachers (default ``epochs``).
    teacher_cache : str, optional
        Folder of cached teachers (shared with ``skkd bench har``).
    teacher : str, default="dann"
        Name of the label-free teacher (see
        :func:`benchmarks._teachers.load_or_fit_teacher`).

    Returns
    -------
    rows : list of dict
        One per item: ``method``, ``budget``, ``macro_f1``, ``accuracy`` (%),
        ``params``, ``macs``, ``latency_ms``, ``fit_seconds``; ITMC rows add
        ``start_params``, ``start_latency_ms`` and ``widths``; the rows of
        the students of the label-free teacher add its ``teacher_macro_f1``.

    Examples
    --------
    >>> rows = run_scenario("2->11", 0, 1, "itmc@13.4k")  # doctest: +SKIP
    """
    import importlib

    import torch
    from sklearn.frozen import FrozenEstimator

    from skkd.compression import count_macs, count_parameters
    from skkd.datasets import load_har_scenario
    from skkd.metrics import macro_f1
    from skkd.nn import CNN1D

    from ._runner import _error_text

    torch.set_num_threads(threads)
    data = load_har_scenario(scenario, data_home=data_home)
    shape = data.X_src.shape[1:]
    where = job_label("itmc", scenario, seed, tag, teacher)
    items = [item.split("@") for item in plan.split()]
    teacher_epochs = epochs if teacher_epochs is None else teacher_epochs
    teachers, teacher_f1 = {}, {}
    names = {"dann": teacher, "source": "source"}
    params = parse_variant(variant)
    rows = []
    for method, budget in items:
        row = {"method": method, "budget": budget}
        try:
            name, cls_name, kind = METHODS[method]
            cls = getattr(importlib.import_module("skkd"), cls_name)
            if kind is not None and kind not in teachers:
                teachers[kind] = load_or_fit_teacher(
                    names[kind], scenario, seed, teacher_epochs, data, teacher_cache
                )[0]
                y_teacher = teachers[kind].predict(data.X_tgt_test)
                teacher_f1[kind] = 100 * macro_f1(data.y_tgt_test, y_teacher)
            if kind == "dann":
                row["teacher_macro_f1"] = teacher_f1[kind]
            common = {"max_epochs": epochs, "random_state": seed}
            widths = BUDGETS[budget]
            if method == "itmc":
                size = count_parameters(CNN1D(shape[0], 6, widths=widths))
                model = cls(
                    FrozenEstimator(teachers[kind]),
                    target_params=size,
                    **common,
                    **params,
                )
            else:
                common.update(module=CNN1D, module__widths=widths)
                args = () if kind is None else (FrozenEstimator(teachers[kind]),)
                model = cls(*args, **common)
            start = time.perf_counter()
            model.fit(data.X_src, data.y_src, *([] if kind is None else [data.X_tgt]))
            seconds = time.perf_counter() - start
            y_pred = model.predict(data.X_tgt_test)
            row.update(
                macro_f1=100 * macro_f1(data.y_tgt_test, y_pred),
                accuracy=100 * float((y_pred == data.y_tgt_test).mean()),
                params=count_parameters(model),
                macs=count_macs(model.module_, shape),
                latency_ms=_latency_ms(model.module_, shape),
                fit_seconds=seconds,
            )
            if method == "itmc":
                row.update(
                    start_params=model.start_params_,
                    start_latency_ms=_latency_ms(model.teacher_module_, shape),
                    widths="/".join(str(w) for w in model.module_.widths),
                )
            _log(
                f"{where} {method}@{budget}: macro-F1 {row['macro_f1']:.2f}, "
                f"{row['params']} params ({seconds:.1f} s)"
            )
        except Exception as exc:  # noqa: BLE001 - one item must not sink the job
            row.update(status="error", error=_error_text(exc))
            _log(f"{where} {method}@{budget}: error {row['error']}")
        rows.append(row)
    return rows


# ----------------------------------------------------------------- report


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def _cells(rows, method, budget):
    return {
        (r["scenario"], r["seed"]): r
        for r in rows
        if r["method"] == method and str(r["budget"]) == budget
    }


def _teacher_cells(rows):
    """``(scenario, seed) -> {"macro_f1": the label-free teacher's}`` from rows."""
    return {
        (r["scenario"], r["seed"]): {"macro_f1": r["teacher_macro_f1"]}
        for r in rows
        if r.get("teacher_macro_f1") not in ("", None)
    }


def build_report(rows, epochs, scenarios_order):
    """Markdown sections and plot data of the ITMC benchmark, from CSV rows.

    The tables show the default run (tag ``default``, the ``dann`` teacher).
    When the CSV holds rows of other teachers (``--teacher``), each teacher
    gets a section at the main budget
    (:func:`benchmarks.har.teacher_section`).

    Parameters
    ----------
    rows : list of dict
        Rows of ``itmc.csv``.
    epochs : int
        Only rows trained for this many epochs count.
    scenarios_order : list of str
        Scenario columns, in order.

    Returns
    -------
    sections : list of (str, str)
    plot : dict
        ``method -> (params, means, stds)`` for :func:`accuracy_plot`.

    Examples
    --------
    >>> row = {"tag": "default", "variant": "", "scenario": "2->11", "seed": 0,
    ...        "epochs": 2, "status": "ok", "method": "itmc", "budget": "13.4k",
    ...        "macro_f1": 90.0, "accuracy": 91.0, "params": 13000, "macs": 1e6,
    ...        "latency_ms": 0.5, "fit_seconds": 3.0, "start_latency_ms": 2.0}
    >>> sections, plot = build_report([row], 2, ["2->11"])
    >>> plot["ITMC"][0]
    [13000]
    """
    ok = _ok_rows(rows, epochs, keys=ITEM_KEYS)
    runs = [r for r in ok if r["tag"] == "default" and r["variant"] == ""]
    default = [r for r in runs if r["teacher"] == DEFAULT_TEACHER]
    present = {r["scenario"] for r in default}
    scenarios = [s for s in scenarios_order if s in present]
    scenarios += sorted(present - set(scenarios))
    budgets = [b for b in BUDGETS if any(str(r["budget"]) == b for r in default)]
    methods = [m for m in METHODS if any(r["method"] == m for r in default)]

    def average(cells, metric):
        # over the scenarios this (method, budget) ran: all 10 once complete
        ran = sorted({k[0] for k in cells})
        return _group_average(cells, ran, metric)

    sections = []
    # 1. per scenario at the main budget
    if MAIN_BUDGET in budgets:
        table = []
        for m in methods:
            cells = _cells(default, m, MAIN_BUDGET)
            if not cells:
                continue
            row = {"method": METHODS[m][0]}
            for sc in scenarios:
                row[sc] = mean_std(
                    [r["macro_f1"] for (s, _), r in cells.items() if s == sc]
                )
            row["avg"] = average(cells, "macro_f1")
            row["params"] = f"{int(_median([r['params'] for r in cells.values()])):,}"
            table.append(row)
        sections.append(
            (
                f"Macro-F1 (%) at the UNI-KD student's budget ({MAIN_BUDGET})",
                "Mean ± std over seeds per scenario; `average`: per-seed mean over "
                "the scenarios (only seeds present in all of them), then mean ± std "
                "over seeds.\n\n"
                + markdown_table(
                    table,
                    ["method", *scenarios, "avg", "params"],
                    ["method", *scenarios, "average", "parameters (median)"],
                ),
            )
        )

    # 2. every budget
    table, plot = [], {}
    for m in methods:
        for b in budgets:
            cells = _cells(default, m, b)
            if not cells:
                continue
            f1 = average(cells, "macro_f1")
            seeds = sorted({k[1] for k in cells})
            n_params = int(_median([r["params"] for r in cells.values()]))
            table.append(
                {
                    "method": METHODS[m][0],
                    "budget": b,
                    "f1": f1,
                    "acc": average(cells, "accuracy"),
                    "params": f"{n_params:,}",
                    "macs": f"{int(_median([r['macs'] for r in cells.values()])):,}",
                    "lat": _median([r["latency_ms"] for r in cells.values()]),
                    "fit": _median([r["fit_seconds"] for r in cells.values()]),
                    "runs": f"{len(cells)} ({len({k[0] for k in cells})} scenarios, "
                    f"seeds {', '.join(map(str, seeds))})",
                }
            )
            if f1 is not None:
                series = plot.setdefault(METHODS[m][0], ([], [], []))
                series[0].append(int(_median([r["params"] for r in cells.values()])))
                series[1].append(f1[0])
                series[2].append(f1[1])
    sections.append(
        (
            "Every budget: target macro-F1, accuracy, size and speed",
            "Per-seed mean over the scenarios run, then mean ± std over seeds. "
            "MACs per sample (one 9 x 128 window); CPU latency: median of 50 "
            "single-window forwards (batch 1, 1 thread, measured inside the job, "
            "so under the load of the parallel jobs); fit: median seconds of one "
            "student fit (ITMC's includes training its teacher copy).\n\n"
            + markdown_table(
                table,
                [
                    "method",
                    "budget",
                    "f1",
                    "acc",
                    "params",
                    "macs",
                    "lat",
                    "fit",
                    "runs",
                ],
                [
                    "method",
                    "budget",
                    "macro-F1 (%)",
                    "accuracy (%)",
                    "parameters",
                    "MACs",
                    "latency (ms)",
                    "fit (s)",
                    "runs",
                ],
                floatfmt=".2f",
            ),
        )
    )

    # 3. ITMC against UNI-KD on identical (scenario, seed) cells
    diff_rows = []
    for b in budgets:
        itmc, unikd = _cells(default, "itmc", b), _cells(default, "unikd", b)
        shared = sorted(set(itmc) & set(unikd))
        if not shared:
            continue
        seeds = sorted({s for _, s in shared})
        per_seed = []
        for seed in seeds:
            keys = [k for k in shared if k[1] == seed]
            if {k[0] for k in keys} != set(scenarios):
                continue
            per_seed.append(
                sum(itmc[k]["macro_f1"] - unikd[k]["macro_f1"] for k in keys)
                / len(keys)
            )
        wins = sum(itmc[k]["macro_f1"] >= unikd[k]["macro_f1"] for k in shared)
        diff_rows.append(
            {
                "budget": b,
                "diff": mean_std(per_seed) if per_seed else None,
                "wins": f"{wins} / {len(shared)}",
            }
        )
    if diff_rows:
        sections.append(
            (
                "ITMC minus UNI-KD at equal parameter count",
                "Difference of the per-seed scenario averages of target macro-F1 "
                "(percentage points; positive: ITMC better), and the runs where ITMC "
                "is at least as good.\n\n"
                + markdown_table(
                    diff_rows,
                    ["budget", "diff", "wins"],
                    ["budget", "ITMC - UNI-KD (pp)", "ITMC >= UNI-KD (runs)"],
                ),
            )
        )

    # 4. pruned against unpruned latency
    lat_rows = []
    for b in budgets:
        cells = [
            r for r in _cells(default, "itmc", b).values() if r.get("start_latency_ms")
        ]
        if not cells:
            continue
        faster = sum(r["latency_ms"] < r["start_latency_ms"] for r in cells)
        lat_rows.append(
            {
                "budget": b,
                "start": _median([r["start_latency_ms"] for r in cells]),
                "pruned": _median([r["latency_ms"] for r in cells]),
                "faster": f"{faster} / {len(cells)}",
                "widths": _median([str(r.get("widths", "")) for r in cells]),
            }
        )
    if lat_rows:
        sections.append(
            (
                "ITMC: pruned student against the unpruned start",
                "The student starts as the teacher (CNN 64/128/128, 200,902 "
                "parameters) and is physically pruned; latency of both measured in "
                "the same job (median ms per window).\n\n"
                + markdown_table(
                    lat_rows,
                    ["budget", "start", "pruned", "faster", "widths"],
                    [
                        "budget",
                        "unpruned latency (ms)",
                        "pruned latency (ms)",
                        "runs faster",
                        "typical widths",
                    ],
                    floatfmt=".3f",
                ),
            )
        )

    # 5. one section per label-free teacher, once the CSV holds several
    teachers = _teacher_order({r["teacher"] for r in runs})
    if teachers != [DEFAULT_TEACHER]:
        labels = {m: v[0] for m, v in METHODS.items()}
        for name in teachers:
            mine = [r for r in runs if r["teacher"] == name]
            by_method = {"teacher": _teacher_cells(mine)}
            for m in METHODS:
                by_method[m] = _cells(mine, m, MAIN_BUDGET)
            by_method = {m: cells for m, cells in by_method.items() if cells}
            sections.append(
                teacher_section(
                    name,
                    by_method,
                    labels,
                    ["unikd", "kd", "itmc"],
                    scope=f"; students at the {MAIN_BUDGET} budget",
                )
            )

    # 6. ablations: ITMC variants against default ITMC (same teacher) on the
    # same cells
    for tag, variant, teacher in sorted(
        {(r["tag"], r["variant"], r["teacher"]) for r in ok if r["tag"] != "default"}
    ):
        tagged = [
            r
            for r in ok
            if (r["tag"], r["variant"], r["teacher"]) == (tag, variant, teacher)
        ]
        reference = [r for r in runs if r["teacher"] == teacher]
        abl = []
        for b in [b for b in BUDGETS if any(str(r["budget"]) == b for r in tagged)]:
            for m in [m for m in METHODS if any(r["method"] == m for r in tagged)]:
                var = _cells(tagged, m, b)
                ran = sorted({k[0] for k in var})
                ref = {k: v for k, v in _cells(reference, m, b).items() if k in var}
                for label, cells in ((tag, var), ("default", ref)):
                    shared = {k: v for k, v in cells.items() if k in ref}
                    abl.append(
                        {
                            "label": f"{METHODS[m][0]}, {label}",
                            "budget": b,
                            "f1": _group_average(shared, ran, "macro_f1"),
                            "runs": len(shared),
                        }
                    )
        of = "" if teacher == DEFAULT_TEACHER else f" (teacher `{teacher}`)"
        sections.append(
            (
                f"Ablation `{tag}`{of}",
                f"`{variant or 'defaults'}` against the default run{of} on the same "
                "scenarios and seeds; macro-F1 (%), per-seed mean over these "
                "scenarios, mean ± std over seeds.\n\n"
                + markdown_table(
                    abl,
                    ["label", "budget", "f1", "runs"],
                    ["variant", "budget", "macro-F1", "runs"],
                ),
            )
        )
    return sections, plot


def accuracy_plot(path, series, title):
    """Save macro-F1 against parameter count, one line per method.

    Parameters
    ----------
    path : str or path-like
        Output ``.png``.
    series : dict of str to (list, list, list)
        ``label -> (params, means, stds)``.
    title : str

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "acc.png"
    >>> accuracy_plot(out, {"ITMC": ([3600, 13000], [80.0, 85.0], [1.0, 2.0])},
    ...               "demo").exists()
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6.5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, (params, means, stds) in series.items():
        order = sorted(range(len(params)), key=params.__getitem__)
        ax.errorbar(
            [params[i] for i in order],
            [means[i] for i in order],
            yerr=[stds[i] for i in order],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("target macro-F1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# ----------------------------------------------------------------- command


def _parser():
    from skkd.datasets import HAR_ADDITIONAL_SCENARIOS, HAR_MAIN_SCENARIOS

    p = suite_parser(
        "itmc",
        "ITMC against UNI-KD, KD, MobileDA and the source-only student "
        "at equal parameter count on UCI-HAR; writes itmc.csv, itmc.md, itmc.png.",
        quick=f"smoke run: 2->11, seed 0, 2 epochs, budget {MAIN_BUDGET} only",
        n_jobs=1,
        threads=1,
        teacher_cache="folder of cached teachers (default: OUT/.teacher-cache; "
        "none with --quick)",
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        default=[*HAR_MAIN_SCENARIOS, *HAR_ADDITIONAL_SCENARIOS],
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--extra-seeds",
        nargs="+",
        type=int,
        default=[0],
        help=f"seeds of the budgets other than {MAIN_BUDGET} (default: 0)",
    )
    p.add_argument("--budgets", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--teacher-epochs",
        type=int,
        default=20,
        help="epochs of the label-free and source-only teachers (default 20; "
        "--teacher dann-adatime always trains its recipe's 40)",
    )
    p.add_argument("--tag", default="default", help="label of an ablation run")
    p.add_argument(
        "--variant",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="ITMCClassifier parameters (needs --tag)",
    )
    return add_teacher_arguments(p)


def main(argv=None):
    """Run the ITMC benchmark (``skkd bench itmc``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench itmc`` (see ``--help``).

    Returns
    -------
    status : int
        0 on success (failed items are error rows in the CSV).

    Examples
    --------
    >>> main(["--quick", "--methods", "itmc"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.quick:
        args.scenarios, args.seeds, args.epochs = ["2->11"], [0], 2
        args.teacher_epochs, args.budgets = 2, [MAIN_BUDGET]
    out = output_folder(args, "itmc")
    cache = args.teacher_cache or (None if args.quick else default_teacher_cache(out))
    teacher = teacher_name(args.teacher, args.ensemble_members)
    variant = " ".join(args.variant)
    try:
        parse_variant(variant)
    except ValueError as exc:
        parser.error(str(exc))
    if variant and args.tag == "default":
        parser.error("--variant needs --tag NAME (ablations are reported apart)")
    methods = [m for m in METHODS if m in args.methods]
    if args.tag != "default":
        methods = [m for m in methods if m == "itmc"] or methods

    csv_path = out / "itmc.csv"
    done = {
        (
            r["tag"],
            r["variant"],
            r["teacher"],
            r["scenario"],
            r["seed"],
            r["method"],
            str(r["budget"]),
        )
        for r in _ok_rows(read_rows(csv_path), args.epochs, keys=ITEM_KEYS)
    }
    jobs = []
    for scenario in args.scenarios:
        for seed in sorted(set(args.seeds) | set(args.extra_seeds)):
            todo = []
            for budget in args.budgets:
                main_budget = budget == MAIN_BUDGET
                if seed not in (args.seeds if main_budget else args.extra_seeds):
                    continue
                for m in methods:
                    if not main_budget and m not in EXTRA_BUDGET_METHODS:
                        continue
                    item = (args.tag, variant, teacher, scenario, seed, m, budget)
                    if item not in done:
                        todo.append(f"{m}@{budget}")
            if todo:
                jobs.append(
                    {
                        "tag": args.tag,
                        "variant": variant,
                        "teacher": teacher,
                        "scenario": scenario,
                        "seed": seed,
                        "epochs": args.epochs,
                        "plan": " ".join(todo),
                        "data_home": args.data_home,
                        "threads": args.threads,
                        "teacher_epochs": args.teacher_epochs,
                        "teacher_cache": cache,
                    }
                )
    _log(
        f"itmc: {len(jobs)} job(s) to run, {sum(len(j['plan'].split()) for j in jobs)} "
        f"student fits; teacher {teacher}, {args.epochs} epochs, out {out}"
    )
    rows = run_jobs(
        jobs,
        run_scenario,
        csv_path=csv_path,
        key=JOB_KEY,
        n_jobs=args.n_jobs,
        scheduler=args.scheduler,
        desc="itmc",
    )
    sections, plot = build_report(rows, args.epochs, parser.get_default("scenarios"))
    wall = time.perf_counter() - start
    jobs_seconds = {
        tuple(str(r.get(k)) for k in JOB_KEY): float(r["seconds"])
        for r in rows
        if not (isinstance(r.get("seconds"), str) or math.isnan(float(r["seconds"])))
    }
    errors = [r for r in rows if r.get("status") == "error"]
    budgets = ", ".join(
        f"{b} (CNN1D {'/'.join(map(str, w))})" for b, w in BUDGETS.items()
    )
    intro = (
        "ITMC (Wang et al., Pattern Recognition 2025; skkd's reconstruction, see the "
        "ITMC user guide) on UCI-HAR cross-subject scenarios, at equal parameter "
        f"count with the other students. Budgets: {budgets}; each baseline student "
        "is the CNN1D of that budget, ITMC starts from a copy of the DANN teacher "
        "(CNN 64/128/128, 200,902 parameters) and is pruned physically to at most "
        "the same count (defaults: MMD-adapted real-time teacher, Taylor importance, "
        "cubic schedule: 2 warm-up, 5 pruning, 3 recovery epochs, tau = 20, "
        "alpha = 0.3). Per (scenario, seed) the DANN teacher (distilled by KD, "
        "UNI-KD and ITMC) and the source-only teacher (MobileDA) are trained once "
        f"for {args.teacher_epochs} epochs without target labels and cached. "
        f"Students: {args.epochs} epochs, the model after the last epoch, scored on "
        f"the FULL target test set. To fit the CPU budget, the {MAIN_BUDGET} budget "
        "runs every method with seeds "
        f"{', '.join(map(str, args.seeds))}; the other budgets run "
        f"{', '.join(METHODS[m][0] for m in EXTRA_BUDGET_METHODS)} with seeds "
        f"{', '.join(map(str, args.extra_seeds))}. Every number is computed from "
        f"`{csv_path.name}` ({len(rows)} rows, {len(errors)} error rows; job time "
        f"summed over the CSV: {sum(jobs_seconds.values()):.0f} s)."
    ) + other_teachers_note(rows)
    write_report(
        out / "itmc.md",
        "ITMC at equal parameter count (UCI-HAR)",
        intro,
        sections,
        environment(["itmc", *argv], threads=args.threads),
        wall,
    )
    if plot:
        accuracy_plot(
            out / "itmc.png",
            plot,
            f"UCI-HAR target macro-F1 vs parameters, {args.epochs} epochs",
        )
    _log(f"itmc: wrote {csv_path}, {out / 'itmc.md'}, {out / 'itmc.png'}")
    return 0


if __name__ == "__main__":  # python -m benchmarks.itmc
    sys.exit(main())
