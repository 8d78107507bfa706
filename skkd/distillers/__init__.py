"""Distillation estimators, one module per method."""

from .baselines import (
    AADClassifier,
    FitNetClassifier,
    JKUClassifier,
    MobileDAClassifier,
)
from .kd import KDClassifier
from .unikd import UniKDClassifier

__all__ = [
    "AADClassifier",
    "FitNetClassifier",
    "JKUClassifier",
    "KDClassifier",
    "MobileDAClassifier",
    "UniKDClassifier",
]
