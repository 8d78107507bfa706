"""Target-domain scores (macro-F1, accuracy) and label-free selection scorers.

Convention: a method is scored on the FULL target test set (the target
subject's whole test split), never on a subsample, and the headline number is
the macro-averaged F1 score, as in UNI-KD and AdaTime.

Argument order, as in scikit-learn: metrics compare labels,
``macro_f1(y_true, y_pred)``; scorers take a fitted estimator and data,
``target_scores(estimator, X, y)``, ``macro_f1_scorer(estimator, X, y)`` and
the selection scorers below.

The *selection scorers* (:class:`TeacherAgreementScorer`,
:class:`TeacherKLScorer`, :class:`TargetEntropyScorer`,
:class:`SourceAccuracyScorer`) choose hyperparameters when the target domain
has no labels; each is a ``scoring=`` callable for ``GridSearchCV``
(greater is better).

:func:`prediction_collapse` measures how far a classifier's predictions on an
unlabelled target set have collapsed onto a few classes (the filter of
:class:`skkd.ensemble.TeacherEnsemble`). :class:`SkadaView` lets skada's
label-free scorers (``DeepEmbeddedValidation`` and
``ImportanceWeightedScorer`` included) score a fitted skkd classifier.
"""

from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, f1_score, make_scorer

__all__ = [
    "macro_f1",
    "macro_f1_scorer",
    "target_scores",
    "TeacherAgreementScorer",
    "TeacherKLScorer",
    "TargetEntropyScorer",
    "SourceAccuracyScorer",
    "selection_scorers",
    "PredictionCollapse",
    "prediction_collapse",
    "SkadaView",
]


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


# --------------------------------------------------------------------------
# model selection without target labels


def _final_step(estimator, X):
    """The last step of a (skada or sklearn) pipeline and ``X`` transformed for it."""
    final = estimator
    if hasattr(estimator, "steps"):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        final = estimator.steps[-1][1]
    # skada wraps each pipeline step in a selector holding the fitted estimator
    while hasattr(final, "base_estimator_"):
        final = final.base_estimator_
    return final, X


class _SelectionScorer(BaseEstimator):
    """Base of the selection scorers: finds the target (or source) rows."""

    # GridSearchCV and skada's cross-validation route sample_domain to scorers
    # that request it (metadata routing on)
    __metadata_request__score = {"sample_domain": True}
    _needs_target = True

    def __init__(self, X_tgt=None):
        self.X_tgt = X_tgt

    def score(self, *args, **kwargs):
        """Same as calling the scorer (metadata routing reads this method)."""
        return self(*args, **kwargs)

    def __repr__(self):
        shape = getattr(self.X_tgt, "shape", None)
        inner = "" if self.X_tgt is None else f"X_tgt=<array of shape {shape}>"
        return f"{type(self).__name__}({inner})"

    def _target_rows(self, X, sample_domain):
        if sample_domain is not None:
            sample_domain = np.asarray(sample_domain)
            if sample_domain.shape != (len(X),):
                raise ValueError(
                    f"sample_domain must have one entry per row of X ({len(X)}), "
                    f"got shape {sample_domain.shape}."
                )
            is_target = sample_domain < 0
            if is_target.any():
                return np.asarray(X)[is_target]
        if self.X_tgt is not None:
            from .model_selection import TargetSet

            X_tgt = self.X_tgt
            return X_tgt.X if isinstance(X_tgt, TargetSet) else X_tgt
        raise ValueError(
            f"{type(self).__name__} scores on unlabelled target data but received "
            f"none: construct it as {type(self).__name__}(X_tgt=X_tgt), or score "
            "skada's packed form with sample_domain < 0 for target rows (metadata "
            "routing on)."
        )

    def __call__(self, estimator, X, y=None, sample_weight=None, sample_domain=None):
        """Score a fitted estimator (or pipeline); greater is better.

        Parameters
        ----------
        estimator : object
            Fitted skkd estimator, or a pipeline ending in one.
        X : array-like
            Validation rows (source rows, or packed source and target rows).
        y : array-like, optional
            Labels of ``X`` (target rows masked); used by source accuracy only.
        sample_weight : None
            Accepted for the scorer signature and ignored.
        sample_domain : array-like, optional
            skada's packed form: rows with ``sample_domain < 0`` are target rows.

        Returns
        -------
        score : float
        """
        return float(self._score(estimator, self._target_rows(X, sample_domain)))

    @staticmethod
    def _probas(estimator, X_tgt):
        """Student and teacher class probabilities on the target rows."""
        final, Xt = _final_step(estimator, X_tgt)
        if not hasattr(final, "teacher_module_"):
            raise TypeError(
                "Teacher-based scorers need a fitted skkd distiller (with a "
                f"teacher_module_), got {type(final).__name__}."
            )
        Xt = final._check_input(Xt)
        student = final.predict_proba(Xt)
        teacher = torch.softmax(final.teacher_logits(torch.from_numpy(Xt)), dim=1)
        return student, teacher.numpy()


class TeacherAgreementScorer(_SelectionScorer):
    """Fraction of target series on which the student predicts the teacher's class.

    A label-free model-selection score: a cross-domain teacher is usually more
    accurate on the target domain than a small student, so the candidate that
    agrees with it most often is likely the better one. Greater is better.

    Parameters
    ----------
    X_tgt : array-like of shape (n_target, n_channels, n_timepoints), optional
        Unlabelled target series to score on; not needed when scoring skada's
        packed form (``sample_domain < 0`` rows are used then).

    See Also
    --------
    TeacherKLScorer : the soft variant.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import KDClassifier, TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(n_samples=40, n_target=30, random_state=0)
    >>> teacher = TimeSeriesClassifier(module__widths=(8,), max_epochs=1,
    ...                                random_state=0).fit(d.X_src, d.y_src)
    >>> student = KDClassifier(FrozenEstimator(teacher), module__widths=(4,),
    ...                        max_epochs=1, random_state=0)
    >>> student = student.fit(d.X_src, d.y_src, d.X_tgt)
    >>> score = TeacherAgreementScorer(X_tgt=d.X_tgt)(student, d.X_src, d.y_src)
    >>> 0.0 <= score <= 1.0
    True
    """

    def _score(self, estimator, X_tgt):
        student, teacher = self._probas(estimator, X_tgt)
        return np.mean(student.argmax(axis=1) == teacher.argmax(axis=1))


class TeacherKLScorer(_SelectionScorer):
    """Minus the mean KL divergence from teacher to student on target series.

    ``-mean_x KL(p_T(x) || p_S(x))`` at temperature 1: the soft variant of
    :class:`TeacherAgreementScorer` (0 when the student reproduces the
    teacher's probabilities). Greater is better.

    Parameters
    ----------
    X_tgt : array-like of shape (n_target, n_channels, n_timepoints), optional
        Unlabelled target series; not needed with skada's packed form.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import KDClassifier, TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(n_samples=40, n_target=30, random_state=0)
    >>> teacher = TimeSeriesClassifier(module__widths=(8,), max_epochs=1,
    ...                                random_state=0).fit(d.X_src, d.y_src)
    >>> student = KDClassifier(FrozenEstimator(teacher), module__widths=(4,),
    ...                        max_epochs=1, random_state=0)
    >>> student = student.fit(d.X_src, d.y_src, d.X_tgt)
    >>> TeacherKLScorer(X_tgt=d.X_tgt)(student, d.X_src, d.y_src) <= 0
    True
    """

    def _score(self, estimator, X_tgt):
        student, teacher = self._probas(estimator, X_tgt)
        eps = 1e-12
        kl = np.sum(teacher * (np.log(teacher + eps) - np.log(student + eps)), axis=1)
        return -np.mean(kl)


class TargetEntropyScorer(_SelectionScorer):
    """Minus the mean entropy of the student's predictions on target series.

    Confident target predictions (low entropy) are taken as a sign of good
    adaptation (Morerio et al., ICLR 2018). No teacher needed, so any
    classifier with ``predict_proba`` can be scored. Greater is better.

    Parameters
    ----------
    X_tgt : array-like of shape (n_target, n_channels, n_timepoints), optional
        Unlabelled target series; not needed with skada's packed form.

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(n_samples=40, n_target=30, random_state=0)
    >>> clf = TimeSeriesClassifier(module__widths=(4,), max_epochs=1,
    ...                            random_state=0).fit(d.X_src, d.y_src)
    >>> TargetEntropyScorer(X_tgt=d.X_tgt)(clf, d.X_src, d.y_src) <= 0
    True
    """

    def _score(self, estimator, X_tgt):
        proba = np.clip(estimator.predict_proba(X_tgt), 1e-12, 1.0)
        return -np.mean(-np.sum(proba * np.log(proba), axis=1))


class SourceAccuracyScorer(_SelectionScorer):
    """Accuracy on the labelled source rows of the validation fold.

    The classic baseline of unsupervised model selection: hold out source
    data and trust that source accuracy carries over to the target domain.
    With skada's packed form the target rows (``sample_domain < 0``, masked
    labels) are left out. Greater is better.

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(n_samples=40, random_state=0)
    >>> clf = TimeSeriesClassifier(module__widths=(4,), max_epochs=1,
    ...                            random_state=0).fit(d.X_src, d.y_src)
    >>> 0.0 <= SourceAccuracyScorer()(clf, d.X_src, d.y_src) <= 1.0
    True
    """

    _needs_target = False

    def __init__(self):
        super().__init__(X_tgt=None)

    def get_params(self, deep=True):
        return {}

    def __call__(self, estimator, X, y=None, sample_weight=None, sample_domain=None):
        if y is None:
            raise ValueError("SourceAccuracyScorer needs the source labels y.")
        X, y = np.asarray(X), np.asarray(y)
        if sample_domain is not None:
            sample_domain = np.asarray(sample_domain)
            if sample_domain.shape != (len(X),):
                raise ValueError(
                    f"sample_domain must have one entry per row of X ({len(X)}), "
                    f"got shape {sample_domain.shape}."
                )
            is_source = sample_domain >= 0
            if not is_source.any():
                raise ValueError(
                    "SourceAccuracyScorer received no source rows (all "
                    "sample_domain < 0); validate on labelled source rows."
                )
            X, y = X[is_source], y[is_source]
        return float(accuracy_score(y, estimator.predict(X)))


def selection_scorers(X_tgt=None):
    """The four selection scorers, keyed by name, for multi-metric search.

    Parameters
    ----------
    X_tgt : array-like, optional
        Unlabelled target series for the target-based scorers (not needed with
        skada's packed form).

    Returns
    -------
    scorers : dict of str to callable
        ``"teacher_agreement"``, ``"teacher_kl"``, ``"target_entropy"``,
        ``"source_accuracy"``; pass as ``scoring=`` with ``refit=<name>``.

    Examples
    --------
    >>> sorted(selection_scorers())
    ['source_accuracy', 'target_entropy', 'teacher_agreement', 'teacher_kl']
    """
    return {
        "teacher_agreement": TeacherAgreementScorer(X_tgt=X_tgt),
        "teacher_kl": TeacherKLScorer(X_tgt=X_tgt),
        "target_entropy": TargetEntropyScorer(X_tgt=X_tgt),
        "source_accuracy": SourceAccuracyScorer(),
    }


# --------------------------------------------------------------------------
# collapse of the predicted-class histogram


class PredictionCollapse(NamedTuple):
    """Histogram of predicted classes; see :func:`prediction_collapse`."""

    #: share of the predictions per class, in the order of ``classes``
    shares: np.ndarray
    #: largest class share, in [1 / n_classes, 1]
    max_class_share: float
    #: entropy of ``shares`` divided by ``log(n_classes)``, in [0, 1]
    entropy: float


def prediction_collapse(y_pred, classes):
    """How far predictions on an unlabelled set collapse onto few classes.

    A classifier that broke on a new domain often predicts one or two classes
    for (almost) every target series. Without target labels this shows in the
    histogram of its predicted classes: with ``p_c`` the share of predictions
    of class ``c`` among ``C = len(classes)`` classes,

    - ``max_class_share = max_c p_c`` (``1 / C`` when spread evenly, 1 when
      every series gets the same class);
    - ``entropy = -sum_c p_c log p_c / log C`` (1 when spread evenly, 0 when
      collapsed onto one class; ``0 log 0 = 0``; 0 when ``C = 1``).

    The histogram says nothing about *which* series get which class: a
    classifier can spread its predictions evenly and still be wrong. It flags
    collapse reliably when the target classes are roughly balanced (as the
    activities of a HAR subject); on a target set dominated by one class a
    high ``max_class_share`` is expected and not a failure.

    Parameters
    ----------
    y_pred : array-like of shape (n_samples,)
        Predicted labels (e.g. ``clf.predict(X_tgt)``).
    classes : array-like of shape (n_classes,)
        Every class the classifier can predict (e.g. ``clf.classes_``), so
        that never-predicted classes count.

    Returns
    -------
    PredictionCollapse
        Named tuple ``(shares, max_class_share, entropy)``.

    Examples
    --------
    >>> from skkd.metrics import prediction_collapse
    >>> even = prediction_collapse([0, 1, 2, 0, 1, 2], classes=[0, 1, 2])
    >>> round(even.max_class_share, 3), round(even.entropy, 3)
    (0.333, 1.0)
    >>> collapsed = prediction_collapse([1, 1, 1, 1, 1, 2], classes=[0, 1, 2])
    >>> round(collapsed.max_class_share, 3), round(collapsed.entropy, 3)
    (0.833, 0.41)
    """
    y_pred = np.asarray(y_pred)
    classes = np.asarray(classes)
    if y_pred.ndim != 1 or len(y_pred) == 0:
        raise ValueError(
            "y_pred must be a non-empty 1-D array of predicted labels, got shape "
            f"{y_pred.shape}."
        )
    if classes.ndim != 1 or len(classes) == 0:
        raise ValueError("classes must list every class the classifier predicts.")
    unknown = np.setdiff1d(y_pred, classes)
    if len(unknown):
        raise ValueError(
            f"y_pred has labels {unknown.tolist()} that are not in classes "
            f"{classes.tolist()}; pass classes=clf.classes_."
        )
    counts = np.array([np.sum(y_pred == c) for c in classes], dtype=float)
    shares = counts / counts.sum()
    nonzero = shares[shares > 0]
    n_classes = len(classes)
    entropy = (
        float(-np.sum(nonzero * np.log(nonzero)) / np.log(n_classes))
        if n_classes > 1
        else 0.0
    )
    return PredictionCollapse(shares, float(shares.max()), max(0.0, entropy))


class SkadaView(BaseEstimator):
    """A fitted skkd classifier as skada's label-free scorers read it.

    skada's scorers call ``predict_proba(X, sample_domain=..., allow_source=True)``;
    ``DeepEmbeddedValidation`` also reads the network's features through
    ``predict_features`` (after checking ``module_.layer_name``), and
    ``ImportanceWeightedScorer`` calls ``score`` with ``sample_weight``. The
    view answers all of these from the wrapped classifier (the penultimate
    features of skkd backbones, see :func:`skkd.teacher.teacher_features`)
    and never modifies or refits it. Scorers take skada's packed form:
    source rows with their labels and ``sample_domain >= 0``, target rows
    with ``y = -1`` and ``sample_domain < 0``. skada's scorers request
    ``sample_domain`` through scikit-learn's metadata routing: build and call
    them with routing enabled
    (``sklearn.config_context(enable_metadata_routing=True)``).

    Parameters
    ----------
    estimator : fitted classifier
        A fitted skkd estimator, :class:`skkd.ensemble.TeacherEnsemble`, or
        either wrapped in ``sklearn.frozen.FrozenEstimator``.
    layer : str, optional
        Name of the feature layer (as in ``named_modules()``) for networks
        without ``forward_features``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn import config_context
    >>> from skkd import DANNClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> from skkd.metrics import SkadaView
    >>> d = make_domain_shift(n_samples=60, random_state=0)
    >>> net = DANNClassifier(max_epochs=2, random_state=0)
    >>> net = net.fit(d.X_src, d.y_src, d.X_tgt)
    >>> X = np.concatenate([d.X_src, d.X_tgt])
    >>> y = np.concatenate([d.y_src, -np.ones(len(d.X_tgt), dtype=int)])
    >>> domain = np.concatenate([np.ones(len(d.X_src)), -2 * np.ones(len(d.X_tgt))])
    >>> # skada's scorers need routing (importing skada turns it on for good)
    >>> with config_context(enable_metadata_routing=True):
    ...     from skada.metrics import DeepEmbeddedValidation
    ...     dev = DeepEmbeddedValidation()
    ...     score = dev(SkadaView(net), X, y, sample_domain=domain)
    >>> bool(np.isfinite(score))
    True
    """

    __metadata_request__score = {"sample_weight": True}

    def __init__(self, estimator, layer=None):
        self.estimator = estimator
        self.layer = layer

    @property
    def classes_(self):
        return self.estimator.classes_

    @property
    def module_(self):
        # DeepEmbeddedValidation checks this before calling predict_features
        from types import SimpleNamespace

        return SimpleNamespace(layer_name=self.layer or "forward_features")

    def predict_proba(self, X, sample_domain=None, allow_source=None, **params):
        """Class probabilities of the wrapped classifier (domain hints ignored)."""
        return self.estimator.predict_proba(X)

    def predict(self, X, sample_domain=None, allow_source=None, **params):
        """Predicted labels of the wrapped classifier (domain hints ignored)."""
        return self.estimator.predict(X)

    def fit(self, X, y=None, **params):
        """Not supported: the view scores the classifier as it was fitted.

        Present because skada's ``ImportanceWeightedScorer`` accepts only
        estimators that have ``fit``.
        """
        raise TypeError(
            "SkadaView scores an already fitted classifier and never refits it; "
            "fit the wrapped estimator itself, then wrap it again."
        )

    def _forward(self, X, features):
        from .teacher import frozen_copy, probe, resolve_teacher, teacher_features

        module, _ = resolve_teacher(self.estimator, owner="SkadaView")
        # an eval-mode copy: the user's network keeps its mode and weights
        module = frozen_copy(module)
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if features:
            return probe(lambda x: teacher_features(module, x, layer=self.layer), X)
        return probe(module, X)

    def predict_features(self, X):
        """Features of the wrapped network, shape ``(n_samples, n_features)``."""
        return self._forward(X, features=True)

    def infer(self, X, **params):
        """Logits of the wrapped network (skada's ``MaNoScorer`` reads them)."""
        return self._forward(X, features=False)

    def score(self, X, y, sample_weight=None, **params):
        """(Weighted) accuracy of the wrapped classifier on labelled rows."""
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
