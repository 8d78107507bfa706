"""``skkd bench revisions``: fit time of one estimator at two git revisions.

How much faster (or slower) did a change make a fit? Each revision is
exported with ``git archive`` into a temporary folder; every timed fit runs
in a fresh Python process that imports skkd from that folder, so the two
revisions never share a process. Runs are paired per scenario and alternate
which revision goes first, so drift on a shared machine cancels; a run's time
is the wall time of ``fit`` alone (data loading and imports excluded). The
report gives, per scenario, the median time of each revision and the median
of the paired ratios (before / after), and the target macro-F1 each revision
reached, so that a speed-up that changed the results shows.
"""

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from ._cli import output_folder, suite_parser
from ._paths import ROOT
from ._report import bar_plot, environment, markdown_table, write_csv, write_report

__all__ = ["export_revision", "main", "time_fit"]

#: what each timed process runs: load, fit (timed), score
_FIT_SCRIPT = """
import json, sys, time
import torch
torch.set_num_threads({threads})
import skkd
from skkd.datasets import load_har_scenario
from skkd.metrics import macro_f1
d = load_har_scenario({scenario!r}, data_home={data_home!r})
est = getattr(skkd, {estimator!r})(**{params!r})
start = time.perf_counter()
est.fit(d.X_src, d.y_src, d.X_tgt)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds,
                   "macro_f1": 100 * macro_f1(d.y_tgt_test, est.predict(d.X_tgt_test)),
                   "skkd": skkd.__file__}}))
"""


def _log(message):
    print(message, file=sys.stderr, flush=True)


def export_revision(rev, folder, repo=None):
    """Write the tree of git revision ``rev`` into ``folder``.

    Parameters
    ----------
    rev : str
        Any git revision (``HEAD``, a commit, a branch).
    folder : path-like
        Where the files go (created).
    repo : path-like, optional
        The repository; default the checkout these benchmarks are in.

    Returns
    -------
    commit : str
        The full commit id of ``rev``.

    Examples
    --------
    >>> import tempfile
    >>> export_revision("HEAD", tempfile.mkdtemp())  # doctest: +SKIP
    '3f2a...'
    """
    repo = Path(repo or ROOT)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", f"{rev}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "tree.tar"
    subprocess.run(
        ["git", "-C", str(repo), "archive", "-o", str(archive), commit, "skkd"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    archive.unlink()
    return commit


def time_fit(source, estimator, params, scenario, data_home=None, threads=1):
    """Fit ``estimator`` in a fresh process importing skkd from ``source``.

    Parameters
    ----------
    source : path-like
        Folder that holds the ``skkd`` package to import.
    estimator : str
        Name of an estimator exported by ``skkd``.
    params : dict
        Its constructor arguments (plain Python values).
    scenario : str
        UCI-HAR scenario, e.g. ``"2->11"``.
    data_home : str, optional
        UCI-HAR folder (needed for scenarios other than 2->11).
    threads : int, default=1
        ``torch.set_num_threads`` of the process.

    Returns
    -------
    dict
        ``seconds`` (fit alone), ``macro_f1`` on the target test split, and
        ``skkd`` (the imported package's file, to check the revision).

    Examples
    --------
    >>> time_fit("src", "DANNClassifier", {"max_epochs": 1}, "2->11")  # doctest: +SKIP
    {'seconds': 0.4, 'macro_f1': 71.2, 'skkd': 'src/skkd/__init__.py'}
    """
    script = _FIT_SCRIPT.format(
        threads=int(threads),
        scenario=scenario,
        data_home=None if data_home is None else str(Path(data_home).resolve()),
        estimator=estimator,
        params=params,
    )
    env = {**os.environ, "PYTHONPATH": str(Path(source).resolve())}
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(Path(source).resolve()),
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = Path(source).resolve() / "skkd" / "__init__.py"
    if Path(result["skkd"]).resolve() != expected:
        raise RuntimeError(
            f"the timed process imported {result['skkd']}, not {expected}; an "
            "installed skkd shadows the exported revision."
        )
    return result


def _parser():
    p = suite_parser(
        "revisions",
        "Fit time of one estimator at two git revisions, in paired "
        "alternating runs; writes revisions.csv, revisions.md and revisions.png.",
        threads=2,
    )
    p.add_argument("--before", required=True, help="git revision before a change")
    p.add_argument("--after", default="HEAD", help="git revision after (HEAD)")
    p.add_argument("--estimator", default="DANNClassifier")
    p.add_argument(
        "--params",
        default='{"module__widths": [64, 128, 128], "max_epochs": 10, '
        '"random_state": 0}',
        help="constructor arguments as JSON (default: the HAR teacher)",
    )
    p.add_argument("--scenarios", nargs="+", default=["2->11"])
    p.add_argument("--repeats", type=int, default=3, help="paired runs per scenario")
    return p


def main(argv=None):
    """Run the revisions benchmark (``skkd bench revisions``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench revisions`` (see ``--help``).

    Returns
    -------
    status : int
        0.

    Examples
    --------
    >>> main(["--before", "HEAD~1", "--repeats", "1"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    params = json.loads(args.params)
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="skkd-revisions-") as tmp:
        sources, commits = {}, {}
        for side, rev in (("before", args.before), ("after", args.after)):
            sources[side] = Path(tmp) / side
            commits[side] = export_revision(rev, sources[side])
            _log(f"revisions: {side} = {rev} ({commits[side][:10]})")
        for scenario in args.scenarios:
            for run in range(args.repeats):
                order = ("before", "after") if run % 2 == 0 else ("after", "before")
                result = {}
                for side in order:
                    result[side] = time_fit(
                        sources[side],
                        args.estimator,
                        params,
                        scenario,
                        args.data_home,
                        args.threads,
                    )
                row = {
                    "scenario": scenario,
                    "run": run,
                    "first": order[0],
                    "before_s": result["before"]["seconds"],
                    "after_s": result["after"]["seconds"],
                    "speedup": result["before"]["seconds"] / result["after"]["seconds"],
                    "before_f1": result["before"]["macro_f1"],
                    "after_f1": result["after"]["macro_f1"],
                }
                rows.append(row)
                _log(
                    f"[{scenario} {run + 1}/{args.repeats}] before "
                    f"{row['before_s']:.2f} s, after {row['after_s']:.2f} s, "
                    f"speed-up {row['speedup']:.2f}x"
                )

    out = output_folder(args, "revisions")
    write_csv(out / "revisions.csv", rows)
    summary = []
    for scenario in args.scenarios:
        mine = [r for r in rows if r["scenario"] == scenario]
        summary.append(
            {
                "scenario": scenario,
                "before_s": statistics.median(r["before_s"] for r in mine),
                "after_s": statistics.median(r["after_s"] for r in mine),
                "speedup": statistics.median(r["speedup"] for r in mine),
                "before_f1": statistics.median(r["before_f1"] for r in mine),
                "after_f1": statistics.median(r["after_f1"] for r in mine),
            }
        )
    overall = statistics.median(r["speedup"] for r in rows)
    table = markdown_table(
        summary,
        ["scenario", "before_s", "after_s", "speedup", "before_f1", "after_f1"],
        [
            "scenario",
            "before: fit (s)",
            "after: fit (s)",
            "speed-up (median of paired ratios)",
            "before: macro-F1",
            "after: macro-F1",
        ],
    )
    runs = markdown_table(
        rows,
        ["scenario", "run", "first", "before_s", "after_s", "speedup"],
        ["scenario", "run", "ran first", "before (s)", "after (s)", "speed-up"],
    )
    bar_plot(
        out / "revisions.png",
        [r["scenario"] for r in summary],
        {
            "before": ([r["before_s"] for r in summary], [0] * len(summary)),
            "after": ([r["after_s"] for r in summary], [0] * len(summary)),
        },
        "fit time (s)",
        f"{args.estimator}: {commits['before'][:7]} vs {commits['after'][:7]}",
    )
    intro = (
        f"`{args.estimator}({args.params})` fitted on UCI-HAR with the code of "
        f"two revisions: before = `{args.before}` ({commits['before'][:10]}), "
        f"after = `{args.after}` ({commits['after'][:10]}). Every fit runs in a "
        f"fresh process with {args.threads} torch thread(s); {args.repeats} "
        "paired runs per scenario alternate which revision goes first; times "
        "are of `fit` alone. Numbers from `revisions.csv`."
    )
    write_report(
        out / "revisions.md",
        f"{args.estimator}: fit time before and after a change",
        intro,
        [
            ("Result", f"Median speed-up over all paired runs: **{overall:.2f}x**."),
            ("Per scenario", table),
            ("All runs", runs),
        ],
        environment(["revisions", *argv], threads=args.threads),
        time.perf_counter() - start,
    )
    _log(f"revisions: median speed-up {overall:.2f}x; wrote {out / 'revisions.md'}")
    return 0


if __name__ == "__main__":  # python -m benchmarks.revisions
    sys.exit(main())
