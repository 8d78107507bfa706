"""``skkd bench har``: the UNI-KD (IJCAI 2023) UCI-HAR cross-subject benchmark.

One job is one (scenario, seed): it trains the label-free teacher once (DANN
by default, ``--teacher`` for another; target labels never used), then every
requested student method on the same data and teacher, and returns one row
per method scored on the FULL target test set (macro-F1 and accuracy, in %),
plus the released code's truncated scoring for comparison. Rows stream into
``har.csv`` (resumable); ``har.md`` and ``har.png`` are rebuilt from the
whole CSV.
"""

import ast
import re
import sys
import time

from ._cli import output_folder, suite_parser
from ._report import bar_plot, environment, markdown_table, mean_std, write_report
from ._runner import read_rows, run_jobs
from ._teachers import (
    DEFAULT_TEACHER,
    ENSEMBLE_MEMBERS,
    TEACHERS,
    add_teacher_arguments,
    load_or_fit_teacher,
    teacher_name,
)

__all__ = ["METHODS", "PUBLISHED", "available_methods", "main", "run_scenario"]

STUDENT_WIDTHS = (16, 32, 32)
#: the released code's test loader drops the last partial batch of this size
RELEASED_BATCH_SIZE = 32
#: CSV fields that identify one job (``methods`` lists what it still had to run)
JOB_KEY = ("tag", "variant", "teacher", "scenario", "seed", "epochs", "methods")

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

#: method -> (display name, teacher it distils: None, "dann" (the label-free
#: teacher chosen with ``--teacher``, DANN by default) or "source")
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
    "rcdkd": ("RCD-KD", "dann"),
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
    "rcdkd": "RCDKDClassifier",
}

#: per-method settings of the student recipe beyond the common ones: RCD-KD's
#: HAR hyperparameters of its released code (configs/hparams.py, class HAR):
#: temperature 2, KD weight 10, domain weight 1; lr 1e-2, weight decay 1e-4,
#: Adam betas (0.5, 0.99) and batch 32 are the common settings. Its 80 epochs
#: run as a tagged row: ``--methods rcdkd --tag rcdkd-80 --variant
#: max_epochs=80`` (the ablation table sets it beside the 10-epoch row).
RECIPES = {"rcdkd": {"temperature": 2.0, "lambda_kd": 10.0, "lambda_dc": 1.0}}
#: methods that take the ``--variant`` parameters
VARIANT_METHODS = ("unikd", "rcdkd")


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
        **RECIPES.get(method, {}),
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


def split_teacher_params(params):
    """Split parsed ``--variant`` parameters into the student's and the teacher's.

    Parameters
    ----------
    params : dict
        From :func:`parse_variant`; keys prefixed ``teacher.`` belong to the
        label-free teacher.

    Returns
    -------
    student, teacher : dict

    Examples
    --------
    >>> split_teacher_params({"lambda_ukd": 0.5, "teacher.lr": 0.01})
    ({'lambda_ukd': 0.5}, {'lr': 0.01})
    """
    prefix = "teacher."
    student = {k: v for k, v in params.items() if not k.startswith(prefix)}
    teacher = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    return student, teacher


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
    teacher=DEFAULT_TEACHER,
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
        ``KEY=VALUE`` constructor parameters of the UNI-KD student; keys
        prefixed ``teacher.`` go to the label-free teacher instead (a recipe
        ablation, cached apart: ``teacher.lr=0.01``).
    threads : int, default=1
        ``torch.set_num_threads`` in this worker (1 is fastest for these
        small nets on a few cores).
    teacher_epochs : int, optional
        ``max_epochs`` of the teachers (default: ``epochs``); still trained
        without target labels.
    teacher_cache : str, optional
        Folder where fitted teachers are stored and reused (key: kind,
        scenario, seed, epochs), so ablations distil the very same teacher.
    teacher : str, default="dann"
        Name of the label-free teacher (the ``"teacher"`` row, distilled by
        the methods whose teacher is ``"dann"`` in :data:`METHODS`); see
        :func:`benchmarks._teachers.load_or_fit_teacher`.

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
    where = job_label("har", scenario, seed, tag, teacher)
    teacher_epochs = epochs if teacher_epochs is None else teacher_epochs

    def timed_fit(estimator, *args):
        start = time.perf_counter()
        estimator.fit(data.X_src, data.y_src, *args)
        return time.perf_counter() - start

    teachers, teacher_seconds = {}, {}
    needs = {METHODS[m][1] for m in methods} | (
        {"dann"} if "teacher" in methods else set()
    )
    # each teacher is trained once per job and shared (the label-free one is
    # also the "teacher" row); with a cache, once per (scenario, seed, epochs)
    names = {"dann": teacher, "source": "source"}
    params, recipe = split_teacher_params(parse_variant(variant))
    for kind in sorted(needs - {None}):
        teachers[kind], teacher_seconds[kind] = load_or_fit_teacher(
            names[kind],
            scenario,
            seed,
            teacher_epochs,
            data,
            teacher_cache,
            recipe if kind == "dann" else None,
        )

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
                    params if method in VARIANT_METHODS else {},
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


def job_label(suite, scenario, seed, tag, teacher):
    """How a job names itself in log lines: ``[har 2->11 seed 0 abl vada]``."""
    extra = [x for x in (tag, teacher) if x not in ("default", DEFAULT_TEACHER)]
    return f"[{' '.join([suite, scenario, 'seed', str(seed), *extra])}]"


def _ok_rows(rows, epochs, keys=("method",)):
    """Last ok row per (tag, variant, teacher, scenario, seed, *keys) at ``epochs``.

    A row without a ``teacher`` cell (written before ``--teacher`` existed)
    distilled the default DANN teacher: its ``teacher`` is set to ``"dann"``.
    """
    latest = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("method") in ("", None):
            continue
        if r.get("epochs") != epochs:
            continue
        variant = "" if r.get("variant") is None else str(r.get("variant"))
        teacher = str(r.get("teacher") or DEFAULT_TEACHER)
        k = (str(r["tag"]), variant, teacher, str(r["scenario"]), r["seed"])
        k += tuple(str(r[key]) for key in keys)
        latest[k] = {**r, "variant": variant, "tag": str(r["tag"]), "teacher": teacher}
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


#: columns (keys of :func:`group_row`) and headers of a scenario-group table
GROUP_COLUMNS = ["method", "main", "additional", "all", "run"]
GROUP_HEADERS = ["method", "main 5", "additional 5", "all 10", "scenarios run"]


def group_row(label, cells, metric="macro_f1"):
    """One table row: ``metric`` averaged over the paper's scenario groups.

    Parameters
    ----------
    label : str
        The row's ``method`` cell.
    cells : dict
        ``(scenario, seed) -> row``.
    metric : str, default="macro_f1"

    Returns
    -------
    row : dict
        ``method``; ``main``, ``additional`` and ``all`` (the main 5, the
        additional 5 and all 10 UNI-KD scenarios: ``"-"`` until every
        scenario of the group ran); ``run`` (the scenarios run). Each is the
        per-seed mean over the group's scenarios, then mean ± std over seeds.

    Examples
    --------
    >>> cells = {("2->11", 0): {"macro_f1": 80.0}, ("2->11", 1): {"macro_f1": 84.0}}
    >>> row = group_row("KD", cells)
    >>> row["main"], row["run"]
    ('-', (82.0, 2.8284271247461903))
    """
    from skkd.datasets import HAR_ADDITIONAL_SCENARIOS, HAR_MAIN_SCENARIOS

    groups = {
        "main": list(HAR_MAIN_SCENARIOS),
        "additional": list(HAR_ADDITIONAL_SCENARIOS),
        "all": [*HAR_MAIN_SCENARIOS, *HAR_ADDITIONAL_SCENARIOS],
    }
    ran = {k[0] for k in cells}
    row = {"method": label, "run": _group_average(cells, sorted(ran), metric)}
    for name, group in groups.items():
        complete = set(group) <= ran
        row[name] = _group_average(cells, group, metric) if complete else "-"
    return row


def _by_method(rows, methods):
    """``method -> {(scenario, seed): row}`` for the ``methods`` in ``rows``."""
    return {
        m: {(r["scenario"], r["seed"]): r for r in rows if r["method"] == m}
        for m in methods
        if any(r["method"] == m for r in rows)
    }


def label_picked(by_method, students):
    """The teacher picked per scenario WITH target labels, and its students.

    Not a label-free result: per scenario, the seed whose teacher has the
    best target macro-F1 (the lowest such seed on ties), as a paper that
    reports its best teacher does; the students are the rows of that seed,
    i.e. distilled from the picked teacher. Nothing is retrained.

    Parameters
    ----------
    by_method : dict
        ``method -> {(scenario, seed): row}``, with a ``"teacher"`` entry.
    students : sequence of str
        Methods whose rows of the picked seed are returned.

    Returns
    -------
    picked : dict
        ``scenario -> seed``.
    cells : dict
        ``method -> {(scenario, 0): row}`` for ``"teacher"`` and each of
        ``students`` present (one cell per scenario, under seed 0).

    Examples
    --------
    >>> by = {"teacher": {("2->11", 0): {"macro_f1": 70.0},
    ...                   ("2->11", 1): {"macro_f1": 90.0}},
    ...       "kd": {("2->11", 0): {"macro_f1": 75.0},
    ...              ("2->11", 1): {"macro_f1": 85.0}}}
    >>> picked, cells = label_picked(by, ["kd", "unikd"])
    >>> picked, cells["kd"][("2->11", 0)]["macro_f1"], sorted(cells)
    ({'2->11': 1}, 85.0, ['kd', 'teacher'])
    """
    teacher = by_method.get("teacher", {})
    picked = {}
    for (scenario, seed), r in sorted(teacher.items()):
        best = picked.get(scenario)
        if best is None or r["macro_f1"] > teacher[(scenario, best)]["macro_f1"]:
            picked[scenario] = seed
    cells = {}
    for m in ["teacher", *students]:
        if m in by_method:
            rows = by_method[m]
            cells[m] = {
                (sc, 0): rows[(sc, seed)]
                for sc, seed in picked.items()
                if (sc, seed) in rows
            }
    return picked, cells


def _teacher_time(name, teacher_rows):
    """A sentence with the teacher's median fit time (and per ensemble member)."""
    import numpy as np

    seconds = [
        float(r["fit_seconds"]) for r in teacher_rows.values() if "fit_seconds" in r
    ]
    if not seconds:
        return ""
    median = float(np.median(seconds))
    text = f" Median teacher fit: {median:.1f} s over {len(seconds)} fits"
    members = re.fullmatch(r"ensemble(?:-(\d+))?", name)
    if members:
        k = int(members.group(1) or ENSEMBLE_MEMBERS)
        text += f" ({k} members fitted one after another: {median / k:.1f} s each)"
    return text + "."


def teacher_section(name, by_method, labels, students, scope=""):
    """Report section of one label-free teacher: its rows and the label-picked ones.

    Parameters
    ----------
    name : str
        Teacher name (``--teacher``, see :mod:`benchmarks._teachers`).
    by_method : dict
        ``method -> {(scenario, seed): row}`` of this teacher's runs, with
        the teacher's own scores under ``"teacher"``.
    labels : dict
        ``method -> display name``.
    students : sequence of str
        Methods shown as distilled from the teacher picked with labels.
    scope : str, default=""
        Added to the description (e.g. the budget).

    Returns
    -------
    section : (str, str)
        Heading and Markdown body.

    Examples
    --------
    >>> by = {"teacher": {("2->11", 0): {"macro_f1": 70.0}},
    ...       "kd": {("2->11", 0): {"macro_f1": 75.0}}}
    >>> heading, body = teacher_section("vada", by, {"kd": "KD"}, ["kd"])
    >>> heading
    'Teacher `vada`: macro-F1 (%) of the teacher and its students'
    >>> "| Teacher picked per scenario with target labels" in body
    True
    """
    kind = name if name in TEACHERS else "ensemble"
    label = f"Teacher ({name})"
    table = [
        group_row(label if m == "teacher" else labels[m], cells)
        for m, cells in by_method.items()
    ]
    picked, cells = label_picked(by_method, students)
    picked_rows = []
    for m, c in cells.items():
        row = group_row(
            "Teacher picked per scenario with target labels (not label-free; "
            "for comparison with the paper)"
            if m == "teacher"
            else f"{labels[m]}, distilled from the picked teacher",
            c,
        )
        # one cell per scenario: a mean over scenarios, no spread over seeds
        picked_rows.append(
            {k: v[0] if isinstance(v, tuple) else v for k, v in row.items()}
        )
    seeds = ", ".join(f"{sc} seed {seed}" for sc, seed in picked.items())
    body = (
        f"`--teacher {name}`: {TEACHERS[kind]}; trained without target labels"
        f"{scope}. Macro-F1 (%) on the full target test set: per-seed mean over "
        "the scenarios of the group, then mean ± std over seeds (a group shows "
        "`-` until all its scenarios ran)."
        + _teacher_time(name, by_method.get("teacher", {}))
        + "\n\n"
        + markdown_table(table, GROUP_COLUMNS, GROUP_HEADERS)
    )
    if picked_rows:
        body += (
            "\n\nNot label-free, for comparison with papers that report their best "
            "teacher: per scenario, the seed whose teacher has the best target "
            f"macro-F1 (picked: {seeds}) and the students of that seed, distilled "
            "from it (no retraining); mean over the scenarios of the group.\n\n"
            + markdown_table(picked_rows, GROUP_COLUMNS, GROUP_HEADERS)
        )
    return f"Teacher `{name}`: macro-F1 (%) of the teacher and its students", body


def _teacher_order(names):
    """Teacher names in :data:`TEACHERS` order, others (``ensemble-N``) after."""
    known = list(TEACHERS)
    return sorted(
        names, key=lambda n: (known.index(n) if n in known else len(known), n)
    )


def other_teachers_note(rows):
    """A sentence for the report's intro when rows of other teachers exist.

    Parameters
    ----------
    rows : list of dict
        The suite's CSV rows.

    Returns
    -------
    note : str
        Empty when every row distilled the default DANN teacher.

    Examples
    --------
    >>> note = other_teachers_note([{"teacher": "dann"}, {"teacher": "vada"}])
    >>> note.split(":")[1]
    ' vada) appear in their own sections only.'
    """
    others = {r.get("teacher") for r in rows} - {"", None, DEFAULT_TEACHER}
    if not others:
        return ""
    return (
        " Rows of other label-free teachers (`--teacher`: "
        f"{', '.join(_teacher_order(others))}) appear in their own sections only."
    )


def build_report(rows, epochs, scenarios_order):
    """Tables (Markdown) and plot data of the HAR benchmark, from CSV rows.

    The main tables show the default run (tag ``default``, the ``dann``
    teacher). When the CSV holds rows of other teachers (``--teacher``), each
    teacher gets a section (:func:`teacher_section`) with the teacher picked
    per scenario with target labels.

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
    ok = _ok_rows(rows, epochs)
    runs = [r for r in ok if r["tag"] == "default" and r["variant"] == ""]
    default = [r for r in runs if r["teacher"] == DEFAULT_TEACHER]
    present = {r["scenario"] for r in ok}
    scenarios = [s for s in scenarios_order if s in present]
    scenarios += sorted(present - set(scenarios))
    by_method = _by_method(default, METHODS)
    methods = list(by_method)

    # main table: methods x scenarios, then group averages and published numbers
    table_rows, trunc_rows, info_rows = [], [], []
    plot_means, plot_stds, paper = [], [], []
    for m in methods:
        cells = by_method[m]
        row = group_row(METHODS[m][0], cells)
        for sc in scenarios:
            values = [r["macro_f1"] for (s, _), r in cells.items() if s == sc]
            row[sc] = mean_std(values) if values else None
        row["paper_avg10"] = PUBLISHED.get(m, {}).get("avg10")
        row["paper_additional"] = PUBLISHED.get(m, {}).get("additional")
        table_rows.append(row)
        headline = row["run"] if row["all"] == "-" else row["all"]
        headline = headline or (float("nan"), 0.0)
        plot_means.append(headline[0])
        plot_stds.append(headline[1])
        paper.append(PUBLISHED.get(m, {}).get("avg10", float("nan")))

        released = RELEASED_CODE.get(m, (None, None, None))
        trunc_rows.append(
            {
                **group_row(METHODS[m][0], cells, "macro_f1_truncated"),
                "released": " / ".join(f"{v:.2f}" for v in released if v) or "",
            }
        )
        acc = group_row(METHODS[m][0], cells, "accuracy")
        all_rows = list(cells.values())
        fit = sorted(r["fit_seconds"] for r in all_rows)
        info_rows.append(
            {
                "method": METHODS[m][0],
                "acc": acc["run"] if acc["all"] == "-" else acc["all"],
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
                [*GROUP_COLUMNS, "released"],
                [*GROUP_HEADERS, "released code"],
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

    # one section per label-free teacher, once the CSV holds several
    teachers = _teacher_order({r["teacher"] for r in runs})
    if teachers != [DEFAULT_TEACHER]:
        labels = {m: v[0] for m, v in METHODS.items()}
        for name in teachers:
            mine = _by_method([r for r in runs if r["teacher"] == name], METHODS)
            students = ["unikd", "rcdkd", "kd"]
            sections.append(teacher_section(name, mine, labels, students))

    # ablations: each method of a non-default tag (a UNI-KD variant, other
    # teacher epochs ...) against the same method of the default run of the
    # same teacher, on the same runs
    tags = {(r["tag"], r["variant"], r["teacher"]) for r in ok if r["tag"] != "default"}
    for tag, variant, teacher in sorted(tags):
        tagged = [
            r
            for r in ok
            if (r["tag"], r["variant"], r["teacher"]) == (tag, variant, teacher)
        ]
        reference = _by_method([r for r in runs if r["teacher"] == teacher], METHODS)
        ran = sorted({r["scenario"] for r in tagged})
        abl_rows = []
        for method, variant_cells in _by_method(tagged, METHODS).items():
            for label, cells in (
                (f"{METHODS[method][0]}, {tag}", variant_cells),
                (f"{METHODS[method][0]}, default", reference.get(method, {})),
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
        of = "" if teacher == DEFAULT_TEACHER else f" (teacher `{teacher}`)"
        sections.append(
            (
                f"Ablation `{tag}`{of}",
                f"`{variant or 'defaults'}` (tag `{tag}`) against the default run"
                f"{of} on the same scenarios ({', '.join(ran)}) and seeds; "
                "macro-F1 (%), per-seed mean over these scenarios, mean ± std "
                "over seeds.\n\n"
                + markdown_table(
                    abl_rows,
                    ["label", "f1", "trunc", "runs"],
                    ["variant", "macro-F1", "truncated macro-F1", "runs"],
                ),
            )
        )

    complete = all(group_row("", by_method[m])["all"] != "-" for m in methods)
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
        help="epochs of the teachers (default: --epochs; --teacher dann-adatime "
        "always trains its recipe's 40); needs --tag",
    )
    p.add_argument("--tag", default="default", help="label of an ablation run")
    p.add_argument(
        "--variant",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra UniKDClassifier parameters; a teacher.KEY=VALUE goes to the "
        "label-free teacher (a recipe ablation, cached apart); needs --tag",
    )
    return add_teacher_arguments(p)


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
    teacher = teacher_name(args.teacher, args.ensemble_members)
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
        (
            r["tag"],
            r["variant"],
            r["teacher"],
            str(r["scenario"]),
            r["seed"],
            r["method"],
        )
        for r in _ok_rows(read_rows(csv_path), args.epochs)
    }
    jobs = []
    for scenario in args.scenarios:
        for seed in args.seeds:
            todo = [
                m
                for m in methods
                if (args.tag, variant, teacher, scenario, seed, m) not in done
            ]
            if todo:
                jobs.append(
                    {
                        "tag": args.tag,
                        "variant": variant,
                        "teacher": teacher,
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
        f"already done in {csv_path}; teacher {teacher}, {args.epochs} epochs, "
        f"out {out}"
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
    intro += other_teachers_note(rows)
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
