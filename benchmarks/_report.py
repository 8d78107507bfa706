"""Markdown reports and plots of benchmark results.

A report page starts with a header block that says exactly how its numbers
were produced (command line, machine, cores, library versions, wall time);
every number in it comes from the suite's CSV. Nothing they write holds an
absolute path: commands and cells record paths relative to the checkout
(:mod:`benchmarks._paths`).
"""

import csv
import datetime
import math
import os
import platform
from pathlib import Path

from ._paths import portable_argv, scrub_paths
from ._runner import format_seconds

__all__ = [
    "bar_plot",
    "environment",
    "markdown_table",
    "mean_std",
    "write_csv",
    "write_report",
]


def _version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
        return "not installed"


def environment(argv, threads=None):
    """Describe how and where a benchmark runs.

    Parameters
    ----------
    argv : list of str
        The suite's arguments (after ``skkd bench``); paths in them are
        recorded relative to the checkout (see
        :func:`benchmarks._paths.portable_argv`).
    threads : int, optional
        torch threads of the benchmark's workers, when they set their own
        (default: this process's ``torch.get_num_threads()``).

    Returns
    -------
    env : dict
        ``command``, ``cores`` (``os.cpu_count``), ``torch_threads``,
        ``platform``, ``machine``, ``python``, versions of torch, skorch,
        scikit-learn, numpy and skkd, and ``date`` (UTC, ISO 8601).

    Examples
    --------
    >>> env = environment(["har", "--quick"])
    >>> env["command"]
    'skkd bench har --quick'
    >>> sorted(env)[:3]
    ['command', 'cores', 'date']
    """
    import numpy
    import sklearn
    import skorch
    import torch

    import skkd

    return {
        "command": "skkd bench " + " ".join(portable_argv(argv)),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads() if threads is None else threads,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "skkd": skkd.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
    }


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value).

    Parameters
    ----------
    values : iterable of float
        Non-numeric and NaN entries are ignored.

    Returns
    -------
    mean, std : float
        ``nan`` for both when no value is left.

    Examples
    --------
    >>> mean_std([1.0, 2.0, 3.0])
    (2.0, 1.0)
    >>> mean_std([5.0])
    (5.0, 0.0)
    """
    xs = [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and math.isfinite(float(v))
    ]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var)


def _format(value, floatfmt):
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return "-" if math.isnan(value) else format(value, floatfmt)
    if isinstance(value, tuple) and len(value) == 2:
        mean, std = value
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return "-"
        return f"{mean:{floatfmt}} ± {std:{floatfmt}}"
    return str(value).replace("|", "\\|")


def markdown_table(rows, columns, headers=None, floatfmt=".2f"):
    """Render rows as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    rows : list of dict
        One dict per table row; missing cells are left empty.
    columns : list of str
        Keys to show, in order.
    headers : list of str, optional
        Column titles (default: ``columns``).
    floatfmt : str, default=".2f"
        Format of floats; a ``(mean, std)`` tuple renders as ``mean ± std``
        and NaN as ``-``.

    Returns
    -------
    table : str

    Examples
    --------
    >>> print(markdown_table([{"m": "kd", "f1": 91.234, "acc": (90.0, 1.5)}],
    ...                      ["m", "f1", "acc"], ["method", "F1", "accuracy"]))
    | method | F1 | accuracy |
    |---|---|---|
    | kd | 91.23 | 90.00 ± 1.50 |
    """
    headers = list(columns) if headers is None else list(headers)
    if len(headers) != len(columns):
        raise ValueError("headers and columns must have the same length")
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [_format(row.get(c), floatfmt) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path, title, intro, sections, env, wall_seconds, rows=None):
    """Write a Markdown benchmark page with a how-it-was-produced header.

    Parameters
    ----------
    path : str or path-like
        Output ``.md`` file (its folder is created).
    title : str
        Page title.
    intro : str
        Paragraph(s) after the header block: what is measured and how.
    sections : list of (str, str)
        ``(heading, markdown body)`` pairs, in order.
    env : dict
        From :func:`environment`.
    wall_seconds : float
        Wall time of the run that produced the page.
    rows : list of dict, optional
        The result rows behind the page; the distinct values of their
        ``command`` column (see :func:`benchmarks._runner.run_jobs`) are
        listed when the rows come from more than this one command.

    Returns
    -------
    path : pathlib.Path

    Notes
    -----
    Absolute paths under the checkout, beside it, under the temporary folder
    or the home folder are rewritten (:func:`benchmarks._paths.scrub_paths`)
    before the page is written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.md"
    >>> p = write_report(out, "Demo", "Numbers.", [("Table", "| a |\\n|---|")],
    ...                  environment(["demo"]), 1.0)
    >>> p.read_text().splitlines()[0]
    '# Demo'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [
        f"# {title}",
        "",
        f"Produced by `{env['command']}` on {env['date']}: "
        f"{env['platform']} ({env['machine']}), {env['cores']} CPU cores, "
        f"{env['torch_threads']} torch thread(s) per worker; "
        f"Python {env['python']}, torch {env['torch']}, skorch {env['skorch']}, "
        f"scikit-learn {env['sklearn']}, numpy {env['numpy']}, skkd {env['skkd']}. "
        f"Wall time: {format_seconds(wall_seconds)} ({wall_seconds:.0f} s).",
        "",
    ]
    commands = list(dict.fromkeys(r["command"] for r in rows or () if r.get("command")))
    if commands and commands != [env["command"]]:
        header += [
            "Rows produced by: " + "; ".join(f"`{c}`" for c in commands) + ".",
            "",
        ]
    header += [intro.strip(), ""]
    body = []
    for heading, text in sections:
        body += [f"## {heading}", "", text.strip(), ""]
    path.write_text(scrub_paths("\n".join(header + body)), encoding="utf-8")
    return path


def write_csv(path, rows, fieldnames=None, extrasaction="raise"):
    """Write result rows to a CSV file, paths in text cells made portable.

    For the suites that rewrite their CSV at each run; resumable suites
    stream theirs through :func:`benchmarks._runner.run_jobs`.

    Parameters
    ----------
    path : str or path-like
        Output ``.csv`` file (its folder is created).
    rows : list of dict
        One dict per row.
    fieldnames : list of str, optional
        Columns, in order (default: the keys of the first row).
    extrasaction : {"raise", "ignore"}, default="raise"
        What to do with keys not in ``fieldnames`` (see ``csv.DictWriter``).

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
    >>> print(write_csv(out, [{"a": 1, "b": "x"}]).read_text().strip())
    a,b
    1,x
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {k: scrub_paths(v) if isinstance(v, str) else v for k, v in row.items()}
        for row in rows
    ]
    fieldnames = list(rows[0]) if fieldnames is None else list(fieldnames)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames, extrasaction=extrasaction)
        writer.writeheader()
        writer.writerows(rows)
    return path


def bar_plot(path, categories, series, ylabel, title):
    """Save a grouped bar plot with error bars (matplotlib's Agg canvas).

    Parameters
    ----------
    path : str or path-like
        Output image (``.png``).
    categories : list of str
        Groups along the x axis.
    series : dict of str to (list of float, list of float)
        ``label -> (means, stds)``, one value per category; NaN bars are empty.
    ylabel, title : str
        Axis label and plot title.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "bars.png"
    >>> bar_plot(out, ["kd", "unikd"], {"F1": ([80.0, 90.0], [1.0, 2.0])},
    ...          "macro-F1 (%)", "demo").exists()
    True
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "benchmark plots need matplotlib: pip install 'skkd[bench]'"
        ) from exc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_series = max(len(series), 1)
    width = 0.8 / n_series
    # an Agg canvas without pyplot: no global backend switch, nothing to close
    fig = Figure(figsize=(max(5.0, 0.9 * len(categories) + 2), 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (label, (means, stds)) in enumerate(series.items()):
        xs = [j + (i - (n_series - 1) / 2) * width for j in range(len(categories))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize="small", loc="lower left", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
