"""Training reliability for every estimator (issue #8, items 2, 3 and 5).

Numerical safety (NaN/inf losses, gradient clipping), Ctrl-C, checkpoint and
resume, and persistence. Every exported estimator joins through
``tests/_estimators.py``.
"""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, LoadInitState

import skkd
from skkd.callbacks import Checkpoint, NonFiniteGuard, NonFiniteLossError
from skkd.persistence import InconsistentSkkdVersionWarning

from ._estimators import ALL_ESTIMATORS, fit_args, ids, make, tiny_data

every_estimator = pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=ids)


class AtBatch(Callback):
    """Run ``action(net)`` at the start of batch ``batch`` (1-based) of ``epoch``."""

    def __init__(self, epoch, batch, action):
        self.epoch = epoch
        self.batch = batch
        self.action = action

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training or len(net.history) != self.epoch:
            return
        if len(net.history[-1]["batches"]) == self.batch:  # new_batch ran already
            self.action(net)


def poison(net):
    """Every student layer outputs NaN from now on (until the hooks are removed)."""

    def hook(module, inputs, output):
        if isinstance(output, tuple):
            return tuple(o * float("nan") if torch.is_tensor(o) else o for o in output)
        return output * float("nan")

    net.poison_handles = [
        m.register_forward_hook(hook)
        for m in net.module_.modules()
        if not list(m.children())
    ]


def cure(net):
    for handle in getattr(net, "poison_handles", []):
        handle.remove()


class EpochEndState(Callback):
    """Records the student's state dict at the end of every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states = []

    def on_epoch_end(self, net, **kwargs):
        self.states.append({k: v.clone() for k, v in net.module_.state_dict().items()})


def assert_same_state(net, state):
    current = net.module_.state_dict()
    assert current.keys() == state.keys()
    for name, value in state.items():
        torch.testing.assert_close(current[name], value, rtol=0, atol=0)


# ------------------------------------------------------------ numerical safety
@every_estimator
def test_nonfinite_loss_stops_with_term_and_epoch(cls):
    X, y, X_tgt = tiny_data()
    states = EpochEndState()
    cb = [("nan", AtBatch(2, 1, poison)), ("states", states)]
    est = make(cls, max_epochs=3, callbacks=cb)
    with pytest.raises(NonFiniteLossError, match=r"loss term '\w+'.*in epoch 2") as e:
        est.fit(*fit_args(cls, X, y, X_tgt))
    assert "on_nonfinite='skip'" in str(e.value)
    assert "after epoch 1" in str(e.value)
    # back to the state after epoch 1 (BatchNorm statistics included)
    cure(est)
    assert len(est.history_) == 1
    assert_same_state(est, states.states[0])
    assert np.isfinite(est.predict_proba(X)).all()
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert np.isfinite(est.predict_proba(X)).all()


@every_estimator
def test_nonfinite_batch_is_skipped_when_asked(cls):
    X, y, X_tgt = tiny_data()
    cb = [("nan", AtBatch(2, 1, poison)), ("cure", AtBatch(2, 2, cure))]
    est = make(cls, max_epochs=3, batch_size=6, on_nonfinite="skip", callbacks=cb)
    est.fit(*fit_args(cls, X, y, X_tgt))
    skipped = [row.get("train_skipped_batches", 0) for row in est.history_]
    assert skipped == [0, 1, 0]
    assert np.isfinite(est.history_[:, "train_loss"]).all()
    assert len(est.history_[1]["batches"]) == 1  # the skipped batch is not logged
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert all(torch.isfinite(b).all() for b in est.module_.buffers())
    assert np.isfinite(est.predict_proba(X)).all()


def test_every_batch_skipped_is_an_error():
    X, y, _ = tiny_data()
    est = make(
        skkd.TimeSeriesClassifier,
        on_nonfinite="skip",
        callbacks=[("nan", AtBatch(1, 1, poison))],
    )
    with pytest.raises(NonFiniteLossError, match="Every batch of epoch 1"):
        est.fit(X, y)


class GradNorm(Callback):
    """Records the gradient norm the optimizer will see (after the guard)."""

    def on_train_begin(self, net, **kwargs):
        self.norms = []

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad for _, p in named_parameters if p.grad is not None]
        if not grads:  # a stage that computed no gradient (RCD-KD's agent warm-up)
            return
        self.norms.append(
            float(
                torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(g) for g in grads])
                )
            )
        )


@every_estimator
def test_max_grad_norm_clips(cls):
    X, y, X_tgt = tiny_data()
    norm = GradNorm()
    est = make(cls, max_epochs=2, max_grad_norm=1e-3, callbacks=[("norm", norm)])
    est.fit(*fit_args(cls, X, y, X_tgt))
    assert norm.norms and max(norm.norms) <= 1e-3 * (1 + 1e-4)
    free = GradNorm()
    make(cls, max_epochs=2, callbacks=[("norm", free)]).fit(*fit_args(cls, X, y, X_tgt))
    assert max(free.norms) > 1e-3  # the limit was binding


@every_estimator
def test_safety_options_are_hyperparameters(cls):
    est = make(cls, on_nonfinite="skip", max_grad_norm=2.0)
    params = est.get_params()
    assert params["on_nonfinite"] == "skip" and params["max_grad_norm"] == 2.0
    copy = clone(est)
    assert copy.on_nonfinite == "skip" and copy.max_grad_norm == 2.0


@pytest.mark.parametrize(
    ("params", "match"),
    [({"on_nonfinite": "ignore"}, "on_nonfinite"), ({"max_grad_norm": -1}, "max_grad")],
)
def test_safety_options_are_validated(params, match):
    X, y, _ = tiny_data()
    with pytest.raises(ValueError, match=match):
        make(skkd.TimeSeriesClassifier, **params).fit(X, y)


def test_guard_can_be_configured_as_a_callback():
    X, y, _ = tiny_data()
    est = make(
        skkd.TimeSeriesClassifier,
        callbacks__nonfinite_guard__on_nonfinite="skip",
        callbacks=[("nan", AtBatch(1, 1, poison))],
    )
    with pytest.raises(NonFiniteLossError, match="Every batch"):
        est.fit(X, y)
    assert isinstance(dict(est.callbacks_)["nonfinite_guard"], NonFiniteGuard)


# --------------------------------------------------------------- interruption
def interrupt(net):
    raise KeyboardInterrupt


@every_estimator
def test_ctrl_c_keeps_the_last_completed_epoch(cls):
    X, y, X_tgt = tiny_data()
    states = EpochEndState()
    cb = [("c", AtBatch(2, 2, interrupt)), ("states", states)]
    est = make(cls, max_epochs=3, batch_size=6, callbacks=cb)
    with pytest.warns(UserWarning, match="interrupted.*epoch 1, the last completed"):
        est.fit(*fit_args(cls, X, y, X_tgt))
    assert len(est.history_) == 1
    assert_same_state(est, states.states[0])
    assert np.isfinite(est.predict_proba(X)).all()
    pickle.loads(pickle.dumps(est))


def test_ctrl_c_in_the_first_epoch_says_nothing_was_trained():
    X, y, _ = tiny_data()
    est = make(
        skkd.TimeSeriesClassifier,
        batch_size=6,
        callbacks=[("c", AtBatch(1, 2, interrupt))],
    )
    with pytest.warns(UserWarning, match="no epoch was completed"):
        est.fit(X, y)
    assert len(est.history_) == 0


# ------------------------------------------------------------------- resume
class KilledError(Exception):
    """Stands for the process being killed (the subprocess test kills for real)."""


def kill(net):
    raise KilledError


@every_estimator
def test_checkpoint_resume_equals_uninterrupted_fit(cls, tmp_path):
    X, y, X_tgt = tiny_data()
    args = fit_args(cls, X, y, X_tgt)
    cp = Checkpoint(dirname=str(tmp_path))
    killed = make(
        cls, max_epochs=3, batch_size=6, callbacks=[cp, ("k", AtBatch(3, 2, kill))]
    )
    with pytest.raises(KilledError):
        killed.fit(*args)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert "fit_state.pt" in saved and "params.pt" in saved
    cp = Checkpoint(dirname=str(tmp_path))
    resumed = make(cls, max_epochs=3, batch_size=6, callbacks=[cp, LoadInitState(cp)])
    resumed.fit(*args)
    full = make(cls, max_epochs=3, batch_size=6).fit(*args)
    assert len(resumed.history_) == 3
    np.testing.assert_array_equal(resumed.predict_proba(X), full.predict_proba(X))
    for name, value in full.module_.state_dict().items():
        torch.testing.assert_close(
            resumed.module_.state_dict()[name], value, rtol=0, atol=0
        )


def test_checkpoint_saves_every_trained_module_and_optimizer(tmp_path):
    X, y, X_tgt = tiny_data()
    cp = Checkpoint(dirname=str(tmp_path))
    make(skkd.UniKDClassifier, callbacks=[cp]).fit(X, y, X_tgt)
    saved = {p.name for p in tmp_path.iterdir()}
    expected = {"adapter.pt", "discriminator.pt", "feature_discriminator.pt"}
    expected |= {"optimizer_disc.pt", "optimizer_feat.pt", "fit_state.pt"}
    assert expected <= saved
    assert "teacher_module.pt" not in saved  # frozen: rebuilt from the teacher


# -------------------------------------------------------------- persistence
@every_estimator
def test_pickle_and_joblib_round_trips(cls, tmp_path):
    X, y, X_tgt = tiny_data()
    est = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    expected = est.predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentSkkdVersionWarning)
        again = pickle.loads(pickle.dumps(est))
        joblib.dump(est, tmp_path / "est.joblib")
        loaded = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.classes_, est.classes_)


@every_estimator
def test_save_params_load_params_round_trip(cls, tmp_path):
    X, y, X_tgt = tiny_data()
    est = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    files = {"f_params": tmp_path / "p.pt", "f_fit_state": tmp_path / "s.pt"}
    est.save_params(**files)
    fresh = make(cls)
    with pytest.raises(Exception, match="f_fit_state"):
        fresh.load_params(f_params=files["f_params"])
    fresh.load_params(**files)
    np.testing.assert_array_equal(fresh.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(fresh.predict(X), est.predict(X))


def test_unpickling_another_version_warns(monkeypatch):
    X, y, _ = tiny_data()
    est = make(skkd.TimeSeriesClassifier).fit(X, y)
    monkeypatch.setattr(skkd, "__version__", "0.0.1")
    buffer = io.BytesIO()
    pickle.dump(est, buffer)
    monkeypatch.undo()
    with pytest.warns(InconsistentSkkdVersionWarning, match="skkd 0.0.1 into skkd"):
        loaded = pickle.loads(buffer.getvalue())
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
