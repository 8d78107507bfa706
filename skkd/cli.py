"""Command line: ``skkd demo`` and ``skkd bench`` (also ``python -m skkd ...``).

``skkd bench SUITE`` runs ``benchmarks.SUITE`` of a source checkout: the suites
are not installed with the package (see :func:`find_checkout`).
"""

import argparse
import os
import platform
import sys
import time

__all__ = ["main", "run_demo"]


def _log(message):
    print(message, file=sys.stderr, flush=True)


def run_demo(scenario="2->11", epochs=10, seed=0, data_home=None, threads=None):
    """Train a teacher and students on a UCI-HAR scenario and tabulate them.

    Trains the DANN teacher (widths 64/128/128), then the source-only student,
    the DANN student and the Hinton-KD student (widths 16/32/32) on the same
    data, and scores each on the **full** target test split.

    Parameters
    ----------
    scenario : str, default="2->11"
        UCI-HAR cross-subject pair; "2->11" ships inside the package.
    epochs : int, default=10
        Training epochs of every model.
    seed : int, default=0
        ``random_state`` of every model.
    data_home : str, optional
        Folder with the UCI-HAR subjects (see :func:`skkd.datasets.load_uci_har`).
    threads : int, optional
        torch threads of every fit (the estimators' ``n_threads``) and of the
        latency measurements; None keeps the estimators' default (1).

    Returns
    -------
    rows : list of dict
        One row per model: name, macro_f1, accuracy, params, macs, latency_ms,
        compression (teacher params / model params), fit_seconds.

    Examples
    --------
    >>> rows = run_demo(epochs=1)  # doctest: +SKIP
    """
    import torch
    from sklearn.frozen import FrozenEstimator

    from . import DANNClassifier, KDClassifier, TimeSeriesClassifier
    from .compression import count_macs, count_parameters, measure_latency
    from .datasets import load_har_scenario
    from .metrics import target_scores
    from .nn import CNN1D

    if threads:
        torch.set_num_threads(threads)
    data = load_har_scenario(scenario, data_home=data_home)
    _log(
        f"UCI-HAR {data.scenario}: {len(data.X_src)} source, {len(data.X_tgt)} "
        f"unlabelled target, {len(data.X_tgt_test)} target test windows"
    )
    common = {"module": CNN1D, "max_epochs": epochs, "random_state": seed}
    if threads:
        common["n_threads"] = threads
    teacher_widths = {"module__widths": (64, 128, 128)}
    student_widths = {"module__widths": (16, 32, 32)}

    def fitted(name, estimator, *fit_args):
        _log(f"[{name}] training {epochs} epochs ...")
        start = time.perf_counter()
        estimator.fit(*fit_args)
        seconds = time.perf_counter() - start
        _log(f"[{name}] done in {seconds:.1f} s")
        return estimator, seconds

    src = (data.X_src, data.y_src)
    teacher = DANNClassifier(**common, **teacher_widths)
    plan = [
        ("Teacher (DANN)", "teacher: DANN", teacher, (*src, data.X_tgt)),
        (
            "Student, source only",
            "student: source only",
            TimeSeriesClassifier(**common, **student_widths),
            src,
        ),
        (
            "Student, DANN",
            "student: DANN",
            DANNClassifier(**common, **student_widths),
            (*src, data.X_tgt),
        ),
        (
            "Student, KD (Hinton)",
            "student: KD",
            KDClassifier(FrozenEstimator(teacher), **common, **student_widths),
            (*src, data.X_tgt),
        ),
    ]
    # in order: the KD student's FrozenEstimator wraps the teacher fitted first
    models = [(name, *fitted(tag, est, *args)) for name, tag, est, args in plan]

    input_shape = data.X_src.shape[1:]
    teacher_params = count_parameters(teacher)
    rows = []
    for name, model, seconds in models:
        scores = target_scores(model, data.X_tgt_test, data.y_tgt_test)
        latency = measure_latency(model.module_, input_shape, batch_size=1)
        params = count_parameters(model)
        rows.append(
            {
                "model": name,
                "macro_f1": 100 * scores["macro_f1"],
                "accuracy": 100 * scores["accuracy"],
                "params": params,
                "macs": count_macs(model.module_, input_shape),
                "latency_ms": 1000 * latency["median"],
                "compression": teacher_params / params,
                "fit_seconds": seconds,
            }
        )
    return rows


def cpu_name():
    """The CPU's model name (Linux), else the platform's processor string.

    Scores of a seeded fit are bit-identical on one machine, torch version and
    thread count, but CPUs with other floating-point kernels give others: the
    demo table names the CPU it was produced on.

    Returns
    -------
    name : str

    Examples
    --------
    >>> isinstance(cpu_name(), str)
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def format_table(rows, scenario, epochs, seed, threads=None):
    """Render the demo rows as a Markdown table with a header saying how."""
    import torch

    threads = threads or torch.get_num_threads()
    header = (
        f"UCI-HAR {scenario}, {epochs} epochs, seed {seed}; scored on the full target "
        f"test split. torch {torch.__version__}, {threads} thread(s), "
        f"Python {platform.python_version()}, {platform.machine()}, {cpu_name()}."
    )
    lines = [
        header,
        "",
        "| model | target macro-F1 (%) | target accuracy (%) | parameters | MACs "
        "| latency, batch 1 (ms) | compression | fit (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['macro_f1']:.2f} | {r['accuracy']:.2f} "
            f"| {r['params']:,} | {r['macs'] / 1e6:.2f} M | {r['latency_ms']:.3f} "
            f"| {r['compression']:.1f}x | {r['fit_seconds']:.1f} |"
        )
    return "\n".join(lines)


#: what ``skkd bench`` says when no source checkout holds the suites
NO_CHECKOUT_MESSAGE = """\
skkd bench: the benchmark suites are not part of the installed skkd package;
they live in the benchmarks/ folder of skkd's source repository. To run them,
clone the repository and, from its root folder:

    pip install -e ".[bench]"
    skkd bench har --help        # or: python -m benchmarks.har --help

(skkd bench also finds benchmarks/ in the current folder, so a non-editable
install works when run from the root of a checkout.)"""


def _is_checkout(root):
    """Whether ``root`` is the root folder of a skkd source checkout."""
    return (
        (root / "benchmarks" / "__init__.py").is_file()
        and (root / "skkd" / "__init__.py").is_file()
        and (root / "pyproject.toml").is_file()
    )


def find_checkout(package_file=None, cwd=None):
    """Root folder of the skkd source checkout that holds ``benchmarks/``.

    The benchmark suites are not installed with skkd: they live in the
    top-level ``benchmarks/`` package of the source repository. Looked up, in
    order, beside the imported ``skkd`` package (an editable install or a run
    from the checkout) and in the current folder (a non-editable install run
    from the root of a checkout, as CI does).

    Parameters
    ----------
    package_file : str or path-like, optional
        A file directly inside the ``skkd`` package, such as its
        ``__init__.py`` (default: this module, of the imported package).
    cwd : str or path-like, optional
        Current folder (default: :func:`os.getcwd`).

    Returns
    -------
    root : pathlib.Path or None
        The checkout root (it holds ``skkd/``, ``benchmarks/`` and
        ``pyproject.toml``), or None when there is no checkout.

    Examples
    --------
    >>> import tempfile
    >>> find_checkout("/nonexistent/site-packages/skkd/__init__.py",
    ...               cwd=tempfile.mkdtemp()) is None
    True
    """
    from pathlib import Path

    if package_file is None:
        package_file = __file__  # skkd/cli.py: its package's parent is the root
    candidates = [
        Path(package_file).resolve().parents[1],
        Path(os.getcwd() if cwd is None else cwd).resolve(),
    ]
    return next((root for root in candidates if _is_checkout(root)), None)


def bench_suites(root=None):
    """Names of the benchmark suites: the public modules of ``benchmarks/``.

    Parameters
    ----------
    root : path-like, optional
        Checkout root (default: :func:`find_checkout`).

    Returns
    -------
    suites : list of str
        Empty when there is no source checkout.

    Examples
    --------
    >>> isinstance(bench_suites(), list)
    True
    """
    import pkgutil

    root = find_checkout() if root is None else root
    if root is None:
        return []
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(root / "benchmarks")])
        if not m.name.startswith("_")
    )


def run_bench_suite(suite, suite_args):
    """Run ``benchmarks.<suite>.main(suite_args)`` from the source checkout.

    Parameters
    ----------
    suite : str or None
        Name of a module of the checkout's ``benchmarks/`` package.
    suite_args : list of str
        Its command-line arguments; each suite owns its options.

    Returns
    -------
    status : int
        The suite's exit status; 2 without a checkout or for an unknown suite.
    """
    import importlib

    root = find_checkout()
    if root is None:
        print(NO_CHECKOUT_MESSAGE, file=sys.stderr)
        return 2
    suites = bench_suites(root)
    if suite not in suites:
        print(
            f"skkd bench: choose a suite: {', '.join(suites)}; "
            "e.g. skkd bench SUITE --help",
            file=sys.stderr,
        )
        return 2
    # benchmarks/ is a top-level package of the checkout: importable (also by
    # worker processes, which inherit sys.path) once its root is on sys.path
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(f"benchmarks.{suite}")
    return module.main(suite_args) or 0


def main(argv=None):
    """Entry point of the ``skkd`` command."""
    parser = argparse.ArgumentParser(
        prog="skkd",
        description="skkd: knowledge distillation for time-series classification. "
        "Run the demo, or a benchmark suite that writes CSV, Markdown and PNG.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train a DANN teacher and distilled students on UCI-HAR, print a table",
    )
    demo.add_argument("--scenario", default="2->11", help="source->target subjects")
    demo.add_argument("--epochs", type=int, default=10, help="epochs per model")
    demo.add_argument("--seed", type=int, default=0, help="random_state of all models")
    demo.add_argument("--data-home", default=None, help="folder with UCI-HAR subjects")
    demo.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: faster than 2 for these small nets on 2 cores)",
    )
    demo.add_argument("--save", default=None, help="also write the table to this file")
    bench = sub.add_parser(
        "bench",
        help="run a benchmark suite (skkd bench SUITE --help for its options)",
        add_help=False,
    )
    suites = ", ".join(bench_suites()) or "(in a source checkout only)"
    bench.add_argument("suite", nargs="?", help=f"one of: {suites}")
    bench.add_argument("suite_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "bench":
        return run_bench_suite(args.suite, args.suite_args)

    if args.command == "demo":
        start = time.perf_counter()
        rows = run_demo(
            args.scenario, args.epochs, args.seed, args.data_home, args.threads
        )
        table = format_table(rows, args.scenario, args.epochs, args.seed, args.threads)
        total = time.perf_counter() - start
        words = sys.argv[1:] if argv is None else list(argv)
        table += f"\n\nTotal wall time: {total:.1f} s (command: skkd {' '.join(words)})"
        print(table)
        if args.save:
            with open(args.save, "w", encoding="utf-8") as handle:
                handle.write(table + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
