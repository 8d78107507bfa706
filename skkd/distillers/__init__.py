"""Distillation estimators, one module per method."""

from .kd import KDClassifier
from .unikd import UniKDClassifier

__all__ = ["KDClassifier", "UniKDClassifier"]
