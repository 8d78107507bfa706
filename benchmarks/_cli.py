"""Command-line flags the suites share, and where their outputs go by default."""

import argparse
import tempfile
from pathlib import Path

from ._paths import DEFAULT_OUT, TEACHER_CACHE

__all__ = ["default_teacher_cache", "output_folder", "suite_parser"]

DATA_HOME_HELP = (
    "UCI-HAR subjects folder (default: $SKKD_DATA, else the embedded subjects 2 "
    "and 11: only 2->11 works offline)"
)


def suite_parser(
    suite,
    description,
    *,
    quick=None,
    data_home=True,
    n_jobs=None,
    threads=None,
    teacher_cache=None,
):
    """Argument parser of one suite, with the flags the suites share.

    Every suite gets ``--out``; the others are added on request.

    Parameters
    ----------
    suite : str
        Name of the suite (its program name is ``skkd bench SUITE``).
    description : str
        Help text of the suite.
    quick : str, optional
        Help of ``--quick`` (a smoke run whose outputs go to a new temporary
        folder unless ``--out`` is given); None: no such flag.
    data_home : bool, default=True
        Add ``--data-home`` (the UCI-HAR folder).
    n_jobs : int, optional
        Default of ``--n-jobs`` (joblib), added with ``--scheduler`` (a Dask
        scheduler address); None: neither flag.
    threads : int, optional
        Default of ``--threads`` (torch threads per job); None: no such flag.
    teacher_cache : str, optional
        Help of ``--teacher-cache`` (folder of fitted teachers); None: no such
        flag.

    Returns
    -------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> p = suite_parser("demo", "A demo.", quick="smoke run", n_jobs=2)
    >>> args = p.parse_args(["--quick"])
    >>> args.out, args.quick, args.n_jobs, args.scheduler
    (None, True, 2, None)
    """
    p = argparse.ArgumentParser(prog=f"skkd bench {suite}", description=description)
    where = "docs/benchmarks/ of the source checkout"
    p.add_argument(
        "--out",
        default=None,
        help=f"output folder (default: {where}"
        + ("; with --quick: a new temporary folder)" if quick else ")"),
    )
    if quick is not None:
        p.add_argument("--quick", action="store_true", help=quick)
    if data_home:
        p.add_argument("--data-home", default=None, help=DATA_HOME_HELP)
    if n_jobs is not None:
        p.add_argument(
            "--n-jobs", type=int, default=n_jobs, help="parallel jobs (joblib)"
        )
        p.add_argument("--scheduler", default=None, help="Dask scheduler address")
    if threads is not None:
        p.add_argument(
            "--threads", type=int, default=threads, help="torch threads per job"
        )
    if teacher_cache is not None:
        p.add_argument("--teacher-cache", default=None, help=teacher_cache)
    return p


def output_folder(args, suite):
    """The output folder of a run: ``--out``, else the checkout's default.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a :func:`suite_parser` parser.
    suite : str
        Name of the suite (prefix of a ``--quick`` run's temporary folder).

    Returns
    -------
    out : pathlib.Path
        ``--out`` when given; else a new temporary folder for ``--quick``;
        else ``docs/benchmarks/`` of the checkout (never the current folder).

    Examples
    --------
    >>> import argparse
    >>> output_folder(argparse.Namespace(out=None), "har") == DEFAULT_OUT
    True
    """
    if args.out:
        return Path(args.out)
    if getattr(args, "quick", False):
        return Path(tempfile.mkdtemp(prefix=f"skkd-{suite}-"))
    return DEFAULT_OUT


def default_teacher_cache(out, *parts):
    """Default folder of cached teachers: ``OUT/.teacher-cache[/parts]``.

    Inside the default output folder it is the checkout's
    ``docs/benchmarks/.teacher-cache``, which git ignores.

    Parameters
    ----------
    out : path-like
        Output folder of the run.
    *parts : str
        Subfolders (e.g. the suite's name).

    Returns
    -------
    folder : str

    Examples
    --------
    >>> default_teacher_cache("results", "memkd")
    'results/.teacher-cache/memkd'
    """
    return str(Path(out, TEACHER_CACHE, *parts))
