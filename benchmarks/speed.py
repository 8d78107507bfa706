"""``skkd bench speed``: deployment cost of teachers, students and int8 students.

Two pairs on UCI-HAR windows (9 channels, 128 time steps, 6 classes):

* HAR CNN: :class:`~skkd.nn.CNN1D` (64, 128, 128) teacher versus (16, 32, 32)
  student (the UNI-KD pair);
* MemKD LSTM: :class:`~skkd.nn.LSTMClassifier` 3 x 100 teacher versus a
  1 x 8 student (the MemKD pair).

For the teacher, the student and the int8 student of each pair, in PyTorch
eager and in ONNX Runtime, it measures parameters, MACs
(:func:`skkd.compression.count_macs`), serialized bytes, peak inference memory,
batch-1 latency (p50 and p99 after warm-up, with 1 thread and with all cores)
and batch-256 throughput. Teacher/student ratios are printed next to the MAC
ratio, the ideal speed-up. The int8 students' macro-F1 change on the target
test set is measured on properly trained students. Results go to
``speed.csv`` and ``speed.md`` (default ``docs/benchmarks/``).

Speed depends on weights only through their shapes, so the teachers are
trained briefly; the CNN student is trained ``--epochs`` epochs on each
scenario because its int8 accuracy is compared.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from ._cli import output_folder, suite_parser
from ._report import environment, markdown_table, write_csv, write_report

__all__ = ["main", "measure_peak_memory", "time_calls"]

PAIRS = {
    "HAR CNN": {
        "teacher": {"module": "CNN1D", "module__widths": (64, 128, 128)},
        "student": {"module": "CNN1D", "module__widths": (16, 32, 32)},
        "onnx_int8": "onnx-static",
    },
    "MemKD LSTM": {
        "teacher": {
            "module": "LSTMClassifier",
            "module__hidden_size": 100,
            "module__num_layers": 3,
        },
        "student": {
            "module": "LSTMClassifier",
            "module__hidden_size": 8,
            "module__num_layers": 1,
        },
        "onnx_int8": "onnx-dynamic",
    },
}

# Runs in a fresh interpreter per model: measures resident-set growth.
_MEMORY_SCRIPT = r"""
import json, os, resource, sys
kind, path, c, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
batches = [int(b) for b in sys.argv[5].split(",")]

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None

def rss():
    value = status("VmRSS") if os.path.exists("/proc/self/status") else None
    if value is None:
        import psutil
        value = psutil.Process().memory_info().rss
    return value

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

def peak(reset_ok):
    if reset_ok:
        return status("VmHWM")
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

import numpy as np
if kind == "torch":
    import torch
    torch.set_num_threads(1)
    run_input = lambda b: torch.randn(b, c, t)
else:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    run_input = lambda b: np.random.default_rng(0).standard_normal((b, c, t)).astype(
        np.float32)
xs = {b: run_input(b) for b in batches}
import gc; gc.collect()
base = rss()
if kind == "torch":
    model = torch.load(path, weights_only=False).eval()
    def run(x):
        with torch.no_grad():
            model(x)
else:
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    def run(x):
        sess.run(None, {sess.get_inputs()[0].name: x})
loaded = rss()
out = {"base": base, "loaded": loaded, "peaks": {}}
for b in batches:
    ok = reset_peak()
    run(xs[b])
    out["peaks"][b] = peak(ok)
    out["method"] = "VmHWM after clear_refs" if ok else "ru_maxrss"
print(json.dumps(out))
"""


def _log(message):
    print(message, file=sys.stderr, flush=True)


def measure_peak_memory(kind, path, input_shape, batch_sizes=(1, 256)):
    """Peak resident memory of inference, measured in a fresh subprocess.

    ``tracemalloc`` does not see torch's or ONNX Runtime's allocations, so the
    resident set is measured instead. A new interpreter imports only the
    runtime (torch or onnxruntime, one thread), creates the inputs, records
    its resident set size (RSS), loads the model and, for each batch size,
    resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), runs one
    forward and reads the peak (``VmHWM``). Where the counter cannot be reset
    the process-lifetime ``ru_maxrss`` is used. The result is the peak minus
    the RSS before loading: model weights plus the forward's working memory.

    Parameters
    ----------
    kind : {"torch", "onnx"}
        ``"torch"``: ``path`` is a whole module saved with ``torch.save``;
        ``"onnx"``: an ONNX file.
    path : str
        Model file.
    input_shape : tuple of int
        ``(n_channels, n_timepoints)``.
    batch_sizes : tuple of int, default=(1, 256)
        Batch sizes measured, in order.

    Returns
    -------
    dict
        ``{batch_size: bytes}`` plus ``"method"``.

    Examples
    --------
    >>> import tempfile, os
    >>> from skkd.nn import CNN1D
    >>> from skkd.export import to_onnx
    >>> p = to_onnx(CNN1D(2, 3, widths=(4,)), os.path.join(tempfile.mkdtemp(),
    ...             "m.onnx"), n_timepoints=16)
    >>> mem = measure_peak_memory("onnx", p, (2, 16), batch_sizes=(1,))
    >>> mem[1] >= 0
    True
    """
    cmd = [
        sys.executable,
        "-c",
        _MEMORY_SCRIPT,
        kind,
        os.fspath(path),
        str(input_shape[0]),
        str(input_shape[1]),
        ",".join(str(b) for b in batch_sizes),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        int(b): max(0, int(p) - int(out["base"])) for b, p in out["peaks"].items()
    }
    result["method"] = out["method"]
    return result


def time_calls(fn, repeats, warmup):
    """Call ``fn`` ``warmup`` times untimed, then time ``repeats`` calls.

    Parameters
    ----------
    fn : callable
        No-argument function (one inference).
    repeats : int
        Timed calls.
    warmup : int
        Untimed calls first.

    Returns
    -------
    ndarray of shape (repeats,)
        Seconds per call (``time.perf_counter``).

    Examples
    --------
    >>> time_calls(lambda: None, repeats=5, warmup=1).shape
    (5,)
    """
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times


def _runners(model, kind, input_shape):
    """Return ``make(batch_size, threads) -> callable`` for one model."""
    import torch

    def make(batch_size, threads):
        x = np.random.default_rng(0).standard_normal((batch_size, *input_shape))
        x = x.astype(np.float32)
        if kind == "torch":
            xt = torch.from_numpy(x)

            def run():
                with torch.no_grad():
                    model(xt)

            def setup():
                torch.set_num_threads(threads)

            return setup, run
        from skkd.export import _ort_session

        session = _ort_session(model, threads)
        feed = {session.get_inputs()[0].name: x}
        return (lambda: None), (lambda: session.run(None, feed))

    return make


def _timing_settings(args):
    """``(thread_counts, (repeats, warm-up) at batch 1, (repeats, warm-up) at 256)``."""
    cores = os.cpu_count() or 1
    # --quick: one thread only (all-core runs are slow on busy shared machines)
    thread_counts = [("1t", 1)] if args.quick else [("1t", 1), ("all", cores)]
    lat = (args.repeats, _warmup(args))
    thr = (args.throughput_repeats, 1 if args.quick else 3)
    return thread_counts, lat, thr


def _measure_speed(model, kind, input_shape, thread_counts, lat, thr):
    make = _runners(model, kind, input_shape)
    row = {}
    for label, threads in thread_counts:
        setup, run = make(1, threads)
        setup()
        times = time_calls(run, lat[0], lat[1])
        row[f"p50_ms_{label}"] = 1e3 * float(np.median(times))
        row[f"p99_ms_{label}"] = 1e3 * float(np.percentile(times, 99))
        setup, run = make(256, threads)
        setup()
        times = time_calls(run, thr[0], thr[1])
        row[f"throughput_{label}"] = 256 / float(statistics.median(times))
    return row


def _train(spec, X, y, epochs, seed):
    from skkd import TimeSeriesClassifier
    from skkd.nn import CNN1D, LSTMClassifier

    modules = {"CNN1D": CNN1D, "LSTMClassifier": LSTMClassifier}
    kwargs = {k: v for k, v in spec.items() if k != "module"}
    clf = TimeSeriesClassifier(
        modules[spec["module"]],
        max_epochs=epochs,
        random_state=seed,
        verbose=0,
        **kwargs,
    )
    return clf.fit(X, y)


def _accuracy_rows(args, scenarios, workdir):
    """Float vs int8 student macro-F1 on each scenario's target test set."""
    from sklearn.metrics import f1_score

    from skkd.datasets import load_har_scenario
    from skkd.quantization import quantize

    rows = []
    for pair, spec in PAIRS.items():
        epochs = args.epochs if pair == "HAR CNN" else args.epochs_lstm
        for scenario in scenarios:
            d = load_har_scenario(scenario, data_home=args.data_home)
            _log(f"[accuracy] {pair} student, {scenario}: training {epochs} epochs")
            student = _train(spec["student"], d.X_src, d.y_src, epochs, args.seed)
            variants = {
                "float": student,
                "int8, PyTorch dynamic": quantize(student, "dynamic"),
                f"int8, ONNX Runtime {spec['onnx_int8'][5:]}": quantize(
                    student,
                    spec["onnx_int8"],
                    X_calib=d.X_tgt,
                    path=os.path.join(workdir, f"acc-{len(rows)}.onnx"),
                ),
            }
            f1 = {
                name: 100
                * f1_score(d.y_tgt_test, model.predict(d.X_tgt_test), average="macro")
                for name, model in variants.items()
            }
            for name, value in f1.items():
                rows.append(
                    {
                        "pair": pair,
                        "scenario": scenario,
                        "student": name,
                        "macro_f1": value,
                        "change_points": value - f1["float"],
                    }
                )
    return rows


def _speed_rows(args, workdir):
    import torch

    from skkd.compression import count_macs, count_parameters, model_bytes
    from skkd.datasets import load_har_scenario
    from skkd.export import to_onnx
    from skkd.quantization import quantize

    torch.set_num_threads(1)
    d = load_har_scenario(args.scenarios[0], data_home=args.data_home)
    input_shape = tuple(d.X_src.shape[1:])
    thread_counts, lat, thr = _timing_settings(args)
    rows = []
    for pair, spec in PAIRS.items():
        epochs = 1 if args.quick else 2
        _log(f"[speed] {pair}: training teacher and student ({epochs} epochs)")
        teacher = _train(spec["teacher"], d.X_src, d.y_src, epochs, args.seed)
        student = _train(spec["student"], d.X_src, d.y_src, epochs, args.seed)
        tag = pair.replace(" ", "_")
        models = {
            "teacher": (teacher, teacher),
            "student": (student, student),
            "int8 student": (
                quantize(student, "dynamic"),
                quantize(
                    student,
                    spec["onnx_int8"],
                    X_calib=d.X_tgt,
                    path=os.path.join(workdir, f"{tag}-int8.onnx"),
                ),
            ),
        }
        for role, (eager, ort_model) in models.items():
            params = count_parameters(student if role == "int8 student" else eager)
            macs = count_macs(student if role == "int8 student" else eager, input_shape)
            torch_path = os.path.join(workdir, f"{tag}-{role}.pt")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.save(eager.module_, torch_path)
            if role == "int8 student":
                onnx_path = ort_model.path
                onnx_label = f"int8 ({spec['onnx_int8'][5:]})"
            else:
                onnx_path = to_onnx(
                    eager, os.path.join(workdir, f"{tag}-{role}.onnx"), X_verify=d.X_tgt
                )
                onnx_label = "float"
            for runtime, model, path, nbytes, quant in (
                (
                    "PyTorch eager",
                    eager.module_.eval(),
                    torch_path,
                    model_bytes(eager),
                    "int8 (dynamic)" if role == "int8 student" else "float",
                ),
                (
                    "ONNX Runtime",
                    onnx_path,
                    onnx_path,
                    os.path.getsize(onnx_path),
                    onnx_label,
                ),
            ):
                _log(f"[speed] {pair} {role} {runtime}")
                kind = "torch" if runtime == "PyTorch eager" else "onnx"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row = {
                        "pair": pair,
                        "model": role,
                        "runtime": runtime,
                        "weights": quant,
                        "params": params,
                        "macs": macs,
                        "bytes": nbytes,
                    }
                    if kind == "onnx" or not args.quick:
                        mem = measure_peak_memory(kind, path, input_shape)
                        row["peak_mib_b1"] = mem[1] / 2**20
                        row["peak_mib_b256"] = mem[256] / 2**20
                        row["memory_method"] = mem["method"]
                    row.update(
                        _measure_speed(
                            model, kind, input_shape, thread_counts, lat, thr
                        )
                    )
                torch.set_num_threads(1)
                rows.append(row)
    return rows


def _floor_row(args, workdir, input_shape):
    """ONNX Runtime's fixed cost per call: a one-operator graph (mean over time).

    A student whose own arithmetic takes less than this cannot get closer to
    its MAC ratio at batch 1, whatever its size.
    """
    import torch

    from skkd.export import to_onnx

    class MeanOverTime(torch.nn.Module):
        def __init__(self, n_channels):
            super().__init__()
            self.n_channels = n_channels

        def forward(self, x):
            return x.mean(dim=2)

    path = to_onnx(
        MeanOverTime(input_shape[0]),
        os.path.join(workdir, "floor.onnx"),
        n_timepoints=input_shape[1],
    )
    _log("[speed] ONNX Runtime per-call floor")
    row = _measure_speed(path, "onnx", input_shape, *_timing_settings(args))
    return {"model": "one-operator graph (floor)", **row}


FIT_METHODS = ("KD", "UNI-KD", "MemKD")


def _fit_rows(args, scenario):
    """Epoch times with and without the teacher cache, as paired runs.

    Each repeat fits the same estimator twice (cache off / on, in alternating
    order so drift on a shared machine hits both alike); an epoch's time is
    skorch's ``dur``. The cache is filled before the first epoch, so the
    whole-fit time is reported too.
    """
    from sklearn.frozen import FrozenEstimator

    from skkd import KDClassifier, MemKDClassifier, UniKDClassifier
    from skkd.datasets import load_har_scenario

    d = load_har_scenario(scenario, data_home=args.data_home)
    teachers = {
        pair: _train(PAIRS[pair]["teacher"], d.X_src, d.y_src, 1, args.seed)
        for pair in ("HAR CNN", "MemKD LSTM")
    }
    makers = {
        "KD": lambda cache: KDClassifier(
            FrozenEstimator(teachers["HAR CNN"]),
            module__widths=(16, 32, 32),
            cache_teacher=cache,
        ),
        "UNI-KD": lambda cache: UniKDClassifier(
            FrozenEstimator(teachers["HAR CNN"]),
            module__widths=(16, 32, 32),
            cache_teacher=cache,
        ),
        "MemKD": lambda cache: MemKDClassifier(
            FrozenEstimator(teachers["MemKD LSTM"]),
            module__hidden_size=8,
            cache_teacher=cache,
        ),
    }
    rows = []
    for method in FIT_METHODS:
        runs = {False: [], True: []}
        for repeat in range(args.fit_repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for cache in order:
                est = makers[method](cache).set_params(
                    max_epochs=args.fit_epochs, random_state=args.seed, verbose=0
                )
                t0 = time.perf_counter()
                est.fit(d.X_src, d.y_src, d.X_tgt)
                total = time.perf_counter() - t0
                epoch = statistics.median(row["dur"] for row in est.history_)
                runs[cache].append((epoch, total))
        _log(f"[fit] {method}: {args.fit_repeats} paired runs done")
        epoch_off = [r[0] for r in runs[False]]
        epoch_on = [r[0] for r in runs[True]]
        rows.append(
            {
                "method": method,
                "epoch_s_uncached": statistics.median(epoch_off),
                "epoch_s_cached": statistics.median(epoch_on),
                "epoch_speedup": statistics.median(
                    a / b for a, b in zip(epoch_off, epoch_on, strict=True)
                ),
                "fit_s_uncached": statistics.median(r[1] for r in runs[False]),
                "fit_s_cached": statistics.median(r[1] for r in runs[True]),
                "fit_speedup": statistics.median(
                    a[1] / b[1] for a, b in zip(runs[False], runs[True], strict=True)
                ),
            }
        )
    return rows


def _fit_target(fit_rows):
    cnn = [r for r in fit_rows if r["method"] in ("KD", "UNI-KD")]
    worst = min(r["epoch_speedup"] for r in cnn)
    return {
        "target": "Caching the frozen teacher makes a KD/UNI-KD epoch faster",
        "measured": ", ".join(
            f"{r['method']} {r['epoch_speedup']:.2f}x" for r in fit_rows
        )
        + " (median epoch-time ratio, paired runs)",
        "verdict": "met" if worst > 1 else "NOT met",
    }


def _warmup(args):
    return 2 if args.quick else max(10, args.repeats // 10)


def _div(a, b):
    return a / b if a is not None and b else float("nan")


def _ratio_rows(rows):
    out = []
    index = {(r["pair"], r["model"], r["runtime"]): r for r in rows}
    for (pair, model, runtime), r in index.items():
        if model == "teacher":
            continue
        t = index[(pair, "teacher", runtime)]
        out.append(
            {
                "pair": pair,
                "runtime": runtime,
                "model": model,
                "mac_ratio": t["macs"] / r["macs"],
                "params_ratio": t["params"] / r["params"],
                "bytes_ratio": t["bytes"] / r["bytes"],
                "latency_ratio_1t": _div(t["p50_ms_1t"], r["p50_ms_1t"]),
                "latency_ratio_all": _div(t.get("p50_ms_all"), r.get("p50_ms_all")),
                "throughput_ratio_1t": _div(r["throughput_1t"], t["throughput_1t"]),
                "throughput_ratio_all": _div(
                    r.get("throughput_all"), t.get("throughput_all")
                ),
            }
        )
    return out


def _targets(ratios, acc_rows, floor, rows):
    def get(pair, runtime, model):
        return next(
            r
            for r in ratios
            if r["pair"] == pair and r["runtime"] == runtime and r["model"] == model
        )

    cnn = get("HAR CNN", "ONNX Runtime", "student")
    lstm = get("MemKD LSTM", "ONNX Runtime", "student")
    lstm_q = get("MemKD LSTM", "ONNX Runtime", "int8 student")
    lstm_eager = get("MemKD LSTM", "PyTorch eager", "student")
    cnn_int8 = [
        r for r in acc_rows if r["pair"] == "HAR CNN" and r["student"] != "float"
    ]
    worst = min((r["change_points"] for r in cnn_int8), default=float("nan"))

    def verdict(ok):
        return "met" if ok else "NOT met"

    def student_ms(pair):
        r = next(
            r
            for r in rows
            if r["pair"] == pair
            and r["model"] == "student"
            and r["runtime"] == "ONNX Runtime"
        )
        return ", ".join(
            f"{label} student p50 {r[f'p50_ms_{key}']:.3f} ms vs floor "
            f"{floor[f'p50_ms_{key}']:.3f} ms"
            for key, label in (("1t", "1 thread:"), ("all", "all cores:"))
            if f"p50_ms_{key}" in r
        )

    lat = np.nanmin([cnn["latency_ratio_1t"], cnn["latency_ratio_all"]])
    lstm_lat = np.nanmin([lstm["latency_ratio_1t"], lstm["latency_ratio_all"]])
    best_bytes = max(lstm["bytes_ratio"], lstm_q["bytes_ratio"])
    return [
        {
            "target": "HAR CNN: student batch-1 latency in ONNX Runtime >= 5x lower",
            "measured": f"{lat:.1f}x (worse of 1 thread {cnn['latency_ratio_1t']:.1f}x"
            f" / all cores {cnn['latency_ratio_all']:.1f}x; MAC ratio "
            f"{cnn['mac_ratio']:.1f}x; {student_ms('HAR CNN')})",
            "verdict": verdict(lat >= 5),
        },
        {
            "target": "HAR CNN: int8 student within 1 macro-F1 point of float",
            "measured": f"worst change {worst:+.2f} points over "
            f"{len(cnn_int8)} int8 variant x scenario(s)",
            "verdict": verdict(worst >= -1),
        },
        {
            "target": "MemKD LSTM: student >= 20x faster at batch 1 in ONNX Runtime",
            "measured": f"{lstm_lat:.1f}x (worse of 1 thread "
            f"{lstm['latency_ratio_1t']:.1f}x / all cores "
            f"{lstm['latency_ratio_all']:.1f}x; MAC ratio {lstm['mac_ratio']:.0f}x; "
            f"{student_ms('MemKD LSTM')})",
            "verdict": verdict(lstm_lat >= 20),
        },
        {
            "target": "MemKD LSTM: student >= 500x smaller in bytes",
            "measured": f"ONNX file {lstm['bytes_ratio']:.0f}x (float), "
            f"{lstm_q['bytes_ratio']:.0f}x (int8); PyTorch state_dict "
            f"{lstm_eager['bytes_ratio']:.0f}x; parameters "
            f"{lstm['params_ratio']:.0f}x",
            "verdict": verdict(best_bytes >= 500),
        },
    ]


SPEED_COLUMNS = [
    "pair",
    "model",
    "runtime",
    "weights",
    "params",
    "macs",
    "bytes",
    "peak_mib_b1",
    "peak_mib_b256",
    "p50_ms_1t",
    "p99_ms_1t",
    "p50_ms_all",
    "p99_ms_all",
    "throughput_1t",
    "throughput_all",
]


def _parser():
    parser = suite_parser("speed", __doc__.split("\n\n")[0], quick="few calls, < 60 s")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=["2->11"],
        help="HAR scenarios for the int8 accuracy check (first: speed data)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="CNN student epochs")
    parser.add_argument(
        "--epochs-lstm", type=int, default=20, help="LSTM student epochs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=300, help="timed batch-1 calls per setting"
    )
    parser.add_argument(
        "--throughput-repeats", type=int, default=20, help="timed batch-256 calls"
    )
    parser.add_argument(
        "--fit-repeats", type=int, default=5, help="paired fits per method"
    )
    parser.add_argument(
        "--fit-epochs", type=int, default=3, help="epochs of each timed fit"
    )
    return parser


def main(argv=None):
    """Run the speed benchmark (``skkd bench speed``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench speed`` (see ``--help``).

    Returns
    -------
    status : int
        0 on success.

    Examples
    --------
    >>> main(["--quick"])  # doctest: +SKIP
    0
    """
    import torch

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.quick:
        args.repeats, args.throughput_repeats = 20, 2
        args.epochs, args.epochs_lstm = 1, 1
        args.fit_repeats, args.fit_epochs = 1, 1
        args.scenarios = args.scenarios[:1]
    start = time.perf_counter()
    torch.set_num_threads(1)
    out = output_folder(args, "speed")
    out.mkdir(parents=True, exist_ok=True)
    env = environment(["speed", *argv])
    import onnxruntime

    env["onnxruntime"] = onnxruntime.__version__
    with tempfile.TemporaryDirectory(prefix="skkd-speed-models-") as workdir:
        rows = _speed_rows(args, workdir)
        floor = _floor_row(args, workdir, (9, 128))
        acc_rows = _accuracy_rows(args, args.scenarios, workdir)
    fit_rows = _fit_rows(args, args.scenarios[0])
    ratios = _ratio_rows(rows)
    targets = _targets(ratios, acc_rows, floor, rows)

    columns = [*SPEED_COLUMNS, "memory_method"]
    write_csv(out / "speed.csv", rows, columns, extrasaction="ignore")

    for r in rows:
        r["macs_m"] = r["macs"] / 1e6
    speed_table = markdown_table(
        rows,
        [
            "pair",
            "model",
            "runtime",
            "weights",
            "params",
            "macs_m",
            "bytes",
            "peak_mib_b1",
            "peak_mib_b256",
            "p50_ms_1t",
            "p99_ms_1t",
            "p50_ms_all",
            "p99_ms_all",
            "throughput_1t",
            "throughput_all",
        ],
        [
            "pair",
            "model",
            "runtime",
            "weights",
            "params",
            "MMACs",
            "bytes",
            "peak MiB b1",
            "peak MiB b256",
            "p50 ms 1T",
            "p99 ms 1T",
            f"p50 ms {os.cpu_count()}T",
            f"p99 ms {os.cpu_count()}T",
            "samples/s b256 1T",
            f"samples/s b256 {os.cpu_count()}T",
        ],
        floatfmt=".3g",
    )
    ratio_table = markdown_table(
        ratios,
        [
            "pair",
            "runtime",
            "model",
            "mac_ratio",
            "params_ratio",
            "bytes_ratio",
            "latency_ratio_1t",
            "latency_ratio_all",
            "throughput_ratio_1t",
            "throughput_ratio_all",
        ],
        [
            "pair",
            "runtime",
            "vs teacher",
            "MAC ratio (ideal)",
            "params",
            "bytes",
            "latency b1 1T",
            f"latency b1 {os.cpu_count()}T",
            "throughput b256 1T",
            f"throughput b256 {os.cpu_count()}T",
        ],
        floatfmt=".1f",
    )
    acc_table = markdown_table(
        acc_rows,
        ["pair", "scenario", "student", "macro_f1", "change_points"],
        ["pair", "scenario", "student", "target macro-F1 (%)", "change (points)"],
    )
    targets.append(_fit_target(fit_rows))
    target_table = markdown_table(targets, ["target", "measured", "verdict"])
    fit_table = markdown_table(
        fit_rows,
        [
            "method",
            "epoch_s_uncached",
            "epoch_s_cached",
            "epoch_speedup",
            "fit_s_uncached",
            "fit_s_cached",
            "fit_speedup",
        ],
        [
            "method",
            "epoch s, teacher per step",
            "epoch s, cached teacher",
            "epoch speed-up",
            f"fit s ({args.fit_epochs} epochs), per step",
            f"fit s ({args.fit_epochs} epochs), cached",
            "fit speed-up",
        ],
        floatfmt=".3g",
    )
    mem_method = next(
        (r["memory_method"] for r in rows if "memory_method" in r), "not measured"
    )
    quick_note = (
        "(--quick: few calls, 1 thread only, eager memory skipped.)"
        if args.quick
        else ""
    )
    intro = f"""
Teacher, student and int8 student of the HAR CNN pair (CNN1D 64/128/128 vs
16/32/32) and the MemKD LSTM pair (LSTM 3x100 vs 1x8), on UCI-HAR windows
(9 channels x 128 steps), in PyTorch eager and ONNX Runtime
{onnxruntime.__version__} (CPUExecutionProvider). Parameters and MACs are
those of the float model (``skkd.compression``; MACs count conv, linear and
recurrent layers). Bytes: ``torch.save(state_dict)`` size in eager, the
``.onnx`` file size in ONNX Runtime. int8 student: PyTorch dynamic
quantization (Linear/LSTM/GRU; a CNN keeps float convolutions) in eager;
ONNX Runtime static QDQ quantization calibrated on the unlabelled target set
(CNN) or dynamic quantization (LSTM) in ONNX Runtime.

Latency: batch 1, median (p50) and p99 of {args.repeats} calls after
{_warmup(args)} warm-up calls, with 1 thread and with all
{os.cpu_count()} cores (``torch.set_num_threads`` / ONNX Runtime
``intra_op_num_threads``). Throughput: samples/s at batch 256, median of
{args.throughput_repeats} calls. Peak memory: in a fresh interpreter per model
that imports only the runtime (one thread), peak resident set during one
forward minus the resident set before the model was loaded (weights plus
working memory; tracemalloc cannot see torch allocations). Method:
{mem_method}. {quick_note}
Floor: ONNX Runtime's fixed cost per call, measured the same way on a
one-operator graph (mean over time) with the same input; no model runs
faster, so a student close to it cannot reach its MAC ratio at batch 1.
Ratios are teacher/student (speed-ups and size reductions); the MAC ratio is
the ideal speed-up.
"""
    sections = [
        ("Targets", target_table),
        ("Teacher / student ratios (next to the MAC ratio)", ratio_table),
        ("Measurements", speed_table),
        (
            "int8 accuracy (target test set, students trained "
            f"{args.epochs} (CNN) / {args.epochs_lstm} (LSTM) epochs)",
            acc_table,
        ),
        (
            "Fit speed: frozen-teacher cache (``cache_teacher``)",
            f"Scenario {args.scenarios[0]} (source train split, unlabelled "
            f"target train split); medians of {args.fit_repeats} paired runs "
            f"(cache off / on, alternating order), {args.fit_epochs} epochs "
            "each, 1 thread. KD and UNI-KD distil the HAR CNN teacher into the "
            "16/32/32 student, MemKD the 3x100 LSTM into the hidden-8 LSTM. "
            "Speed-ups are medians of the per-pair ratios.\n\n" + fit_table,
        ),
    ]
    wall = time.perf_counter() - start
    env_note = dict(env)
    env_note["sklearn"] = f"{env['sklearn']}, onnxruntime {env['onnxruntime']}"
    path = write_report(
        out / "speed.md",
        "Deployment speed: teachers, students, int8 students",
        intro,
        sections,
        env_note,
        wall,
    )
    write_csv(out / "speed_accuracy.csv", acc_rows)
    print(target_table)
    print()
    print(ratio_table)
    print()
    print(speed_table)
    print()
    print(acc_table)
    print()
    print(fit_table)
    _log(f"wrote {path} and {out / 'speed.csv'} in {wall:.0f} s")
    return 0


if __name__ == "__main__":  # python -m benchmarks.speed
    sys.exit(main())
