"""Model selection helpers: keep the whole target set in cross-validation.

scikit-learn's cross-validation tools (``GridSearchCV``, ``cross_validate``,
``cross_val_predict`` ...) slice every fit parameter that has as many rows as
``X`` with the training indices of the fold. ``X_tgt`` of the same length as
the source set would therefore be cut to a random fraction without notice.
:class:`TargetSet` prevents this (sklearn passes it through untouched), and
:func:`unwrap_target` detects the slicing when a plain array was passed.
"""

import sys
import warnings

import numpy as np

__all__ = ["TargetBypassWarning", "TargetSet", "unwrap_target", "warn_target_bypass"]

#: sklearn functions that slice fit parameters by the fold's training indices
_CV_FITTERS = ("_fit_and_score", "_fit_and_predict")


class TargetSet:
    """An unlabelled target set that cross-validation passes through whole.

    scikit-learn slices a fit parameter with the training indices of each fold
    when it has as many rows as ``X``. A ``TargetSet`` has no length, shape or
    array interface, so ``GridSearchCV`` and ``cross_validate`` hand it to every
    fold unchanged; skkd estimators unwrap it in ``fit``. Use it whenever
    ``len(X_tgt) == len(X_src)`` (skkd raises an error otherwise in that case).

    Parameters
    ----------
    X : array-like of shape (n_target, n_channels, n_timepoints)
        The unlabelled target series.

    Attributes
    ----------
    X : array-like
        The wrapped series, as given.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils.validation import _check_method_params
    >>> X = np.zeros((6, 2, 8)); X_tgt = TargetSet(np.ones((6, 2, 8)))
    >>> routed = _check_method_params(X, {"X_tgt": X_tgt}, indices=[0, 1])
    >>> routed["X_tgt"].X.shape  # not sliced to the 2 training rows
    (6, 2, 8)
    """

    def __init__(self, X):
        if isinstance(X, TargetSet):
            X = X.X
        self.X = X

    def __repr__(self):
        shape = getattr(self.X, "shape", None)
        return f"TargetSet(shape={shape})" if shape is not None else "TargetSet(...)"


def _n_rows(X):
    try:
        return len(X)
    except TypeError:
        return None


def _cv_fold_frame():
    """The frame of sklearn's per-fold fit function on the stack, if any."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name in _CV_FITTERS and "sklearn" in code.co_filename:
            return frame
        frame = frame.f_back
    return None


def unwrap_target(X, X_tgt):
    """Return the target series of ``fit``, refusing a silently sliced one.

    A :class:`TargetSet` is unwrapped. A plain array with as many rows as ``X``
    received inside a scikit-learn cross-validation fold (``X`` being the
    fold's training rows) is what sklearn produces by slicing a target set of
    the full source length with the fold's indices: this raises a
    ``ValueError`` naming the fix instead of training on a fraction of the
    target set.

    Parameters
    ----------
    X : array-like
        The (source) series ``fit`` received.
    X_tgt : array-like, TargetSet or None
        The target series ``fit`` received.

    Returns
    -------
    X_tgt : array-like or None
        The target series to train on.

    Examples
    --------
    >>> import numpy as np
    >>> unwrap_target(np.zeros((4, 1, 5)), TargetSet(np.ones((9, 1, 5)))).shape
    (9, 1, 5)
    >>> unwrap_target(np.zeros((4, 1, 5)), None) is None
    True
    """
    if X_tgt is None:
        return None
    if isinstance(X_tgt, TargetSet):
        return X_tgt.X
    n = _n_rows(X)
    if n is None or _n_rows(X_tgt) != n:
        return X_tgt
    frame = _cv_fold_frame()
    if frame is None:
        return X_tgt
    full_X = frame.f_locals.get("X")
    n_full = _n_rows(full_X)
    if n_full is not None and n_full != n:
        raise ValueError(
            f"X_tgt has exactly as many rows ({n}) as this cross-validation fold's "
            f"training set (the full X has {n_full}): scikit-learn slices a fit "
            "parameter of the same length as X with the fold's indices, so the "
            "target set was most likely cut to a fraction. Pass "
            "X_tgt=skkd.model_selection.TargetSet(X_tgt) to keep it whole, or use "
            "skada's packed form (sample_domain < 0 for target rows)."
        )
    return X_tgt


class TargetBypassWarning(UserWarning):
    """``X_tgt`` reached a distiller without the Pipeline steps ``X`` went through."""


def _pipeline_input(estimator):
    """The raw ``X`` of the sklearn Pipeline whose last step is ``estimator``."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if "sklearn" in code.co_filename and code.co_filename.endswith("pipeline.py"):
            owner = frame.f_locals.get("self")
            steps = getattr(owner, "steps", None)
            if steps and steps[-1][1] is estimator and "X" in frame.f_locals:
                return frame.f_locals["X"]
        frame = frame.f_back
    return None


def _channel_stats(X):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[:, np.newaxis, :]
    axes = (0, 2)
    return X.mean(axis=axes), X.std(axis=axes) + 1e-12


def _distance(a, b):
    # per channel: mean gap in units of the pooled spread, plus log-scale gap
    (ma, sa), (mb, sb) = a, b
    return float(np.sum(np.abs(ma - mb) / (sa + sb) + np.abs(np.log(sa / sb))))


def warn_target_bypass(estimator, X, X_tgt):
    """Warn when ``X_tgt`` skipped the Pipeline steps that transformed ``X``.

    In ``Pipeline([("scale", scaler), ("kd", student)])``, ``fit``'s ``X``
    goes through the scaler but ``X_tgt`` reaches the student as given. Two
    conditions make the warning fire: the estimator is the last step of a
    scikit-learn ``Pipeline`` whose earlier steps changed ``X`` (read from the
    pipeline's call), and ``X_tgt``'s per-channel mean and spread are closer
    to the *untransformed* source series than to the transformed ones, by
    less than the steps moved the source series (a transformation smaller
    than the gap between the domains is not evidence either way). A target
    domain that differs from the source (ordinary domain shift) but was
    transformed like it, e.g. by the user with the fitted steps, does not
    fire; nor does the packed form, nor anything outside a Pipeline.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted.
    X : ndarray of shape (n_samples, n_channels, n_timepoints)
        The series ``estimator.fit`` received (after the pipeline's steps).
    X_tgt : ndarray or None
        The target series ``estimator.fit`` received.

    Returns
    -------
    fired : bool
        Whether the warning was issued.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((4, 1, 5)); X_tgt = np.ones((3, 1, 5))
    >>> warn_target_bypass(object(), X, X_tgt)  # not inside a Pipeline
    False
    """
    if X_tgt is None:
        return False
    raw = _pipeline_input(estimator)
    if raw is None or raw is X:
        return False
    try:
        raw_stats = _channel_stats(raw)
        if raw_stats[0].shape != (X.shape[1],):
            return False  # the steps changed the channels: nothing to compare
    except (TypeError, ValueError):
        return False  # a container whose channels are not simple to read
    transformed, target = _channel_stats(X), _channel_stats(X_tgt)
    change = _distance(raw_stats, transformed)
    shift = _distance(target, raw_stats)
    if change <= shift:
        return False  # the steps moved X less than the domains differ: unclear
    if shift >= _distance(target, transformed):
        return False  # X_tgt looks transformed already
    warnings.warn(
        f"X_tgt reached {type(estimator).__name__} without going through the "
        "Pipeline steps before it, which transformed X: the model would train "
        "on transformed source series and untransformed target series. Pass "
        "the target rows in skada's packed form instead, stacked below the "
        "source rows in X with sample_domain < 0 (they then go through every "
        "step; see the user guide), or transform X_tgt with the fitted steps "
        "yourself and fit the last step alone. In cross-validation, keep the "
        "whole target set per fold with skkd.model_selection.TargetSet.",
        TargetBypassWarning,
        stacklevel=4,
    )
    return True
