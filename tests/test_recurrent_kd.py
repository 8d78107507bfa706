"""Recurrent-KD baselines: golden loss values and behaviour."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skkd.distillers.recurrent import (
    ATClassifier,
    DKDClassifier,
    RKDClassifier,
    SequenceFitNetClassifier,
)
from skkd.losses import attention_transfer, dkd, rkd_angle, rkd_distance
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier

torch.set_num_threads(1)

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}


def _data(n=24, channels=2, length=10, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, channels, length)).astype(np.float32)
    return X, np.arange(n) % n_classes


# ------------------------------------------------------------ golden values
def test_rkd_distance_by_hand():
    # teacher points 0, 1, 3 on a line: distances 1, 3, 2, mean 2 -> 0.5, 1.5, 1
    t = torch.tensor([[0.0], [1.0], [3.0]])
    # student 0, 2, 3: distances 2, 3, 1, mean 2 -> 1, 1.5, 0.5
    s = torch.tensor([[0.0], [2.0], [3.0]])
    # SmoothL1 of differences 0.5, 0, 0.5 (each twice): 0.5 * 0.25 = 0.125 each
    assert rkd_distance(s, t).item() == pytest.approx((0.125 * 4) / 6)
    assert rkd_distance(10 * t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_rkd_angle_invariant_to_rotation_and_scale():
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(6, 4, generator=gen)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen))
    assert rkd_angle(3 * t @ q, t).item() < 1e-10
    assert rkd_angle(torch.randn(6, 4, generator=gen), t).item() > 0


def test_rkd_angle_right_angle_by_hand():
    # a right angle at j: cos = 0 for the teacher, cos = 1 for a collinear student
    t = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])

    def angles(x):
        e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), dim=2)
        return torch.bmm(e, e.transpose(1, 2)).flatten()

    expected = F.smooth_l1_loss(angles(s), angles(t)).item()
    assert rkd_angle(s, t).item() == pytest.approx(expected)
    assert expected > 0


def test_attention_transfer_by_hand():
    # teacher h^2 means over channels: (1, 0) -> normalised (1, 0)
    t = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    # student (1, 1) -> normalised (1/sqrt2, 1/sqrt2)
    s = torch.tensor([[[1.0], [1.0]]])
    expected = ((1 - 1 / math.sqrt(2)) ** 2 + 0.5) / 2
    assert attention_transfer(s, t).item() == pytest.approx(expected)


def test_dkd_by_hand():
    z_t = torch.tensor([[math.log(2.0), 0.0, 0.0]])  # p_T = (1/2, 1/4, 1/4) at T=1
    z_s = torch.zeros(1, 3)  # p_S = (1/3, 1/3, 1/3)
    y = torch.tensor([0])
    # TCKD = KL((1/2, 1/2) || (1/3, 2/3)); NCKD = KL((1/2,1/2) || (1/2,1/2)) = 0
    tckd = 0.5 * math.log(0.5 / (1 / 3)) + 0.5 * math.log(0.5 / (2 / 3))
    got = dkd(z_s, z_t, y, alpha=1.0, beta=8.0, temperature=1.0).item()
    assert got == pytest.approx(tckd, abs=1e-6)
    # non-target mismatch enters NCKD only, weighted by beta
    z_t2 = torch.tensor([[0.0, math.log(3.0), 0.0]])  # non-target (3/4, 1/4)
    nckd = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    tckd2 = 0.2 * math.log(0.2 / (1 / 3)) + 0.8 * math.log(0.8 / (2 / 3))
    got = dkd(z_s, z_t2, y, alpha=1.0, beta=8.0, temperature=1.0).item()
    assert got == pytest.approx(tckd2 + 8 * nckd, abs=1e-6)


def test_losses_do_not_backpropagate_into_the_teacher():
    t = torch.randn(4, 6, 5, requires_grad=True)
    s = torch.randn(4, 6, 3, requires_grad=True)
    z_t = torch.randn(4, 3, requires_grad=True)
    z_s = torch.randn(4, 3, requires_grad=True)
    loss = (
        rkd_distance(s, t)
        + rkd_angle(s, t)
        + attention_transfer(s, t)
        + dkd(z_s, z_t, torch.tensor([0, 1, 2, 0]))
    )
    loss.backward()
    assert t.grad is None and z_t.grad is None
    assert s.grad is not None and z_s.grad is not None


# ---------------------------------------------------------------- estimators
@pytest.mark.parametrize(
    "cls, term",
    [
        (SequenceFitNetClassifier, "train_hint"),
        (RKDClassifier, "train_rkd_angle"),
        (ATClassifier, "train_attention"),
        (DKDClassifier, "train_dkd"),
    ],
)
@pytest.mark.parametrize("student", [LSTMClassifier, GRUClassifier])
def test_baselines_fit_recurrent_students(cls, term, student):
    X, y = _data(n_classes=3)
    teacher = LSTMClassifier(2, 3, hidden_size=12, num_layers=2)
    est = cls(teacher, module=student, module__hidden_size=4, **FAST).fit(X, y)
    assert est.predict(X).shape == (len(X),)
    assert np.isfinite(est.history_[-1][term])


@pytest.mark.parametrize("cls", [SequenceFitNetClassifier, RKDClassifier, ATClassifier])
def test_transfer_set_terms(cls):
    X, y = _data()
    X_tgt, _ = _data(n=8, seed=3)
    est = cls(LSTMClassifier(2, 2, hidden_size=8), module__hidden_size=4, **FAST)
    est.fit(X, y, X_tgt)
    assert any(k.endswith("_tgt") for k in est.history_[-1])


def test_rkd_and_dkd_work_with_any_backbone():
    X, y = _data(n_classes=3)
    teacher = CNN1D(2, 3, widths=(8, 8))
    rkd = RKDClassifier(teacher, module=CNN1D, module__widths=(4,), **FAST).fit(X, y)
    assert rkd.representation_ == "features"
    dk = DKDClassifier(teacher, module=CNN1D, module__widths=(4,), **FAST).fit(X, y)
    assert dk.predict(X).shape == (len(X),)


def test_dkd_refuses_unlabelled_transfer_set():
    X, y = _data()
    with pytest.raises(ValueError, match="cannot use the unlabelled X_tgt"):
        DKDClassifier(LSTMClassifier(2, 2), **FAST).fit(X, y, X[:4])


@pytest.mark.parametrize("cls", [SequenceFitNetClassifier, ATClassifier])
def test_sequence_methods_reject_cnn_backbones(cls):
    X, y = _data()
    with pytest.raises(TypeError, match="GRUClassifier"):
        cls(LSTMClassifier(2, 2), module=CNN1D, **FAST).fit(X, y)
    with pytest.raises(TypeError, match="no forward_sequence"):
        cls(CNN1D(2, 2, widths=(4,)), **FAST).fit(X, y)


def test_fitnet_regressor_maps_student_to_teacher_width():
    X, y = _data()
    est = SequenceFitNetClassifier(
        LSTMClassifier(2, 2, hidden_size=12), module__hidden_size=4, **FAST
    ).fit(X, y)
    assert (est.regressor_.in_features, est.regressor_.out_features) == (4, 12)
    # the regressor is trained with the student
    names = {id(p) for g in est.optimizer_.param_groups for p in g["params"]}
    assert all(id(p) in names for p in est.regressor_.parameters())
