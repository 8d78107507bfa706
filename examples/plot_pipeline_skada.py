"""
Pipelines and skada: preprocessing that sees the target data
============================================================

skada's *packed form* stacks source and target rows in one ``X`` with a
``sample_domain`` array (positive: source, negative: target; target labels
masked). Unlike ``X_tgt=``, packed target rows pass through every
transformer of a pipeline, so a scaler in front of the distiller is fitted on
and applied to both domains. skkd estimators accept the packed form, work in
:func:`skada.make_da_pipeline`, and are scored by skada's splitters and
scorers.
"""

# %%
# Pack the source and target data
# -------------------------------
import matplotlib.pyplot as plt
import numpy as np
import sklearn
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import cross_validate

from skkd import DANNClassifier, UniKDClassifier
from skkd.datasets import load_har_scenario
from skkd.metrics import TeacherAgreementScorer
from skkd.preprocessing import ChannelStandardScaler

torch.set_num_threads(1)
d = load_har_scenario("2->11")
X = np.concatenate([d.X_src, d.X_tgt])
y = np.concatenate([d.y_src, np.full(len(d.X_tgt), -1)])  # -1: masked target labels
sample_domain = np.r_[np.full(len(d.X_src), 2), np.full(len(d.X_tgt), -11)]

# In a pipeline the teacher receives what the distiller receives: the scaled
# series. So it is trained on the same scaling (fitted on both domains, as the
# pipeline's scaler below will be).
X_scaled = ChannelStandardScaler().fit_transform(X)
teacher = DANNClassifier(module__widths=(64, 128, 128), max_epochs=5, random_state=0)
teacher.fit(X_scaled, y, sample_domain=sample_domain)

# %%
# A skada pipeline: scaler, then UNI-KD
# -------------------------------------
# ``import skada`` switches scikit-learn's metadata routing on, so
# ``sample_domain`` is routed to every step that asks for it.
from skada import make_da_pipeline  # noqa: E402
from skada.metrics import PredictionEntropyScorer  # noqa: E402
from skada.model_selection import SourceTargetShuffleSplit  # noqa: E402

pipe = make_da_pipeline(
    ChannelStandardScaler(),
    UniKDClassifier(
        FrozenEstimator(teacher),
        module__widths=(16, 32, 32),
        max_epochs=3,
        random_state=0,
    ),
)
pipe.fit(X, y, sample_domain=sample_domain)
scaler = pipe[0].base_estimator_
teacher_acc = teacher.score(scaler.transform(d.X_tgt_test), d.y_tgt_test)
print("teacher target accuracy:", round(teacher_acc, 3))
print("student target accuracy:", round(pipe.score(d.X_tgt_test, d.y_tgt_test), 3))

# %%
# skada's splitters and scorers
# -----------------------------
# :class:`~skada.model_selection.SourceTargetShuffleSplit` keeps source and
# target rows in every fold; the scorers read target rows from
# ``sample_domain``. :class:`skkd.metrics.TeacherAgreementScorer` does too.
with sklearn.config_context(enable_metadata_routing=True):
    scores = cross_validate(
        pipe,
        X,
        y,
        params={"sample_domain": sample_domain},
        cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
        scoring={
            "prediction entropy (skada)": PredictionEntropyScorer(),
            "teacher agreement (skkd)": TeacherAgreementScorer(),
        },
    )
names = [k for k in scores if k.startswith("test_")]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([n[5:] for n in names], [scores[n].mean() for n in names])
ax.set_ylabel("mean over 2 splits")
ax.set_title("Label-free scores of the skada pipeline")
fig.tight_layout()
plt.show()
