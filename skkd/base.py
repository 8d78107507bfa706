"""The skkd engine: one skorch classifier that every estimator specialises.

:class:`BaseTimeSeriesClassifier` adds to skorch's ``NeuralNetClassifier`` what
a time-series (and domain-adaptation) classifier needs: input validation, label
encoding, modules sized from the data, source/target mini-batch pairing,
seeding, and a training step made of declared stages
(:class:`skkd.stages.Stage`). :class:`skkd.distillers.base.BaseDistiller` adds
the frozen teacher.

The hooks a method may override are listed, with a complete example, in
the developers' guide (``docs/developers.rst``): ``compute_losses`` or
``training_stages``, ``prepare_fit``, ``initialize_module`` (with
``initialize_component`` and ``optimizer_groups``), ``frozen_modules``,
``restore_structure``, ``BaseDistiller.teacher_forward`` and
``__sklearn_tags__``.
"""

import copy
import inspect
import itertools
import math
import os
import threading
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring, PrintLog
from skorch.utils import is_dataset
from torch import nn

from ._validation import (
    SeriesLayoutWarning,
    check_fit_target,
    check_labels,
    check_time_series,
    split_packed_domains,
)
from .callbacks import EpochRollback, NonFiniteGuard, NonFiniteLossError
from .model_selection import unwrap_target, warn_target_bypass
from .nn import CNN1D
from .persistence import InconsistentSkkdVersionWarning, PersistenceMixin
from .recipes import resolve_recipe
from .sampling import TargetSampler
from .stages import StagedTrainingMixin
from .tags import SkkdTags

__all__ = [
    "BaseTimeSeriesClassifier",
    "InconsistentSkkdVersionWarning",
    "SeriesLayoutWarning",
]

#: serialises seeded fits, and forks of torch's global RNG, across threads
SEEDED_FIT_LOCK = threading.RLock()
# torch's thread count, saved by the first of concurrent calls (n_threads)
_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"active": 0, "saved": None}


def _encoded_accuracy(net, X, y):
    # skorch scores its internal validation split on encoded labels (0..K-1)
    proba = net.predict_proba(X)
    return float(np.mean(proba.argmax(axis=1) == np.asarray(y)))


def _check_routed(factory, routed, prefix, data_derived):
    """Refuse a routed ``prefix__key`` that ``factory`` does not accept.

    Without this the constructor raises a bare ``TypeError`` that names
    neither the estimator parameter nor the accepted keywords.
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        k
        for k, p in params.items()
        if k not in data_derived and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    unknown = [k for k in routed if k not in params]
    if unknown:
        name = getattr(factory, "__name__", type(factory).__name__)
        derived = sorted(data_derived)
        note = f"; {', '.join(derived)} come from the data" if derived else ""
        raise TypeError(
            f"{prefix}__{unknown[0]} is not a parameter of the {prefix} {name}: "
            f"it accepts {', '.join(f'{prefix}__{k}' for k in accepted)}{note}."
        )


class BaseTimeSeriesClassifier(
    StagedTrainingMixin, PersistenceMixin, NeuralNetClassifier
):
    """Engine of every skkd estimator: a skorch classifier for time series.

    Data are ``(n_samples, n_channels, n_timepoints)`` arrays (2-D input is
    read as univariate); any numeric dtype is cast to float32. Labels can be
    ints or strings and are returned in the user's encoding (``classes_``).
    The module is built from the class given as ``module`` with ``n_channels``
    and ``n_classes`` taken from the data (and ``n_timepoints`` if its
    signature asks for it) plus the ``module__*`` parameters.

    ``fit(X, y, X_tgt)`` takes an optional unlabelled target (transfer) set.
    Each training step pairs one source mini-batch with one target mini-batch
    (:class:`skkd.sampling.TargetSampler`) and runs the method's stages
    (:meth:`training_stages`): per stage, one backward pass and one step of
    each of its optimizers. Every loss term is logged per epoch in
    ``history_`` as ``train_<term>``.

    Every extra optimizer (``optimizer_disc`` ...) is built with the main
    optimizer's class and settings (``lr``, ``optimizer__*``) unless its own
    are routed (``optimizer_disc__lr=...``).

    Parameters
    ----------
    module : type or torch.nn.Module, default=CNN1D
        Network class (built from the data shapes) or an instance (used as a
        deep copy, never modified).
    criterion : type, default=torch.nn.CrossEntropyLoss
        Supervised loss on source labels.
    optimizer : type, default=torch.optim.Adam
        Optimizer class of every optimizer; settings routed with
        ``optimizer__*``.
    lr : float, default=1e-2
        Learning rate (the UNI-KD/AdaTime setting). A module that declares a
        ``training_recipe`` (the recurrent backbones do) replaces a value
        left at the default; see :mod:`skkd.recipes` and ``lr_``.
    max_epochs : int, default=10
        Training epochs; one epoch covers the source set once. Module-aware
        like ``lr`` (``max_epochs_``).
    batch_size : int, default=32
        Mini-batch size, for source and target batches alike.
    train_split : callable or None, default=None
        skorch internal validation split; None trains on all source data.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, shuffling and dropout: a fixed value gives
        bit-identical results on CPU. The global torch RNG is restored after.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    on_nonfinite : {"raise", "skip"}, default="raise"
        A NaN/inf loss term or gradient stops training with
        :class:`skkd.callbacks.NonFiniteLossError` naming the term, or skips
        the batch (no optimizer of that stage steps; counted as
        ``train_skipped_batches``).
    max_grad_norm : float or None, default=None
        Clip the gradient norm of each stage's parameters before its update.
        Module-aware like ``lr`` (``max_grad_norm_``).
    n_threads : int or None, default=1
        ``torch.set_num_threads`` during ``fit``, ``partial_fit``,
        ``predict`` and ``predict_proba``; torch's previous setting is
        restored afterwards (also when they raise). The default 1 is chosen
        from ``skkd bench threads``: on a 2-core machine under load, fits of
        skkd's small networks took 7 to 11 times longer with 2 threads than
        with 1; on the quiet machine 2 threads took 0.66 to 0.90 of the
        time. -1 uses every core; None leaves torch's global setting alone.
    **kwargs
        Routed skorch parameters (``module__*``, ``optimizer__*``,
        ``iterator_train__*``, ``callbacks__*`` ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    classes_ : ndarray of shape (n_classes,)
        Class labels in the user's encoding.
    n_channels_in_, n_timepoints_in_ : int
        Channels and series length seen in ``fit``.
    lr_, max_epochs_, max_grad_norm_ : float, int, float or None
        The values trained with: the parameters, or the module's
        ``training_recipe`` where they were left at their defaults.
    history_ : skorch.history.History
        Per-epoch record, including every loss term as ``train_<term>``.
    """

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
        on_nonfinite="raise",
        max_grad_norm=None,
        n_threads=1,
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
        self.on_nonfinite = on_nonfinite
        self.max_grad_norm = max_grad_norm
        self.n_threads = n_threads

    # ------------------------------------------------------------------ sklearn
    def _get_param_names(self):
        # skorch lists every public __dict__ entry; private state
        # (``_params_to_validate`` ...) is never a hyperparameter
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    def __sklearn_tags__(self):
        tags = SkkdTags.from_tags(super().__sklearn_tags__())
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
            ("nonfinite_guard", NonFiniteGuard()),
            ("epoch_rollback", EpochRollback()),
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
            self.module_ = copy.deepcopy(self.module)  # the user's stays untouched
        else:
            shapes = self._module_kwargs(self.module)
            kwargs = self.get_params_for("module")
            _check_routed(self.module, kwargs, "module", set(shapes))
            self.module_ = self.module(**shapes, **kwargs)
        return self

    def initialize_component(self, name, **shapes):
        """Build an extra module (``discriminator`` ...) the skorch way.

        ``self.<name>`` is the class (a constructor parameter); ``<name>__*``
        parameters are routed to it, so ``set_params(discriminator__hidden=32)``
        works. Call it inside ``initialize_module`` and assign the result to
        ``self.<name>_``.
        """
        factory = getattr(self, name)
        kwargs = {**shapes, **self.get_params_for(name)}
        if isinstance(factory, nn.Module):
            if not kwargs:
                return copy.deepcopy(factory)
            factory = type(factory)
        _check_routed(factory, self.get_params_for(name), name, set(shapes))
        return factory(**kwargs)

    def optimizer_groups(self):
        """Map each optimizer name to the modules it trains.

        Override to add optimizers, e.g. ``{"optimizer": ["module", "adapter"],
        "optimizer_disc": ["discriminator"]}``; ``optimizer_disc__lr`` then
        routes to the second one.
        """
        return {"optimizer": ["module"]}

    def initialize_optimizer(self, triggered_directly=None):
        """One optimizer per group of :meth:`optimizer_groups`, skorch-registered."""
        for name, module_names in self.optimizer_groups().items():
            args, kwargs = self.get_params_for_optimizer(
                name, self._named_parameters(module_names)
            )
            setattr(self, name + "_", self.optimizer(*args, **kwargs))
        return self

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's routing, plus: extra optimizers inherit ``optimizer__*``.

        skorch routes ``optimizer__*`` to ``optimizer`` only; the reference
        UDA codes build every optimizer with the same settings, so an extra
        optimizer starts from the main one's settings and its own routed
        ``<prefix>__*`` override them.
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix != "optimizer":
            inherited = self.get_params_for("optimizer")
            inherited.pop("param_groups", None)  # names of the main modules
            own = self.get_params_for(prefix)
            kwargs = {**kwargs, **{k: v for k, v in inherited.items() if k not in own}}
        if "lr" not in self.get_params_for(prefix) and hasattr(self, "lr_"):
            kwargs["lr"] = self.lr_  # the module's recipe where lr was left
        return args, kwargs

    def _named_parameters(self, module_names):
        return itertools.chain.from_iterable(
            getattr(self, m + "_").named_parameters() for m in module_names
        )

    def frozen_modules(self):
        """Names of the modules that are never trained (kept in eval mode)."""
        return []

    def _set_training(self, training=True):
        # skorch switches every module on every step; a recursive .train() of
        # an unchanged module is pure overhead, and frozen modules stay in eval
        frozen = set(self.frozen_modules())
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            mode = training and name not in frozen
            if isinstance(module, nn.Module) and module.training != mode:
                module.train(mode)

    def get_all_learnable_params(self):
        frozen = set(self.frozen_modules())
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if name not in frozen and hasattr(module, "named_parameters"):
                yield from module.named_parameters()

    # ---------------------------------------------------------------- seeding
    @contextmanager
    def _seeded(self):
        if self.random_state is None:
            yield
            return
        if isinstance(self.random_state, (int, np.integer)):
            seed = int(self.random_state)
        else:
            seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        # torch's RNG is global to the process: seeded fits in threads (joblib's
        # threading backend, a threaded Dask worker) take turns, so that each
        # one draws the same numbers as when run alone
        with SEEDED_FIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; one that does not train leaves torch's RNG alone.

        A ``DataLoader`` draws a base seed from torch's global RNG each time it
        is iterated, even without shuffling. Unchecked, a ``predict`` in one
        thread would shift the numbers of a seeded fit running in another (a
        threaded Dask worker scoring one fold while fitting the next).
        """
        iterator = super().get_iterator(dataset, training=training)
        own_generator = "generator" in self.get_params_for("iterator_valid")
        if not (training or own_generator) and isinstance(
            iterator, torch.utils.data.DataLoader
        ):
            iterator.generator = torch.Generator()
        return iterator

    @contextmanager
    def _torch_threads(self):
        # torch's thread count is process-global: set it for this call only
        n = getattr(self, "n_threads", None)  # None also for older pickles
        if n is None:
            yield
            return
        if n == -1:
            n = os.cpu_count() or 1
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(
                f"n_threads must be a positive int, -1 (every core) or None (keep "
                f"torch's setting), got {n!r}."
            )
        # concurrent calls in threads of one process share torch's setting:
        # the first to enter saves it, the last to leave restores it
        with _THREADS_LOCK:
            if _THREADS_STATE["active"] == 0:
                _THREADS_STATE["saved"] = torch.get_num_threads()
            _THREADS_STATE["active"] += 1
            if torch.get_num_threads() != n:
                torch.set_num_threads(int(n))
        try:
            yield
        finally:
            with _THREADS_LOCK:
                _THREADS_STATE["active"] -= 1
                saved = _THREADS_STATE["saved"]
                if _THREADS_STATE["active"] == 0 and torch.get_num_threads() != saved:
                    torch.set_num_threads(saved)

    # ------------------------------------------------------------- validation
    def _check_input(self, X, name="X", action="predicting"):
        # series must match the fitted channels and length, as in sktime
        fitted = hasattr(self, "n_channels_in_")
        return check_time_series(
            X,
            name=name,
            n_channels=self.n_channels_in_ if fitted else None,
            n_timepoints=self.n_timepoints_in_ if fitted else None,
            action=action,
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
            X = self._check_input(X, action="fitting")
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"y has labels {unknown.tolist()} not seen in the first fit "
                    f"(classes_ = {self.classes_.tolist()}); refit from scratch."
                )
        X_tgt = check_fit_target(
            X, X_tgt, self.__sklearn_tags__().time_series, type(self).__name__
        )
        uses_target = self.__sklearn_tags__().time_series.target != "ignored"
        if uses_target and sample_domain is None:  # packed rows went through X
            warn_target_bypass(self, X, X_tgt)
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
        with self._torch_threads():
            return self._fit(X, y, X_tgt, sample_domain, reset)

    def partial_fit(self, X, y, X_tgt=None, *, sample_domain=None, classes=None):
        """Continue training without re-initialising (see :meth:`fit`)."""
        with self._torch_threads():
            return self._fit(X, y, X_tgt, sample_domain, reset=not self.initialized_)

    def _fit(self, X, y, X_tgt, sample_domain, reset):
        X, y, X_tgt = self._validate_training_data(X, y, X_tgt, sample_domain, reset)
        for key, value in resolve_recipe(self).items():
            setattr(self, key + "_", value)
        # every piece of fit-time state hangs off this one object, dropped below
        self._session = SimpleNamespace(target=None, teacher_cache=None, resume=None)
        try:
            self.prepare_fit(X, y, X_tgt)
            with self._seeded():
                if reset:
                    self.initialize()
                self._open_session(X, X_tgt)
                NeuralNetClassifier.partial_fit(self, X, y)
        except NonFiniteLossError:
            # the failing step touched parameters and BatchNorm buffers
            for _, callback in self.callbacks_:
                if isinstance(callback, EpochRollback):
                    callback.rollback(self)
            raise
        finally:
            self.__dict__.pop("_session", None)
        return self

    def prepare_fit(self, X, y, X_tgt):
        """Hook: validate hyperparameters before the modules are built.

        Runs after the data are validated (``X`` float32, ``y`` encoded) and
        before anything is trained; store derived settings as fitted
        attributes (``name_``) or, if they matter only during fit, on
        ``self._session``.
        """

    def _open_session(self, X, X_tgt):
        uses_target = self.__sklearn_tags__().time_series.target != "ignored"
        if X_tgt is not None and uses_target:
            self._session.target = TargetSampler(
                torch.from_numpy(X_tgt), self.batch_size
            )
        n, size = len(X), self.batch_size
        drop_last = self.get_params_for("iterator_train").get("drop_last", False)
        steps = (n // size if drop_last else math.ceil(n / size)) if size > 0 else 1
        self.steps_per_epoch_ = max(1, steps)

    def fit_loop(self, X, y=None, epochs=None, **kwargs):
        resume = self._session.resume
        if resume is not None:  # LoadInitState loaded a checkpoint: continue
            self._session.resume = None
            torch.set_rng_state(resume["rng"])
            if self._session.target is not None:
                self._session.target.load_state_dict(resume)
            if epochs is None:
                epochs = max(0, self._max_epochs() - len(self.history))
        if epochs is None:
            epochs = self._max_epochs()
        return super().fit_loop(X, y, epochs=epochs, **kwargs)

    def _max_epochs(self):
        # the module's recipe may replace a max_epochs left at its default
        return getattr(self, "max_epochs_", self.max_epochs)

    @property
    def current_epoch(self):
        """1-based index of the epoch being trained."""
        return len(self.history)

    @property
    def progress(self):
        """Fraction of the planned training steps done, in [0, 1]."""
        done = sum(len(row["batches"]) for row in self.history)
        total = max(1, self._max_epochs() * self.steps_per_epoch_)
        return min(1.0, done / total)

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
        with self._torch_threads():
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
