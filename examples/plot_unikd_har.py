"""
UNI-KD on a cross-subject UCI-HAR scenario
==========================================

Subject 2 is the labelled source, subject 11 the unlabelled target. A DANN
teacher (CNN 64/128/128) is distilled into a ~15x smaller CNN (16/32/32) with
:class:`~skkd.UniKDClassifier`, next to the same student trained on the source
alone and by plain Hinton KD. Then we read UNI-KD's per-term losses from
``history_`` and see how its progressive weight moves the emphasis from domain
confusion to distillation.
"""

# %%
# Train the teacher and the students
# ----------------------------------
# One PyTorch thread: for nets this small it is the fastest setting on small
# machines, and fits are bit-reproducible.
import matplotlib.pyplot as plt
import torch
from sklearn.frozen import FrozenEstimator

from skkd import DANNClassifier, KDClassifier, TimeSeriesClassifier, UniKDClassifier
from skkd.datasets import load_har_scenario
from skkd.metrics import macro_f1

torch.set_num_threads(1)
d = load_har_scenario("2->11")

teacher = DANNClassifier(module__widths=(64, 128, 128), random_state=0)
teacher.fit(d.X_src, d.y_src, d.X_tgt)

student = {"module__widths": (16, 32, 32), "random_state": 0}
models = {
    "teacher (DANN)": teacher,
    "source only": TimeSeriesClassifier(**student).fit(d.X_src, d.y_src),
    "Hinton KD": KDClassifier(FrozenEstimator(teacher), **student).fit(
        d.X_src, d.y_src, d.X_tgt
    ),
    "UNI-KD": UniKDClassifier(FrozenEstimator(teacher), **student).fit(
        d.X_src, d.y_src, d.X_tgt
    ),
}
for name, model in models.items():
    score = macro_f1(d.y_tgt_test, model.predict(d.X_tgt_test))
    print(f"{name:>15}: target macro-F1 {100 * score:.1f}")

# %%
# What trains: the per-term losses
# --------------------------------
# ``train_ce`` (source labels) and ``train_ukd_hint`` (distance to the
# teacher's features) fall; ``train_jkd`` is the domain-weighted KD term,
# weighted by ``beta``; ``train_dc`` is adversarial and does not go to zero.
unikd = models["UNI-KD"]
epochs = unikd.history_[:, "epoch"]
fig, (ax_loss, ax_beta) = plt.subplots(1, 2, figsize=(10, 3.8))
for term in ("train_ce", "train_jkd", "train_ukd_hint", "train_dc"):
    ax_loss.plot(epochs, unikd.history_[:, term], marker="o", label=term[6:])
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("loss (epoch mean)")
ax_loss.set_yscale("log")
ax_loss.legend()
ax_loss.set_title("UNI-KD loss terms")

beta = unikd.history_[:, "train_beta"]
ax_beta.plot(epochs, beta, marker="o", label="beta (distillation)")
ax_beta.plot(epochs, [1 - b for b in beta], marker="o", label="1 - beta (confusion)")
ax_beta.plot(epochs, unikd.history_[:, "train_weight"], marker="o", label="mean w")
ax_beta.set_xlabel("epoch")
ax_beta.legend()
ax_beta.set_title("Progressive weight and sample weights")
fig.tight_layout()
plt.show()
