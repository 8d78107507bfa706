"""MemKD: memory-discrepancy knowledge distillation for recurrent students."""

import math

import torch
import torch.nn.functional as F

from ..losses import (
    kd_kl_div,
    memory_discrepancy,
    memory_pairs,
    relative_memory_change,
)
from ..nn import LSTMClassifier
from ..teacher import TEACHER_CACHE_MAX_BYTES
from .base import BaseDistiller
from .recurrent import RecurrentDistillerMixin

__all__ = ["MemKDClassifier", "memory_matrix"]

_PAIRS = ("both", "consecutive", "random", "stride2", "curriculum", "sigmoid")
#: time-step gap of the fixed pair sets (P_1 and the authors' P_2)
_GAPS = {"consecutive": 1, "stride2": 2}
_CHUNK = 64


def memory_matrix(hidden, eps=1e-8):
    """``r(s, e)`` of every pair of time steps, from one hidden sequence.

    ``R[i, s, e] = ||h_i(e) - h_i(s)||_2 / (||h_i(s)||_2 + eps)``, the
    quantity of :func:`skkd.losses.relative_memory_change` for all ``(s, e)``
    at once (exact differences, no Gram-matrix shortcut, so small windows keep
    their precision). MemKD computes it once per fit for the frozen teacher:
    a training step then reads the teacher's ``r`` by indexing instead of
    gathering and normalising ``(batch, pairs, hidden)`` tensors.

    Parameters
    ----------
    hidden : torch.Tensor of shape (batch, time, hidden)
        Hidden states over time.
    eps : float, default=1e-8
        Denominator guard.

    Returns
    -------
    torch.Tensor of shape (batch, time, time)

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import relative_memory_change
    >>> h = torch.randn(2, 5, 3)
    >>> R = memory_matrix(h)
    >>> s, e = torch.tensor([0, 1, 3]), torch.tensor([2, 1, 4])
    >>> torch.allclose(R[:, s, e], relative_memory_change(h, s, e))
    True
    """
    rows = []
    for chunk in hidden.split(_CHUNK):
        diff = torch.cdist(chunk, chunk, compute_mode="donot_use_mm_for_euclid_dist")
        rows.append(diff / (chunk.norm(dim=-1).unsqueeze(-1) + eps))
    return torch.cat(rows)


class MemKDClassifier(RecurrentDistillerMixin, BaseDistiller):
    """Memory-discrepancy knowledge distillation (MemKD).

    Udayangani, Nandakishor, Palaniswami (2025), "MemKD: Memory-discrepancy
    knowledge distillation for efficient time series classification",
    ICASSP. A tiny recurrent student learns to remember and forget like a
    large recurrent teacher: for windows ``(s, e]`` of each series it matches
    the relative change of the top layer's hidden state::

        r(s, e) = ||h(e) - h(s)||_2 / (||h(s)||_2 + eps)

        L = CE(z_S, y) + memory_weight * (L_mem(P_1) + L_mem(P_z))
            [+ kd_weight * T^2 * KL(teacher || student)]

    where ``L_mem(P)`` is the mean SmoothL1 between student and (detached)
    teacher ``r`` over the pairs ``P`` (:func:`skkd.losses.memory_discrepancy`),
    ``P_1`` are all consecutive pairs and ``P_z`` ``n_pairs`` random pairs
    redrawn every mini-batch (:func:`skkd.losses.memory_pairs`). ``r`` is a
    scalar, so teacher and student hidden sizes may differ with no projector.
    When ``fit`` receives an unlabelled transfer set ``X_tgt``, the memory term
    (which needs no label) is also applied to it, times ``target_weight``.

    Teacher and student must expose their top layer's hidden sequence:
    :class:`skkd.nn.LSTMClassifier`, :class:`skkd.nn.GRUClassifier` or any
    module with ``forward_sequence(x) -> (batch, time, hidden)``. Series must
    have one length and at least 3 time steps.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        Recurrent teacher, preferably ``FrozenEstimator(fitted_net)``; never
        modified.
    module : type or torch.nn.Module, default=LSTMClassifier
        Recurrent student (e.g. ``module__hidden_size=8``).
    memory_weight : float, default=0.1
        ``lambda``, weight of the memory term (the paper sweeps 0.1 to 100).
        The default is the value validation chose most often in
        ``skkd bench memkd`` (28 of 50 data-set/seed blocks; 1.0 on 5):
        fitted with 1.0, defaults otherwise, and no validation split, the
        GunPoint student fell to chance on two seeds of five
        (``docs/benchmarks/memkd_defaults.md``).
    n_pairs : int, default=100
        Random pairs drawn per mini-batch.
    pairs : {"both", "consecutive", "random", "stride2", "curriculum", "sigmoid"}, \
            default="both"
        Which pair sets enter the memory term. ``"both"`` is the paper's
        ``L_mem(P_1) + L_mem(P_z)``; ``"consecutive"`` and ``"random"`` keep
        one of the two. The variants of the authors' code: ``"stride2"``
        compares ``(t, t + 2)`` only (``z = 2``); ``"curriculum"`` uses
        ``P_1`` up to epoch ``curriculum_epochs[0]``, ``(t, t + 2)`` up to
        ``curriculum_epochs[1]`` and random pairs after; ``"sigmoid"`` uses
        ``P_1`` alone for a warm-up of ``curriculum_epochs[0]`` epochs, then
        ``(1 - w) L_mem(P_1) + w L_mem(P_z)`` with ``w`` a sigmoid of the
        epoch centred between the two ``curriculum_epochs`` (see
        :meth:`pair_weights`).
    curriculum_epochs : tuple of two int, default=(20, 50)
        Epoch boundaries of ``pairs="curriculum"`` and ``"sigmoid"`` (the
        papers give none; these suit the benchmark's fits, which stop after
        about 150 epochs). Ignored by the other pair sets.
    eps : float, default=1e-8
        Denominator guard of ``r``.
    smooth_l1_beta : float, default=1.0
        SmoothL1 threshold.
    kd_weight : float, default=0.0
        Weight ``gamma`` of an optional Hinton-KD term (off by default).
    temperature : float, default=4.0
        Temperature of the Hinton-KD term.
    target_weight : float, default=1.0
        Weight of the memory term on ``X_tgt``.
    lr : float, default=5e-3
        Adam learning rate (the authors' value; weight decay 1e-5). Left at
        this default with a student that declares a ``training_recipe``
        (:class:`skkd.nn.LSTMClassifier`, :class:`skkd.nn.GRUClassifier`),
        the recipe's values are used instead, as for every skkd estimator:
        lr 1e-2, 200 epochs, gradient norm clipped at 1 (``lr_``,
        ``max_epochs_``, ``max_grad_norm_``; :mod:`skkd.recipes`).
    **kwargs
        As :class:`skkd.base.BaseDistiller` (``max_epochs``, ``batch_size``,
        ``callbacks``, ``random_state`` ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained student.
    teacher_module_ : torch.nn.Module
        Frozen copy of the teacher.
    teacher_hidden_size_ : int
        Width of the teacher's top recurrent layer.
    history_ : skorch.history.History
        Per-epoch record with ``train_ce`` and ``train_mem_<set>`` of each
        pair set used that epoch (``consecutive``, ``stride2``, ``random``;
        and ``train_kd``, ``*_tgt`` when used).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.distillers.memkd import MemKDClassifier
    >>> from skkd.nn import LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 1, 20)).astype("float32")
    >>> y = (X[:, 0, :10].mean(axis=1) > 0).astype(int)
    >>> teacher = TimeSeriesClassifier(LSTMClassifier, module__hidden_size=32,
    ...                                max_epochs=2, random_state=0).fit(X, y)
    >>> student = MemKDClassifier(FrozenEstimator(teacher), module__hidden_size=4,
    ...                           memory_weight=1.0, max_epochs=2, random_state=0)
    >>> student.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> sorted(k for k in student.history_[-1] if k.startswith("train_mem"))
    ['train_mem_consecutive', 'train_mem_random']
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.min_timepoints = 3
        return tags

    def __init__(
        self,
        teacher=None,
        module=LSTMClassifier,
        *,
        memory_weight=0.1,
        n_pairs=100,
        pairs="both",
        curriculum_epochs=(20, 50),
        eps=1e-8,
        smooth_l1_beta=1.0,
        kd_weight=0.0,
        temperature=4.0,
        target_weight=1.0,
        lr=5e-3,
        **kwargs,
    ):
        super().__init__(teacher, module, lr=lr, **kwargs)
        self.memory_weight = memory_weight
        self.n_pairs = n_pairs
        self.pairs = pairs
        self.curriculum_epochs = curriculum_epochs
        self.eps = eps
        self.smooth_l1_beta = smooth_l1_beta
        self.kd_weight = kd_weight
        self.temperature = temperature
        self.target_weight = target_weight

    def prepare_fit(self, X, y, X_tgt):
        if self.pairs not in _PAIRS:
            raise ValueError(f"pairs must be one of {_PAIRS}, got {self.pairs!r}.")
        for name in ("memory_weight", "kd_weight", "target_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not self.eps > 0:
            raise ValueError(
                f"eps must be > 0 (it keeps r finite when h(s) = 0), got {self.eps}."
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.pairs != "consecutive" and not (
            isinstance(self.n_pairs, int) and self.n_pairs >= 1
        ):
            raise ValueError(
                f"n_pairs must be an int >= 1 with pairs={self.pairs!r}, got "
                f"{self.n_pairs!r}."
            )
        if self.pairs in ("curriculum", "sigmoid"):
            first, second = _epoch_pair(self.curriculum_epochs)
            if not 0 <= first < second:
                raise ValueError(
                    f"curriculum_epochs must be two epochs 0 <= first < second, "
                    f"got {self.curriculum_epochs!r}."
                )
        super().prepare_fit(X, y, X_tgt)

    def pair_weights(self, epoch=None):
        """Weight of each pair set's ``L_mem`` at an epoch.

        Parameters
        ----------
        epoch : int, optional
            1-based epoch (default: the one being trained).

        Returns
        -------
        weights : dict of str to float
            ``"consecutive"``, ``"stride2"`` and/or ``"random"`` to their
            weight; sets of weight 0 are left out (and not computed).

        Examples
        --------
        >>> from skkd.distillers.memkd import MemKDClassifier
        >>> est = MemKDClassifier(pairs="curriculum", curriculum_epochs=(2, 4))
        >>> [est.pair_weights(e) for e in (1, 3, 5)]
        [{'consecutive': 1.0}, {'stride2': 1.0}, {'random': 1.0}]
        >>> est = MemKDClassifier(pairs="sigmoid", curriculum_epochs=(2, 4))
        >>> w = est.pair_weights(3)
        >>> {k: round(v, 2) for k, v in w.items()}
        {'consecutive': 0.5, 'random': 0.5}
        """
        epoch = self.current_epoch if epoch is None else epoch
        if self.pairs == "both":
            return {"consecutive": 1.0, "random": 1.0}
        if self.pairs not in ("curriculum", "sigmoid"):
            return {self.pairs: 1.0}
        first, second = _epoch_pair(self.curriculum_epochs)
        if self.pairs == "curriculum":
            phase = "consecutive" if epoch <= first else "stride2"
            return {phase if epoch <= second else "random": 1.0}
        if epoch <= first:
            return {"consecutive": 1.0}
        # logistic from ~0.007 at the end of the warm-up to ~0.993 at `second`
        w = 1.0 / (1.0 + math.exp(-10.0 * ((epoch - first) / (second - first) - 0.5)))
        return {"consecutive": 1.0 - w, "random": w}

    def draw_pairs(self, n_timepoints, generator=None):
        """The pair sets of one mini-batch, as ``{name: (starts, ends)}``.

        Parameters
        ----------
        n_timepoints : int
            Series length.
        generator : torch.Generator, optional
            Randomness of the random pairs (default: torch's global RNG,
            seeded by ``random_state`` during fit).

        Returns
        -------
        pairs : dict
            Each set of :meth:`pair_weights` (``"consecutive"``,
            ``"stride2"``, ``"random"``) to ``(starts, ends)``.
        """
        return {
            name: self._pair_set(name, n_timepoints, generator)
            for name in self.pair_weights()
        }

    def _pair_set(self, name, n_timepoints, generator):
        if name == "random":
            return memory_pairs(n_timepoints, self.n_pairs, generator=generator)[1]
        # memory_pairs checks the length; the fixed-gap sets are not random
        (consecutive_starts, _), _ = memory_pairs(n_timepoints, 0)
        gap = _GAPS[name]
        starts = consecutive_starts[: n_timepoints - gap]
        return starts, starts + gap

    def _open_session(self, X, X_tgt):
        super()._open_session(X, X_tgt)
        self._session.teacher_memory = None
        cache = self._session.teacher_cache
        if cache is None or "sequence" not in cache.outputs:
            return
        seq = cache.outputs["sequence"]
        n, t, _ = seq.shape
        if n * t * t * seq.element_size() <= TEACHER_CACHE_MAX_BYTES:
            # r_T of every pair, once per fit: a step reads (batch, pairs)
            # entries by index instead of gathering and normalising teacher
            # states; the cache then returns row numbers, not sequences
            self._session.teacher_memory = memory_matrix(seq, self.eps)
            cache.outputs["row"] = torch.arange(n)
            del cache.outputs["sequence"]

    def teacher_memory_change(self, teacher_out, starts, ends):
        """The teacher's ``r(s, e)`` for a batch (cached matrix or sequence).

        Parameters
        ----------
        teacher_out : dict
            :meth:`_teacher_batch` outputs: ``"row"`` (rows of the per-fit
            matrix, see :func:`memory_matrix`) or ``"sequence"``.
        starts, ends : torch.Tensor of shape (n_pairs,)
            Pairs.

        Returns
        -------
        torch.Tensor of shape (batch, n_pairs)
        """
        if "row" in teacher_out:
            memory = self._session.teacher_memory
            return memory[teacher_out["row"].unsqueeze(1), starts, ends]
        return relative_memory_change(
            teacher_out["sequence"], starts, ends, eps=self.eps
        )

    def _student_memory_change(self, hidden, norms, name, starts, ends):
        # r_S without the pair checks of the public function (the pairs are
        # drawn here); fixed-gap pairs are slices, cheaper than a gather
        # forward and backward
        gap = _GAPS.get(name)
        if gap is not None and len(starts) == hidden.shape[1] - gap:
            change = (hidden[:, gap:] - hidden[:, :-gap]).norm(dim=-1)
            return change / (norms[:, :-gap] + self.eps)
        change = (hidden[:, ends] - hidden[:, starts]).norm(dim=-1)
        return change / (norms[:, starts] + self.eps)

    def _memory_losses(self, student_hidden, teacher_out, pairs):
        norms = student_hidden.norm(dim=-1)
        terms = {}
        for name, (starts, ends) in pairs.items():
            r_s = self._student_memory_change(student_hidden, norms, name, starts, ends)
            r_t = self.teacher_memory_change(teacher_out, starts, ends)
            terms[f"mem_{name}"] = F.smooth_l1_loss(r_s, r_t, beta=self.smooth_l1_beta)
        return terms

    def memory_terms(self, student_hidden, teacher_hidden, pairs):
        """``L_mem`` for each pair set (see :func:`skkd.losses.memory_discrepancy`).

        Parameters
        ----------
        student_hidden, teacher_hidden : torch.Tensor of shape (batch, time, hidden)
            Top-layer hidden sequences (hidden sizes may differ).
        pairs : dict
            From :meth:`draw_pairs`.

        Returns
        -------
        terms : dict of str to torch.Tensor
            ``"mem_<set>"`` to its scalar loss.
        """
        return {
            f"mem_{name}": memory_discrepancy(
                student_hidden,
                teacher_hidden,
                starts,
                ends,
                eps=self.eps,
                beta=self.smooth_l1_beta,
            )
            for name, (starts, ends) in pairs.items()
        }

    def compute_losses(self, X, y, X_tgt):
        logits, hidden = self.student_outputs(X)
        teacher = self._teacher_batch(X)
        ce = self.criterion_(logits, y)
        weights = self.pair_weights()
        pairs = self.draw_pairs(X.shape[2])
        mem_terms = self._memory_losses(hidden, teacher, pairs)
        terms = {"ce": ce, **mem_terms, "y_pred": logits}
        loss = ce + self.memory_weight * _weighted_sum(mem_terms, weights)
        if self.kd_weight > 0:
            terms["kd"] = kd_kl_div(logits, teacher["logits"], self.temperature)
            loss = loss + self.kd_weight * terms["kd"]
        if X_tgt is not None:
            _, hidden_tgt = self.student_outputs(X_tgt)
            tgt_terms = self._memory_losses(
                hidden_tgt, self._teacher_batch(X_tgt), pairs
            )
            terms.update({k + "_tgt": v for k, v in tgt_terms.items()})
            memory_tgt = _weighted_sum(tgt_terms, weights)
            loss = loss + self.memory_weight * self.target_weight * memory_tgt
        terms["loss"] = loss
        return terms


def _epoch_pair(epochs):
    try:
        first, second = (int(e) for e in epochs)
    except (TypeError, ValueError):
        raise ValueError(
            f"curriculum_epochs must be two epochs (first, second), got {epochs!r}."
        ) from None
    return first, second


def _weighted_sum(mem_terms, weights):
    # mem_terms keys are "mem_<set>"; weights are keyed by set
    return sum(weights[name[len("mem_") :]] * term for name, term in mem_terms.items())
