"""
MemKD: teach a tiny LSTM to remember like a big one
===================================================

:class:`~skkd.distillers.memkd.MemKDClassifier` (Udayangani et al., ICASSP
2025) distils a large recurrent teacher into a recurrent student hundreds of
times smaller. For windows ``(s, e]`` of each series it matches the
*relative memory change* of the top layer's hidden state,
``r(s, e) = ||h(e) - h(s)|| / ||h(s)||``: a scalar, so the two hidden sizes
can differ without a projector. We

1. train a 2-layer LSTM teacher on ItalyPowerDemand (bundled with sktime),
2. train the same hidden-8 LSTM student alone and with MemKD,
3. compare their test AUC-PRC and sizes, and
4. plot ``r(t, t+1)`` along a test series for teacher and students.

The full benchmark (3x100 teacher, seven methods, seven data sets) is
``skkd bench memkd``.
"""

# %%
# Setup and data
# --------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import average_precision_score

from skkd import TimeSeriesClassifier
from skkd.compression import count_parameters
from skkd.datasets._sktime import load_sktime_dataset
from skkd.distillers.memkd import MemKDClassifier
from skkd.losses import relative_memory_change
from skkd.nn import LSTMClassifier

torch.set_num_threads(1)  # small recurrent nets: one thread is fastest

data = load_sktime_dataset("ItalyPowerDemand")
X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
print(X.shape, X_test.shape)


def auprc(est, X, y):
    """Macro AUC-PRC: mean over classes of one-vs-rest average precision."""
    proba = est.predict_proba(X)
    return np.mean(
        [
            average_precision_score(y == c, proba[:, k])
            for k, c in enumerate(est.classes_)
        ]
    )


# %%
# Teacher and students
# --------------------
# ``FrozenEstimator`` marks the teacher as fitted and never to be retrained.
common = {"lr": 5e-3, "batch_size": 16, "random_state": 0}
teacher = TimeSeriesClassifier(
    LSTMClassifier,
    module__hidden_size=64,
    module__num_layers=2,
    max_epochs=30,
    **common,
).fit(X, y)
base = TimeSeriesClassifier(
    LSTMClassifier, module__hidden_size=8, max_epochs=60, **common
).fit(X, y)
memkd = MemKDClassifier(
    FrozenEstimator(teacher),
    module__hidden_size=8,
    memory_weight=1.0,
    n_pairs=100,
    max_epochs=60,
    **common,
).fit(X, y)

for name, est in [("teacher", teacher), ("student alone", base), ("MemKD", memkd)]:
    print(
        f"{name:14s} params {count_parameters(est.module_):6d}  "
        f"test AUC-PRC {100 * auprc(est, X_test, y_test):.1f}"
    )

# %%
# The memory terms are logged per epoch in ``history_``
# -----------------------------------------------------
fig, ax = plt.subplots(figsize=(6, 3))
for key in ("train_ce", "train_mem_consecutive", "train_mem_random"):
    ax.plot(memkd.history_[:, key], label=key)
ax.set_xlabel("epoch")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()

# %%
# Relative memory change along a test series
# ------------------------------------------
# ``forward_sequence`` gives the top layer's hidden states over time. MemKD's
# student follows the teacher's pattern of remembering and forgetting.
x = torch.from_numpy(X_test[:1])
steps = torch.arange(x.shape[2] - 1)
with torch.no_grad():
    curves = {
        name: relative_memory_change(
            est.module_.eval().forward_sequence(x), steps, steps + 1
        )[0]
        for name, est in [
            ("teacher", teacher),
            ("student alone", base),
            ("MemKD", memkd),
        ]
    }
fig, ax = plt.subplots(figsize=(6, 3))
for name, r in curves.items():
    ax.plot(steps + 1, r, marker="o", label=name)
ax.set_xlabel("time step t")
ax.set_ylabel("r(t-1, t)")
ax.legend()
fig.tight_layout()
plt.show()
