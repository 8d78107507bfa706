"""UNI-KD: the tests that pin the method (specs/unikd.md, "Tests that pin ...")."""

import math

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from torch import nn

from skkd import UniKDClassifier
from skkd.distillers.unikd import domain_shared_weights
from skkd.losses import kd_kl_div
from skkd.stages import TrainingStep

from .conftest import TINY


def _built(shift_data, teacher, **params):
    """A UNI-KD student with its modules built and no training step taken."""
    student = UniKDClassifier(
        FrozenEstimator(teacher), **{**TINY, "max_epochs": 0}, random_state=0, **params
    )
    return student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


def _batch(student, shift_data, n=6):
    X = torch.from_numpy(shift_data.X_src[:n])
    X_tgt = torch.from_numpy(shift_data.X_tgt[:n])
    y = torch.from_numpy(shift_data.y_src[:n])
    f_src, z_src = student.teacher_outputs(X)
    f_tgt, z_tgt = student.teacher_outputs(X_tgt)
    teacher = {"f_src": f_src, "f_tgt": f_tgt, "z_src": z_src, "z_tgt": z_tgt}
    return X, X_tgt, y, teacher


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(module, snapshot):
    return any(
        not torch.equal(p, q)
        for p, q in zip(module.parameters(), snapshot, strict=True)
    )


# ----------------------------------------------------------------- weights
def test_weight_is_one_when_the_discriminator_is_unsure():
    logits = torch.tensor([[0.0, 0.0], [2.5, 2.5], [-1.0, -1.0]])
    torch.testing.assert_close(domain_shared_weights(logits), torch.ones(3))


def test_weight_goes_to_zero_for_a_confident_discriminator():
    logits = torch.tensor([[30.0, -30.0], [-30.0, 30.0]])
    assert domain_shared_weights(logits).max() < 1e-6


def test_weight_is_in_unit_interval():
    logits = torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) * 10
    weights = domain_shared_weights(logits)
    assert weights.min() >= 0 and weights.max() <= 1


def test_weight_golden_value():
    # q = softmax([ln 3, 0]) = (3/4, 1/4): w = 1 - 1/2 = 1/2
    logits = torch.tensor([[math.log(3.0), 0.0]])
    assert domain_shared_weights(logits).item() == pytest.approx(0.5)


# -------------------------------------------------------------- joint KD
def test_joint_kd_equals_hinton_kd_on_both_domains_when_w_is_one(
    shift_data, dann_teacher
):
    student = _built(shift_data, dann_teacher)
    last = student.discriminator_.net[-1]
    nn.init.zeros_(last.weight), nn.init.zeros_(last.bias)  # equal logits: w = 1
    # a 2-sample, 3-class example, tau = 4 (the default)
    z_t = torch.tensor([[2.0, 0.0, -2.0], [0.0, 4.0, 0.0]])
    z_s = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # by hand: p_T = softmax(z_T / 4), p_S uniform; KL = sum p_T ln(p_T / (1/3))
    p1 = np.exp([0.5, 0.0, -0.5]) / np.exp([0.5, 0.0, -0.5]).sum()
    p2 = np.exp([0.0, 1.0, 0.0]) / np.exp([0.0, 1.0, 0.0]).sum()
    kl = [float(np.sum(p * np.log(3 * p))) for p in (p1, p2)]
    expected_per_domain = 16.0 * (kl[0] + kl[1]) / 2  # tau^2 * mean over the batch
    # by hand: p1 = (.50648, .30720, .18632), KL1 = .07843;
    # p2 = (.21194, .57612, .21194), KL2 = .12329; 16 * (KL1 + KL2) / 2 = 1.6137
    assert expected_per_domain == pytest.approx(1.6137, abs=1e-3)

    features = torch.zeros(2, student.module_.n_features)
    student_out = {
        "f_src": features,
        "f_tgt": features,
        "z_src": z_s,
        "z_tgt": z_s,
        "a_src": student.adapter_(features),
        "a_tgt": student.adapter_(features),
    }
    teacher = {
        "f_src": torch.zeros(2, student.teacher_n_features_),
        "f_tgt": torch.zeros(2, student.teacher_n_features_),
        "z_src": z_t,
        "z_tgt": z_t,
    }
    terms = student.student_losses(student_out, teacher, torch.tensor([0, 1]), beta=1.0)
    assert terms["weight"].item() == pytest.approx(1.0)
    assert terms["jkd"].item() == pytest.approx(2 * expected_per_domain, rel=1e-5)
    hinton = kd_kl_div(z_s, z_t, 4.0) * 2
    assert terms["jkd"].item() == pytest.approx(hinton.item(), rel=1e-6)


# -------------------------------------------------------- update ordering
def test_feature_discriminator_step_changes_only_the_feature_discriminator(
    shift_data, dann_teacher
):
    student = _built(shift_data, dann_teacher)
    X, X_tgt, _, teacher = _batch(student, shift_data)
    out, _ = student._forward(TrainingStep(X, None, X_tgt))
    others = {
        name: _snapshot(getattr(student, name + "_"))
        for name in ("module", "adapter", "discriminator", "teacher_module")
    }
    d_f = _snapshot(student.feature_discriminator_)
    student.optimizer_feat_.zero_grad()
    loss = student.feature_discriminator_loss(
        torch.cat([teacher["f_src"], teacher["f_tgt"]]),
        torch.cat([out["a_src"], out["a_tgt"]]),
    )
    loss.backward()
    student.optimizer_feat_.step()
    assert _changed(student.feature_discriminator_, d_f)
    for name, snap in others.items():
        assert not _changed(getattr(student, name + "_"), snap), name


def test_student_step_changes_student_adapter_and_data_discriminator_only(
    shift_data, dann_teacher
):
    student = _built(shift_data, dann_teacher)
    X, X_tgt, y, teacher = _batch(student, shift_data)
    out, _ = student._forward(TrainingStep(X, None, X_tgt))
    snaps = {
        name: _snapshot(getattr(student, name + "_"))
        for name in (
            "module",
            "adapter",
            "discriminator",
            "feature_discriminator",
            "teacher_module",
        )
    }
    student.optimizer_.zero_grad()
    student.optimizer_disc_.zero_grad()
    student.student_losses(out, teacher, y, beta=0.5)["loss"].backward()
    student.optimizer_.step()
    student.optimizer_disc_.step()
    for name in ("module", "adapter", "discriminator"):
        assert _changed(getattr(student, name + "_"), snaps[name]), name
    for name in ("feature_discriminator", "teacher_module"):
        assert not _changed(getattr(student, name + "_"), snaps[name]), name
    assert all(p.grad is None for p in student.teacher_module_.parameters())


def test_user_teacher_is_unchanged_and_gets_no_gradient(shift_data, dann_teacher):
    before = {k: v.clone() for k, v in dann_teacher.module_.state_dict().items()}
    student = UniKDClassifier(FrozenEstimator(dann_teacher), **TINY, random_state=0)
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    after = dann_teacher.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in student.teacher_module_.parameters())


# ------------------------------------------------------------- switches
def _loss_and_grads(student, shift_data, beta=None):
    torch.manual_seed(0)
    X, X_tgt, y, teacher = _batch(student, shift_data)
    student.module_.eval()  # deterministic forward (no dropout, fixed BN)
    out, _ = student._forward(TrainingStep(X, None, X_tgt))
    for module in (student.module_, student.adapter_, student.discriminator_):
        module.zero_grad()
    terms = student.student_losses(out, teacher, y, beta if beta else student.beta())
    terms["loss"].backward()
    grads = {
        name: torch.cat(
            [p.grad.flatten() for p in getattr(student, name + "_").parameters()]
        )
        for name in ("module", "adapter", "discriminator")
    }
    return terms["loss"].item(), grads


@pytest.mark.parametrize(
    "switch, released, watch",
    [
        ("target_kd_on", "source_logits", "loss"),
        ("beta_schedule", "log10", "loss"),
        ("detach_adversarial", False, "adapter"),
        ("detach_weights", True, "discriminator"),
        ("grl_schedule", "ramp", "module"),
    ],
)
def test_each_paper_vs_code_switch_is_wired(
    shift_data, dann_teacher, switch, released, watch
):
    default = _built(shift_data, dann_teacher)
    variant = _built(shift_data, dann_teacher, **{switch: released})
    variant.module_.load_state_dict(default.module_.state_dict())
    for name in ("adapter", "discriminator", "feature_discriminator"):
        getattr(variant, name + "_").load_state_dict(
            getattr(default, name + "_").state_dict()
        )
    # epoch 1 of 1 (beta differs between ln and log10) at 10% progress (the
    # ramped GRL coefficient differs from the constant one)
    for est in (default, variant):
        est.history.new_epoch()
    progress = {"progress": 0.1}
    loss_a, grads_a = _with_progress(default, shift_data, progress)
    loss_b, grads_b = _with_progress(variant, shift_data, progress)
    if watch == "loss":
        assert loss_a != pytest.approx(loss_b)
    else:
        assert not torch.allclose(grads_a[watch], grads_b[watch])


def _with_progress(student, shift_data, progress):
    # pin the GRL progress so the ramp variant is mid-ramp
    original = type(student).progress
    try:
        type(student).progress = property(lambda self: progress["progress"])
        return _loss_and_grads(student, shift_data)
    finally:
        type(student).progress = original


def test_defaults_follow_the_measured_ablation():
    params = UniKDClassifier().get_params()
    assert params["target_kd_on"] == "target"  # fix #1
    assert params["detach_adversarial"] is True  # released #2
    assert params["detach_weights"] is False  # released #3
    assert params["beta_schedule"] == "ln"  # fix #4
    assert params["grl_schedule"] == "constant"  # released #5
    assert params["lr"] == 1e-2 and params["lambda_ukd"] == 1.0  # #6, #8


# ---------------------------------------------------------- behaviour
def test_history_records_every_term(shift_data, dann_teacher):
    student = UniKDClassifier(FrozenEstimator(dann_teacher), **TINY, random_state=0)
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    for term in (
        "ce",
        "dc",
        "jkd",
        "ukd",
        "ukd_adv",
        "ukd_hint",
        "feat_disc",
        "weight",
    ):
        assert np.isfinite(student.history_[:, "train_" + term]).all(), term
    betas = student.history_[:, "train_beta"]
    assert betas[-1] == pytest.approx(0.9) and betas[0] < betas[-1]


def test_fit_without_target_data_is_a_clear_error(shift_data, dann_teacher):
    with pytest.raises(ValueError, match="unlabelled target data"):
        UniKDClassifier(FrozenEstimator(dann_teacher), **TINY).fit(
            shift_data.X_src, shift_data.y_src
        )


def test_adapter_is_sized_from_both_feature_widths(shift_data, dann_teacher):
    student = _built(shift_data, dann_teacher)
    assert student.adapter_.in_features == 8  # student widths (4, 8)
    assert student.adapter_.out_features == 12  # teacher widths (8, 12)
    assert student.teacher_n_features_ == 12


class ForeignTeacher(nn.Module):
    """A teacher without forward_features (not an skkd backbone)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(3, 5, 3, padding=1), nn.ReLU())
        self.classify = nn.Linear(5, 3)

    def forward(self, x):
        return self.classify(self.body(x).mean(dim=-1))


def test_foreign_teacher_needs_its_feature_layer_named(shift_data):
    teacher = ForeignTeacher()
    with pytest.raises(TypeError, match="teacher_feature_layer"):
        UniKDClassifier(teacher, **TINY).fit(
            shift_data.X_src, shift_data.y_src, shift_data.X_tgt
        )
    with pytest.raises(ValueError, match="not a layer"):
        UniKDClassifier(teacher, **TINY, teacher_feature_layer="nope").fit(
            shift_data.X_src, shift_data.y_src, shift_data.X_tgt
        )
    student = UniKDClassifier(
        teacher, **TINY, teacher_feature_layer="body", random_state=0
    )
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    assert student.teacher_n_features_ == 5  # conv output averaged over time
    assert student.predict(shift_data.X_tgt_test).shape == (30,)


@pytest.mark.parametrize(
    "name, value", [("target_kd_on", "both"), ("beta_schedule", "log2")]
)
def test_bad_switch_values_are_clear_errors(shift_data, dann_teacher, name, value):
    with pytest.raises(ValueError, match=name):
        UniKDClassifier(FrozenEstimator(dann_teacher), **TINY, **{name: value}).fit(
            shift_data.X_src, shift_data.y_src, shift_data.X_tgt
        )


def test_routed_hyperparameters_reach_the_extra_modules(shift_data, dann_teacher):
    student = _built(
        shift_data,
        dann_teacher,
        discriminator__hidden=10,
        feature_discriminator__hidden=11,
        optimizer_feat__lr=0.003,
        optimizer_disc__lr=0.004,
    )
    assert student.discriminator_.hidden == 10
    assert student.feature_discriminator_.hidden == 11
    assert student.optimizer_feat_.param_groups[0]["lr"] == 0.003
    assert student.optimizer_disc_.param_groups[0]["lr"] == 0.004
    assert student.optimizer_.param_groups[0]["lr"] == 1e-2
