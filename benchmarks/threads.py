"""``skkd bench threads``: fit time against the number of torch threads.

torch starts one intra-op thread per core. For skkd's small networks and
mini-batches of 32 series, the cost of waking and joining those threads can
exceed the work they share. This suite measures it: every configuration is
fitted with 1, 2 and all cores' torch threads (the estimator's ``n_threads``),
on HAR-sized data (a UCI-HAR scenario: 9 channels, 128 time points, a few
hundred windows per domain) and on sktime-sized data (sktime's bundled
GunPoint and BasicMotions: 50 and 40 training series). The runs of one
repeat are paired: each thread count is timed once per repeat, in an order
that rotates between repeats so that drift on a shared machine cancels. A
run's time is the wall time of ``fit`` alone. The report gives per
configuration the median time of each thread count and the median of the
paired ratios (time / time with 1 thread), and the load average of the
machine before and after the run: numbers measured under load say little.
"""

import os
import statistics
import sys
import time

from ._cli import output_folder, suite_parser
from ._report import bar_plot, environment, markdown_table, write_csv, write_report

__all__ = ["CONFIGS", "main", "thread_counts", "time_fits"]

#: (data, model, estimator class, parameters); HAR rows use the demo's nets
CONFIGS = [
    ("HAR", "DANN teacher 64/128/128", "DANNClassifier", {"widths": (64, 128, 128)}),
    ("HAR", "DANN student 16/32/32", "DANNClassifier", {"widths": (16, 32, 32)}),
    ("HAR", "CNN 16/32/32, source only", "TimeSeriesClassifier", {}),
    ("GunPoint", "CNN 64/128/128", "TimeSeriesClassifier", {"widths": (64, 128, 128)}),
    ("BasicMotions", "CNN 16/32/32", "TimeSeriesClassifier", {}),
]

COLUMNS = ["data", "model", "threads", "repeat", "seconds"]


def thread_counts(cores=None):
    """The thread counts compared: 1, 2 and every core, without repeats.

    Parameters
    ----------
    cores : int, optional
        Number of cores (default ``os.cpu_count()``).

    Returns
    -------
    counts : list of int

    Examples
    --------
    >>> thread_counts(2), thread_counts(8)
    ([1, 2], [1, 2, 8])
    """
    cores = cores or os.cpu_count() or 1
    return sorted({1, min(2, cores), cores})


def _load(data, scenario, data_home):
    from skkd.datasets import load_har_scenario, load_sktime_dataset

    if data == "HAR":
        d = load_har_scenario(scenario, data_home=data_home)
        return d.X_src, d.y_src, d.X_tgt
    d = load_sktime_dataset(data)
    return d.X_train, d.y_train, d.X_test


def time_fits(estimator, X, y, X_tgt, counts, repeats):
    """Paired timings of ``estimator.fit`` at each thread count.

    Parameters
    ----------
    estimator : skkd estimator
        Cloned for every run, with ``n_threads`` set to the count.
    X, y, X_tgt : arrays
        Training data (``X_tgt`` is passed when the estimator uses it).
    counts : list of int
        Thread counts.
    repeats : int
        Runs per thread count; repeat ``r`` starts with ``counts[r % k]``.
        One untimed fit comes first.

    Returns
    -------
    times : dict of int to list of float
        Seconds of each run, per thread count, in repeat order.

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(n_samples=24, random_state=0)
    >>> est = TimeSeriesClassifier(module__widths=(4,), max_epochs=1)
    >>> times = time_fits(est, d.X_src, d.y_src, None, [1, 2], repeats=2)
    >>> sorted(times), len(times[1])
    ([1, 2], 2)
    """
    from sklearn.base import clone

    times = {n: [] for n in counts}
    # one untimed fit first: allocator, kernels and thread pools warm up
    warm = clone(estimator).set_params(n_threads=counts[0])
    warm.fit(X, y) if X_tgt is None else warm.fit(X, y, X_tgt)
    for r in range(repeats):
        shift = r % len(counts)
        for n in counts[shift:] + counts[:shift]:
            est = clone(estimator).set_params(n_threads=n)
            start = time.perf_counter()
            est.fit(X, y) if X_tgt is None else est.fit(X, y, X_tgt)
            times[n].append(time.perf_counter() - start)
    return times


def _summary(rows, counts):
    table = []
    keys = list(dict.fromkeys((r["data"], r["model"]) for r in rows))
    for data, model in keys:
        runs = [r for r in rows if (r["data"], r["model"]) == (data, model)]
        by = {n: [r["seconds"] for r in runs if r["threads"] == n] for n in counts}
        row = {"data": data, "model": model}
        for n in counts:
            row[f"{n} thread(s), s"] = statistics.median(by[n])
            if n == 1:
                continue
            ratios = [t / one for t, one in zip(by[n], by[1], strict=True)]
            row[f"{n} / 1"] = statistics.median(ratios)
        table.append(row)
    return table


def _parser():
    parser = suite_parser(
        "threads", __doc__, quick="smoke run: 1 epoch, 2 repeats, small nets"
    )
    parser.add_argument("--scenario", default="2->11", help="UCI-HAR scenario")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per fit")
    parser.add_argument("--repeats", type=int, default=5, help="runs per setting")
    return parser


def main(argv=None):
    """Run the suite (``skkd bench threads --help``)."""
    import skkd

    args = _parser().parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 1, 2
    configs = [c for c in CONFIGS if not (args.quick and "64/128" in c[1])]
    counts = thread_counts()
    load_before = os.getloadavg()
    start = time.perf_counter()
    rows, cache = [], {}
    for data, model, cls_name, extra in configs:
        if data not in cache:
            cache[data] = _load(data, args.scenario, args.data_home)
        X, y, X_tgt = cache[data]
        est = getattr(skkd, cls_name)(
            module__widths=extra.get("widths", (16, 32, 32)),
            max_epochs=args.epochs,
            random_state=0,
        )
        uses_target = est.__sklearn_tags__().time_series.target != "ignored"
        times = time_fits(
            est, X, y, X_tgt if uses_target else None, counts, args.repeats
        )
        for n, seconds in times.items():
            for r, s in enumerate(seconds):
                rows.append({"data": data, "model": model, "threads": n,
                             "repeat": r, "seconds": s})  # fmt: skip
        print(f"{data} {model}: {times}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    summary = _summary(rows, counts)
    table = markdown_table(summary, list(summary[0]), floatfmt=".3g")
    load = (
        f"Load average (1, 5, 15 min) before the run: "
        f"{', '.join(f'{v:.2f}' for v in load_before)}; after: "
        f"{', '.join(f'{v:.2f}' for v in load_after)}, on {os.cpu_count()} cores. "
        f"{args.epochs} epoch(s) per fit, {args.repeats} paired repeat(s)."
    )
    print(table)
    out = output_folder(args, "threads")
    write_csv(out / "threads.csv", rows, COLUMNS)
    bar_plot(
        out / "threads.png",
        [f"{r['data']}: {r['model']}" for r in summary],
        {
            f"{n} thread(s)": (
                [r[f"{n} thread(s), s"] for r in summary],
                [0.0] * len(summary),
            )  # fmt: skip
            for n in counts
        },
        "median fit time (s)",
        "skkd bench threads",
    )
    write_report(
        out / "threads.md",
        "skkd bench threads",
        __doc__,
        [("Median fit time by torch threads", load + "\n\n" + table)],
        environment(["threads", *(sys.argv[1:] if argv is None else argv)]),
        time.perf_counter() - start,
    )
    return 0


if __name__ == "__main__":  # python -m benchmarks.threads
    sys.exit(main())
