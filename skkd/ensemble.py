"""Seed ensembles of teachers that behave as one teacher, and a collapse filter.

:class:`TeacherEnsemble` fits ``K`` copies of a classifier that differ only
in their seed and behaves as ONE fitted classifier (``predict``,
``predict_proba``, ``score``) and as ONE network, :class:`EnsembleModule`,
for every distiller, every exporter and ``FrozenEstimator``: its logits are
the members' average; its features are the members' features side by side,
with a linear head that reproduces the average.

A seed ensemble is a stronger and steadier teacher than any one seed when
the seeds disagree on the target domain, which is the rule for cross-domain
teachers (DANN). Some seeds break on the target domain: they predict one or
two classes for almost every target series. :class:`CollapseFilter` spots
them without target labels, from the histogram of their predicted classes
(:func:`skkd.metrics.prediction_collapse`), and the ensemble drops them.
"""

import numbers
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from torch import nn

from ._validation import check_time_series
from .metrics import prediction_collapse

__all__ = ["CollapseFilter", "EnsembleModule", "TeacherEnsemble"]

#: rows per forward pass at prediction time
_BATCH = 256


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def _has_linear_head(module):
    return isinstance(getattr(module, "head", None), nn.Linear) and callable(
        getattr(module, "forward_features", None)
    )


class EnsembleModule(nn.Module):
    """Several trained networks as one: averaged logits, concatenated features.

    ``forward(x)`` is the mean of the members' logits. When every member
    computes its logits as an ``nn.Linear`` ``head`` over
    ``forward_features(x)`` (every :mod:`skkd.nn` backbone does), the module
    also has the backbone interface the feature-based distillers read:

    - ``forward_features(x)`` is the concatenation of the members' features,
      ``(batch, n_features)`` with ``n_features`` their sum;
    - ``head`` is one ``nn.Linear(n_features, n_classes)`` whose weight is the
      members' head weights side by side divided by ``K`` and whose bias is
      the mean of their biases, so that
      ``head(forward_features(x)) = mean_k head_k(features_k(x))``, the
      average of the members' logits.

    ``forward`` is then computed as ``head(forward_features(x))`` (exactly
    the backbone contract); it equals the average of ``member(x)`` up to float
    rounding. ``head`` is built once from the members' heads: its parameters
    are copies, and the members' own heads stay in ``members`` unused.
    Members of other kinds (their logits are not a linear head over their
    features) still give averaged logits; ``forward_features`` then raises a
    ``TypeError`` naming the fix.

    Parameters
    ----------
    members : list of torch.nn.Module
        Trained networks with the same input and the same classes.
    feature_head : {"auto", True, False}, default="auto"
        Build ``head`` and ``forward_features``: ``"auto"`` when every member
        has an ``nn.Linear`` ``head`` and ``forward_features``; ``False`` for
        averaged logits only (e.g. when a member's ``forward`` is not its head
        over its features).

    Attributes
    ----------
    members : torch.nn.ModuleList
        The networks.
    head : torch.nn.Linear
        Only with the feature head.
    n_features : int
        Width of ``forward_features`` (0 without the feature head).
    n_channels, n_classes : int
        Taken from the members when they record them.

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> nets = [CNN1D(3, 4, widths=(4, 8)).eval() for _ in range(3)]
    >>> ens = EnsembleModule(nets).eval()
    >>> x = torch.randn(5, 3, 32)
    >>> ens.forward_features(x).shape, ens.n_features
    (torch.Size([5, 24]), 24)
    >>> mean = torch.stack([net(x) for net in nets]).mean(0)
    >>> bool(torch.allclose(ens(x), mean, atol=1e-6))
    True
    >>> bool(torch.allclose(ens.head(ens.forward_features(x)), ens(x)))
    True
    """

    def __init__(self, members, feature_head="auto"):
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, nn.Module) for m in members):
            raise ValueError(
                "EnsembleModule needs a non-empty list of torch.nn.Module members."
            )
        if feature_head not in ("auto", True, False):
            raise ValueError(
                f"feature_head must be 'auto', True or False, got {feature_head!r}."
            )
        self.members = nn.ModuleList(members)
        for name in ("n_channels", "n_classes"):
            values = {getattr(m, name, None) for m in members}
            if len(values) == 1 and None not in values:
                setattr(self, name, values.pop())
        linear = all(_has_linear_head(m) for m in members)
        if feature_head is True and not linear:
            raise ValueError(
                "feature_head=True needs members with an nn.Linear head and "
                "forward_features(x); pass feature_head='auto'."
            )
        self.has_feature_head = bool(linear and feature_head)
        self.n_features = 0
        if self.has_feature_head:
            heads = [m.head for m in members]
            if len({h.out_features for h in heads}) != 1:
                raise ValueError(
                    "The members predict different numbers of classes: "
                    f"{[h.out_features for h in heads]}."
                )
            k = len(heads)
            self.n_features = sum(h.in_features for h in heads)
            head = nn.Linear(self.n_features, heads[0].out_features)
            head = head.to(device=heads[0].weight.device, dtype=heads[0].weight.dtype)
            with torch.no_grad():
                head.weight.copy_(torch.cat([h.weight for h in heads], dim=1) / k)
                if all(h.bias is not None for h in heads):
                    head.bias.copy_(torch.stack([h.bias for h in heads]).mean(0))
                else:
                    bias = [h.bias for h in heads if h.bias is not None]
                    head.bias.copy_(
                        torch.stack(bias).sum(0) / k if bias else 0 * head.bias
                    )
            self.head = head

    def forward(self, x):
        """Averaged logits ``(batch, n_classes)`` of the members."""
        if self.has_feature_head:
            return self.head(self.forward_features(x))
        return torch.stack([_logits(m(x)) for m in self.members]).mean(dim=0)

    def member_logits(self, x):
        """Each member's logits, ``(n_members, batch, n_classes)``."""
        return torch.stack([_logits(m(x)) for m in self.members])

    def forward_features(self, x):
        """The members' features side by side, ``(batch, n_features)``.

        Raises
        ------
        TypeError
            When the members' logits are not a linear head over their
            features, so no features reproduce the ensemble.
        """
        if not self.has_feature_head:
            kinds = sorted({type(m).__name__ for m in self.members})
            raise TypeError(
                f"the ensemble of {', '.join(kinds)} members has no features: "
                "a member's logits are not an nn.Linear `head` over its "
                "forward_features(x), so no concatenation of features "
                "reproduces the averaged logits. Distil it with a logit-based "
                "method (KDClassifier, DKDClassifier), or build the members from "
                "networks whose forward(x) is head(forward_features(x)) (every "
                "skkd.nn backbone)."
            )
        return torch.cat([m.forward_features(x) for m in self.members], dim=1)


class CollapseFilter(BaseEstimator):
    """Flag ensemble members whose target predictions collapsed onto few classes.

    For each member ``k`` the histogram of its predicted classes on the
    unlabelled target set is summarised by
    :func:`skkd.metrics.prediction_collapse` as ``max_class_share_k`` and
    the normalised entropy ``H_k`` in [0, 1]. ``H_ens`` is the same entropy
    for the predictions of the whole ensemble (all members, averaged
    logits). Member ``k`` is *collapsed*, and dropped, when

    ``max_class_share_k > max_class_share``  or  ``H_k < min_entropy_ratio * H_ens``.

    Its score (``TeacherEnsemble.member_scores_``) is ``H_k``: greater is
    less collapsed.

    When it is reliable: on roughly balanced target classes (a HAR subject's
    activities, most benchmark domains), where a healthy member spreads its
    predictions over most classes. It catches *collapse* only: a member can
    spread its predictions evenly and still be wrong. On a target set
    dominated by one class, raise ``max_class_share`` (or filter with
    another criterion); the entropy rule is relative to the ensemble, so it
    adapts to moderately imbalanced targets by itself.

    Parameters
    ----------
    max_class_share : float or "auto", default="auto"
        Largest accepted share of one class among a member's target
        predictions. ``"auto"`` is ``(1 + 1 / n_classes) / 2``, halfway
        between even predictions and total collapse: 0.583 for the 6 HAR
        activities, 0.75 for 2 classes.
    min_entropy_ratio : float, default=0.75
        A member whose histogram entropy falls below this fraction of the
        ensemble's is dropped (with 6 classes: one that spreads its
        predictions over about 3 classes or fewer when the ensemble uses
        all 6).

    Examples
    --------
    >>> import numpy as np
    >>> f = CollapseFilter()
    >>> members = [np.array([0, 1, 2, 0, 1, 2]), np.array([1, 1, 1, 1, 1, 2])]
    >>> keep, scores, details = f.select(members, np.array([0, 1, 2, 0, 1, 2]),
    ...                                  classes=[0, 1, 2])
    >>> keep.tolist(), np.round(scores, 2).tolist()
    ([True, False], [1.0, 0.41])
    """

    def __init__(self, max_class_share="auto", min_entropy_ratio=0.75):
        self.max_class_share = max_class_share
        self.min_entropy_ratio = min_entropy_ratio

    def _threshold(self, n_classes):
        if isinstance(self.max_class_share, str):
            if self.max_class_share != "auto":
                raise ValueError(
                    "max_class_share must be a float in (0, 1] or 'auto', got "
                    f"{self.max_class_share!r}."
                )
            return (1 + 1 / n_classes) / 2
        share = float(self.max_class_share)
        if not 0 < share <= 1:
            raise ValueError(f"max_class_share must be in (0, 1], got {share}.")
        return share

    def select(self, member_predictions, ensemble_prediction, classes):
        """Which members to keep, from their predicted labels on the target set.

        Parameters
        ----------
        member_predictions : list of ndarray of shape (n_target,)
            Each member's predicted labels.
        ensemble_prediction : ndarray of shape (n_target,)
            The whole ensemble's predicted labels.
        classes : array-like of shape (n_classes,)
            Every class.

        Returns
        -------
        keep : ndarray of bool, shape (n_members,)
        scores : ndarray of float, shape (n_members,)
            ``H_k``, greater is less collapsed.
        details : dict
            ``"max_class_share"`` (per member), ``"entropy"`` (per member),
            ``"ensemble_entropy"``, ``"max_class_share_threshold"``,
            ``"entropy_threshold"``.
        """
        if not 0 <= float(self.min_entropy_ratio) <= 1:
            raise ValueError(
                f"min_entropy_ratio must be in [0, 1], got {self.min_entropy_ratio}."
            )
        classes = np.asarray(classes)
        stats = [prediction_collapse(p, classes) for p in member_predictions]
        shares = np.array([s.max_class_share for s in stats])
        entropy = np.array([s.entropy for s in stats])
        reference = prediction_collapse(ensemble_prediction, classes).entropy
        max_share = self._threshold(len(classes))
        min_entropy = float(self.min_entropy_ratio) * reference
        keep = (shares <= max_share) & (entropy >= min_entropy)
        details = {
            "max_class_share": shares,
            "entropy": entropy,
            "ensemble_entropy": reference,
            "max_class_share_threshold": max_share,
            "entropy_threshold": min_entropy,
        }
        return keep, entropy, details


def _fit_member(member, X, y, fit_params):
    return member.fit(X, y, **fit_params)


class TeacherEnsemble(ClassifierMixin, BaseEstimator):
    """``K`` seeds of a teacher, fitted in parallel, used as one teacher.

    ``fit`` clones ``estimator`` once per seed with ``random_state=seed``
    and fits the clones through :class:`joblib.Parallel` (inside
    ``joblib.parallel_config(backend="dask")`` they run on a Dask
    cluster). A ``member_filter`` may then drop members flagged on the
    unlabelled target set. The kept members form ``module_``, an
    :class:`EnsembleModule`: averaged logits, concatenated features and a
    linear head that reproduces the average. With ``initialized_``,
    ``classes_`` and ``module_`` the ensemble is accepted by every skkd
    distiller (``teacher=FrozenEstimator(ensemble)``), by
    :mod:`skkd.export` and by :mod:`skkd.compression`.

    ``predict_proba`` is the softmax of the *averaged logits*, not the mean
    of the members' probabilities: distillers read the teacher's logits
    (soft targets are ``softmax(mean logits / T)``), so the ensemble
    predicts exactly what it teaches. (At ``T = 1`` this is the normalised
    geometric mean of the members' probabilities.)

    Parameters
    ----------
    estimator : estimator
        Unfitted classifier with a ``random_state`` parameter whose fitted
        form has ``module_`` (a ``torch.nn.Module`` giving logits) and
        ``classes_``: any skkd or skorch classifier. Cloned, never modified.
        Its parameters are reachable as ``estimator__<name>``.
    n_members : int, default=5
        Number of members ``K``.
    seeds : sequence of int or None, default=None
        One distinct seed per member (``random_state`` of each clone);
        default ``range(n_members)``. The same seeds give the same members,
        bit for bit on CPU.
    member_filter : None, "collapse", CollapseFilter or callable, default=None
        Drops members flagged on the target set after fitting (needs
        ``X_tgt``, or target rows of skada's packed form). ``"collapse"``
        is ``CollapseFilter()``. A callable ``(member, X_tgt) -> bool``
        receives each fitted member and the target series and returns
        whether to keep it; build it on a skada scorer where one exists (see
        the user guide). The filter never drops every member: the
        best-scoring one is kept and a warning is issued.
    n_jobs : int or None, default=None
        Members fitted at the same time (joblib's ``n_jobs``).

    Attributes
    ----------
    estimators_ : list of estimator
        All ``K`` fitted members, dropped ones included, in seed order.
    seeds_ : ndarray of int
        The seeds used.
    kept_ : ndarray of bool, shape (n_members,)
        Whether each member is part of ``module_``.
    member_scores_ : ndarray of float, shape (n_members,) or None
        The filter's score of each member (greater is better): the
        normalised entropy of its predicted-class histogram for
        ``"collapse"``, 1.0 or 0.0 for a callable; None without a filter.
    filter_details_ : dict or None
        Statistics of :class:`CollapseFilter` (class shares, entropies,
        thresholds); None otherwise.
    module_ : EnsembleModule
        The kept members as one network (sharing the members' networks),
        in eval mode.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_channels_in_, n_timepoints_in_ : int
        Input shape seen in ``fit``.
    initialized_ : bool
        True once fitted (what skorch-style consumers check).

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import KDClassifier, TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> from skkd.ensemble import TeacherEnsemble
    >>> d = make_domain_shift(n_samples=48, n_target=40, random_state=0)
    >>> base = TimeSeriesClassifier(module__widths=(8, 8), max_epochs=1)
    >>> ens = TeacherEnsemble(base, n_members=3, member_filter="collapse")
    >>> ens = ens.fit(d.X_src, d.y_src, d.X_tgt)
    >>> ens.seeds_.tolist(), len(ens.estimators_)
    ([0, 1, 2], 3)
    >>> # each kept member adds its 8 features; kept_ says which were kept
    >>> bool(ens.module_.n_features == 8 * ens.kept_.sum())
    True
    >>> ens.predict(d.X_tgt_test).shape
    (48,)
    >>> student = KDClassifier(FrozenEstimator(ens), module__widths=(4,),
    ...                        max_epochs=1, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (48,)
    """

    # X_tgt and sample_domain are routed to fit like for every skkd estimator
    __metadata_request__fit = {"X_tgt": True, "sample_domain": True}
    __metadata_request__predict = {"sample_domain": True}
    __metadata_request__predict_proba = {"sample_domain": True}
    __metadata_request__score = {"sample_domain": True}

    #: False until fit (what resolve_teacher and skorch-style consumers read)
    initialized_ = False

    def __init__(
        self, estimator, *, n_members=5, seeds=None, member_filter=None, n_jobs=None
    ):
        self.estimator = estimator
        self.n_members = n_members
        self.seeds = seeds
        self.member_filter = member_filter
        self.n_jobs = n_jobs

    # ------------------------------------------------------------- validation
    def _check_params(self):
        n = self.n_members
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(
                f"n_members must be an integer >= 1, got {n!r}; pass e.g. n_members=5."
            )
        if self.seeds is None:
            seeds = np.arange(n)
        else:
            seeds = np.asarray(self.seeds)
            if seeds.ndim != 1 or not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool)
                for s in seeds.tolist()
            ):
                raise ValueError(
                    f"seeds must be a sequence of integers, got {self.seeds!r}."
                )
            if len(seeds) != n:
                raise ValueError(
                    f"seeds has {len(seeds)} entries but n_members={n}: pass one "
                    f"seed per member, or seeds=None for range({n})."
                )
            if len(np.unique(seeds)) != n:
                raise ValueError(
                    f"seeds {seeds.tolist()} repeat a value: members with the "
                    "same seed are identical; pass distinct seeds."
                )
        try:
            params = self.estimator.get_params(deep=False)
        except AttributeError as exc:
            raise TypeError(
                "estimator must be an unfitted scikit-learn-style classifier "
                "(with get_params), e.g. DANNClassifier(...); got "
                f"{type(self.estimator).__name__}."
            ) from exc
        if "random_state" not in params:
            raise TypeError(
                f"{type(self.estimator).__name__} has no random_state parameter, "
                "which TeacherEnsemble sets to each seed: use an estimator that "
                "takes random_state (every skkd estimator does; for a plain "
                "skorch net, subclass it to seed torch from random_state)."
            )
        flt = self.member_filter
        if not (
            flt is None
            or isinstance(flt, CollapseFilter)
            or (isinstance(flt, str) and flt == "collapse")
            or (callable(flt) and not isinstance(flt, str))
        ):
            raise ValueError(
                "member_filter must be None, 'collapse', a CollapseFilter or a "
                f"callable (member, X_tgt) -> bool; got {flt!r}."
            )
        return seeds.astype(np.int64)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y, X_tgt=None, **fit_params):
        """Fit ``n_members`` seeds of ``estimator``, then filter them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timepoints)
            Labelled (source) series.
        y : array-like of shape (n_samples,)
            Labels of ``X``.
        X_tgt : array-like of shape (n_target, n_channels, n_timepoints), optional
            Unlabelled target series, passed to every member's ``fit`` and
            read by ``member_filter``.
        **fit_params
            Passed to every member's ``fit`` (e.g. ``sample_domain`` of
            skada's packed form, whose target rows the filter then reads).

        Returns
        -------
        self
        """
        seeds = self._check_params()
        for attr in [k for k in vars(self) if k.endswith("_")]:
            delattr(self, attr)  # a refit starts from nothing
        kwargs = dict(fit_params)
        if X_tgt is not None:
            kwargs["X_tgt"] = X_tgt
        members = [clone(self.estimator).set_params(random_state=int(s)) for s in seeds]
        members = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(m, X, y, kwargs) for m in members
        )
        self._check_members(members)
        self.estimators_ = list(members)
        self.seeds_ = seeds
        first = members[0]
        self.classes_ = np.asarray(first.classes_)
        X = check_time_series(X, name="X")
        self.n_channels_in_ = int(getattr(first, "n_channels_in_", X.shape[1]))
        self.n_timepoints_in_ = int(getattr(first, "n_timepoints_in_", X.shape[2]))
        X_filter = self._target_rows(X, X_tgt, fit_params.get("sample_domain"))
        self._filter(X_filter)
        kept = [m for m, k in zip(members, self.kept_, strict=True) if k]
        self.module_ = self._build_module(kept, X[:8])
        self.initialized_ = True
        return self

    def _check_members(self, members):
        for m in members:
            if not isinstance(getattr(m, "module_", None), nn.Module):
                raise TypeError(
                    f"The fitted {type(m).__name__} has no torch module_ "
                    "(the network TeacherEnsemble averages): use a skkd or "
                    "skorch classifier as estimator."
                )
        classes = [np.asarray(m.classes_) for m in members]
        if not all(np.array_equal(classes[0], c) for c in classes[1:]):
            raise ValueError(
                "The members learned different classes "
                f"{[c.tolist() for c in classes]}; every seed must see every class."
            )

    def _target_rows(self, X, X_tgt, sample_domain):
        if self.member_filter is None:
            return None
        if X_tgt is not None:
            return check_time_series(
                X_tgt,
                name="X_tgt",
                n_channels=self.n_channels_in_,
                n_timepoints=self.n_timepoints_in_,
            )
        if sample_domain is not None:
            is_target = np.asarray(sample_domain) < 0
            if is_target.any():
                return X[is_target]
        raise ValueError(
            f"member_filter={self.member_filter!r} judges members on unlabelled "
            "target series but fit received none: call fit(X, y, X_tgt), or "
            "pass skada's packed form with sample_domain < 0 for target rows."
        )

    def _member_logits(self, modules, X):
        """Logits ``(n_members, n_samples, n_classes)`` in eval mode, no grad."""
        ens = EnsembleModule(modules, feature_head=False)
        return self._run(ens.member_logits, ens, X)

    @staticmethod
    def _run(forward, module, X):
        modes = [m.training for m in module.modules()]
        module.eval()
        try:
            with torch.no_grad():
                out = [
                    forward(torch.from_numpy(X[i : i + _BATCH]))
                    for i in range(0, len(X), _BATCH)
                ]
        finally:
            for m, mode in zip(module.modules(), modes, strict=True):
                m.training = mode
        return torch.cat(out, dim=-2).cpu().numpy()

    def _filter(self, X_tgt):
        k = len(self.estimators_)
        self.member_scores_ = None
        self.filter_details_ = None
        flt = self.member_filter
        if flt is None:
            self.kept_ = np.ones(k, dtype=bool)
            return
        if isinstance(flt, str) or isinstance(flt, CollapseFilter):
            flt = CollapseFilter() if isinstance(flt, str) else flt
            logits = self._member_logits([m.module_ for m in self.estimators_], X_tgt)
            members = [self.classes_[z.argmax(axis=1)] for z in logits]
            ensemble = self.classes_[logits.mean(axis=0).argmax(axis=1)]
            keep, scores, details = flt.select(members, ensemble, self.classes_)
            self.filter_details_ = details
        else:
            keep = np.array([bool(flt(m, X_tgt)) for m in self.estimators_])
            scores = keep.astype(float)
        keep = np.asarray(keep, dtype=bool)
        scores = np.asarray(scores, dtype=float)
        if not keep.any():
            best = int(np.argmax(scores))
            warnings.warn(
                f"member_filter flagged all {k} members; keeping the best-scoring "
                f"one (member {best}, seed {int(self.seeds_[best])}). The teacher "
                "is probably unreliable on this target set.",
                UserWarning,
                stacklevel=3,
            )
            keep[best] = True
        self.kept_ = keep
        self.member_scores_ = scores

    @staticmethod
    def _build_module(members, X_probe):
        modules = [m.module_ for m in members]
        feature_head = all(_has_linear_head(m) for m in modules)
        if feature_head:
            # a member whose forward is not head(forward_features) (a custom
            # network) would make the concatenated head wrong: check on data
            x = torch.from_numpy(X_probe)
            for m in modules:
                was = m.training
                m.eval()
                with torch.no_grad():
                    direct = _logits(m(x))
                    via_head = m.head(m.forward_features(x))
                m.train(was)
                if direct.shape != via_head.shape or not torch.allclose(
                    direct, via_head, rtol=1e-4, atol=1e-5
                ):
                    feature_head = False
                    break
        return EnsembleModule(modules, feature_head=feature_head).eval()

    # ------------------------------------------------------------- pickling
    def __getstate__(self):
        # module_ shares the members' networks: pickle them once (in
        # estimators_) and rebuild module_ on load
        state = dict(super().__getstate__())
        module = state.pop("module_", None)
        if module is not None:
            state["_feature_head"] = module.has_feature_head
        return state

    def __setstate__(self, state):
        state = dict(state)
        feature_head = state.pop("_feature_head", None)
        super().__setstate__(state)
        if feature_head is not None:
            pairs = zip(self.estimators_, self.kept_, strict=True)
            kept = [m.module_ for m, k in pairs if k]
            self.module_ = EnsembleModule(kept, feature_head=feature_head).eval()

    # ------------------------------------------------------------- predicting
    def check_is_fitted(self):
        """Raise ``NotFittedError`` unless fitted."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                "This TeacherEnsemble instance is not fitted yet. Call "
                "fit(X, y, X_tgt) before using it."
            )

    def __sklearn_is_fitted__(self):
        return "module_" in vars(self)

    def decision_function(self, X, sample_domain=None):
        """Averaged logits of the kept members, ``(n_samples, n_classes)``.

        ``sample_domain`` is accepted for skada compatibility and ignored.
        """
        self.check_is_fitted()
        X = check_time_series(
            X,
            name="X",
            n_channels=self.n_channels_in_,
            n_timepoints=self.n_timepoints_in_,
            action="predicting",
        )
        return self._run(self.module_, self.module_, X)

    def predict_proba(self, X, sample_domain=None):
        """Softmax of the averaged logits (columns ordered as ``classes_``).

        Averaging logits rather than probabilities keeps the prediction equal
        to what the ensemble teaches a student (distillers read logits).
        """
        logits = torch.from_numpy(self.decision_function(X))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X, sample_domain=None):
        """Labels of the largest averaged logit, in the user's encoding."""
        logits = self.decision_function(X)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X, y, sample_weight=None, sample_domain=None):
        """Accuracy on ``(X, y)``; ``sample_domain`` is accepted and ignored."""
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
