"""Distillation estimators, one module per method."""

from .kd import KDClassifier

__all__ = ["KDClassifier"]
