"""Distillation baselines for recurrent students: FitNet, RKD, AT and DKD.

All share :class:`skkd.base.BaseDistiller` and the machinery of this module:
reading the top recurrent layer's hidden sequence of teacher and student
(``forward_sequence``), rejecting inputs a recurrent distiller cannot use
(variable-length series, too short series, non-recurrent backbones), and the
teacher's hidden sequence as one more output of the engine's teacher cache
(``cache_teacher``).
"""

import numpy as np
import torch
from torch import nn

from ..losses import attention_transfer, dkd, hint_mse, rkd_angle, rkd_distance
from ..nn import LSTMClassifier
from ..nn.backbones import _RecurrentClassifier
from ..teacher import frozen_copy, probe, teacher_logits
from .base import BaseDistiller

__all__ = [
    "ATClassifier",
    "DKDClassifier",
    "RKDClassifier",
    "SequenceFitNetClassifier",
]

#: named in every error about a backbone without a hidden sequence
SUPPORTED_BACKBONES = (
    "skkd.nn.LSTMClassifier or skkd.nn.GRUClassifier (or any module with a "
    "forward_sequence(x) method returning (batch, time, hidden))"
)


def _has_sequence(module):
    return callable(getattr(module, "forward_sequence", None))


def _cell_length(cell):
    """Length of one series (or channel), or None for a scalar."""
    if isinstance(cell, (str, bytes)) or not hasattr(cell, "__len__"):
        return None
    try:
        shape = np.shape(cell)
    except ValueError:  # channels of different lengths inside one series
        return max(len(channel) for channel in cell)
    return shape[-1] if shape else None


def _series_lengths(X):
    """Lengths of the series of a ragged input, or None for a regular array."""
    if hasattr(X, "iloc") and getattr(X, "ndim", 0) == 2:  # sktime nested_univ
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.dtype != object or X.size == 0:
            return None
        cells = X.ravel() if X.ndim >= 2 else X
        # a 2-D/3-D object array of numbers is regular; of series, it is nested
        if X.ndim >= 2 and _cell_length(cells[0]) is None:
            return None
        lengths = {_cell_length(c) for c in cells}
    elif isinstance(X, (list, tuple)):
        lengths = set()
        for item in X:
            try:
                shape = np.shape(item)
            except ValueError:  # ragged channels inside one series
                lengths.update(_cell_length(ch) for ch in item)
                continue
            if shape:
                lengths.add(shape[-1])
    else:
        return None
    lengths.discard(None)
    return lengths


def check_equal_length(X, name, owner):
    """Reject variable-length series with a message pointing at padding.

    Ragged lists/object arrays, sktime's nested DataFrames with unequal
    lengths and numeric arrays whose series end in NaN padding are refused.

    Parameters
    ----------
    X : array-like or None
        Input of ``fit``.
    name : str
        Its name in messages.
    owner : str
        The estimator's name in messages.

    Examples
    --------
    >>> import numpy as np
    >>> check_equal_length(np.zeros((2, 1, 5)), "X", "MemKDClassifier")
    >>> ragged = [np.zeros(5), np.zeros(3)]
    >>> check_equal_length(ragged, "X", "MemKDClassifier")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X holds series of different lengths (3 to 5 time steps). ...
    """
    if X is None:
        return
    fix = (
        f"{owner} needs equal-length series (teacher and student hidden states "
        "are compared at the same time steps of every series). Pad or resample "
        "them to one length first, e.g. sktime's PaddingTransformer, or "
        "skkd.datasets.load_sktime_dataset, which resamples unequal-length "
        "data sets."
    )
    lengths = _series_lengths(X)
    if lengths is not None and len(lengths) > 1:
        raise ValueError(
            f"{name} holds series of different lengths ({min(lengths)} to "
            f"{max(lengths)} time steps). {fix}"
        )
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim >= 2:
        missing = np.isnan(X)
        if missing.any():
            flat = missing.reshape(len(X), -1, X.shape[-1]).all(axis=1)
            # NaN in every channel at the last step of some series only
            tail = flat[:, -1]
            if tail.any() and not tail.all():
                raise ValueError(
                    f"{name} looks like variable-length series padded with NaN at "
                    f"the end ({int(tail.sum())} series). {fix}"
                )


class RecurrentDistillerMixin:
    """Shared behaviour of the recurrent distillers (MemKD and its baselines).

    Methods that read hidden sequences list ``"sequence"`` in their tags'
    ``time_series.teacher_outputs`` (the default here): teacher and student
    must then expose ``forward_sequence``, and the teacher's hidden sequence
    joins the outputs that :class:`~skkd.distillers.base.BaseDistiller` caches
    per fit (``cache_teacher``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.teacher_outputs = ("logits", "sequence")
        return tags

    # recurrent-KD papers use Adam's defaults (MemKD: lr 5e-3, weight decay 1e-5)
    _default_kwargs = {
        **BaseDistiller._default_kwargs,
        "optimizer__weight_decay": 1e-5,
        "optimizer__betas": (0.9, 0.999),
    }

    # ---------------------------------------------------------------- checks
    def fit(self, X, y, X_tgt=None, *, sample_domain=None):
        """Fit the student; see :meth:`skkd.base.BaseTimeSeriesClassifier.fit`."""
        owner = type(self).__name__
        check_equal_length(X, "X", owner)
        check_equal_length(X_tgt, "X_tgt", owner)
        return super().fit(X, y, X_tgt, sample_domain=sample_domain)

    def partial_fit(self, X, y, X_tgt=None, *, sample_domain=None, classes=None):
        """Continue training; see :meth:`fit`."""
        owner = type(self).__name__
        check_equal_length(X, "X", owner)
        check_equal_length(X_tgt, "X_tgt", owner)
        return super().partial_fit(X, y, X_tgt, sample_domain=sample_domain)

    def _check_backbones(self):
        owner = type(self).__name__
        if not _has_sequence(self.module):
            name = getattr(self.module, "__name__", type(self.module).__name__)
            raise TypeError(
                f"{owner} reads the student's hidden sequence, but the student "
                f"{name} has no forward_sequence(x). Use a recurrent student: "
                f"{SUPPORTED_BACKBONES}."
            )
        teacher, _ = self._resolve_teacher()
        if not _has_sequence(teacher):
            raise TypeError(
                f"{owner} reads the teacher's hidden sequence, but the teacher "
                f"{type(teacher).__name__} has no forward_sequence(x). Use a "
                f"recurrent teacher: {SUPPORTED_BACKBONES}."
            )
        return teacher

    def prepare_fit(self, X, y, X_tgt):
        n_timepoints = X.shape[2]
        if self._reads("sequence"):
            teacher = self._check_backbones()
            seq = probe(
                frozen_copy(teacher, self.device).forward_sequence,
                torch.from_numpy(X[:2]),
            )
            if seq.ndim != 3 or seq.shape[1] != n_timepoints:
                raise ValueError(
                    f"The teacher's forward_sequence returned shape "
                    f"{tuple(seq.shape)} for series of length {n_timepoints}; "
                    "expected (batch, time, hidden) with one state per time step."
                )
            self.teacher_hidden_size_ = int(seq.shape[2])
        super().prepare_fit(X, y, X_tgt)

    # ------------------------------------------------------ teacher outputs
    def teacher_forward(self, X):
        """Teacher outputs of a batch, without gradient: the engine's, plus
        ``"sequence"`` (top-layer hidden states) when the method reads it."""
        teacher = self.teacher_module_
        if not (self._reads("sequence") and _has_sequence(teacher)):
            return super().teacher_forward(X)
        with torch.no_grad():
            seq = teacher.forward_sequence(X)
            if isinstance(teacher, _RecurrentClassifier):
                logits = teacher.head(seq[:, -1, :])
            else:
                logits = teacher_logits(teacher, X)
        return {"logits": logits, "sequence": seq}

    def teacher_sequence(self, X):
        """Teacher logits and hidden sequence for a batch, without gradient.

        Served from the engine's teacher cache when it holds the batch (see
        ``cache_teacher``).

        Parameters
        ----------
        X : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Series.

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_classes)
        hidden : torch.Tensor of shape (batch, n_timepoints, hidden) or None
            None for methods that do not read the hidden sequence.
        """
        out = self._teacher_batch(X)
        return out["logits"], out.get("sequence")

    def student_outputs(self, X):
        """Student logits and top-layer hidden sequence (with gradient).

        Parameters
        ----------
        X : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Series.

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_classes)
        hidden : torch.Tensor of shape (batch, n_timepoints, hidden_size)
        """
        module = self.module_
        seq = module.forward_sequence(X)
        if isinstance(module, _RecurrentClassifier):
            return module.head(seq[:, -1, :]), seq
        return module(X), seq


class SequenceFitNetClassifier(RecurrentDistillerMixin, BaseDistiller):
    """FitNet hints on the hidden sequences of recurrent networks.

    Romero, Ballas, Kahou, Chassang, Gatta, Bengio (2015), "FitNets: hints for
    thin deep nets", ICLR, applied to the top recurrent layer: a learned
    regressor ``W`` (a 1x1 map, ``Linear(hidden_S, hidden_T)`` applied at every
    time step) lifts the student's states to the teacher's width, trained
    jointly with the student::

        L = CE(z_S, y) + hint_weight * mean_{i,t,c} (W h_S,i(t) - h_T,i(t))_c^2

    (plus the same hint on ``X_tgt`` times ``target_weight`` when given).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        Recurrent teacher (see ``SUPPORTED_BACKBONES``), never modified.
    module : type or torch.nn.Module, default=LSTMClassifier
        Recurrent student, e.g. ``module__hidden_size=8``.
    hint_weight : float, default=1.0
        Weight of the hint term.
    target_weight : float, default=1.0
        Weight of the hint on ``X_tgt``.
    lr : float, default=5e-3
        Adam learning rate; left at this default with a recurrent student,
        the module's ``training_recipe`` applies (:mod:`skkd.recipes`).
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Attributes
    ----------
    regressor_ : torch.nn.Linear
        The learned hint regressor.

    Examples
    --------
    >>> import numpy as np
    >>> from skkd.distillers.recurrent import SequenceFitNetClassifier
    >>> from skkd.nn import LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(20, 2, 12)).astype("float32"), np.arange(20) % 2
    >>> teacher = LSTMClassifier(2, 2, hidden_size=16)
    >>> student = SequenceFitNetClassifier(teacher, module__hidden_size=4,
    ...                                    max_epochs=1, random_state=0)
    >>> student.fit(X, y).regressor_
    Linear(in_features=4, out_features=16, bias=True)
    """

    def __init__(
        self,
        teacher=None,
        module=LSTMClassifier,
        *,
        hint_weight=1.0,
        target_weight=1.0,
        lr=5e-3,
        **kwargs,
    ):
        super().__init__(teacher, module, lr=lr, **kwargs)
        self.hint_weight = hint_weight
        self.target_weight = target_weight

    def initialize_module(self):
        """Build the student, the frozen teacher and the hint regressor."""
        super().initialize_module()
        probe = torch.zeros(1, self.n_channels_in_, self.n_timepoints_in_)
        with torch.no_grad():
            width = self.module_.forward_sequence(probe).shape[2]
        self.regressor_ = nn.Linear(width, self.teacher_hidden_size_)
        return self

    def optimizer_groups(self):
        return {"optimizer": ["module", "regressor"]}

    def _hint(self, X):
        logits, seq = self.student_outputs(X)
        return logits, hint_mse(self.regressor_(seq), self.teacher_sequence(X)[1])

    def compute_losses(self, X, y, X_tgt):
        logits, hint = self._hint(X)
        ce = self.criterion_(logits, y)
        terms = {"ce": ce, "hint": hint, "y_pred": logits}
        loss = ce + self.hint_weight * hint
        if X_tgt is not None:
            terms["hint_tgt"] = self._hint(X_tgt)[1]
            loss = loss + self.hint_weight * self.target_weight * terms["hint_tgt"]
        terms["loss"] = loss
        return terms


class RKDClassifier(RecurrentDistillerMixin, BaseDistiller):
    """Relational knowledge distillation (distance and angle).

    Park, Kim, Lu, Cho (2019), "Relational knowledge distillation", CVPR. The
    student matches the geometry of the teacher's batch of representations::

        L = CE(z_S, y) + distance_weight * L_D + angle_weight * L_A

    with :func:`skkd.losses.rkd_distance` and :func:`skkd.losses.rkd_angle`
    (and the same terms on ``X_tgt`` times ``target_weight``). The
    representation of a series is its flattened top-layer hidden sequence
    when both networks have one, otherwise the ``forward_features`` embedding
    (so RKD works with any backbone; widths may differ).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The teacher, never modified.
    module : type or torch.nn.Module, default=LSTMClassifier
        The student.
    distance_weight, angle_weight : float, default=25.0, 50.0
        Weights of the two terms (the paper's values).
    representation : {"auto", "sequence", "features"}, default="auto"
        What is compared; "auto" picks "sequence" for two recurrent networks.
    target_weight : float, default=1.0
        Weight of the relational terms on ``X_tgt``.
    lr : float, default=5e-3
        Adam learning rate; left at this default with a recurrent student,
        the module's ``training_recipe`` applies (:mod:`skkd.recipes`).
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Examples
    --------
    >>> import numpy as np
    >>> from skkd.distillers.recurrent import RKDClassifier
    >>> from skkd.nn import CNN1D, LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(20, 2, 12)).astype("float32"), np.arange(20) % 2
    >>> teacher = LSTMClassifier(2, 2, hidden_size=16)
    >>> RKDClassifier(teacher, module__hidden_size=4, max_epochs=1,
    ...               random_state=0).fit(X, y).predict(X).shape
    (20,)
    >>> cnn = RKDClassifier(CNN1D(2, 2, widths=(8,)), module=CNN1D,
    ...                     module__widths=(4,), max_epochs=1, random_state=0)
    >>> cnn.fit(X, y).representation_
    'features'
    """

    def __init__(
        self,
        teacher=None,
        module=LSTMClassifier,
        *,
        distance_weight=25.0,
        angle_weight=50.0,
        representation="auto",
        target_weight=1.0,
        lr=5e-3,
        **kwargs,
    ):
        super().__init__(teacher, module, lr=lr, **kwargs)
        self.distance_weight = distance_weight
        self.angle_weight = angle_weight
        self.representation = representation
        self.target_weight = target_weight

    def prepare_fit(self, X, y, X_tgt):
        choices = ("auto", "sequence", "features")
        if self.representation not in choices:
            raise ValueError(
                f"representation must be one of {choices}, got {self.representation!r}."
            )
        teacher, _ = self._resolve_teacher()
        both = _has_sequence(self.module) and _has_sequence(teacher)
        rep = self.representation
        if rep == "auto":
            rep = "sequence" if both else "features"
        self.representation_ = rep
        super().prepare_fit(X, y, X_tgt)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the representation is resolved at fit (``representation_``)
        rep = getattr(self, "representation_", self.representation)
        tags.time_series.teacher_outputs = {
            "sequence": ("logits", "sequence"),
            "features": ("logits", "features"),
        }.get(rep, ("logits", "sequence", "features"))
        return tags

    def _represent(self, X):
        if self.representation_ == "sequence":
            logits, seq = self.student_outputs(X)
            return logits, seq, self.teacher_sequence(X)[1]
        features = self.module_.forward_features(X)
        return self.module_.head(features), features, self.teacher_features(X)

    def _relational(self, student, teacher):
        return rkd_distance(student, teacher), rkd_angle(student, teacher)

    def compute_losses(self, X, y, X_tgt):
        logits, rep_s, rep_t = self._represent(X)
        ce = self.criterion_(logits, y)
        dist, angle = self._relational(rep_s, rep_t)
        terms = {"ce": ce, "rkd_distance": dist, "rkd_angle": angle, "y_pred": logits}
        rkd = self.distance_weight * dist + self.angle_weight * angle
        if X_tgt is not None:
            _, tgt_s, tgt_t = self._represent(X_tgt)
            dist_t, angle_t = self._relational(tgt_s, tgt_t)
            terms["rkd_distance_tgt"], terms["rkd_angle_tgt"] = dist_t, angle_t
            rkd = rkd + self.target_weight * (
                self.distance_weight * dist_t + self.angle_weight * angle_t
            )
        terms["loss"] = ce + rkd
        return terms


class ATClassifier(RecurrentDistillerMixin, BaseDistiller):
    """Attention transfer over time between recurrent networks.

    Zagoruyko & Komodakis (2017), "Paying more attention to attention:
    improving the performance of convolutional neural networks via attention
    transfer", ICLR, adapted to sequences: the attention of a series is, per
    time step, the mean over hidden units of ``h^2``, L2-normalised along
    time (:func:`skkd.losses.attention_transfer`)::

        L = CE(z_S, y) + at_weight * mean_{i,t} (a_S,i(t) - a_T,i(t))^2

    (plus the same term on ``X_tgt`` times ``target_weight``). Widths may
    differ.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        Recurrent teacher, never modified.
    module : type or torch.nn.Module, default=LSTMClassifier
        Recurrent student.
    at_weight : float, default=1000.0
        Weight of the attention term (the paper's beta = 1000).
    target_weight : float, default=1.0
        Weight of the attention term on ``X_tgt``.
    lr : float, default=5e-3
        Adam learning rate; left at this default with a recurrent student,
        the module's ``training_recipe`` applies (:mod:`skkd.recipes`).
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Examples
    --------
    >>> import numpy as np
    >>> from skkd.distillers.recurrent import ATClassifier
    >>> from skkd.nn import GRUClassifier, LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(20, 2, 12)).astype("float32"), np.arange(20) % 2
    >>> student = ATClassifier(LSTMClassifier(2, 2, hidden_size=16),
    ...                        module=GRUClassifier, module__hidden_size=4,
    ...                        max_epochs=1, random_state=0).fit(X, y)
    >>> "train_attention" in student.history_[-1]
    True
    """

    def __init__(
        self,
        teacher=None,
        module=LSTMClassifier,
        *,
        at_weight=1000.0,
        target_weight=1.0,
        lr=5e-3,
        **kwargs,
    ):
        super().__init__(teacher, module, lr=lr, **kwargs)
        self.at_weight = at_weight
        self.target_weight = target_weight

    def compute_losses(self, X, y, X_tgt):
        logits, seq = self.student_outputs(X)
        ce = self.criterion_(logits, y)
        at = attention_transfer(seq, self.teacher_sequence(X)[1])
        terms = {"ce": ce, "attention": at, "y_pred": logits}
        loss = ce + self.at_weight * at
        if X_tgt is not None:
            _, seq_tgt = self.student_outputs(X_tgt)
            at_tgt = attention_transfer(seq_tgt, self.teacher_sequence(X_tgt)[1])
            terms["attention_tgt"] = at_tgt
            loss = loss + self.at_weight * self.target_weight * at_tgt
        terms["loss"] = loss
        return terms


class DKDClassifier(RecurrentDistillerMixin, BaseDistiller):
    """Decoupled knowledge distillation.

    Zhao, Cui, Song, Qiu, Liang (2022), "Decoupled knowledge distillation",
    CVPR. Target-class (TCKD) and non-target-class (NCKD) KD weighted apart
    (:func:`skkd.losses.dkd`), ramped in linearly over ``warmup_epochs`` as
    in the authors' code::

        L = CE(z_S, y) + min(epoch / warmup_epochs, 1)
                         * T^2 * (alpha * TCKD + beta * NCKD)

    Works with any backbone (it reads logits only). DKD needs the labels to
    split target from non-target classes, so it takes no unlabelled
    ``X_tgt`` (use :class:`skkd.KDClassifier` or
    :class:`skkd.distillers.memkd.MemKDClassifier` for a transfer set).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The teacher, never modified.
    module : type or torch.nn.Module, default=LSTMClassifier
        The student (any skkd backbone).
    alpha, beta : float, default=1.0, 8.0
        Weights of TCKD and NCKD.
    temperature : float, default=4.0
        Softmax temperature.
    warmup_epochs : int, default=20
        Epochs over which the DKD weight grows linearly to 1 (0: no warm-up).
    lr : float, default=5e-3
        Adam learning rate; left at this default with a recurrent student,
        the module's ``training_recipe`` applies (:mod:`skkd.recipes`).
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Examples
    --------
    >>> import numpy as np
    >>> from skkd.distillers.recurrent import DKDClassifier
    >>> from skkd.nn import CNN1D, LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(30, 2, 12)).astype("float32"), np.arange(30) % 3
    >>> student = DKDClassifier(LSTMClassifier(2, 3, hidden_size=16), module=CNN1D,
    ...                         module__widths=(4,), max_epochs=1, random_state=0)
    >>> student.fit(X, y).predict_proba(X).shape
    (30, 3)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.teacher_outputs = ("logits",)
        # DKD splits target from non-target classes by label
        tags.time_series.target = "refused"
        return tags

    def __init__(
        self,
        teacher=None,
        module=LSTMClassifier,
        *,
        alpha=1.0,
        beta=8.0,
        temperature=4.0,
        warmup_epochs=20,
        lr=5e-3,
        **kwargs,
    ):
        super().__init__(teacher, module, lr=lr, **kwargs)
        self.alpha = alpha
        self.beta = beta
        self.temperature = temperature
        self.warmup_epochs = warmup_epochs

    def prepare_fit(self, X, y, X_tgt):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}.")
        super().prepare_fit(X, y, X_tgt)

    def compute_losses(self, X, y, X_tgt):
        logits = self.module_(X)
        ce = self.criterion_(logits, y)
        loss_dkd = dkd(
            logits,
            self.teacher_logits(X),
            y,
            alpha=self.alpha,
            beta=self.beta,
            temperature=self.temperature,
        )
        ramp = 1.0
        if self.warmup_epochs > 0:
            ramp = min(self.current_epoch / self.warmup_epochs, 1.0)
        return {
            "ce": ce,
            "dkd": loss_dkd,
            "y_pred": logits,
            "loss": ce + ramp * loss_dkd,
        }
