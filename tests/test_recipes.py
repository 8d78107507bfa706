"""Module-aware training defaults (skkd.recipes) and the recurrent recipe."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from skkd import TimeSeriesClassifier
from skkd.distillers.memkd import MemKDClassifier
from skkd.distillers.recurrent import RKDClassifier
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier
from skkd.nn.backbones import recurrent_training_recipe
from skkd.recipes import recommended_recipe, resolve_recipe

torch.set_num_threads(1)

RECIPE = recurrent_training_recipe(hidden_size=8)  # a small student's
DEEP = recurrent_training_recipe(hidden_size=100, num_layers=3)


def _data(n=24, length=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1, length)).astype(np.float32)
    y = (X[:, 0, :5].mean(axis=1) > 0).astype(int)
    y[:2] = [0, 1]
    return X, y


def test_recurrent_modules_declare_a_recipe_and_cnns_do_not():
    assert recommended_recipe(LSTMClassifier, {"hidden_size": 8}) == RECIPE
    assert recommended_recipe(GRUClassifier, {"hidden_size": 8}) == RECIPE
    assert recommended_recipe(LSTMClassifier(1, 2, hidden_size=3)) == RECIPE
    assert recommended_recipe(CNN1D) == {}
    # stacked or wide networks get the lower learning rate
    assert recommended_recipe(LSTMClassifier, {"num_layers": 3}) == DEEP
    assert RECIPE["lr"] == 1e-2 and DEEP["lr"] == 1e-3


def test_the_deep_teacher_recipe_follows_routed_module_params():
    est = TimeSeriesClassifier(
        LSTMClassifier, module__hidden_size=100, module__num_layers=3
    )
    assert resolve_recipe(est) == DEEP
    assert (
        resolve_recipe(est.set_params(module__num_layers=1, module__hidden_size=16))[
            "lr"
        ]
        == 1e-2
    )


def test_defaults_left_alone_take_the_recipe_and_params_stay_as_passed():
    est = TimeSeriesClassifier(LSTMClassifier, module__hidden_size=8)
    assert resolve_recipe(est) == RECIPE
    # sklearn's contract: the parameters are what the user passed
    assert est.get_params()["lr"] == 1e-2
    assert est.get_params()["max_epochs"] == 10
    assert est.get_params()["max_grad_norm"] is None
    cnn = TimeSeriesClassifier(CNN1D)
    assert resolve_recipe(cnn) == {"lr": 1e-2, "max_epochs": 10, "max_grad_norm": None}


def test_explicit_values_win_over_the_recipe():
    est = TimeSeriesClassifier(LSTMClassifier, lr=3e-4, max_epochs=7, max_grad_norm=5.0)
    assert resolve_recipe(est) == {"lr": 3e-4, "max_epochs": 7, "max_grad_norm": 5.0}
    # a distiller's own default (MemKD: lr 5e-3) counts as left alone
    memkd = MemKDClassifier(LSTMClassifier(1, 2, hidden_size=3), module__hidden_size=8)
    assert resolve_recipe(memkd)["lr"] == RECIPE["lr"]
    assert resolve_recipe(memkd.set_params(lr=2e-3))["lr"] == 2e-3


def test_fit_trains_with_the_resolved_values():
    X, y = _data()
    est = TimeSeriesClassifier(
        LSTMClassifier, module__hidden_size=3, max_epochs=2, random_state=0
    ).fit(X, y)
    assert est.lr_ == RECIPE["lr"] and est.max_epochs_ == 2
    assert est.max_grad_norm_ == RECIPE["max_grad_norm"]
    assert est.optimizer_.param_groups[0]["lr"] == RECIPE["lr"]
    assert len(est.history_) == 2
    routed = TimeSeriesClassifier(
        LSTMClassifier, module__hidden_size=3, max_epochs=1, optimizer__lr=1e-4
    ).fit(X, y)
    assert routed.optimizer_.param_groups[0]["lr"] == 1e-4  # routed value wins


def test_default_epochs_come_from_the_recipe(monkeypatch):
    monkeypatch.setattr(LSTMClassifier, "training_recipe", {**RECIPE, "max_epochs": 3})
    assert recommended_recipe(LSTMClassifier) == {**RECIPE, "max_epochs": 3}
    X, y = _data()
    est = TimeSeriesClassifier(LSTMClassifier, module__hidden_size=3).fit(X, y)
    assert est.max_epochs_ == 3 and len(est.history_) == 3
    assert est.progress == 1.0


def test_clone_and_pickle_keep_params_and_resolved_values():
    X, y = _data()
    est = TimeSeriesClassifier(
        LSTMClassifier, module__hidden_size=3, max_epochs=1, random_state=0
    )
    assert clone(est).get_params()["lr"] == 1e-2
    fitted = est.fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    assert again.lr_ == fitted.lr_
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_distillers_and_base_share_the_recipe():
    X, y = _data()
    teacher = TimeSeriesClassifier(
        LSTMClassifier, module__hidden_size=5, max_epochs=1, random_state=0
    ).fit(X, y)
    for cls in (MemKDClassifier, RKDClassifier):
        est = cls(FrozenEstimator(teacher), module__hidden_size=3, max_epochs=1).fit(
            X, y
        )
        assert (est.lr_, est.max_grad_norm_) == (RECIPE["lr"], RECIPE["max_grad_norm"])


def test_unknown_recipe_keys_are_refused():
    class Odd(LSTMClassifier):
        training_recipe = {"momentum": 0.9}

    with pytest.raises(ValueError, match="may set only"):
        recommended_recipe(Odd)


@pytest.mark.slow
def test_default_configured_deep_lstm_teacher_learns_gunpoint():
    # issue 15: with the CNN recipe a 3x100 LSTM stayed at the majority class
    from skkd.datasets import load_sktime_dataset

    data = load_sktime_dataset("GunPoint", n_timepoints=50)
    teacher = TimeSeriesClassifier(
        LSTMClassifier, module__hidden_size=100, module__num_layers=3, random_state=0
    ).fit(data.X_train, data.y_train)
    majority = np.unique(data.y_test, return_counts=True)[1].max() / len(data.y_test)
    accuracy = teacher.score(data.X_test, data.y_test)
    assert accuracy >= majority + 0.2, (accuracy, majority)


class _ThreeEpochLSTM(LSTMClassifier):
    """An LSTM whose recipe trains 3 epochs (a fast stand-in for 200)."""

    training_recipe = {"max_epochs": 3}


def test_epoch_schedules_follow_the_recipe_epochs_not_the_parameter():
    from skkd import UniKDClassifier

    X, y = _data()
    teacher = TimeSeriesClassifier(CNN1D, module__widths=(4,), max_epochs=1)
    teacher.fit(X, y)
    student = UniKDClassifier(
        FrozenEstimator(teacher),
        module=_ThreeEpochLSTM,
        module__hidden_size=3,
        beta_0=0.5,
        beta_end=1.0,
        random_state=0,
    ).fit(X, y, X)
    assert student.max_epochs == 10 and student.max_epochs_ == 3
    assert len(student.history) == 3
    # the progressive weight reached its end value in the last epoch trained
    assert student.beta() == pytest.approx(1.0)
