"""VADA and DIRT-T: terms, step structure, refreshes, the user's teacher, errors."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from skkd import DANNClassifier, DIRTTClassifier, VADAClassifier
from skkd.datasets import load_har_scenario
from skkd.metrics import macro_f1
from skkd.nn import CNN1D

from ._estimators import fingerprint, tiny_data
from .conftest import TINY
from .test_training_stages import StepCounter

VADA_WEIGHTS = {
    "lambda_cls": "ce",
    "lambda_domain": "domain",
    "lambda_ent": "ent",
    "lambda_vat_src": "vat_src",
    "lambda_vat_tgt": "vat_tgt",
}
DIRTT_WEIGHTS = {"lambda_ent": "ent", "lambda_vat": "vat_tgt", "beta": "kl"}


def _batch(data, n=8):
    X = torch.from_numpy(data.X_src[:n])
    y = torch.from_numpy(np.asarray(data.y_src[:n], dtype=np.int64))
    return X, y, torch.from_numpy(data.X_tgt[:n])


def _terms(est, batch):
    torch.manual_seed(0)  # the same VAT start directions for every call
    est.module_.eval()  # no dropout, fixed BatchNorm: the same network each call
    return est.compute_losses(*batch)


# ------------------------------------------------------------------ the terms
@pytest.mark.parametrize("weight, term", VADA_WEIGHTS.items())
def test_each_vada_term_is_weighted_into_the_loss(
    fitted_vada, shift_data, weight, term
):
    batch = _batch(shift_data)
    est = clone(fitted_vada)
    est.__dict__.update({k: v for k, v in vars(fitted_vada).items() if k.endswith("_")})
    base = _terms(est, batch)
    assert base[term].item() > 0
    total = sum(getattr(est, w) * base[t] for w, t in VADA_WEIGHTS.items())
    torch.testing.assert_close(base["loss"], total)
    est.set_params(**{weight: getattr(est, weight) + 1.0})
    changed = _terms(est, batch)
    torch.testing.assert_close(changed["loss"] - base["loss"], base[term])


@pytest.mark.parametrize("weight, term", DIRTT_WEIGHTS.items())
def test_each_dirtt_term_is_weighted_into_the_loss(
    fitted_dirtt, shift_data, weight, term
):
    batch = _batch(shift_data)
    base = _terms(fitted_dirtt, batch)
    assert base[term].item() > 0
    total = sum(getattr(fitted_dirtt, w) * base[t] for w, t in DIRTT_WEIGHTS.items())
    torch.testing.assert_close(base["loss"], total)
    original = getattr(fitted_dirtt, weight)
    try:
        fitted_dirtt.set_params(**{weight: original + 1.0})
        changed = _terms(fitted_dirtt, batch)
    finally:
        fitted_dirtt.set_params(**{weight: original})
    torch.testing.assert_close(changed["loss"] - base["loss"], base[term])


def test_dirtt_reads_target_series_only(fitted_dirtt, shift_data):
    X, y, X_tgt = _batch(shift_data)
    a = _terms(fitted_dirtt, (X, y, X_tgt))
    b = _terms(fitted_dirtt, (torch.zeros_like(X), torch.zeros_like(y), X_tgt))
    torch.testing.assert_close(a["loss"], b["loss"])
    assert "y_pred" not in a


def test_vada_with_zero_vat_and_entropy_is_dann(shift_data):
    # the same network, discriminator, optimizers and settings as DANN's
    settings = {
        **TINY,
        "random_state": 0,
        "lr": 1e-2,
        "optimizer__betas": (0.5, 0.99),
    }
    zero = {"lambda_ent": 0.0, "lambda_vat_src": 0.0, "lambda_vat_tgt": 0.0}
    args = shift_data.X_src, shift_data.y_src, shift_data.X_tgt
    fitted_vada = VADAClassifier(**settings, **zero, lambda_cls=1.0, lambda_domain=1.0)
    dann = DANNClassifier(**settings).fit(*args)
    fitted_vada.fit(*args)
    np.testing.assert_array_equal(
        fitted_vada.predict_proba(shift_data.X_tgt_test),
        dann.predict_proba(shift_data.X_tgt_test),
    )
    # zero-weight VAT terms are neither computed nor logged
    assert "train_vat_src" not in fitted_vada.history_[-1]
    assert "train_ent" in fitted_vada.history_[-1]


# ------------------------------------------------------------- step structure
def _count(est):
    X, y, X_tgt = tiny_data()
    counter = StepCounter()
    est.set_params(
        callbacks=[("count", counter)], batch_size=4, max_epochs=1, random_state=0
    )
    est.fit(X, y, X_tgt)
    return counter.batches


@pytest.mark.parametrize(
    "params, forwards",
    [
        # one forward per domain + (n_power + 1) per VAT term
        ({}, 2 + 2 + 2),
        ({"lambda_vat_src": 0.0}, 2 + 2),
        ({"lambda_vat_src": 0.0, "lambda_vat_tgt": 0.0}, 2),
        ({"vat_n_power": 2}, 2 + 3 + 3),
    ],
)
def test_vada_step_structure(params, forwards):
    batches = _count(VADAClassifier(module__widths=(4,), **params))
    assert len(batches) == 3
    for batch in batches:
        assert batch == {
            "forward": forwards,
            "steps": {"optimizer": 1, "optimizer_disc": 1},
            "grads": {"main": 1},
            "draws": 1,
        }


def _tiny_teacher():
    X, y, X_tgt = tiny_data()
    teacher = VADAClassifier(module__widths=(4,), max_epochs=1, random_state=0)
    return teacher.fit(X, y, X_tgt)


@pytest.mark.parametrize(
    "params, forwards",
    # the target batch once + (n_power + 1) for VAT; the source batch never
    [({}, 1 + 2), ({"lambda_vat": 0.0}, 1), ({"vat_n_power": 3}, 1 + 4)],
)
def test_dirtt_step_structure(params, forwards):
    batches = _count(DIRTTClassifier(FrozenEstimator(_tiny_teacher()), **params))
    assert len(batches) == 3
    for batch in batches:
        assert batch == {
            "forward": forwards,
            "steps": {"optimizer": 1},
            "grads": {"main": 1},
            "draws": 1,
        }


# ------------------------------------------------------- DIRT-T's refreshes
def _state_equal(a, b):
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize(
    "refresh_every, epochs, refreshes, last_step_refreshed",
    [(None, 2, 2, True), (2, 2, 3, True), (4, 2, 1, False), (1, 1, 3, True)],
)
def test_dirtt_refreshes_the_previous_network_on_schedule(
    refresh_every, epochs, refreshes, last_step_refreshed
):
    X, y, X_tgt = tiny_data()  # 12 source series, batch 4: 3 steps per epoch
    est = DIRTTClassifier(
        FrozenEstimator(_tiny_teacher()),
        refresh_every=refresh_every,
        max_epochs=epochs,
        batch_size=4,
        random_state=0,
    ).fit(X, y, X_tgt)
    assert est.n_refreshes_ == refreshes
    assert _state_equal(est.teacher_module_, est.module_) == last_step_refreshed
    assert not any(p.requires_grad for p in est.teacher_module_.parameters())


def test_dirtt_starts_from_the_teacher_and_leaves_it_untouched():
    X, y, X_tgt = tiny_data()
    teacher = _tiny_teacher()
    teacher_proba = teacher.predict_proba(X)  # (predicting sets eval mode)
    before = fingerprint(teacher)
    start = DIRTTClassifier(FrozenEstimator(teacher), max_epochs=0).fit(X, y, X_tgt)
    np.testing.assert_array_equal(start.predict_proba(X), teacher_proba)
    refined = DIRTTClassifier(FrozenEstimator(teacher), max_epochs=2, random_state=0)
    refined.fit(X, y, X_tgt)
    assert not np.array_equal(refined.predict_proba(X), teacher_proba)
    assert fingerprint(teacher) == before
    # a bare module teacher too
    module = teacher.module_
    before = fingerprint(module)
    DIRTTClassifier(module, max_epochs=1, random_state=0).fit(X, y, X_tgt)
    assert fingerprint(module) == before


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", list(VADA_WEIGHTS))
def test_vada_refuses_negative_weights(shift_data, name):
    est = VADAClassifier(**TINY, **{name: -0.5})
    with pytest.raises(ValueError, match=f"{name} is a loss weight.*use 0 to turn"):
        est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


@pytest.mark.parametrize("name", list(DIRTT_WEIGHTS))
def test_dirtt_refuses_negative_weights(fitted_vada, shift_data, name):
    est = DIRTTClassifier(FrozenEstimator(fitted_vada), **{name: float("nan")})
    with pytest.raises(ValueError, match=f"{name} is a loss weight"):
        est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"vat_eps": 0.0}, "vat_eps is the radius.*> 0.*set its weight to 0"),
        ({"vat_eps": -1.0}, "vat_eps is the radius"),
        ({"vat_xi": 0.0}, "vat_xi is the power iteration's.*> 0"),
        ({"vat_n_power": 0}, "vat_n_power .*integer >= 1"),
        ({"vat_n_power": 1.5}, "vat_n_power .*integer >= 1"),
    ],
)
@pytest.mark.parametrize("cls", [VADAClassifier, DIRTTClassifier])
def test_bad_vat_settings_are_clear_errors(fitted_vada, shift_data, cls, params, match):
    args = (FrozenEstimator(fitted_vada),) if cls is DIRTTClassifier else ()
    est = cls(*args, **params)
    with pytest.raises(ValueError, match=match):
        est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"refresh_every": 0}, "refresh_every .*integer >= 1 or None"),
        ({"refresh_every": 2.5}, "refresh_every"),
        ({"module": CNN1D}, "leave module=None"),
    ],
)
def test_bad_dirtt_settings_are_clear_errors(fitted_vada, shift_data, params, match):
    est = DIRTTClassifier(FrozenEstimator(fitted_vada), **params)
    with pytest.raises(ValueError, match=match):
        est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


def test_target_series_are_required(fitted_vada, shift_data):
    for est in (VADAClassifier(**TINY), DIRTTClassifier(FrozenEstimator(fitted_vada))):
        with pytest.raises(ValueError, match="X_tgt"):
            est.fit(shift_data.X_src, shift_data.y_src)


# ---------------------------------------------------------------- learning
@pytest.mark.slow
def test_vada_adapts_on_har_2_to_11():
    torch.set_num_threads(1)
    d = load_har_scenario("2->11")
    vada = VADAClassifier(module__widths=(64, 128, 128), random_state=0)
    vada.fit(d.X_src, d.y_src, d.X_tgt)
    assert macro_f1(d.y_tgt_test, vada.predict(d.X_tgt_test)) > 0.80
