"""Model selection helpers: keep the whole target set in cross-validation.

scikit-learn's cross-validation tools (``GridSearchCV``, ``cross_validate``,
``cross_val_predict`` ...) slice every fit parameter that has as many rows as
``X`` with the training indices of the fold. ``X_tgt`` of the same length as
the source set would therefore be cut to a random fraction without notice.
:class:`TargetSet` prevents this (sklearn passes it through untouched), and
:func:`unwrap_target` detects the slicing when a plain array was passed.
"""

import sys

__all__ = ["TargetSet", "unwrap_target"]

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
