"""
RCD-KD: which target samples does the agent distil?
===================================================

Subject 2 of UCI-HAR is the labelled source, subject 11 the unlabelled target.
A DANN teacher with dropout after every block is distilled into a small CNN
with :class:`~skkd.RCDKDClassifier`: per target sample, a reinforcement-learning
agent decides whether to distil it. We compare it with Hinton KD and read the
agent's selection rate and reward from ``history_``. To stay quick, the
networks are smaller, the epochs fewer and the agent's episodes and Monte Carlo
passes fewer than the paper's (``n_episodes=5``, ``mc_passes=10``).
"""

# %%
# Train the teacher and the students
# ----------------------------------
# The teacher keeps its DANN domain discriminator (``discriminator_``): RCD-KD
# fine-tunes a copy of it for its domain term.
import matplotlib.pyplot as plt
import torch
from sklearn.frozen import FrozenEstimator

from skkd import DANNClassifier, KDClassifier, RCDKDClassifier
from skkd.datasets import load_har_scenario
from skkd.metrics import macro_f1

torch.set_num_threads(1)
d = load_har_scenario("2->11")

teacher = DANNClassifier(
    module__widths=(32, 64, 64),
    module__dropout_blocks="all",
    max_epochs=8,
    random_state=0,
)
teacher.fit(d.X_src, d.y_src, d.X_tgt)

student = {"module__widths": (16, 32, 32), "max_epochs": 8, "random_state": 0}
rcdkd = RCDKDClassifier(
    FrozenEstimator(teacher), n_episodes=3, mc_passes=5, **student
).fit(d.X_src, d.y_src, d.X_tgt)
kd = KDClassifier(FrozenEstimator(teacher), **student).fit(d.X_src, d.y_src, d.X_tgt)

for name, model in {
    "teacher (DANN)": teacher,
    "Hinton KD": kd,
    "RCD-KD": rcdkd,
}.items():
    score = macro_f1(d.y_tgt_test, model.predict(d.X_tgt_test))
    print(f"{name:>15}: target macro-F1 {100 * score:.1f}")

# %%
# What the agent does
# -------------------
# ``train_selection_rate`` is the fraction of target samples distilled, and
# ``train_agent_reward`` the mean reward (1.0: every choice agrees with the
# uncertainty and transferability signals; about -1.0: random choices). The
# agent learns once its replay buffer holds more than 100 transitions (within
# the first two training steps). ``train_kd`` is summed over the selected samples.
epochs = rcdkd.history_[:, "epoch"]
fig, (ax_agent, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_agent.plot(
    epochs,
    rcdkd.history_[:, "train_selection_rate"],
    marker="o",
    label="selection rate",
)
ax_agent.plot(
    epochs, rcdkd.history_[:, "train_agent_reward"], marker="o", label="mean reward"
)
ax_agent.axhline(0, color="grey", lw=0.5)
ax_agent.set_xlabel("epoch")
ax_agent.legend()
ax_agent.set_title("The agent")
for term in ("train_kd", "train_dc", "train_dqn"):
    ax_loss.plot(epochs, rcdkd.history_[:, term], marker="o", label=term[6:])
ax_loss.set_xlabel("epoch")
ax_loss.set_yscale("log")
ax_loss.legend()
ax_loss.set_title("RCD-KD loss terms (epoch means)")
fig.tight_layout()
plt.show()
