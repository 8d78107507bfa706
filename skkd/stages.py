"""Declared training stages: what one optimisation step of a method does.

A method's step is a list of :class:`Stage` objects run in order on the same
mini-batch pair. For each stage the engine
(:meth:`skkd.base.BaseTimeSeriesClassifier.train_step`) zeroes exactly the
stage's optimizers, computes its loss terms, checks them for NaN/inf, runs one
backward pass, notifies ``on_grad_computed`` once with exactly the stage's
parameters (so ``max_grad_norm`` clips every stage), steps each of the stage's
optimizers once and records the terms. A :class:`TrainingStep` carries the
batch and lets the stages of one step share forward passes and teacher outputs.
"""

from dataclasses import dataclass

import numpy as np
import torch
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from .callbacks import NonFiniteGuard, NonFiniteLossError, SkipBatch

__all__ = ["Stage", "StagedTrainingMixin", "TrainingStep"]


@dataclass(frozen=True)
class Stage:
    """One update of a training step: a loss and the optimizers it steps.

    Parameters
    ----------
    name : str
        Name of the stage; passed to ``on_grad_computed`` as ``stage=``.
    losses : str
        Name of the estimator method that computes the stage's terms from the
        step, ``method(step) -> dict``; the dict holds ``"loss"`` (what is
        minimised), optionally ``"y_pred"`` (student source logits), and any
        other scalar terms, logged as ``train_<term>``.
    optimizers : tuple of str or None, default=None
        Names of the optimizers the stage steps (``"optimizer"``,
        ``"optimizer_disc"`` ...); None steps every optimizer of the estimator.
    after_step : str or None, default=None
        Name of an estimator method ``method(step)`` called once the stage's
        optimizers have stepped (never for a skipped batch): what must follow
        an update, such as a soft update of a target network.

    Examples
    --------
    >>> Stage("discriminator", "discriminator_losses", ("optimizer_disc",)).name
    'discriminator'
    """

    name: str
    losses: str
    optimizers: tuple | None = None
    after_step: str | None = None


class TrainingStep:
    """The batch pair of one training step, and what its stages share.

    Parameters
    ----------
    X : torch.Tensor of shape (batch, n_channels, n_timepoints)
        Source mini-batch.
    y : torch.Tensor of shape (batch,)
        Encoded source labels.
    X_tgt : torch.Tensor or None
        The paired target mini-batch (None when the method takes no target
        data or fit got none).

    Examples
    --------
    >>> step = TrainingStep("x", "y", None)
    >>> step.shared("twice", lambda: [1, 2])
    [1, 2]
    >>> step.shared("twice", lambda: [3]) is step.shared("twice", list)
    True
    """

    def __init__(self, X, y, X_tgt):
        self.X = X
        self.y = y
        self.X_tgt = X_tgt
        self._shared = {}

    def shared(self, name, compute):
        """``compute()`` on first use in this step, then the same object.

        Lets stages share a forward pass: the first stage that asks computes
        it, the later ones reuse it (graph included).

        Parameters
        ----------
        name : str
            Key of the shared value within the step.
        compute : callable
            Called without arguments the first time ``name`` is asked for.

        Returns
        -------
        object
        """
        if name not in self._shared:
            self._shared[name] = compute()
        return self._shared[name]


class StagedTrainingMixin:
    """The stage runner of :class:`skkd.base.BaseTimeSeriesClassifier`.

    Owns skorch's ``train_step``: one call runs every stage of
    :meth:`training_stages` on one source batch and its paired target batch,
    so that no method re-implements target drawing, loss checks,
    ``on_grad_computed``, optimizer stepping or term logging.
    """

    def training_stages(self):
        """The stages of one training step, run in order on the same batch pair.

        The default is one stage, :meth:`compute_losses`, over every
        optimizer. Override to update parts of the model on their own losses
        (a discriminator first, then the student ...).

        Returns
        -------
        list of skkd.stages.Stage
        """
        return [Stage("main", "step_losses")]

    def step_losses(self, step):
        """The default stage: :meth:`compute_losses` of the step's batches."""
        return self.compute_losses(step.X, step.y, step.X_tgt)

    def compute_losses(self, X, y, X_tgt):
        """Loss terms for one step; override in each one-stage method.

        Parameters
        ----------
        X : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Source mini-batch.
        y : torch.Tensor of shape (batch,)
            Encoded source labels.
        X_tgt : torch.Tensor or None
            The paired target mini-batch, or None.

        Returns
        -------
        terms : dict of str to torch.Tensor
            Must hold ``"loss"`` (the total to minimise) and may hold
            ``"y_pred"`` (student source logits); every other entry is logged
            as ``train_<name>``.
        """
        logits = self.module_(X)
        ce = self.criterion_(logits, y)
        return {"loss": ce, "ce": ce, "y_pred": logits}

    def train_step(self, batch, **fit_params):
        """One optimisation step: every stage of :meth:`training_stages`.

        Returns skorch's ``{"loss", "y_pred"}`` of the last stage (the
        student's, by convention); a skipped batch returns a NaN loss.
        """
        self._set_training(True)
        X, y = unpack_data(batch)
        sampler = getattr(getattr(self, "_session", None), "target", None)
        step = TrainingStep(X, y, None if sampler is None else sampler.draw())
        # forward passes update BatchNorm statistics before a loss is checked:
        # a skipped batch must not leave NaN in them
        buffers = self._buffer_state() if self._may_skip() else {}
        terms = {}
        for stage in self.training_stages():
            terms = self._run_stage(stage, step, batch, buffers)
            if terms is None:
                return {"loss": torch.tensor(float("nan")), "y_pred": None}
        return {"loss": terms["loss"].detach(), "y_pred": terms.get("y_pred")}

    def _run_stage(self, stage, step, batch, buffers):
        groups = self.optimizer_groups()
        names = list(groups) if stage.optimizers is None else list(stage.optimizers)
        optimizers = [getattr(self, name + "_") for name in names]
        for optimizer in optimizers:
            optimizer.zero_grad()
        try:
            terms = getattr(self, stage.losses)(step)
            self.check_losses(terms)
            terms["loss"].backward()
            modules = [m for name in names for m in groups[name]]
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self._named_parameters(modules)),
                batch=batch,
                training=True,
                stage=stage.name,
            )
        except SkipBatch as exc:
            for optimizer in optimizers:
                optimizer.zero_grad()
            for name, values in buffers.items():
                getattr(self, name + "_").load_state_dict(values, strict=False)
            self.history.record_batch("skipped", str(exc))
            return None
        for optimizer in optimizers:
            optimizer.step()
        if stage.after_step is not None:
            getattr(self, stage.after_step)(step)
        self.record_terms(terms)
        return terms

    def check_losses(self, terms):
        """Stop (or skip the batch) if a loss term is NaN or infinite.

        Defers to the ``"nonfinite_guard"`` callback
        (:class:`skkd.callbacks.NonFiniteGuard`), if present.

        Parameters
        ----------
        terms : dict of str to torch.Tensor
            Loss terms of the stage.
        """
        for _, callback in self.callbacks_:
            if isinstance(callback, NonFiniteGuard):
                callback.check_losses(self, terms)

    def _may_skip(self):
        return any(
            isinstance(cb, NonFiniteGuard) and cb._settings(self)[0] == "skip"
            for _, cb in self.callbacks_
        )

    def _buffer_state(self):
        frozen = set(self.frozen_modules())
        return {
            name: {k: b.clone() for k, b in getattr(self, name + "_").named_buffers()}
            for name in self._modules
            if name not in frozen
        }

    def record_terms(self, terms):
        """Log the scalar loss terms of this batch (averaged per epoch later)."""
        for key, value in terms.items():
            if key in ("loss", "y_pred") or value is None:
                continue
            value = value.item() if torch.is_tensor(value) else float(value)
            self.history.record_batch("train_" + key, value)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Drop skipped batches; average each logged term over the epoch."""
        batches = self.history[-1]["batches"]
        skipped = [b["skipped"] for b in batches if "skipped" in b]
        if skipped:
            batches[:] = [b for b in batches if "skipped" not in b]
            if not batches:
                raise NonFiniteLossError(
                    f"Every batch of epoch {len(self.history)} had a non-finite loss "
                    f"or gradient (first: {skipped[0]}); nothing was trained. Scale "
                    "the inputs, lower lr or set max_grad_norm."
                )
            self.history.record("train_skipped_batches", len(skipped))
        keys = {k for b in batches for k in b if k.startswith("train_")}
        for key in sorted(keys - {"train_loss", "train_batch_size"}):
            seen = [b for b in batches if key in b]
            values = [b[key] for b in seen]
            sizes = [b.get("train_batch_size", 1) for b in seen]
            self.history.record(key, float(np.average(values, weights=sizes)))
