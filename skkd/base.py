"""The skkd engine: one skorch classifier that every estimator specialises.

:class:`BaseTimeSeriesClassifier` adds to skorch's ``NeuralNetClassifier`` what a
time-series (and domain-adaptation) classifier needs: input validation, label
encoding, modules sized from the data, source/target mini-batch pairing, per-term
loss logging, seeding, and a small hook (:meth:`compute_losses`) that each method
overrides. :class:`BaseDistiller` adds the frozen teacher.
"""

import copy
import inspect
import itertools
import math
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import is_dataset
from torch import nn

from ._skada import is_skada_net, skada_teacher
from ._validation import check_labels, check_time_series, split_packed_domains
from .model_selection import unwrap_target
from .nn import CNN1D

__all__ = [
    "BaseTimeSeriesClassifier",
    "BaseDistiller",
    "TEACHER_CACHE_MAX_BYTES",
    "resolve_teacher",
]

#: largest teacher-output cache a fit holds (bytes); above it the teacher runs
#: once per step
TEACHER_CACHE_MAX_BYTES = 1 << 30
#: rows per teacher forward while the cache is filled
_CACHE_CHUNK = 256


def _encoded_accuracy(net, X, y):
    # skorch scores its internal validation split on encoded labels (0..K-1)
    proba = net.predict_proba(X)
    return float(np.mean(proba.argmax(axis=1) == np.asarray(y)))


class BaseTimeSeriesClassifier(NeuralNetClassifier):
    """Engine of every skkd estimator: a skorch classifier for time series.

    Data are ``(n_samples, n_channels, n_timepoints)`` arrays (2-D input is read as
    univariate); any numeric dtype is cast to float32 on a copy. Labels can be
    ints or strings and are returned in the user's encoding (``classes_``). The
    module is built in :meth:`initialize_module` from the class given as
    ``module`` with ``n_channels`` and ``n_classes`` taken from the data (and
    ``n_timepoints`` if its signature asks for it) plus the ``module__*``
    parameters.

    ``fit(X, y, X_tgt)`` takes an optional unlabelled target (transfer) set. Each
    training step pairs one source mini-batch with one target mini-batch; the
    target loader cycles (reshuffled each pass) and an epoch covers the source set
    once. Subclasses implement :meth:`compute_losses`; every term it returns is
    logged per epoch in ``history_`` as ``train_<term>``.

    Parameters
    ----------
    module : type or torch.nn.Module, default=CNN1D
        Student network class (built from the data shapes) or an instance (used
        as a deep copy, never modified).
    criterion : type, default=torch.nn.CrossEntropyLoss
        Supervised loss on source labels.
    optimizer : type, default=torch.optim.Adam
        Optimizer class; its settings are routed with ``optimizer__*``.
    lr : float, default=1e-2
        Learning rate (the UNI-KD/AdaTime setting).
    max_epochs : int, default=10
        Training epochs; one epoch covers the source set once.
    batch_size : int, default=32
        Mini-batch size, for source and target batches alike.
    train_split : callable or None, default=None
        skorch internal validation split; None trains on all source data.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, shuffling and dropout: a fixed value gives
        bit-identical results on CPU. The global torch RNG is restored afterwards.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    **kwargs
        Routed skorch parameters (``module__*``, ``optimizer__*``,
        ``iterator_train__*``, ``callbacks__*`` ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    classes_ : ndarray of shape (n_classes,)
        Class labels in the user's encoding.
    n_channels_in_ : int
        Channels seen in ``fit``.
    n_timepoints_in_ : int
        Series length seen in ``fit``.
    history_ : skorch.history.History
        Per-epoch record, including every loss term as ``train_<term>``.
    """

    #: whether ``fit`` must receive target data (``X_tgt`` or packed rows)
    _requires_target = False
    #: default routed parameters; explicit user values win
    _default_kwargs = {
        "optimizer__weight_decay": 1e-4,
        "iterator_train__shuffle": True,
    }
    # X_tgt and sample_domain are requested by default so GridSearchCV,
    # cross_validate and skada route them when metadata routing is on.
    __metadata_request__fit = {"X_tgt": True, "sample_domain": True}
    __metadata_request__partial_fit = {"X_tgt": True, "sample_domain": True}
    __metadata_request__predict = {"sample_domain": True}
    __metadata_request__predict_proba = {"sample_domain": True}
    __metadata_request__score = {"sample_domain": True}

    def __init__(
        self,
        module=CNN1D,
        *,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-2,
        max_epochs=10,
        batch_size=32,
        train_split=None,
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            verbose=verbose,
            **{**self._default_kwargs, **kwargs},
        )
        self.random_state = random_state

    # ------------------------------------------------------------------ sklearn
    def _get_param_names(self):
        # skorch lists every public __dict__ entry; private state
        # (``_params_to_validate`` ...) is never a hyperparameter
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.target_tags.required = True
        return tags

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            (
                "valid_acc",
                EpochScoring(
                    _encoded_accuracy, name="valid_acc", lower_is_better=False
                ),
            ),
            ("print_log", PrintLog()),
        ]

    @property
    def classes_(self):
        """Class labels in the user's encoding."""
        if not hasattr(self, "label_encoder_"):
            raise AttributeError(
                f"{type(self).__name__} is not fitted yet and has no classes_; "
                "call fit first."
            )
        return self.label_encoder_.classes_

    # ---------------------------------------------------------------- modules
    def _module_kwargs(self, module_cls):
        """Data-derived shapes for a module class, as its signature asks."""
        shapes = {"n_channels": self.n_channels_in_, "n_classes": len(self.classes_)}
        try:
            accepted = inspect.signature(module_cls).parameters
        except (TypeError, ValueError):
            accepted = {}
        if "n_timepoints" in accepted:
            shapes["n_timepoints"] = self.n_timepoints_in_
        return shapes

    def initialize_module(self):
        """Build ``module_`` with ``n_channels``/``n_classes`` taken from the data."""
        if not hasattr(self, "n_channels_in_"):
            raise NotFittedError(
                f"{type(self).__name__} builds its module from the data: call fit(X, y)"
                " instead of initialize()."
            )
        if isinstance(self.module, nn.Module):
            module = copy.deepcopy(self.module)  # the user's instance stays untouched
        else:
            kwargs = {
                **self._module_kwargs(self.module),
                **self.get_params_for("module"),
            }
            module = self.module(**kwargs)
        self.module_ = module
        return self

    def initialize_component(self, name, **shapes):
        """Build an extra module (``discriminator`` ...) the skorch way.

        ``self.<name>`` is the class (a constructor parameter); ``<name>__*``
        parameters are routed to it, so ``set_params(discriminator__hidden=32)``
        works. Call it inside :meth:`initialize_module` and assign the result to
        ``self.<name>_``.
        """
        factory = getattr(self, name)
        kwargs = {**shapes, **self.get_params_for(name)}
        if isinstance(factory, nn.Module):
            return copy.deepcopy(factory) if not kwargs else type(factory)(**kwargs)
        return factory(**kwargs)

    def initialize_optimizer(self, triggered_directly=None):
        """One optimizer per group of :meth:`optimizer_groups`, skorch-registered."""
        for name, module_names in self.optimizer_groups().items():
            named = itertools.chain.from_iterable(
                getattr(self, m + "_").named_parameters() for m in module_names
            )
            args, kwargs = self.get_params_for_optimizer(name, named)
            setattr(self, name + "_", self.optimizer(*args, **kwargs))
        return self

    def optimizer_groups(self):
        """Map each optimizer name to the modules it trains.

        Override to add optimizers, e.g. ``{"optimizer": ["module", "adapter"],
        "optimizer_disc": ["discriminator"]}``; ``optimizer_disc__lr`` then routes
        to the second one.
        """
        return {"optimizer": ["module"]}

    # ---------------------------------------------------------------- seeding
    def _seed(self):
        if self.random_state is None:
            return None
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    @contextmanager
    def _seeded(self):
        seed = self._seed()
        if seed is None:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    # ------------------------------------------------------------- validation
    def _check_input(self, X, name="X"):
        # series must match the fitted channels and length, as in sktime
        fitted = hasattr(self, "n_channels_in_")
        return check_time_series(
            X,
            name=name,
            n_channels=self.n_channels_in_ if fitted else None,
            n_timepoints=self.n_timepoints_in_ if fitted else None,
        )

    def _validate_training_data(self, X, y, X_tgt, sample_domain, reset):
        # a TargetSet is unwrapped; a target set sliced by sklearn's CV is refused
        X_tgt = unwrap_target(X, X_tgt)
        X, y, X_tgt = split_packed_domains(X, y, X_tgt, sample_domain)
        X = check_time_series(X, name="X")
        y = check_labels(y, len(X))
        if reset:
            self.n_channels_in_ = X.shape[1]
            self.n_timepoints_in_ = X.shape[2]
            self.label_encoder_ = LabelEncoder().fit(y)
        else:
            X = self._check_input(X)
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"y has labels {unknown.tolist()} not seen in the first fit "
                    f"(classes_ = {self.classes_.tolist()}); refit from scratch."
                )
        if X_tgt is not None:
            X_tgt = check_time_series(
                X_tgt,
                name="X_tgt",
                n_channels=X.shape[1],
                n_timepoints=X.shape[2],
            )
        elif self._requires_target:
            raise ValueError(
                f"{type(self).__name__} needs unlabelled target data: call "
                "fit(X_src, y_src, X_tgt) or pass skada's packed form with "
                "sample_domain < 0 for target rows."
            )
        return X, self.label_encoder_.transform(y).astype(np.int64), X_tgt

    # ----------------------------------------------------------------- fitting
    def fit(self, X, y, X_tgt=None, *, sample_domain=None):
        """Fit on labelled source series and optional unlabelled target series.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timepoints)
            Labelled (source) series; 2-D is read as univariate.
        y : array-like of shape (n_samples,)
            Labels of ``X`` (ints or strings).
        X_tgt : array-like of shape (n_target, n_channels, n_timepoints), optional
            Unlabelled target-domain (or transfer) series.
        sample_domain : array-like of shape (n_samples,), optional
            skada's packed form: rows with ``sample_domain < 0`` are target rows
            (their labels are ignored); do not pass ``X_tgt`` then.

        Returns
        -------
        self
        """
        reset = not (self.warm_start and self.initialized_)
        X, y, X_tgt = self._validate_training_data(X, y, X_tgt, sample_domain, reset)
        self._prepare_fit(X, y, X_tgt)
        with self._seeded():
            if reset:
                self.initialize()
            return self._fit_paired(X, y, X_tgt)

    def partial_fit(self, X, y, X_tgt=None, *, sample_domain=None, classes=None):
        """Continue training without re-initialising (see :meth:`fit`)."""
        reset = not self.initialized_
        X, y, X_tgt = self._validate_training_data(X, y, X_tgt, sample_domain, reset)
        self._prepare_fit(X, y, X_tgt)
        with self._seeded():
            if reset:
                self.initialize()
            return self._fit_paired(X, y, X_tgt)

    def _prepare_fit(self, X, y, X_tgt):
        """Hook run after validation, before the modules are built."""

    def _fit_paired(self, X, y, X_tgt):
        n_batches = math.ceil(len(X) / self.batch_size) if self.batch_size > 0 else 1
        self.steps_per_epoch_ = n_batches
        self._target_data_ = None if X_tgt is None else torch.from_numpy(X_tgt)
        self._target_batches_ = None
        try:
            # nothing reaches module.forward: target batches are drawn per step
            NeuralNetClassifier.partial_fit(self, X, y)
        finally:
            # iterators are not picklable and target data must not outlive fit
            del self._target_data_, self._target_batches_
        return self

    def _draw_target_batch(self):
        """Next target mini-batch; the target set is reshuffled on every pass."""
        if self._target_data_ is None:
            return None
        if self._target_batches_ is not None:
            batch = next(self._target_batches_, None)
            if batch is not None:
                return batch
        n = len(self._target_data_)
        size = n if self.batch_size <= 0 else min(self.batch_size, n)
        order = torch.randperm(n)
        self._target_batches_ = (
            self._target_data_[order[i : i + size]] for i in range(0, n, size)
        )
        return next(self._target_batches_)

    @property
    def current_epoch(self):
        """1-based index of the epoch being trained."""
        return len(self.history)

    @property
    def progress(self):
        """Fraction of the planned training steps done, in [0, 1]."""
        done = sum(len(row["batches"]) for row in self.history)
        total = max(1, self.max_epochs * self.steps_per_epoch_)
        return min(1.0, done / total)

    def _set_training(self, training=True):
        super()._set_training(training)
        for name in self._frozen_modules():
            getattr(self, name + "_").eval()

    def _frozen_modules(self):
        return []

    def get_all_learnable_params(self):
        frozen = set(self._frozen_modules())
        for name in self._modules + self._criteria:
            if name in frozen:
                continue
            module = getattr(self, name + "_")
            if hasattr(module, "named_parameters"):
                yield from module.named_parameters()

    # -------------------------------------------------------------- the hook
    def compute_losses(self, X, y, X_tgt):
        """Loss terms for one step; override in each method.

        Parameters
        ----------
        X : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Source mini-batch.
        y : torch.Tensor of shape (batch,)
            Encoded source labels.
        X_tgt : torch.Tensor or None
            The paired target mini-batch, or None when fit got no target data.

        Returns
        -------
        terms : dict of str to torch.Tensor
            Must hold ``"loss"`` (the total to minimise) and may hold ``"y_pred"``
            (student source logits); every other entry is logged as
            ``train_<name>``.
        """
        logits = self.module_(X)
        ce = self.criterion_(logits, y)
        return {"loss": ce, "ce": ce, "y_pred": logits}

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        X, y = unpack_data(batch)
        X_tgt = self._draw_target_batch()
        terms = self.compute_losses(X, y, X_tgt)
        terms["loss"].backward()
        self.record_terms(terms)
        return {"loss": terms["loss"], "y_pred": terms.get("y_pred")}

    def record_terms(self, terms):
        """Log the scalar loss terms of this batch (averaged per epoch later)."""
        for key, value in terms.items():
            if key in ("loss", "y_pred") or value is None:
                continue
            value = value.item() if torch.is_tensor(value) else float(value)
            self.history.record_batch("train_" + key, value)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Average each logged loss term over the epoch's batches."""
        batches = self.history[-1]["batches"]
        keys = {k for b in batches for k in b if k.startswith("train_")}
        for key in sorted(keys - {"train_loss", "train_batch_size"}):
            seen = [b for b in batches if key in b]
            values = [b[key] for b in seen]
            sizes = [b.get("train_batch_size", 1) for b in seen]
            self.history.record(key, float(np.average(values, weights=sizes)))

    # -------------------------------------------------------------- predicting
    def _prepare_input(self, X):
        if is_dataset(X):  # skorch's own validation split
            return X
        self.check_is_fitted()
        return self._check_input(X)

    def predict_proba(self, X, sample_domain=None):
        """Class probabilities, columns ordered as ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timepoints)
            Series to classify.
        sample_domain : array-like, optional
            Accepted for skada compatibility and ignored.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return super().predict_proba(self._prepare_input(X))

    def predict(self, X, sample_domain=None):
        """Predicted labels in the user's encoding (see ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None, sample_domain=None):
        """Accuracy on ``(X, y)``; ``sample_domain`` is accepted and ignored."""
        return super().score(X, y, sample_weight=sample_weight)

    def check_is_fitted(self, attributes=None, *args, **kwargs):
        if not self.initialized_ or not hasattr(self, "label_encoder_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call "
                "fit(X, y) before using it."
            )
        super().check_is_fitted(attributes, *args, **kwargs)


def resolve_teacher(teacher, owner="the distiller"):
    """Return ``(module, classes)`` of a fitted teacher without modifying it.

    Accepted: a trained ``torch.nn.Module`` (classes unknown), a fitted
    skorch/skkd estimator (``module_``, and ``classes_`` when it has them), or
    either wrapped in ``sklearn.frozen.FrozenEstimator``.

    Parameters
    ----------
    teacher : object
        The teacher.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    module : torch.nn.Module
        The teacher's network (the caller's object: copy before use).
    classes : ndarray or None
        The teacher's classes when it is an estimator.

    Examples
    --------
    >>> from torch import nn
    >>> module, classes = resolve_teacher(nn.Linear(3, 2))
    >>> classes is None
    True
    """
    if teacher is None:
        raise ValueError(
            f"{owner} needs a fitted teacher: pass teacher=FrozenEstimator(fitted_net)"
            " or a trained torch.nn.Module."
        )
    obj = teacher
    while not isinstance(obj, nn.Module) and hasattr(obj, "estimator"):
        obj = obj.estimator  # sklearn.frozen.FrozenEstimator and similar wrappers
    if isinstance(obj, nn.Module):
        return obj, None
    if hasattr(obj, "initialized_") or hasattr(obj, "module"):  # skorch-style net
        if not getattr(obj, "initialized_", False) or not hasattr(obj, "module_"):
            raise NotFittedError(
                f"The teacher {type(obj).__name__} is not fitted. Fit it first "
                "(skkd never retrains a teacher silently), then pass "
                "FrozenEstimator(teacher)."
            )
        try:
            classes = obj.classes_
        except (AttributeError, ValueError):  # skorch nets may not know their classes
            classes = None
        if is_skada_net(obj):  # stored activations, masked label in classes_
            return skada_teacher(obj, classes)
        return obj.module_, None if classes is None else np.asarray(classes)
    raise TypeError(
        f"teacher must be a trained torch.nn.Module, a fitted skorch/skkd "
        f"estimator, or one wrapped in FrozenEstimator; got {type(obj).__name__}."
    )


class BaseDistiller(BaseTimeSeriesClassifier):
    """Engine of the distillers: :class:`BaseTimeSeriesClassifier` plus a teacher.

    The teacher is never modified: ``teacher_module_`` is a frozen deep copy (no
    gradient, eval mode, in no optimizer), rebuilt at every fit. ``clone`` keeps
    the teacher fitted (a fitted estimator is shared, a bare module copied), so
    ``GridSearchCV`` can search distillation hyperparameters.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained teacher; ``FrozenEstimator(fitted_net)`` is the recommended
        form.
    module : type or torch.nn.Module, default=CNN1D
        The student.
    teacher_feature_layer : str or None, default=None
        For feature-based methods and a teacher without ``forward_features``:
        the name (as in ``named_modules()``) of the layer whose output is the
        teacher's feature (3-D outputs are averaged over time).
    cache_teacher : bool, default=True
        Compute the frozen teacher's outputs on the training series (source and
        target) once per fit and look them up by content in each step, instead
        of one teacher forward per step. The teacher is in eval mode, so the
        outputs are those of the uncached teacher (up to float rounding of
        batched arithmetic); series not in the cache (validation) are computed
        on the fly. Skipped when the outputs would take more than
        ``TEACHER_CACHE_MAX_BYTES`` and for methods that train their copy of
        the teacher.
    **kwargs
        As :class:`BaseTimeSeriesClassifier`.

    Attributes
    ----------
    teacher_module_ : torch.nn.Module
        Frozen copy of the teacher's network.
    teacher_n_features_ : int
        Width of the teacher's features (feature-based methods only).
    """

    #: feature-based methods read teacher features; checked at the start of fit
    _uses_teacher_features = False

    _default_kwargs = {
        **BaseTimeSeriesClassifier._default_kwargs,
        "optimizer__betas": (0.5, 0.99),
    }

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        teacher_feature_layer=None,
        cache_teacher=True,
        **kw,
    ):
        super().__init__(module, **kw)
        self.teacher = teacher
        self.teacher_feature_layer = teacher_feature_layer
        self.cache_teacher = cache_teacher

    def __setattr__(self, name, value):
        if name == "teacher":
            # a bare nn.Module teacher is a hyperparameter, not a skorch component
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def __sklearn_clone__(self):
        # sklearn's clone would re-create a bare fitted skorch teacher unfitted
        params = self.get_params(deep=False)
        teacher = params.pop("teacher")
        if isinstance(teacher, nn.Module):
            teacher = copy.deepcopy(teacher)
        params = {k: clone(v, safe=False) for k, v in params.items()}
        new = type(self)(teacher=teacher, **params)
        if hasattr(self, "_metadata_request"):
            new._metadata_request = copy.deepcopy(self._metadata_request)
        return new

    def _frozen_modules(self):
        return ["teacher_module"]

    def _resolve_teacher(self):
        """``(module, classes)`` of the teacher; see :func:`resolve_teacher`."""
        return resolve_teacher(self.teacher, type(self).__name__)

    def _prepare_fit(self, X, y, X_tgt):
        module, classes = self._resolve_teacher()
        n_classes = len(self.classes_)
        if classes is not None and not np.array_equal(
            np.asarray(classes), self.classes_
        ):
            raise ValueError(
                f"The teacher was fitted on classes {np.asarray(classes).tolist()} but "
                f"y has classes {self.classes_.tolist()}; distil on data with the "
                "teacher's label set."
            )
        probe = torch.from_numpy(X[:2])
        try:
            # a copy in eval mode: the probe must not touch the caller's teacher
            with torch.no_grad():
                out = copy.deepcopy(module).eval()(probe)
        except Exception as exc:
            raise ValueError(
                f"The teacher failed on inputs of shape {tuple(probe.shape[1:])} "
                f"(channels, timepoints): {exc}. Pass data shaped as the teacher "
                "was trained on."
            ) from exc
        out = out[0] if isinstance(out, tuple) else out
        if out.ndim != 2 or out.shape[1] != n_classes:
            raise ValueError(
                f"The teacher outputs {tuple(out.shape[1:])} values per sample but y "
                f"has {n_classes} classes; the teacher must be trained on the same "
                "classes."
            )
        if self._uses_teacher_features:
            probe_teacher = copy.deepcopy(module).eval()
            with torch.no_grad():
                features = self._features_of(probe_teacher, probe)
            self.teacher_n_features_ = int(features.shape[1])

    def initialize_module(self):
        """Build the student and a frozen copy of the teacher."""
        super().initialize_module()
        module, _ = self._resolve_teacher()
        teacher = copy.deepcopy(module).eval()
        for param in teacher.parameters():
            param.requires_grad_(False)
        self.teacher_module_ = teacher
        return self

    def initialize_adapter(self):
        """The ``adapter`` component: student features -> teacher feature space.

        Built from the class given as ``adapter`` (``torch.nn.Linear`` by
        default) with ``in_features``/``out_features`` taken from the two
        networks; routed ``adapter__*`` parameters apply.
        """
        return self.initialize_component(
            "adapter",
            in_features=self.module_.n_features,
            out_features=self.teacher_n_features_,
        )

    def initialize_feature_discriminator(self, name):
        """A one-logit discriminator on teacher-width features, without GRL."""
        return self.initialize_component(
            name, n_features=self.teacher_n_features_, n_domains=1, grl=False
        )

    # ------------------------------------------------ teacher outputs (cached)
    def _fit_paired(self, X, y, X_tgt):
        self._teacher_cache_ = None
        if self.cache_teacher and "teacher_module" in self._frozen_modules():
            parts = [X] if X_tgt is None else [X, X_tgt]
            self._teacher_cache_ = self._build_teacher_cache(np.concatenate(parts))
        try:
            return super()._fit_paired(X, y, X_tgt)
        finally:
            del self._teacher_cache_  # large, and only valid for this fit

    def _build_teacher_cache(self, X):
        """Teacher outputs of the distinct rows of ``X``, keyed by row bytes."""
        index = {}
        for i, row in enumerate(X):
            index.setdefault(row.tobytes(), i)
        rows = np.fromiter(index.values(), dtype=np.int64, count=len(index))
        unique = torch.from_numpy(X[rows])
        chunks = [self._teacher_forward(unique[:_CACHE_CHUNK])]
        per_row = sum(v.element_size() * v[0].numel() for v in chunks[0].values())
        if per_row * len(unique) > TEACHER_CACHE_MAX_BYTES:
            return None  # too large to hold: one teacher forward per step
        for start in range(_CACHE_CHUNK, len(unique), _CACHE_CHUNK):
            chunks.append(self._teacher_forward(unique[start : start + _CACHE_CHUNK]))
        outputs = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        return {"index": {key: j for j, key in enumerate(index)}, "outputs": outputs}

    def _teacher_forward(self, X):
        """Every teacher output the method reads, from one forward, no gradient.

        Returns a dict of tensors with one row per series: ``"logits"``, plus
        ``"features"`` for feature-based methods. Recurrent distillers add the
        hidden sequence.
        """
        with torch.no_grad():
            if self._uses_teacher_features:
                features, logits = self._teacher_pair(self.teacher_module_, X)
                return {"features": features, "logits": logits}
            return {"logits": self._logits_of(self.teacher_module_, X)}

    def _teacher_batch(self, X):
        """:meth:`_teacher_forward` of a batch, from the cache when it holds it."""
        cache = getattr(self, "_teacher_cache_", None)
        if cache is not None:
            index = cache["index"]
            rows = [index.get(row.tobytes()) for row in X.detach().numpy()]
            if None not in rows:
                rows = torch.as_tensor(rows, dtype=torch.long)
                return {k: v[rows] for k, v in cache["outputs"].items()}
        return self._teacher_forward(X)

    def teacher_logits(self, X):
        """Teacher logits for a batch, without gradient."""
        return self._teacher_batch(X)["logits"]

    def teacher_features(self, X):
        """Teacher features for a batch, without gradient.

        ``forward_features`` of skkd backbones, or the output of the layer named
        by ``teacher_feature_layer`` (averaged over time when 3-D).
        """
        return self.teacher_outputs(X)[0]

    def teacher_outputs(self, X, *, grad=False):
        """Teacher ``(features, logits)`` of a batch from one forward pass.

        Parameters
        ----------
        X : torch.Tensor
            A batch of series.
        grad : bool, default=False
            Keep the graph (for methods that train their copy of the teacher);
            without it the outputs may come from the cache.

        Returns
        -------
        features, logits : torch.Tensor
        """
        if not grad:
            out = self._teacher_batch(X)
            if "features" in out:
                return out["features"], out["logits"]
        with torch.set_grad_enabled(grad):
            return self._teacher_pair(self.teacher_module_, X)

    def _teacher_pair(self, teacher, X):
        if self.teacher_feature_layer is None and hasattr(teacher, "head"):
            features = teacher.forward_features(X)
            return features, teacher.head(features)
        return self._features_of(teacher, X, with_logits=True)

    def _features_of(self, teacher, X, with_logits=False):
        name = self.teacher_feature_layer
        if name is None and with_logits:
            return self._features_of(teacher, X), self._logits_of(teacher, X)
        if name is None:
            if not hasattr(teacher, "forward_features"):
                raise TypeError(
                    f"{type(self).__name__} needs teacher features, but the teacher "
                    f"{type(teacher).__name__} has no forward_features(x). Name its "
                    "feature layer with teacher_feature_layer=<name>, one of: "
                    f"{[n for n, _ in teacher.named_modules() if n][:20]}."
                )
            return teacher.forward_features(X)
        layers = dict(teacher.named_modules())
        if name not in layers:
            raise ValueError(
                f"teacher_feature_layer={name!r} is not a layer of the teacher; "
                f"choose one of {[n for n in layers if n][:20]}."
            )
        captured = []
        handle = layers[name].register_forward_hook(
            lambda _module, _inputs, output: captured.append(output)
        )
        try:
            out = teacher(X)
        finally:
            handle.remove()
        features = captured[0][0] if isinstance(captured[0], tuple) else captured[0]
        if features.ndim == 3:  # (batch, channels, time) -> average over time
            features = features.mean(dim=-1)
        features = features.flatten(start_dim=1)
        if with_logits:
            return features, out[0] if isinstance(out, tuple) else out
        return features

    @staticmethod
    def _logits_of(teacher, X):
        out = teacher(X)
        return out[0] if isinstance(out, tuple) else out
