"""Callbacks that keep long distillations safe: numerical guard and checkpoints.

:class:`NonFiniteGuard` is one of every estimator's default callbacks: it stops
training with a clear error when a loss term or a gradient becomes NaN or
infinite (or skips that batch, if asked) and clips gradients.
:class:`Checkpoint` is skorch's checkpoint extended to every module and
optimizer of an skkd estimator (discriminators, adapters ...) and to the state
that makes a resumed fit continue exactly where a killed one stopped.
"""

import copy
import math
import sys
import warnings

import torch
from skorch.callbacks import Callback
from skorch.callbacks import Checkpoint as _SkorchCheckpoint

__all__ = [
    "Checkpoint",
    "EpochRollback",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "SkipBatch",
]

_FOLLOW_NET = "net"


class NonFiniteLossError(FloatingPointError):
    """A loss term or gradient became NaN or infinite during training.

    Examples
    --------
    >>> issubclass(NonFiniteLossError, ArithmeticError)
    True
    """


class SkipBatch(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """Raised inside a training step to drop the batch (``on_nonfinite="skip"``).

    Examples
    --------
    >>> isinstance(SkipBatch("nan"), Exception)
    True
    """


class NonFiniteGuard(Callback):
    """Stop (or skip the batch) when a loss or a gradient is NaN/inf; clip gradients.

    Every skkd estimator installs this callback as ``"nonfinite_guard"``; with
    the default arguments it follows the estimator's ``on_nonfinite`` and
    ``max_grad_norm`` parameters. The engine checks every loss term before its
    backward pass, so the error names the term, epoch and batch; gradients are
    checked (and clipped) in ``on_grad_computed`` before the optimizer steps,
    so the parameters are never updated with a non-finite value.

    Parameters
    ----------
    on_nonfinite : {"raise", "skip"} or "net", default="net"
        ``"raise"`` stops with :class:`NonFiniteLossError`; ``"skip"`` drops the
        batch (no parameter update) and counts it in ``history_`` as
        ``train_skipped_batches``. ``"net"`` follows the estimator's parameter.
    max_grad_norm : float, None or "net", default="net"
        Clip the global gradient norm of the trained parameters to this value
        (``torch.nn.utils.clip_grad_norm_``); None does not clip.

    Examples
    --------
    >>> from skkd.callbacks import NonFiniteGuard
    >>> NonFiniteGuard(on_nonfinite="skip").on_nonfinite
    'skip'
    """

    def __init__(self, on_nonfinite=_FOLLOW_NET, max_grad_norm=_FOLLOW_NET):
        self.on_nonfinite = on_nonfinite
        self.max_grad_norm = max_grad_norm

    def _settings(self, net):
        mode = self.on_nonfinite
        if mode == _FOLLOW_NET:
            mode = getattr(net, "on_nonfinite", "raise")
        norm = self.max_grad_norm
        if isinstance(norm, str) and norm == _FOLLOW_NET:
            # the value fit resolved (module recipe), else the parameter
            norm = getattr(net, "max_grad_norm_", getattr(net, "max_grad_norm", None))
        return mode, norm

    def on_train_begin(self, net, **kwargs):
        mode, norm = self._settings(net)
        if mode not in ("raise", "skip"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'skip', got {mode!r}.")
        if norm is not None and not (
            isinstance(norm, (int, float)) and math.isfinite(norm) and norm > 0
        ):
            raise ValueError(
                f"max_grad_norm must be a positive number or None, got {norm!r}."
            )

    def _fail(self, net, what, hint):
        mode, _ = self._settings(net)
        epoch = len(net.history)
        batch = len(net.history[-1]["batches"]) if len(net.history) else 0
        where = f"in epoch {epoch}, batch {batch} of {type(net).__name__}"
        if mode == "skip":
            raise SkipBatch(f"{what} {where}")
        raise NonFiniteLossError(
            f"{what} {where}; training stopped and the estimator keeps its state "
            f"after epoch {epoch - 1}, the last completed one. {hint} Or pass "
            "on_nonfinite='skip' to skip such batches."
        )

    def check_losses(self, net, terms):
        """Raise (or skip) if a loss term of this step is not finite.

        Parameters
        ----------
        net : BaseTimeSeriesClassifier
            The estimator being trained.
        terms : dict of str to torch.Tensor
            Loss terms of the step (``"y_pred"`` is ignored).
        """
        values = [
            v.detach() for k, v in terms.items() if k != "y_pred" and torch.is_tensor(v)
        ]
        # one check for the common case; the names only when something broke
        if not values or bool(
            torch.isfinite(torch.cat([v.reshape(-1) for v in values])).all()
        ):
            return
        # the total last, so that the error names the term that broke it
        for name in sorted(terms, key=lambda k: k == "loss"):
            value = terms[name]
            if name == "y_pred" or not torch.is_tensor(value):
                continue
            if not bool(torch.isfinite(value.detach()).all()):
                self._fail(
                    net,
                    f"The loss term {name!r} is {value.detach().flatten()[0].item()}",
                    "Scale the inputs (e.g. standardise each channel), lower lr "
                    "or set max_grad_norm (e.g. 1.0).",
                )

    def on_grad_computed(self, net, named_parameters, **kwargs):
        params = [p for _, p in named_parameters if p.grad is not None]
        if not params:
            return
        _, max_norm = self._settings(net)
        if max_norm is not None:  # clips and returns the norm before clipping
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:  # one fused norm: inf/nan in any gradient makes it non-finite
            grads = [p.grad for p in params]
            norm = torch.linalg.vector_norm(torch.stack(_norms(grads)))
        if not bool(torch.isfinite(norm)):
            self._fail(
                net,
                "A gradient is NaN or infinite",
                "Scale the inputs (e.g. standardise each channel), lower lr or "
                "set max_grad_norm (e.g. 1.0).",
            )


def _norms(tensors):
    if hasattr(torch, "_foreach_norm"):  # one kernel for the list
        return list(torch._foreach_norm(tensors))
    return [torch.linalg.vector_norm(t) for t in tensors]


def _state_names(net):
    """Trained modules and optimizers of ``net`` besides module_/optimizer_."""
    frozen = set(net.frozen_modules()) if hasattr(net, "frozen_modules") else set()
    names = [m for m in net._modules if m not in frozen and m != "module"]
    names += [o for o in net._optimizers if o != "optimizer"]
    return names


class Checkpoint(_SkorchCheckpoint):
    """skorch's ``Checkpoint`` for skkd estimators: every module and optimizer.

    Besides ``module_``/``optimizer_``/``history`` it saves every extra trained
    module and optimizer (``discriminator_``, ``optimizer_disc_``,
    ``adapter_`` ...) as ``<name>.pt`` and the fit state (random-number state,
    target-batch position, data-derived attributes) as ``fit_state.pt``. With
    ``skorch.callbacks.LoadInitState(checkpoint)`` a fit that was killed
    resumes from the last saved epoch, runs the remaining epochs of
    ``max_epochs`` and, with a fixed ``random_state``, ends with the same
    parameters as an uninterrupted fit.

    Parameters
    ----------
    monitor : str, callable or None, default=None
        When to save; None saves at the end of every epoch (what resuming
        needs). skkd trains on all data by default (``train_split=None``), so
        skorch's ``"valid_loss_best"`` does not exist: use
        ``"train_loss_best"`` to keep only improvements.
    f_fit_state : str or None, default="fit_state.pt"
        File of the fit state.
    **kwargs
        Other arguments of ``skorch.callbacks.Checkpoint`` (``dirname``,
        ``f_params`` ...).

    Examples
    --------
    >>> from skorch.callbacks import LoadInitState
    >>> from skkd.callbacks import Checkpoint
    >>> cp = Checkpoint(dirname="run1")
    >>> callbacks = [cp, LoadInitState(cp)]  # fit(...) again to resume
    >>> cp.monitor is None
    True
    """

    def __init__(self, monitor=None, f_fit_state="fit_state.pt", **kwargs):
        super().__init__(monitor=monitor, f_fit_state=f_fit_state, **kwargs)

    def _extra_for(self, net):
        self._extra_files = {f"f_{name}": f"{name}.pt" for name in _state_names(net)}

    def _f_kwargs(self):
        return {**super()._f_kwargs(), **getattr(self, "_extra_files", {})}

    def save_model(self, net):
        self._extra_for(net)
        super().save_model(net)

    def get_formatted_files(self, net):
        self._extra_for(net)
        return super().get_formatted_files(net)


def _caller_stacklevel():
    """``stacklevel`` of the first frame outside skkd and skorch (the user's)."""
    frame, level = sys._getframe(1), 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("skkd.", "skorch.")):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def _cloned(state):
    """A copy of a (module or optimizer) state dict: tensors cloned, the rest
    deep-copied (cheaper than ``copy.deepcopy`` of the whole dict)."""
    if torch.is_tensor(state):
        return state.detach().clone()
    if isinstance(state, dict):
        copied = type(state)((k, _cloned(v)) for k, v in state.items())
        if hasattr(state, "_metadata"):  # module versions, read when loading
            copied._metadata = copy.deepcopy(state._metadata)
        return copied
    if isinstance(state, (list, tuple)):
        return type(state)(_cloned(v) for v in state)
    return copy.deepcopy(state)


def _trained_names(net):
    frozen = set(net.frozen_modules())
    return [m for m in net._modules if m not in frozen] + list(net._optimizers)


class EpochRollback(Callback):
    """Keep the last completed epoch when an epoch does not complete.

    Every skkd estimator installs it as ``"epoch_rollback"``. It snapshots the
    trained modules and optimizers when an epoch begins; if the epoch never
    ends (Ctrl-C, or a non-finite loss with ``on_nonfinite="raise"``) the
    estimator is put back to that snapshot and the unfinished epoch's history
    row is dropped, so nothing trained in completed epochs is lost and nothing
    half-trained is kept. An interruption is reported with a warning saying
    what was kept; ``partial_fit`` then continues from there.

    Examples
    --------
    >>> EpochRollback().snapshot is None
    True
    """

    def __init__(self):
        self.snapshot = None

    def on_train_begin(self, net, **kwargs):
        self.snapshot = None

    def on_epoch_begin(self, net, **kwargs):
        # the frozen teacher never changes: trained modules and optimizers only
        self.snapshot = {
            name: _cloned(getattr(net, name + "_").state_dict())
            for name in _trained_names(net)
        }

    def on_epoch_end(self, net, **kwargs):
        self.snapshot = None

    def rollback(self, net):
        """Restore the snapshot of the unfinished epoch, if there is one.

        Parameters
        ----------
        net : BaseTimeSeriesClassifier

        Returns
        -------
        bool
            Whether an unfinished epoch was undone.
        """
        if self.snapshot is None:
            return False
        for name, values in self.snapshot.items():
            getattr(net, name + "_").load_state_dict(values)
        if len(net.history):
            net.history.pop()
        self.snapshot = None
        return True

    def on_train_end(self, net, **kwargs):
        # skorch's partial_fit swallows KeyboardInterrupt and still ends
        # training: an epoch that began and did not end was interrupted
        if not self.rollback(net):
            return
        done = len(net.history)
        kept = (
            f"it keeps the parameters of epoch {done}, the last completed one"
            if done
            else "no epoch was completed, so it holds its initial (untrained) "
            "parameters"
        )
        warnings.warn(
            f"Training of {type(net).__name__} was interrupted (KeyboardInterrupt);"
            f" {kept}. Call partial_fit to train further, or fit to start again.",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )
