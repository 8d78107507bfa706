"""
Deploy a student: quantize, export to ONNX, run in ONNX Runtime
===============================================================

A small CNN student for cross-subject activity recognition (UCI-HAR, subject
2 -> subject 11) goes from a fitted skkd estimator to an int8 ONNX file that
runs with ``onnxruntime`` and ``numpy`` alone. We

1. train the student quickly (here supervised on the source subject; a
   distilled student from any skkd distiller is deployed the same way),
2. export it to ONNX, verified against PyTorch on the target series,
3. quantize it to int8 with ONNX Runtime static quantization, calibrated on
   the unlabelled target series,
4. run both files in ONNX Runtime and compare outputs and accuracy,
5. plot batch-1 latency of PyTorch eager, ONNX Runtime float and int8.

Needs the export extra: ``pip install "skkd[export]"``.
"""

# %%
# Train a small student
# ---------------------
# One PyTorch thread: small nets gain nothing from intra-op threading.
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
import torch
from sklearn.metrics import f1_score

from skkd import TimeSeriesClassifier
from skkd.compression import measure_latency
from skkd.datasets import load_har_scenario
from skkd.export import measure_onnx_latency, to_onnx
from skkd.nn import CNN1D
from skkd.quantization import quantization_report, quantize

torch.set_num_threads(1)
d = load_har_scenario("2->11")
student = TimeSeriesClassifier(
    CNN1D, module__widths=(16, 32, 32), max_epochs=10, random_state=0
)
student.fit(d.X_src, d.y_src)
f1 = f1_score(d.y_tgt_test, student.predict(d.X_tgt_test), average="macro")
print(f"float student, target macro-F1: {100 * f1:.2f}")

# %%
# Export to ONNX (verified)
# -------------------------
# ``to_onnx`` writes a graph with a dynamic batch axis, then runs it in ONNX
# Runtime on random inputs and on ``X_verify`` and compares with PyTorch: a
# difference above ``atol=1e-4`` removes the file and raises.
workdir = tempfile.mkdtemp()
float_path = to_onnx(student, os.path.join(workdir, "student.onnx"), X_verify=d.X_tgt)

# %%
# Quantize to int8
# ----------------
# Static quantization calibrates activation ranges on unlabelled data from the
# deployment distribution: the target series ``X_tgt``.
int8 = quantize(
    student, "onnx-static", X_calib=d.X_tgt, path=os.path.join(workdir, "int8.onnx")
)
report = quantization_report(student, int8, d.X_tgt_test, d.y_tgt_test, repeats=100)
print(report)

# %%
# Run in ONNX Runtime, as on the device
# -------------------------------------
# Only ``onnxruntime`` and ``numpy`` are needed here; the graph returns logits.
sess = ort.InferenceSession(float_path, providers=["CPUExecutionProvider"])
logits = sess.run(None, {"input": d.X_tgt_test.astype(np.float32)})[0]
with torch.no_grad():
    ref = student.module_.eval()(torch.from_numpy(d.X_tgt_test)).numpy()
print(
    f"max |ONNX Runtime - PyTorch| logit difference: {np.abs(logits - ref).max():.2e}"
)
pred = student.classes_[logits.argmax(axis=1)]
print(
    f"same predictions as PyTorch: {np.mean(pred == student.predict(d.X_tgt_test)):.0%}"
)

# %%
# Batch-1 latency
# ---------------
shape = d.X_src.shape[1:]
latency_ms = {
    "PyTorch eager\n(float)": measure_latency(student, shape, repeats=200)["median"],
    "ONNX Runtime\n(float)": measure_onnx_latency(
        float_path, shape, repeats=200, threads=1
    )["median"],
    "ONNX Runtime\n(int8)": measure_onnx_latency(
        int8.path, shape, repeats=200, threads=1
    )["median"],
}
fig, ax = plt.subplots(figsize=(6, 3.5))
names = list(latency_ms)
values = [1e3 * v for v in latency_ms.values()]
ax.bar(names, values, color=["#888888", "#4c72b0", "#55a868"])
for i, v in enumerate(values):
    ax.text(i, v, f"{v:.3f}", ha="center", va="bottom")
ax.set_ylabel("median latency, batch 1 (ms)")
ax.set_title("CNN student (16/32/32), 1 thread")
fig.tight_layout()
plt.show()
