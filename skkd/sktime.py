"""Adapter: skkd estimators as sktime classifiers (needs the ``sktime`` extra).

An sklearn classifier in an sktime pipeline is fed flattened 2-D tables. The
adapter :class:`SktimeDistiller` is an sktime ``BaseClassifier`` whose inner
data type is ``numpy3D``: sktime converts any of its panel containers
(``numpy3D``, ``pd-multiindex``, ``nested_univ`` ...) to
``(n_instances, n_channels, n_timepoints)`` arrays, and the skkd estimator
sees series, not flattened rows.
"""

try:
    from sktime.classification.base import BaseClassifier
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("skkd.sktime needs sktime: pip install 'skkd[sktime]'") from exc

from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

__all__ = ["SktimeDistiller"]


def _to_numpy3d(X, name):
    """Any sktime panel container (or a 3-D array) as a numpy3D array."""
    if X is None:
        return None
    from sktime.datatypes import convert_to

    try:
        return convert_to(X, to_type="numpy3D", as_scitype="Panel")
    except Exception as exc:
        raise TypeError(
            f"{name} must be a panel of series: a 3-D array (n_instances, "
            "n_channels, n_timepoints) or an sktime Panel container (pd-multiindex, "
            f"nested_univ ...); got {type(X).__name__} ({exc})."
        ) from exc


class SktimeDistiller(BaseClassifier):
    """Any skkd estimator as an sktime classifier, series kept 3-D.

    ``transformer * SktimeDistiller(student)`` pipelines, sktime's data
    containers and its evaluation tools then work without flattening the
    series. ``fit`` trains a clone of ``estimator`` as
    ``estimator.fit(X, y, X_tgt)``.

    In an sktime pipeline ``X_tgt`` reaches the estimator as given: it does not
    pass through the transformers in front (they only see ``fit``'s ``X``).
    Transform it yourself, or use transformers that act on each series alone.

    Parameters
    ----------
    estimator : skkd estimator
        The (unfitted) skkd estimator, e.g. ``UniKDClassifier(FrozenEstimator(
        teacher))``; never modified (a clone is fitted).
    X_tgt : array-like or sktime Panel, optional
        Unlabelled target series passed to every ``fit`` (any sktime Panel
        container). Target-domain methods need it.
    teacher : estimator, optional
        An *unfitted* teacher trained on each ``fit``'s data before
        distillation (as ``teacher.fit(X, y, X_tgt)``) and handed to the clone
        as ``FrozenEstimator(teacher)``. Use it inside cross-validation, where a
        teacher fitted beforehand would have seen the test folds. When None,
        ``estimator`` must already hold a fitted teacher (or need none).

    Attributes
    ----------
    estimator_ : skkd estimator
        The fitted clone.
    teacher_ : estimator
        The teacher fitted in ``fit`` (only when ``teacher`` is given).
    classes_ : ndarray
        Class labels.

    Examples
    --------
    >>> from skkd import KDClassifier, TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> from skkd.sktime import SktimeDistiller
    >>> d = make_domain_shift(n_samples=40, n_target=30, random_state=0)
    >>> clf = SktimeDistiller(
    ...     KDClassifier(module__widths=(4,), max_epochs=1, random_state=0),
    ...     X_tgt=d.X_tgt,
    ...     teacher=TimeSeriesClassifier(module__widths=(8,), max_epochs=1,
    ...                                  random_state=0),
    ... )
    >>> clf.fit(d.X_src, d.y_src).predict(d.X_tgt_test).shape == d.y_tgt_test.shape
    True
    """

    _tags = {
        "authors": ["skkd developers"],
        "maintainers": ["skkd developers"],
        "python_dependencies": ["torch", "skorch"],
        "X_inner_mtype": "numpy3D",
        "y_inner_mtype": "numpy1D",
        "capability:multivariate": True,
        "capability:predict_proba": True,
        "capability:random_state": False,
    }

    def __init__(self, estimator, X_tgt=None, teacher=None):
        self.estimator = estimator
        self.X_tgt = X_tgt
        self.teacher = teacher
        super().__init__()

    def _fit(self, X, y):
        X_tgt = _to_numpy3d(self.X_tgt, "X_tgt")
        estimator = clone(self.estimator)
        if self.teacher is not None:
            self.teacher_ = clone(self.teacher)
            # a teacher without a target set is fitted on the labelled data only
            args = (X, y) if X_tgt is None else (X, y, X_tgt)
            try:
                self.teacher_.fit(*args)
            except TypeError:
                self.teacher_.fit(X, y)
            estimator.set_params(teacher=FrozenEstimator(self.teacher_))
        self.estimator_ = estimator.fit(X, y, X_tgt)
        return self

    def _predict(self, X):
        return self.estimator_.predict(X)

    def _predict_proba(self, X):
        # skkd orders columns as sorted labels, as sktime's classes_
        return self.estimator_.predict_proba(X)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Parameter sets for sktime's estimator checks (tiny, fast networks).

        Parameters
        ----------
        parameter_set : str, default="default"
            Ignored: one set of test parameters.

        Returns
        -------
        params : list of dict
            A supervised skkd classifier, a Hinton-KD student and a MemKD
            student, each with a teacher trained in ``fit`` (the checks use
            data of several channel and class counts).
        """
        from skkd import KDClassifier, MemKDClassifier, TimeSeriesClassifier
        from skkd.nn import LSTMClassifier

        fast = {"max_epochs": 1, "batch_size": 8, "random_state": 0}
        return [
            {"estimator": TimeSeriesClassifier(module__widths=(4,), **fast)},
            {
                "estimator": KDClassifier(module__widths=(4,), **fast),
                "teacher": TimeSeriesClassifier(module__widths=(8,), **fast),
            },
            {
                "estimator": MemKDClassifier(module__hidden_size=3, n_pairs=4, **fast),
                "teacher": TimeSeriesClassifier(
                    module=LSTMClassifier, module__hidden_size=5, **fast
                ),
            },
        ]
