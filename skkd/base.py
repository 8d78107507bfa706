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
import threading
import warnings
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
from skorch.history import History
from skorch.utils import TeeGenerator, is_dataset
from torch import nn

from ._skada import is_skada_net, skada_teacher
from ._validation import check_labels, check_time_series, split_packed_domains
from .callbacks import NonFiniteGuard, NonFiniteLossError, SkipBatch
from .model_selection import unwrap_target
from .nn import CNN1D

__all__ = [
    "BaseTimeSeriesClassifier",
    "BaseDistiller",
    "TEACHER_CACHE_MAX_BYTES",
    "InconsistentSkkdVersionWarning",
    "resolve_teacher",
]

#: largest teacher-output cache a fit holds (bytes); above it the teacher runs
#: once per step
TEACHER_CACHE_MAX_BYTES = 1 << 30
#: rows per teacher forward while the cache is filled
_CACHE_CHUNK = 256


_SEEDED_FIT_LOCK = threading.RLock()

#: state that lives only during fit (deleted afterwards)
_FIT_TIME_ATTRIBUTES = (
    "_target_data_",
    "_target_order_",
    "_target_pos_",
    "_epoch_start_state_",
    "_resume_state_",
    "_teacher_cache_",
)
#: skorch bookkeeping that is not data-derived fit state
_SKORCH_ATTRIBUTES = (
    "history_",
    "callbacks_",
    "initialized_",
    "virtual_params_",
    "prefixes_",
    "cuda_dependent_attributes_",
    "init_context_",
    "classes_inferred_",
)


def _caller_stacklevel():
    """``stacklevel`` of the first frame outside skkd and skorch (the user's)."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("skkd.", "skorch.")):
            return level
        frame, level = frame.f_back, level + 1
    return 1


class InconsistentSkkdVersionWarning(UserWarning):
    """An estimator pickled by another skkd version was unpickled.

    Examples
    --------
    >>> issubclass(InconsistentSkkdVersionWarning, UserWarning)
    True
    """


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
    on_nonfinite : {"raise", "skip"}, default="raise"
        What to do when a loss term or gradient becomes NaN/inf: stop with
        :class:`skkd.callbacks.NonFiniteLossError` naming the term and epoch, or
        skip the batch (no update; counted as ``train_skipped_batches``).
    max_grad_norm : float or None, default=None
        Clip the gradient norm of the trained parameters before each update.
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
        on_nonfinite="raise",
        max_grad_norm=None,
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
            ("nonfinite_guard", NonFiniteGuard()),
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
        # torch's RNG is global to the process: seeded fits in threads (joblib's
        # threading backend, a threaded Dask worker) take turns, so that each
        # one draws the same numbers as when run alone
        with _SEEDED_FIT_LOCK, torch.random.fork_rng(devices=[]):
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
                reference="X",
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
        self._target_order_ = None
        self._target_pos_ = 0
        try:
            # nothing reaches module.forward: target batches are drawn per step
            NeuralNetClassifier.partial_fit(self, X, y)
        finally:
            # fit-time state must not outlive fit (nor end up in pickles)
            for name in _FIT_TIME_ATTRIBUTES:
                self.__dict__.pop(name, None)
        return self

    def _draw_target_batch(self):
        """Next target mini-batch; the target set is reshuffled on every pass."""
        if self._target_data_ is None:
            return None
        n = len(self._target_data_)
        size = n if self.batch_size <= 0 else min(self.batch_size, n)
        # an explicit (order, position) rather than an iterator: checkpoints
        # save it, so a resumed fit draws the same target batches
        if self._target_order_ is None or self._target_pos_ >= n:
            self._target_order_ = torch.randperm(n)
            self._target_pos_ = 0
        start = self._target_pos_
        self._target_pos_ = start + size
        return self._target_data_[self._target_order_[start : start + size]]

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
        self.check_losses(terms)
        terms["loss"].backward()
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.record_terms(terms)
        return {"loss": terms["loss"], "y_pred": terms.get("y_pred")}

    def check_losses(self, terms):
        """Stop (or skip the batch) if a loss term is NaN or infinite.

        Call it before each ``backward`` in custom ``train_step`` methods; it
        defers to the ``"nonfinite_guard"`` callback
        (:class:`skkd.callbacks.NonFiniteGuard`), if present.

        Parameters
        ----------
        terms : dict of str to torch.Tensor
            Loss terms of the step.
        """
        for _, callback in self.callbacks_:
            if isinstance(callback, NonFiniteGuard):
                callback.check_losses(self, terms)

    # --------------------------------------------- epochs, interruption, resume
    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if not training or iterator is None:
            return super().run_single_epoch(
                iterator, training, prefix, step_fn, **fit_params
            )
        # parameters at the start of the epoch: Ctrl-C mid-epoch restores them
        self._epoch_start_state_ = self._training_state()
        skipped = []
        # only a guard that skips batches needs the per-batch buffer snapshot
        may_skip = any(
            isinstance(cb, NonFiniteGuard) and cb._settings(self)[0] == "skip"
            for _, cb in self.callbacks_
        )

        def guarded_step(batch, **kwargs):
            # forward passes update BatchNorm statistics before the loss is
            # checked: a skipped batch must not leave NaN in them
            buffers = self._buffer_state() if may_skip else {}
            try:
                return step_fn(batch, **kwargs)
            except SkipBatch as exc:
                for name in self._optimizers:
                    getattr(self, name + "_").zero_grad()
                for name, values in buffers.items():
                    getattr(self, name + "_").load_state_dict(values, strict=False)
                skipped.append(str(exc))
                self.history.record_batch("skipped", True)
                # skorch logs this loss; the batch is dropped from history below
                return {"loss": torch.tensor(float("nan")), "y_pred": None}

        super().run_single_epoch(iterator, training, prefix, guarded_step, **fit_params)
        self._epoch_start_state_ = None
        if skipped:
            batches = self.history[-1]["batches"]
            batches[:] = [b for b in batches if not b.get("skipped")]
            if not batches:
                raise NonFiniteLossError(
                    f"Every batch of epoch {len(self.history)} had a non-finite loss "
                    f"or gradient (first: {skipped[0]}); nothing was trained. Scale "
                    "the inputs, lower lr or set max_grad_norm."
                )
            self.history.record("train_skipped_batches", len(skipped))

    def _trained_modules(self):
        frozen = set(self._frozen_modules())
        return [m for m in self._modules if m not in frozen]

    def _buffer_state(self):
        return {
            name: {k: b.clone() for k, b in getattr(self, name + "_").named_buffers()}
            for name in self._trained_modules()
        }

    def _training_state(self):
        # trained modules and optimizers (the frozen teacher never changes)
        frozen = set(self._frozen_modules())
        names = [m for m in self._modules if m not in frozen] + self._optimizers
        return {n: copy.deepcopy(getattr(self, n + "_").state_dict()) for n in names}

    def fit_loop(self, X, y=None, epochs=None, **kwargs):
        resume = self.__dict__.pop("_resume_state_", None)
        if resume is not None:
            # LoadInitState loaded a checkpoint: continue where it stopped
            torch.set_rng_state(resume["rng"])
            self._target_order_ = resume["target_order"]
            self._target_pos_ = resume["target_pos"]
            if epochs is None:
                epochs = max(0, self.max_epochs - len(self.history))
        try:
            return super().fit_loop(X, y, epochs=epochs, **kwargs)
        except KeyboardInterrupt:
            self._restore_epoch_start()
            self._warn_interrupted()
            raise  # skorch's partial_fit stops training and returns the net
        except NonFiniteLossError:
            # the forward passes of the failing step touched BatchNorm buffers
            self._restore_epoch_start()
            raise

    def _restore_epoch_start(self):
        """Inside an epoch: undo its updates and drop its history row."""
        state = self.__dict__.pop("_epoch_start_state_", None)
        if state is not None:
            for name, values in state.items():
                getattr(self, name + "_").load_state_dict(values)
            if len(self.history):
                self.history.pop()

    def _warn_interrupted(self):
        done = len(self.history)
        kept = (
            f"it keeps the parameters of epoch {done}, the last completed one"
            if done
            else "no epoch was completed, so it holds its initial (untrained) "
            "parameters"
        )
        warnings.warn(
            f"Training of {type(self).__name__} was interrupted (KeyboardInterrupt);"
            f" {kept}. Call partial_fit to train further, or fit to start again.",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )

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

    # ------------------------------------------------------------- persistence
    def _fit_state(self):
        """What ``save_params(f_fit_state=...)`` stores besides the modules."""
        from . import __version__

        skip = set(_SKORCH_ATTRIBUTES)
        for name in self._modules + self._criteria + self._optimizers:
            skip.add(name + "_")
        attributes = {
            k: v
            for k, v in vars(self).items()
            if k.endswith("_") and not k.startswith("_") and k not in skip
        }
        return {
            "skkd_version": __version__,
            "attributes": attributes,
            "rng": torch.get_rng_state(),
            "target_order": getattr(self, "_target_order_", None),
            "target_pos": getattr(self, "_target_pos_", 0),
        }

    def _restore_structure(self, attributes):
        """Hook: reshape the modules to the saved fit state before loading.

        Methods whose networks change shape while training (ITMC prunes its
        student) override it; ``attributes`` are the saved fitted attributes.
        """

    def save_params(
        self,
        f_params=None,
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        use_safetensors=False,
        *,
        f_fit_state=None,
        **kwargs,
    ):
        """skorch's ``save_params``, plus ``f_fit_state``.

        ``f_fit_state`` stores what the modules are sized from (channels,
        length, classes ...) and the random-number state, so that
        ``load_params(f_params=..., f_fit_state=...)`` works on a fresh,
        unfitted estimator, and a checkpointed fit resumes exactly. Extra
        modules and optimizers are saved with ``f_<name>`` (``f_discriminator``,
        ``f_optimizer_disc`` ...).

        Examples
        --------
        >>> import os, tempfile
        >>> from skkd import TimeSeriesClassifier
        >>> from skkd.datasets import make_domain_shift
        >>> d = make_domain_shift(n_samples=24, random_state=0)
        >>> clf = TimeSeriesClassifier(module__widths=(4,), max_epochs=1,
        ...                            random_state=0).fit(d.X_src, d.y_src)
        >>> tmp = tempfile.mkdtemp()
        >>> files = dict(f_params=os.path.join(tmp, "p.pt"),
        ...              f_fit_state=os.path.join(tmp, "s.pt"))
        >>> clf.save_params(**files)
        >>> new = TimeSeriesClassifier(module__widths=(4,))
        >>> new.load_params(**files)
        >>> bool((new.predict(d.X_src) == clf.predict(d.X_src)).all())
        True
        """
        if f_fit_state is not None:
            self.check_is_fitted()
            torch.save(self._fit_state(), f_fit_state)
        return super().save_params(
            f_params, f_optimizer, f_criterion, f_history, use_safetensors, **kwargs
        )

    def load_params(
        self,
        f_params=None,
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        checkpoint=None,
        use_safetensors=False,
        *,
        f_fit_state=None,
        **kwargs,
    ):
        """skorch's ``load_params``, plus ``f_fit_state`` (see :meth:`save_params`).

        An unfitted estimator needs ``f_fit_state``: its modules are sized from
        the data it was fitted on.
        """
        if checkpoint is not None:
            # read the checkpoint's files here: skorch does not know f_fit_state;
            # the history comes first, file names are formatted from it
            if f_history is None and checkpoint.f_history is not None:
                f_history = checkpoint.f_history_
                self.history = History.from_file(f_history)
            files = checkpoint.get_formatted_files(self)
            state_file = files.pop("f_fit_state", None)
            f_fit_state = f_fit_state if f_fit_state is not None else state_file
            files.pop("f_history", None)
            kwargs = {**files, **kwargs}
            explicit = dict(
                f_params=f_params, f_optimizer=f_optimizer, f_criterion=f_criterion
            )
            kwargs.update({k: v for k, v in explicit.items() if v is not None})
            f_params = kwargs.pop("f_params", None)
            f_optimizer = kwargs.pop("f_optimizer", None)
            f_criterion = kwargs.pop("f_criterion", None)
            kwargs.pop("f_pickle", None)
        if f_fit_state is not None:
            state = torch.load(f_fit_state, weights_only=False)
            for key, value in state["attributes"].items():
                setattr(self, key, value)
            if not self.initialized_:
                self.initialize()
            self._restore_structure(state["attributes"])
            if hasattr(self, "_target_data_"):  # during fit (LoadInitState)
                self._resume_state_ = state
        elif not self.initialized_:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted, and its modules are sized"
                " from the data it is fitted on. Save with save_params(f_params=...,"
                " f_fit_state=...) and load both: load_params(f_params=...,"
                " f_fit_state=...)."
            )
        return super().load_params(
            f_params,
            f_optimizer,
            f_criterion,
            f_history,
            use_safetensors=use_safetensors,
            **kwargs,
        )

    def __getstate__(self):
        from . import __version__

        state = super().__getstate__()
        for name in _FIT_TIME_ATTRIBUTES:
            state.pop(name, None)
        state["_skkd_version"] = __version__
        return state

    def __setstate__(self, state):
        from . import __version__

        version = state.pop("_skkd_version", None)
        if version != __version__:
            warnings.warn(
                f"Unpickling a {type(self).__name__} saved with skkd "
                f"{version or 'unknown (older than 0.1)'} into skkd {__version__}; "
                "it may not work or give different results. Refit it, or load it "
                "with the skkd version that saved it.",
                InconsistentSkkdVersionWarning,
                stacklevel=2,
            )
        super().__setstate__(state)


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
        # a copy in eval mode: the probe must not touch the caller's teacher
        copy_ = self.teacher_copy(module)
        out = self.probe_teacher(copy_, probe)
        out = out[0] if isinstance(out, tuple) else out
        if out.ndim != 2 or out.shape[1] != n_classes:
            raise ValueError(
                f"The teacher outputs {tuple(out.shape[1:])} values per sample but y "
                f"has {n_classes} classes; the teacher must be trained on the same "
                "classes."
            )
        if self._uses_teacher_features:
            probe_teacher = copy_
            with torch.no_grad():
                features = self._features_of(probe_teacher, probe)
            self.teacher_n_features_ = int(features.shape[1])

    def initialize_module(self):
        """Build the student and a frozen copy of the teacher."""
        super().initialize_module()
        module, _ = self._resolve_teacher()
        teacher = self.teacher_copy(module)
        for param in teacher.parameters():
            param.requires_grad_(False)
        self.teacher_module_ = teacher
        return self

    @staticmethod
    def probe_teacher(forward, probe):
        """``forward(probe)`` without gradient; a failure is a clear ValueError.

        Parameters
        ----------
        forward : callable
            The teacher (copy), or one of its methods (``forward_sequence``).
        probe : torch.Tensor of shape (batch, n_channels, n_timepoints)
            A few training series.

        Returns
        -------
        The output of ``forward``.
        """
        try:
            with torch.no_grad():
                return forward(probe)
        except Exception as exc:
            raise ValueError(
                f"The teacher failed on inputs of shape {tuple(probe.shape[1:])} "
                f"(channels, timepoints): {exc}. Pass data shaped as the teacher "
                "was trained on."
            ) from exc

    def teacher_copy(self, module):
        """A deep copy of the teacher network in eval mode on this net's device.

        The caller's teacher stays where it is (a CUDA teacher can teach a CPU
        student); a teacher whose parameters hold no data (``meta`` device) is
        a clear error.

        Parameters
        ----------
        module : torch.nn.Module
            The teacher network.

        Returns
        -------
        torch.nn.Module
        """
        devices = {
            p.device.type
            for p in itertools.chain(module.parameters(), module.buffers())
        }
        if "meta" in devices:
            raise ValueError(
                f"The teacher {type(module).__name__} has parameters on the 'meta' "
                "device, which hold no values. Load its trained weights first "
                "(e.g. module.to_empty(device='cpu') then load_state_dict)."
            )
        teacher = copy.deepcopy(module).eval()
        if self.device is not None:
            teacher = teacher.to(self.device)
        return teacher

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
        self._teacher_cache_ = None  # dropped with the other fit-time state
        if self.cache_teacher and "teacher_module" in self._frozen_modules():
            self._teacher_cache_ = self._build_teacher_cache(
                X, *([] if X_tgt is None else [X_tgt])
            )
        return super()._fit_paired(X, y, X_tgt)

    def _build_teacher_cache(self, *arrays):
        """Teacher outputs of the distinct rows of ``arrays``, keyed by row bytes.

        Rows are gathered chunk by chunk, so the arrays are never copied whole.
        """
        index = {}
        for a, X in enumerate(arrays):
            for i, row in enumerate(X):
                index.setdefault(row.tobytes(), (a, i))
        where = list(index.values())

        def forward(start):
            rows = np.stack(
                [arrays[a][i] for a, i in where[start : start + _CACHE_CHUNK]]
            )
            return self._teacher_forward(torch.from_numpy(rows))

        chunks = [forward(0)]
        per_row = sum(v.element_size() * v[0].numel() for v in chunks[0].values())
        if per_row * len(where) > TEACHER_CACHE_MAX_BYTES:
            return None  # too large to hold: one teacher forward per step
        chunks += [forward(s) for s in range(_CACHE_CHUNK, len(where), _CACHE_CHUNK)]
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
        if cache is not None and X.device.type == "cpu":
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
