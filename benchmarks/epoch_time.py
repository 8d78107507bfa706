"""``skkd bench epoch_time``: the epoch time of a method against UNI-KD's.

On one UCI-HAR scenario with the ``har`` suite's DANN teacher (from its cache)
and students (CNN 16/32/32, each method's recipe), every configuration is
fitted ``--repeats`` times in paired rounds whose order rotates, so that drift
on a shared machine cancels. A fit's epoch time is the median of skorch's
per-epoch ``dur`` over its epochs; the report gives the median over rounds and
the median of the paired ratios to the reference (UNI-KD), with the machine's
load average before and after. A configuration is ``METHOD`` or
``METHOD:KEY=VALUE,KEY=VALUE`` (constructor parameters).
"""

import ast
import os
import sys
import time

from ._cli import output_folder, suite_parser
from ._report import bar_plot, environment, markdown_table, write_report

__all__ = ["main", "parse_config", "time_configs"]

DEFAULT_CONFIGS = [
    "unikd",
    "rcdkd",
    "rcdkd:mc_resample=step",
    "rcdkd:mc_resample=step,q_network__hidden=256",
]


def parse_config(config):
    """Split ``"method:key=value,key=value"`` into the method and its parameters.

    Parameters
    ----------
    config : str

    Returns
    -------
    method : str
    params : dict

    Examples
    --------
    >>> parse_config("rcdkd:mc_resample=step,q_network__hidden=256")
    ('rcdkd', {'mc_resample': 'step', 'q_network__hidden': 256})
    >>> parse_config("unikd")
    ('unikd', {})
    """
    method, _, rest = config.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE in {config!r}, got {item!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return method, params


def time_configs(
    configs, scenario, epochs, repeats, data_home=None, cache=None, teacher_epochs=10
):
    """Paired, order-rotating fits of every configuration; epoch times.

    Parameters
    ----------
    configs : list of str
        See :func:`parse_config`; the first is the reference.
    scenario : str
        UCI-HAR ``"source->target"``.
    epochs, repeats : int
        Epochs per fit and paired rounds.
    data_home, cache : str, optional
        UCI-HAR folder and the ``har`` suite's teacher cache.
    teacher_epochs : int, default=10
        Epochs of the DANN teacher (the ``har`` suite's).

    Returns
    -------
    rows : list of dict
        One per (round, configuration): ``config``, ``round``,
        ``epoch_seconds``.

    Examples
    --------
    >>> rows = time_configs(["unikd", "kd"], "2->11", 1, 1)  # doctest: +SKIP
    """
    import numpy as np
    import torch

    from skkd.datasets import load_har_scenario

    from ._teachers import load_or_fit_teacher
    from .har import _student

    torch.set_num_threads(1)
    data = load_har_scenario(scenario, data_home=data_home)
    teacher, _ = load_or_fit_teacher("dann", scenario, 0, teacher_epochs, data, cache)
    rows = []
    for r in range(repeats):
        shift = r % len(configs)
        for config in configs[shift:] + configs[:shift]:
            method, params = parse_config(config)
            model = _student(method, teacher, 0, epochs, params)
            model.fit(data.X_src, data.y_src, data.X_tgt)
            seconds = float(np.median(model.history[:, "dur"]))
            rows.append({"config": config, "round": r, "epoch_seconds": seconds})
            print(f"[epoch_time] round {r} {config}: {seconds:.3f} s/epoch", flush=True)
    return rows


def summarise(rows, reference):
    """Median epoch time per configuration and median paired ratio.

    Parameters
    ----------
    rows : list of dict
        From :func:`time_configs`.
    reference : str
        The configuration every ratio divides by.

    Returns
    -------
    table : list of dict

    Examples
    --------
    >>> rows = [{"config": c, "round": r, "epoch_seconds": s}
    ...         for r in (0, 1) for c, s in (("a", 1.0 + r), ("b", 3.0 + 3 * r))]
    >>> [(t["config"], t["ratio"]) for t in summarise(rows, "a")]
    [('a', 1.0), ('b', 3.0)]
    """
    import numpy as np

    by = {}
    for r in rows:
        by.setdefault(r["config"], {})[r["round"]] = r["epoch_seconds"]
    table = []
    for config, times in by.items():
        ratios = [t / by[reference][k] for k, t in times.items() if k in by[reference]]
        table.append(
            {
                "config": config,
                "median": float(np.median(list(times.values()))),
                "ratio": float(np.median(ratios)),
                "rounds": len(times),
            }
        )
    return table


def _parser():
    p = suite_parser(
        "epoch_time",
        "Epoch time of methods against UNI-KD on one UCI-HAR scenario "
        "(paired, rotating rounds); writes epoch_time.csv/.md/.png.",
        quick="smoke run: 1 epoch, 1 round, UNI-KD and KD",
        teacher_cache="teacher cache shared with skkd bench har (default: none)",
    )
    p.add_argument("--scenario", default="2->11")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    return p


def main(argv=None):
    """Run the epoch-time comparison (``skkd bench epoch_time``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench epoch_time`` (see ``--help``).

    Returns
    -------
    status : int

    Examples
    --------
    >>> main(["--quick"])  # doctest: +SKIP
    0
    """
    import csv

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.quick:
        args.configs, args.epochs, args.repeats = ["unikd", "kd"], 1, 2
    start = time.perf_counter()
    out = output_folder(args, "epoch_time")
    load_before = os.getloadavg()
    rows = time_configs(
        args.configs,
        args.scenario,
        args.epochs,
        args.repeats,
        args.data_home,
        args.teacher_cache,
        1 if args.quick else 10,
    )
    load_after = os.getloadavg()
    with open(out / "epoch_time.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["config", "round", "epoch_seconds"])
        writer.writeheader()
        writer.writerows(rows)
    table = summarise(rows, args.configs[0])
    intro = (
        f"Median epoch time (s) of each configuration on UCI-HAR {args.scenario} "
        f"(DANN teacher 64/128/128 from the `har` cache, students CNN 16/32/32 with "
        f"each method's `har` recipe, {args.epochs} epochs per fit, 1 torch thread), "
        f"over {args.repeats} paired rounds in rotating order; ratio: median of the "
        f"paired ratios to `{args.configs[0]}`. Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in load_after)}."
    )
    body = markdown_table(
        table,
        ["config", "median", "ratio", "rounds"],
        ["configuration", "epoch time (s)", f"ratio to {args.configs[0]}", "rounds"],
    )
    write_report(
        out / "epoch_time.md",
        "Epoch time against UNI-KD (UCI-HAR)",
        intro,
        [("Epoch time", body)],
        environment(["epoch_time", *argv], threads=1),
        time.perf_counter() - start,
    )
    bar_plot(
        out / "epoch_time.png",
        [t["config"] for t in table],
        {"ratio": ([t["ratio"] for t in table], [float("nan")] * len(table))},
        f"epoch time / {args.configs[0]}",
        "Epoch time against UNI-KD",
    )
    print(body)
    return 0


if __name__ == "__main__":  # python -m benchmarks.epoch_time
    sys.exit(main())
