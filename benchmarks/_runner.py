"""Run benchmark jobs in parallel and stream their rows into a resumable CSV.

Every suite describes its work as a list of *jobs* (dicts of plain,
picklable parameters) and a module-level function ``func(**job)`` returning a
dict (or a list of dicts) of results. :func:`run_jobs` runs them serially,
with joblib (``n_jobs``) or on a Dask cluster (``scheduler``), appends one CSV
row per result as soon as a job finishes, and skips jobs whose key already
has an ``"ok"`` row, so an interrupted benchmark resumes where it stopped.
Text cells are written with their paths relative to the checkout (a job may
take an absolute ``data_home``; its CSV row records ``../shared/...``).
"""

import csv
import math
import os
import sys
import time
import traceback
from pathlib import Path

from ._paths import scrub_paths

__all__ = ["format_seconds", "read_rows", "run_jobs"]

#: columns every row gets from the runner, after the job's and result's own
STATUS_COLUMNS = ("status", "error", "seconds")


def _log(message):
    print(message, file=sys.stderr, flush=True)


def format_seconds(seconds):
    """Format a duration as ``H:MM:SS``.

    Parameters
    ----------
    seconds : float
        Duration in seconds (``nan`` or negative gives ``"?"``).

    Returns
    -------
    text : str

    Examples
    --------
    >>> format_seconds(70.4)
    '0:01:10'
    >>> format_seconds(3725)
    '1:02:05'
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _parse(value):
    """A CSV cell back to int, float or str (empty stays ``""``)."""
    if not isinstance(value, str) or value == "":
        return "" if value is None else value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _read_raw(path):
    """Header and rows (as raw strings) of a CSV file; empty if missing."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [dict(r) for r in reader]
        return list(reader.fieldnames or []), rows


def read_rows(csv_path):
    """Read the rows of a benchmark CSV with numbers parsed back.

    Parameters
    ----------
    csv_path : str or path-like
        CSV written by :func:`run_jobs`; a missing file gives no rows.

    Returns
    -------
    rows : list of dict
        One dict per row; cells that look like ints or floats are converted,
        empty cells are ``""``.

    Examples
    --------
    >>> read_rows("/nonexistent/bench.csv")
    []
    """
    _, rows = _read_raw(csv_path)
    return [{k: _parse(v) for k, v in row.items()} for row in rows]


def _cell(value):
    """How a job value is written to (and compared with) the CSV."""
    return "" if value is None else str(value)


def _key_of(row, key):
    return tuple(_cell(row.get(k)) for k in key)


def rows_with(rows, **settings):
    """The rows whose columns equal ``settings`` (as written to the CSV).

    A CSV keeps every earlier run's rows; a report selects its own run's.

    Examples
    --------
    >>> rows = [{"epochs": 100, "seed": 0}, {"epochs": 200, "seed": 0}]
    >>> rows_with(rows, epochs=200)
    [{'epochs': 200, 'seed': 0}]
    """
    wanted = {k: _cell(v) for k, v in settings.items()}
    return [r for r in rows if all(_cell(r.get(k)) == v for k, v in wanted.items())]


class _CSVSink:
    """Append rows to a CSV, rewriting it when later rows bring new columns."""

    def __init__(self, path):
        self.path = Path(path)
        self.fieldnames, _ = _read_raw(self.path)

    def write(self, rows):
        rows = [
            {k: scrub_paths(v) if isinstance(v, str) else v for k, v in r.items()}
            for r in rows
        ]
        new = [k for r in rows for k in r if k not in self.fieldnames]
        new = list(dict.fromkeys(new))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if new or not self.path.exists() or not self.fieldnames:
            # union header: rewrite everything (simple, and the files are small)
            _, old = _read_raw(self.path)
            self.fieldnames = self.fieldnames + new
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, self.fieldnames, restval="")
                writer.writeheader()
                writer.writerows(old)
                writer.writerows(rows)
            os.replace(tmp, self.path)
            return
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, self.fieldnames, restval="").writerows(rows)


def _error_text(exc):
    """``repr`` of an exception plus where it was raised (its last frame)."""
    text = repr(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f"{Path(last.filename).name}:{last.lineno} in {last.name}"
        text = f"{text} at {where}"
    return text


def _run_one(index, func, job):
    """Run one job; never raises, returns ``(index, rows)``."""
    start = time.perf_counter()
    try:
        result = func(**job)
    except Exception as exc:  # noqa: BLE001 - a failed job must not stop the others
        seconds = time.perf_counter() - start
        row = {**job, "status": "error", "error": _error_text(exc), "seconds": seconds}
        return index, [row]
    seconds = time.perf_counter() - start
    results = [result] if isinstance(result, dict) else list(result)
    # a result may set its own status/error (e.g. one failed method of many)
    rows = [
        {
            **job,
            **r,
            "status": r.get("status", "ok"),
            "error": r.get("error", ""),
            "seconds": r.get("seconds", seconds),
        }
        for r in results
    ]
    return index, rows


def _dask_client(scheduler):
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "running benchmarks on a Dask scheduler needs dask.distributed: "
            "pip install 'skkd[bench]'"
        ) from exc
    return Client(scheduler)


def _describe(job, key):
    return " ".join(f"{k}={job[k]}" for k in key if k in job and job[k] != "")


def run_jobs(
    jobs,
    func,
    *,
    csv_path,
    key,
    n_jobs=1,
    scheduler=None,
    progress=True,
    desc="bench",
    command=None,
):
    """Run benchmark jobs, appending their result rows to a resumable CSV.

    Each row written is ``{**job, **result, "status": "ok", "error": "",
    "seconds": float}``, with absolute paths in its text cells recorded
    relative to the checkout (:func:`benchmarks._paths.scrub_paths`; the job
    itself gets its values unchanged). A job that raises gives one row with ``status ==
    "error"`` and the error text (``repr`` plus the place it was raised); the
    other jobs still run. A result dict may set ``status``/``error``/``seconds``
    itself (e.g. one failing method among several returned by one job). Rows
    are appended as each job finishes, so a killed run keeps what finished.

    Parameters
    ----------
    jobs : list of dict
        Plain, picklable keyword arguments of ``func``, one dict per job.
    func : callable
        Module-level function ``func(**job) -> dict or list of dict``.
    csv_path : str or path-like
        Where rows are appended (created with its folder if missing). When a
        row brings new columns, the file is rewritten with the union header.
    key : sequence of str
        Job fields identifying a job: a job whose key values already have an
        ``"ok"`` row in ``csv_path`` is skipped (resume).
    n_jobs : int, default=1
        Parallel jobs with joblib's loky backend (1 runs in this process).
    scheduler : str, optional
        Address of a Dask distributed scheduler (e.g.
        ``"tcp://127.0.0.1:8786"``): jobs run on its workers through joblib's
        ``dask`` backend. Needs the ``skkd[bench]`` extra.
    progress : bool, default=True
        Print one line per finished job to stderr, with elapsed time and ETA.
    desc : str, default="bench"
        Name of the suite in the progress lines.
    command : str, optional
        The command line of this run, stored in a ``command`` column of every
        row it writes, so a report built from rows of several (resumed or
        partial) runs can name each of them.

    Returns
    -------
    rows : list of dict
        All rows now in ``csv_path`` (earlier runs included), numbers parsed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from benchmarks._runner import run_jobs
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.csv"
    >>> rows = run_jobs([{"x": 1}, {"x": 2}], dict, csv_path=path, key=["x"],
    ...                 progress=False)
    >>> [(r["x"], r["status"]) for r in rows]
    [(1, 'ok'), (2, 'ok')]
    """
    from joblib import Parallel, delayed, parallel_config

    key = list(key)
    jobs = [dict(job) for job in jobs]
    sink = _CSVSink(csv_path)
    _, existing = _read_raw(csv_path)
    done = {_key_of(r, key) for r in existing if r.get("status") == "ok"}
    todo = [job for job in jobs if _key_of(job, key) not in done]
    if progress and len(todo) < len(jobs):
        _log(
            f"{desc}: {len(jobs) - len(todo)} of {len(jobs)} jobs already in "
            f"{csv_path}, skipped"
        )

    start = time.perf_counter()
    finished = 0

    def record(index, rows):
        nonlocal finished
        if command is not None:
            rows = [{**r, "command": command} for r in rows]
        sink.write(rows)
        finished += 1
        if not progress:
            return
        elapsed = time.perf_counter() - start
        eta = elapsed / finished * (len(todo) - finished)
        statuses = {r["status"] for r in rows}
        status = "ok" if statuses == {"ok"} else "/".join(sorted(statuses))
        seconds = max(float(r["seconds"]) for r in rows)
        _log(
            f"[{finished}/{len(todo)}] {desc} {_describe(todo[index], key)} "
            f"{status} {seconds:.1f}s | elapsed {format_seconds(elapsed)}, "
            f"ETA {format_seconds(eta)}"
        )
        for r in rows:
            if r["status"] != "ok":
                _log(f"    error: {r['error']}")

    tasks = (delayed(_run_one)(i, func, job) for i, job in enumerate(todo))
    if not todo:
        pass
    elif scheduler is not None:
        client = _dask_client(scheduler)
        try:
            with parallel_config(backend="dask"):
                for index, rows in Parallel(return_as="generator_unordered")(tasks):
                    record(index, rows)
        finally:
            client.close()
    elif n_jobs == 1:
        for i, job in enumerate(todo):
            record(*_run_one(i, func, job))
    else:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        for index, rows in parallel(tasks):
            record(index, rows)
    return read_rows(csv_path)
