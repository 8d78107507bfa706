"""
Distillation inside sktime
==========================

In an sktime pipeline a scikit-learn classifier receives flattened 2-D
tables. :class:`skkd.sktime.SktimeDistiller` wraps any skkd estimator as an
sktime classifier whose inner type is ``numpy3D``: series stay
``(instances, channels, timepoints)``, sktime's containers (``pd-multiindex``,
``nested_univ``) are accepted, and sktime's own evaluation tools apply. Its
``teacher=`` option trains the teacher inside each fit, so cross-validation
never distils a teacher that saw the test fold.
"""

# %%
# A pipeline on sktime data
# -------------------------
import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler
from sktime.classification.model_evaluation import evaluate
from sktime.datatypes import convert_to
from sktime.transformations.compose import FitInTransform
from sktime.transformations.series.adapt import TabularToSeriesAdaptor

from skkd import DANNClassifier, MemKDClassifier, TimeSeriesClassifier, UniKDClassifier
from skkd.datasets import load_har_scenario
from skkd.nn import LSTMClassifier
from skkd.sktime import SktimeDistiller

torch.set_num_threads(1)
d = load_har_scenario("2->11")
X_src = convert_to(d.X_src, to_type="pd-multiindex")  # any sktime Panel container

# per-series standardisation; X_tgt does not pass through the pipeline's
# transformers, so it gets the same per-series transform by hand
scale = FitInTransform(TabularToSeriesAdaptor(StandardScaler()))
X_tgt = scale.fit_transform(d.X_tgt)
unikd = SktimeDistiller(
    UniKDClassifier(module__widths=(16, 32, 32), max_epochs=3, random_state=0),
    X_tgt=X_tgt,
    teacher=DANNClassifier(module__widths=(64, 128, 128), max_epochs=3, random_state=0),
)
pipe = scale * unikd
pipe.fit(X_src, d.y_src)
inner = pipe.steps_[-1][1].estimator_
print(
    "the student saw",
    inner.n_channels_in_,
    "channels of",
    inner.n_timepoints_in_,
    "points",
)
print("target accuracy:", round(pipe.score(d.X_tgt_test, d.y_tgt_test), 3))

# %%
# sktime's evaluation with a teacher trained per fold
# ---------------------------------------------------
# MemKD distils a recurrent teacher into a tiny LSTM. ``evaluate`` refits the
# adapter per fold, teacher included.
memkd = SktimeDistiller(
    MemKDClassifier(module__hidden_size=8, max_epochs=3, random_state=0),
    X_tgt=d.X_tgt,
    teacher=TimeSeriesClassifier(
        module=LSTMClassifier, module__hidden_size=32, max_epochs=3, random_state=0
    ),
)
results = evaluate(memkd, cv=KFold(n_splits=2), X=d.X_src, y=d.y_src)
score = [c for c in results.columns if c.startswith("test_")][0]
print(results[[score, "fit_time"]])

fig, ax = plt.subplots(figsize=(5, 3))
ax.bar([f"fold {i}" for i in range(len(results))], results[score])
ax.set_ylabel(score)
ax.set_title("MemKD student, sktime evaluate (source folds)")
fig.tight_layout()
plt.show()
