"""
ITMC: distil and prune a student, epoch by epoch
================================================

:class:`~skkd.ITMCClassifier` starts from a copy of the teacher and alternates
two modules every epoch: transfer knowledge distillation from a teacher copy
that keeps adapting to the target domain (MMD), and adaptive channel pruning
that removes the student's least important channels (Taylor importance of the
distillation loss) on a cubic schedule, until the student has at most the
requested number of parameters. Here, on the cross-subject UCI-HAR scenario
2 -> 11 that ships with skkd, we follow the target accuracy and the number of
channels per epoch, and check that the final student is physically smaller.
"""

# %%
# A teacher, then ITMC
# --------------------
# One PyTorch thread: the fastest setting for nets this small on small machines.
import matplotlib.pyplot as plt
import torch
from sklearn.frozen import FrozenEstimator
from skorch.callbacks import Callback

from skkd import DANNClassifier, ITMCClassifier
from skkd.compression import compression_report
from skkd.datasets import load_har_scenario

torch.set_num_threads(1)
d = load_har_scenario("2->11")

teacher = DANNClassifier(module__widths=(32, 64, 64), max_epochs=6, random_state=0)
teacher.fit(d.X_src, d.y_src, d.X_tgt)


class TargetAccuracy(Callback):
    """Score the target test set after every epoch (after its pruning step)."""

    def on_epoch_end(self, net, **kwargs):
        net.history.record("target_acc", net.score(d.X_tgt_test, d.y_tgt_test))


student = ITMCClassifier(
    FrozenEstimator(teacher),
    target_ratio=0.1,  # keep 10% of the teacher's parameters
    max_epochs=8,  # 2 warm-up, 4 pruning, 2 recovery epochs
    warmup_epochs=2,
    pruning_epochs=4,
    callbacks=[("target_acc", TargetAccuracy())],
    random_state=0,
)
student.fit(d.X_src, d.y_src, d.X_tgt)
print(f"teacher target accuracy: {teacher.score(d.X_tgt_test, d.y_tgt_test):.3f}")
print(f"student target accuracy: {student.score(d.X_tgt_test, d.y_tgt_test):.3f}")
print("student widths:", student.module_.widths)

# %%
# Accuracy and channels per epoch
# -------------------------------
# Nothing is pruned during warm-up; the cubic schedule removes many channels
# first and fewer later; the recovery epochs fine-tune the final student.
h = student.history_
epochs = h[:, "epoch"]
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(epochs, h[:, "target_acc"], marker="o", color="C0")
ax.set_xlabel("epoch")
ax.set_ylabel("target accuracy", color="C0")
ax.set_ylim(0, 1.05)
ax2 = ax.twinx()
ax2.step(epochs, h[:, "n_channels"], where="post", color="C1", marker="s")
ax2.set_ylabel("student channels (conv filters)", color="C1")
e0, e1 = student.prune_epochs_
ax.axvspan(e0 + 0.5, e1 + 0.5, color="0.9", zorder=-1, label="pruning epochs")
ax.legend(loc="lower right")
ax.set_title("ITMC on UCI-HAR 2 -> 11")
fig.tight_layout()

# %%
# The pruned student is physically smaller
# ----------------------------------------
# The channels are removed from the weights, not masked, so the compression
# report (and any export) sees the smaller network.
print(compression_report(teacher, student, input_shape=d.X_src.shape[1:]))
