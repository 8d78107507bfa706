"""Baseline distillers: FitNet, MobileDA, AAD, JKU."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from skkd.distillers.baselines import (
    AADClassifier,
    FitNetClassifier,
    JKUClassifier,
    MobileDAClassifier,
)
from skkd.losses import coral, hint_mse, kd_kl_div, mmd
from skkd.stages import TrainingStep

from .conftest import TINY

#: estimator class -> per-epoch loss terms it must log
TERMS = {
    FitNetClassifier: ("ce", "hint_src", "hint_tgt"),
    MobileDAClassifier: ("ce", "kd_tgt", "coral"),
    AADClassifier: ("ce", "kd_src", "adv", "disc"),
    JKUClassifier: (
        "teacher_mmd",
        "teacher_ce",
        "teacher",
        "kd_src",
        "ce",
        "kd_tgt",
        "student",
        "beta",
    ),
}
ALL = list(TERMS)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _ids(*modules):
    return {id(p) for m in modules for p in m.parameters()}


def _in_optimizer(optimizer):
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


def _fit(cls, data, teacher, with_target=True, **params):
    est = cls(FrozenEstimator(teacher), **{**TINY, "random_state": 0, **params})
    X_tgt = data.X_tgt if with_target else None
    return est.fit(data.X_src, data.y_src, X_tgt)


def _batch(data, n=8):
    X = torch.from_numpy(data.X_src[:n].astype(np.float32))
    y = torch.from_numpy(data.y_src[:n].astype(np.int64))
    X_tgt = torch.from_numpy(data.X_tgt[:n].astype(np.float32))
    return X, y, X_tgt


# ------------------------------------------------------------ the contract
@pytest.mark.parametrize("cls", ALL)
def test_fits_predicts_logs_every_term_and_leaves_the_teacher_alone(
    cls, shift_data, fitted_teacher
):
    before = _state(fitted_teacher.module_)
    flags = [p.requires_grad for p in fitted_teacher.module_.parameters()]
    est = _fit(cls, shift_data, fitted_teacher)
    pred = est.predict(shift_data.X_tgt_test)
    assert pred.shape == (len(shift_data.X_tgt_test),)
    assert set(pred) <= set(est.classes_)
    proba = est.predict_proba(shift_data.X_tgt_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    for key in ("loss", *TERMS[cls]):
        values = est.history_[:, "train_" + key]
        assert len(values) == TINY["max_epochs"] and np.isfinite(values).all(), key
    # the user's teacher: bit-identical, flags untouched
    assert _same_state(before, _state(fitted_teacher.module_))
    assert flags == [p.requires_grad for p in fitted_teacher.module_.parameters()]
    assert est.teacher_module_ is not fitted_teacher.module_


@pytest.mark.parametrize("cls", [MobileDAClassifier, JKUClassifier])
def test_methods_that_need_target_data_say_so(cls, shift_data, fitted_teacher):
    with pytest.raises(ValueError, match="X_tgt"):
        _fit(cls, shift_data, fitted_teacher, with_target=False)


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (FitNetClassifier, {"lambda_hint": -1.0}, "lambda_hint"),
        (MobileDAClassifier, {"temperature": 0.0}, "temperature"),
        (MobileDAClassifier, {"lambda_coral": float("nan")}, "lambda_coral"),
        (AADClassifier, {"lambda_adv": -0.1}, "lambda_adv"),
        (JKUClassifier, {"beta_schedule": "linear"}, "beta_schedule"),
        (JKUClassifier, {"temperature": -2.0}, "temperature"),
    ],
)
def test_bad_hyperparameters_are_clear_errors(
    cls, params, match, shift_data, fitted_teacher
):
    with pytest.raises(ValueError, match=match):
        _fit(cls, shift_data, fitted_teacher, **params)


def test_source_only_methods_train_without_target(shift_data, fitted_teacher):
    fitnet = _fit(FitNetClassifier, shift_data, fitted_teacher, with_target=False)
    assert "train_hint_tgt" not in fitnet.history_[-1]
    aad = _fit(AADClassifier, shift_data, fitted_teacher, with_target=False)
    assert np.isfinite(aad.history_[:, "train_adv"]).all()


# ------------------------------------------------------------ optimizers
def test_fitnet_adapter_is_routed_and_trained_with_the_student(
    shift_data, fitted_teacher
):
    est = _fit(FitNetClassifier, shift_data, fitted_teacher, adapter__bias=False)
    assert est.adapter_.bias is None
    assert est.adapter_.in_features == est.module_.n_features
    assert est.adapter_.out_features == est.teacher_n_features_
    assert _in_optimizer(est.optimizer_) == _ids(est.module_, est.adapter_)
    assert not _ids(est.teacher_module_) & _in_optimizer(est.optimizer_)


def test_mobileda_optimises_the_student_only(shift_data, fitted_teacher):
    est = _fit(MobileDAClassifier, shift_data, fitted_teacher)
    assert _in_optimizer(est.optimizer_) == _ids(est.module_)


def test_aad_discriminator_has_its_own_routed_optimizer(shift_data, fitted_teacher):
    est = _fit(
        AADClassifier,
        shift_data,
        fitted_teacher,
        discriminator__hidden=6,
        optimizer_disc__lr=0.05,
    )
    disc = est.discriminator_
    assert disc.hidden == 6 and disc.n_domains == 1 and disc.grl is None
    assert disc.n_features == est.teacher_n_features_
    assert _in_optimizer(est.optimizer_disc_) == _ids(disc)
    assert _in_optimizer(est.optimizer_) == _ids(est.module_, est.adapter_)
    assert est.optimizer_disc_.param_groups[0]["lr"] == 0.05
    assert est.optimizer_.param_groups[0]["lr"] == est.lr


def test_aad_discriminator_step_changes_only_the_discriminator(
    shift_data, fitted_teacher
):
    est = _fit(AADClassifier, shift_data, fitted_teacher)
    X, _, _ = _batch(shift_data)
    names = ("module", "adapter", "discriminator", "teacher_module")
    before = {n: _params(getattr(est, n + "_")) for n in names}
    est.optimizer_.zero_grad()  # clear what the last training step left
    est._set_training(True)
    est.optimizer_disc_.zero_grad()
    est.discriminator_stage(TrainingStep(X, None, None))["loss"].backward()
    est.optimizer_disc_.step()
    after = {n: _params(getattr(est, n + "_")) for n in names}
    assert not _same_state(before["discriminator"], after["discriminator"])
    for name in ("module", "adapter", "teacher_module"):
        assert _same_state(before[name], after[name]), name
    # the stop-gradient: no gradient reached the student or the adapter
    assert all(p.grad is None for p in est.module_.parameters())
    assert all(p.grad is None for p in est.adapter_.parameters())


@pytest.mark.parametrize("frozen_group", ["optimizer_", "optimizer_disc_"])
def test_aad_train_step_steps_each_optimizer_on_its_own_loss(
    frozen_group, shift_data, fitted_teacher
):
    est = _fit(AADClassifier, shift_data, fitted_teacher)
    X, y, _ = _batch(shift_data)
    for group in getattr(est, frozen_group).param_groups:
        group["lr"] = 0.0  # this optimizer's step is then a no-op
    student = {**_params(est.module_), **_params(est.adapter_)}
    disc = _params(est.discriminator_)
    step = est.train_step((X, y))
    assert torch.isfinite(step["loss"]) and step["y_pred"].shape == (len(X), 3)
    student_after = {**_params(est.module_), **_params(est.adapter_)}
    disc_after = _params(est.discriminator_)
    if frozen_group == "optimizer_":
        assert _same_state(student, student_after)
        assert not _same_state(disc, disc_after)
    else:  # the student step never moves the discriminator
        assert _same_state(disc, disc_after)
        assert not _same_state(student, student_after)


def test_jku_trains_a_private_teacher_copy_with_the_student(shift_data, fitted_teacher):
    before = _state(fitted_teacher.module_)
    est = _fit(JKUClassifier, shift_data, fitted_teacher)
    teacher = est.teacher_module_
    assert _in_optimizer(est.optimizer_) == _ids(est.module_, teacher)
    assert all(p.requires_grad for p in teacher.parameters())
    # the private copy was trained, the user's teacher was not
    assert not _same_state(before, _state(teacher))
    assert _same_state(before, _state(fitted_teacher.module_))
    est._set_training(True)
    assert teacher.training  # trained, so not held in eval mode
    est._set_training(False)
    assert not teacher.training


# ------------------------------------------------------- golden formulas
def test_mobileda_loss_terms(shift_data, fitted_teacher):
    est = _fit(MobileDAClassifier, shift_data, fitted_teacher)
    est._set_training(False)  # deterministic forward (no dropout)
    X, y, X_tgt = _batch(shift_data)
    with torch.no_grad():
        terms = est.compute_losses(X, y, X_tgt)
        f_s, f_t = est.module_.forward_features(X), est.module_.forward_features(X_tgt)
        ce = F.cross_entropy(est.module_.head(f_s), y)
        z_t = est.module_.head(f_t)
        kd = kd_kl_div(z_t, est.teacher_module_(X_tgt), 2.0, scale_t2=False)
        cor = coral(f_s, f_t)
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["kd_tgt"], kd)
    torch.testing.assert_close(terms["coral"], cor)
    torch.testing.assert_close(terms["loss"], ce + 0.7 * kd + 0.3 * cor)
    # no tau^2: the Hinton-scaled value differs by tau^2 = 4
    torch.testing.assert_close(
        kd_kl_div(z_t, est.teacher_module_(X_tgt), 2.0).detach(), 4 * kd
    )
    est.set_params(lambda_kd=0.0, lambda_coral=0.0)
    with torch.no_grad():
        torch.testing.assert_close(est.compute_losses(X, y, X_tgt)["loss"], ce)


def test_fitnet_loss_terms_with_an_identity_adapter(shift_data, fitted_teacher):
    est = _fit(FitNetClassifier, shift_data, fitted_teacher, lambda_hint=0.5)
    assert est.module_.n_features == est.teacher_n_features_  # 8 and 8
    with torch.no_grad():
        est.adapter_.weight.copy_(torch.eye(est.teacher_n_features_))
        est.adapter_.bias.zero_()
    est._set_training(False)
    X, y, X_tgt = _batch(shift_data)
    with torch.no_grad():
        terms = est.compute_losses(X, y, X_tgt)
        teacher = est.teacher_module_
        hint_src = hint_mse(
            est.module_.forward_features(X), teacher.forward_features(X)
        )
        hint_tgt = hint_mse(
            est.module_.forward_features(X_tgt), teacher.forward_features(X_tgt)
        )
        ce = F.cross_entropy(est.module_(X), y)
        no_target = est.compute_losses(X, y, None)
    torch.testing.assert_close(terms["hint_src"], hint_src)
    torch.testing.assert_close(terms["hint_tgt"], hint_tgt)
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["loss"], ce + 0.5 * (hint_src + hint_tgt))
    torch.testing.assert_close(no_target["loss"], ce + 0.5 * hint_src)
    assert "hint_tgt" not in no_target


def test_aad_loss_terms(shift_data, fitted_teacher):
    est = _fit(AADClassifier, shift_data, fitted_teacher)
    est._set_training(False)
    X, y, X_tgt = _batch(shift_data)
    with torch.no_grad():
        step = TrainingStep(X, y, X_tgt)
        terms = {**est.discriminator_stage(step), **est.student_stage(step)}
        f = est.module_.forward_features(X)
        z, a = est.module_.head(f), est.adapter_(f)
        ce = F.cross_entropy(z, y)
        kd = kd_kl_div(z, est.teacher_module_(X), 4.0)  # tau^2-scaled
        fake = est.discriminator_(a)
        real = est.discriminator_(est.teacher_module_.forward_features(X))
        adv = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        disc = F.binary_cross_entropy_with_logits(
            real, torch.ones_like(real)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["kd_src"], kd)
    torch.testing.assert_close(terms["adv"], adv)
    torch.testing.assert_close(terms["disc"], disc)
    torch.testing.assert_close(terms["loss"], ce + kd + 0.1 * adv)


def test_aad_generator_term_is_not_detached(shift_data, fitted_teacher):
    est = _fit(AADClassifier, shift_data, fitted_teacher, lambda_ce=0.0, lambda_kd=0.0)
    est._set_training(False)
    X, y, _ = _batch(shift_data)
    est.compute_losses(X, y, None)["loss"].backward()
    grads = [p.grad for p in est.module_.features.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert est.adapter_.weight.grad.abs().sum() > 0


def test_jku_loss_terms_and_progressive_weight(shift_data, fitted_teacher):
    est = _fit(JKUClassifier, shift_data, fitted_teacher)
    est._set_training(False)
    X, y, X_tgt = _batch(shift_data)
    terms = est.compute_losses(X, y, X_tgt)
    assert est.current_epoch == TINY["max_epochs"]
    assert terms["beta"] == pytest.approx(0.9)  # ln schedule at e = E
    teacher, student = est.teacher_module_, est.module_
    with torch.no_grad():
        z_t, z_tt = teacher(X), teacher(X_tgt)
        l_t = mmd(teacher.forward_features(X), teacher.forward_features(X_tgt))
        l_t = l_t + 0.8 * F.cross_entropy(z_t, y)
        z_s, z_st = student(X), student(X_tgt)
        l_s = (
            kd_kl_div(z_s, z_t, 20.0, scale_t2=False)
            + 0.8 * F.cross_entropy(z_s, y)
            + kd_kl_div(z_st, z_tt, 20.0, scale_t2=False)
        )
    torch.testing.assert_close(terms["teacher"].detach(), l_t)
    torch.testing.assert_close(terms["student"].detach(), l_s)
    torch.testing.assert_close(terms["loss"].detach(), 0.1 * l_t + 0.9 * l_s)
    # the KL terms are detached from the teacher: its gradient is (1 - beta) dL_T
    est.optimizer_.zero_grad()  # clear what the last training step left
    terms["loss"].backward()
    from_total = [p.grad.clone() for p in teacher.parameters()]
    teacher.zero_grad()
    (0.1 * est.compute_losses(X, y, X_tgt)["teacher"]).backward()
    for got, expected in zip(from_total, teacher.parameters(), strict=True):
        torch.testing.assert_close(got, expected.grad)


# ------------------------------------------------------- clone and search
@pytest.mark.parametrize(
    "cls, name, value",
    [
        (FitNetClassifier, "lambda_hint", 0.25),
        (MobileDAClassifier, "temperature", 3.0),
        (AADClassifier, "temperature", 2.0),
        (JKUClassifier, "temperature", 10.0),
    ],
)
def test_set_params_and_clone(cls, name, value, fitted_teacher):
    teacher = FrozenEstimator(fitted_teacher)
    est = cls(teacher, **TINY).set_params(**{name: value})
    assert getattr(est, name) == value
    copy = clone(est)
    assert copy.teacher is teacher and getattr(copy, name) == value
    assert copy.get_params()["module__widths"] == TINY["module__widths"]


def test_grid_search_over_a_baseline_hyperparameter(shift_data, fitted_teacher):
    search = GridSearchCV(
        MobileDAClassifier(FrozenEstimator(fitted_teacher), **TINY, random_state=0),
        {"lambda_coral": [0.0, 0.3]},
        cv=2,
    )
    search.fit(shift_data.X_src, shift_data.y_src, X_tgt=shift_data.X_tgt)
    assert len(search.cv_results_["params"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert "train_coral" in search.best_estimator_.history_[-1]
