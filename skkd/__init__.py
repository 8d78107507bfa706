"""skkd: scikit-learn compatible knowledge distillation for time-series classification.

Estimators follow ``fit(X_src, y_src, X_tgt)`` / ``predict`` on series shaped
``(n_samples, n_channels, n_timepoints)``; see the user guide.
"""

from .base import BaseTimeSeriesClassifier
from .classifiers import (
    DANNClassifier,
    DIRTTClassifier,
    TimeSeriesClassifier,
    VADAClassifier,
)
from .distillers import (
    AADClassifier,
    ATClassifier,
    DKDClassifier,
    FitNetClassifier,
    ITMCClassifier,
    JKUClassifier,
    KDClassifier,
    MemKDClassifier,
    MobileDAClassifier,
    RCDKDClassifier,
    RKDClassifier,
    SequenceFitNetClassifier,
    UniKDClassifier,
)
from .distillers.base import BaseDistiller

__version__ = "0.1.0"

__all__ = [
    "AADClassifier",
    "ATClassifier",
    "DKDClassifier",
    "MemKDClassifier",
    "RKDClassifier",
    "SequenceFitNetClassifier",
    "FitNetClassifier",
    "JKUClassifier",
    "MobileDAClassifier",
    "BaseDistiller",
    "BaseTimeSeriesClassifier",
    "DANNClassifier",
    "DIRTTClassifier",
    "KDClassifier",
    "TimeSeriesClassifier",
    "UniKDClassifier",
    "VADAClassifier",
    "__version__",
    "ITMCClassifier",
    "RCDKDClassifier",
]
