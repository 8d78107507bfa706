"""Scores used by the skkd benchmarks.

Convention: a method is scored on the FULL target test set (the target
subject's whole test split), never on a subsample, and the headline number is
the macro-averaged F1 score, as in UNI-KD and AdaTime.
"""

from sklearn.metrics import accuracy_score, f1_score, make_scorer

__all__ = ["macro_f1", "macro_f1_scorer", "target_scores"]


def macro_f1(y_true, y_pred):
    """Macro-averaged F1 score, the benchmark's headline metric.

    Thin wrapper on :func:`sklearn.metrics.f1_score` with
    ``average="macro"``: the unweighted mean of the per-class F1 scores, so
    rare activities count as much as frequent ones. A class with no true and
    no predicted sample is ignored; a class that is present but never
    correctly predicted scores 0 (``zero_division=0``, without a warning).
    By the benchmark's convention ``y_true`` is the FULL target test set.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    Returns
    -------
    score : float
        Macro F1, in [0, 1].

    Examples
    --------
    >>> from skkd.metrics import macro_f1
    >>> macro_f1([0, 0, 1, 1], [0, 0, 1, 1])
    1.0
    >>> round(macro_f1([0, 0, 1, 1], [0, 0, 0, 1]), 3)
    0.733
    """
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


#: Scorer for ``scoring=`` in :class:`~sklearn.model_selection.GridSearchCV`
#: and :func:`~sklearn.model_selection.cross_val_score` (greater is better).
macro_f1_scorer = make_scorer(macro_f1)


def target_scores(estimator, X, y):
    """Score a fitted estimator on the target test set.

    By the benchmark's convention ``X`` and ``y`` are the FULL target test
    set (e.g. ``X_tgt_test`` and ``y_tgt_test`` of
    :func:`skkd.datasets.load_har_scenario`), not a subsample.

    Parameters
    ----------
    estimator : object
        Fitted estimator with a ``predict`` method.
    X : array-like
        Target test samples, in the format ``estimator.predict`` expects.
    y : array-like of shape (n_samples,)
        Target test labels.

    Returns
    -------
    scores : dict
        ``{"macro_f1": float, "accuracy": float}``, both in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from skkd.metrics import target_scores
    >>> X, y = np.zeros((4, 1)), np.array([0, 0, 0, 1])
    >>> clf = DummyClassifier(strategy="most_frequent").fit(X, y)
    >>> scores = target_scores(clf, X, y)
    >>> scores["accuracy"], round(scores["macro_f1"], 3)
    (0.75, 0.429)
    """
    y_pred = estimator.predict(X)
    return {
        "macro_f1": macro_f1(y, y_pred),
        "accuracy": float(accuracy_score(y, y_pred)),
    }
