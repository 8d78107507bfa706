"""Distillation estimators, one module per method."""

from .baselines import (
    AADClassifier,
    FitNetClassifier,
    JKUClassifier,
    MobileDAClassifier,
)
from .itmc import ITMCClassifier
from .kd import KDClassifier
from .memkd import MemKDClassifier
from .rcdkd import RCDKDClassifier
from .recurrent import (
    ATClassifier,
    DKDClassifier,
    RKDClassifier,
    SequenceFitNetClassifier,
)
from .unikd import UniKDClassifier

__all__ = [
    "AADClassifier",
    "ATClassifier",
    "DKDClassifier",
    "MemKDClassifier",
    "RKDClassifier",
    "SequenceFitNetClassifier",
    "FitNetClassifier",
    "JKUClassifier",
    "KDClassifier",
    "MobileDAClassifier",
    "UniKDClassifier",
    "ITMCClassifier",
    "RCDKDClassifier",
]
