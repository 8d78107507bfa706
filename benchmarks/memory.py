"""``skkd bench memory``: peak memory of a fit against the size of the data.

Each measurement runs in a fresh Python process (peak RSS is a per-process
high-water mark). The process imports skkd, allocates ``X`` (and ``X_tgt``)
of shape ``(n, 9, 128)`` (UCI-HAR's windows) and a label vector, and reads
its resident memory (``baseline``: interpreter, libraries and the user's
arrays). It then fits one epoch and reads the peak RSS
(``resource.getrusage``). ``overhead = peak - baseline`` is what training
adds on top of the user's arrays; if skkd streams the data through
mini-batches it depends on the batch size and not on ``n``. Rows with
``dtype=float64`` show the one dataset-sized cost skkd cannot avoid: casting
the user's array to float32.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ._cli import output_folder, suite_parser
from ._report import environment, markdown_table, write_csv, write_report

__all__ = ["main", "measure"]

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
import skkd

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

n, batch, method, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
X = rng.standard_normal((n, 9, 128), dtype=dtype)  # no temporary copy
y = np.arange(n) % 6
X_tgt = None
if method == "dann":
    X_tgt = rng.standard_normal((n, 9, 128), dtype=dtype)
data_mb = (X.nbytes + (0 if X_tgt is None else X_tgt.nbytes)) / 2**20
baseline = rss_mb()
cls = skkd.DANNClassifier if method == "dann" else skkd.TimeSeriesClassifier
est = cls(module__widths=(16, 32, 32), max_epochs=1, batch_size=batch, random_state=0)
start = time.perf_counter()
est.fit(X, y, X_tgt) if X_tgt is not None else est.fit(X, y)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n": n, "batch_size": batch, "method": method, "dtype": dtype,
                  "data_mb": data_mb, "baseline_mb": baseline, "peak_mb": peak,
                  "overhead_mb": peak - baseline, "fit_seconds": seconds}))
"""


def measure(n_samples, batch_size, method="supervised", dtype="float32"):
    """Fit once in a fresh process and return its memory figures.

    Parameters
    ----------
    n_samples : int
        Series in ``X`` (and in ``X_tgt`` for ``method="dann"``).
    batch_size : int
        Mini-batch size.
    method : {"supervised", "dann"}, default="supervised"
        ``TimeSeriesClassifier`` on ``X``, or ``DANNClassifier`` on ``X`` and
        an ``X_tgt`` of the same size.
    dtype : {"float32", "float64"}, default="float32"
        dtype of the user's arrays.

    Returns
    -------
    dict
        ``data_mb`` (the user's arrays), ``baseline_mb`` (RSS before fit),
        ``peak_mb`` (peak RSS), ``overhead_mb`` (peak - baseline) and
        ``fit_seconds``.

    Examples
    --------
    >>> row = measure(256, 64)  # doctest: +SKIP
    >>> row["overhead_mb"] < 200  # doctest: +SKIP
    True
    """
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root), env.get("PYTHONPATH")])
    )
    args = [str(n_samples), str(batch_size), method, dtype]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


COLUMNS = [
    "method",
    "dtype",
    "n",
    "batch_size",
    "data_mb",
    "baseline_mb",
    "peak_mb",
    "overhead_mb",
    "fit_seconds",
]


def _parser():
    parser = suite_parser("memory", __doc__, data_home=False)
    parser.add_argument("--n-samples", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 256])
    parser.add_argument(
        "--method", nargs="+", default=["supervised", "dann"], help="supervised, dann"
    )
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    return parser


def main(argv=None):
    """Run the suite (``skkd bench memory --help``)."""
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    rows = []
    for method in args.method:
        for dtype in args.dtype:
            for n in args.n_samples:
                for batch in args.batch_size:
                    row = measure(n, batch, method, dtype)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
    table = markdown_table(rows, COLUMNS, floatfmt=".1f")
    print(table)
    out = output_folder(args, "memory")
    write_csv(out / "memory.csv", rows, COLUMNS, extrasaction="ignore")
    write_report(
        out / "memory.md",
        "skkd bench memory",
        __doc__,
        [("Peak memory (MB)", table)],
        environment(["memory", *(sys.argv[1:] if argv is None else argv)], threads=1),
        time.perf_counter() - start,
    )
    return 0


if __name__ == "__main__":  # python -m benchmarks.memory
    sys.exit(main())
