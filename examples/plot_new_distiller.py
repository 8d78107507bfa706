"""
A new distillation method in 50 lines
======================================

Every skkd method is a subclass of :class:`~skkd.BaseDistiller` that declares
what it needs and what one training step does. Here is a complete method,
adversarial logit distillation on the target domain: a small critic learns to
tell the teacher's target logits from the student's, and the student learns
the source labels, the teacher's source logits, and to fool the critic. The
engine draws the target batches, checks every loss for NaN, clips gradients,
steps each optimizer once per batch, logs every term and handles
checkpoints, pickling and ``GridSearchCV``. See :doc:`/developers`.
"""

# %%
# The method
# ----------
# -- new method: begin
import torch
import torch.nn.functional as F
from torch import nn

from skkd import BaseDistiller
from skkd.losses import kd_kl_div
from skkd.nn import CNN1D
from skkd.stages import Stage


def _bce(logits, real):
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class LogitCriticClassifier(BaseDistiller):
    """Adversarial logit distillation on the target domain (an illustration)."""

    def __init__(
        self, teacher=None, module=CNN1D, *, temperature=4, lambda_adv=0.1, **kw
    ):
        super().__init__(teacher, module, **kw)
        self.temperature = temperature
        self.lambda_adv = lambda_adv

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.target = "required"  # fit(X, y) alone is a clear error
        return tags

    def initialize_module(self):
        super().initialize_module()  # the student and the frozen teacher copy
        n = len(self.classes_)
        self.critic_ = nn.Sequential(nn.Linear(n, 32), nn.ReLU(), nn.Linear(32, 1))
        return self

    def optimizer_groups(self):  # the critic's optimizer gets optimizer__* too
        return {"optimizer": ["module"], "optimizer_critic": ["critic"]}

    def training_stages(self):
        return [
            Stage("critic", "critic_losses", ("optimizer_critic",)),
            Stage("student", "student_losses", ("optimizer",)),
        ]

    def _student_logits(self, step):  # one forward per domain, for both stages
        return step.shared(
            "z", lambda: (self.module_(step.X), self.module_(step.X_tgt))
        )

    def critic_losses(self, step):
        _, z_tgt = self._student_logits(step)
        teacher = self.critic_(self.teacher_logits(step.X_tgt))
        critic = _bce(teacher, True) + _bce(self.critic_(z_tgt.detach()), False)
        return {"loss": critic, "critic": critic}

    def student_losses(self, step):
        z_src, z_tgt = self._student_logits(step)
        ce = F.cross_entropy(z_src, step.y)
        kd = kd_kl_div(z_src, self.teacher_logits(step.X), self.temperature)
        adv = _bce(self.critic_(z_tgt), True)
        loss = ce + kd + self.lambda_adv * adv
        return {"loss": loss, "ce": ce, "kd": kd, "adv": adv, "y_pred": z_src}


# -- new method: end

# %%
# Use it like any skkd estimator
# ------------------------------
# On the UCI-HAR subjects that ship with skkd: a DANN teacher, then the new
# student next to plain Hinton KD with the same settings.
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402

from skkd import DANNClassifier, KDClassifier  # noqa: E402
from skkd.datasets import load_har_scenario  # noqa: E402
from skkd.metrics import macro_f1  # noqa: E402

torch.set_num_threads(1)
d = load_har_scenario("2->11")
teacher = DANNClassifier(module__widths=(32, 64, 64), random_state=0)
teacher.fit(d.X_src, d.y_src, d.X_tgt)

common = {"module__widths": (16, 32, 32), "random_state": 0}
student = LogitCriticClassifier(FrozenEstimator(teacher), **common)
student.fit(d.X_src, d.y_src, d.X_tgt)
kd = KDClassifier(FrozenEstimator(teacher), **common).fit(d.X_src, d.y_src, d.X_tgt)

scores = {
    name: 100 * macro_f1(d.y_tgt_test, model.predict(d.X_tgt_test))
    for name, model in [("teacher", teacher), ("KD", kd), ("new", student)]
}
print({name: round(f1, 2) for name, f1 in scores.items()})
# six classes: chance is about 17 macro-F1
assert scores["new"] > 50, scores

# %%
# Every term the stages return is in ``history_``
# ------------------------------------------------
fig, ax = plt.subplots(figsize=(6, 3.5))
for term in ("train_ce", "train_kd", "train_adv", "train_critic"):
    ax.plot(student.history_[:, term], label=term[6:])
ax.set_xlabel("epoch")
ax.set_ylabel("mean loss over the epoch's batches")
ax.legend()
fig.tight_layout()
