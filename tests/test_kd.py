"""Hinton KD: golden loss values and behaviour."""

import math

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from torch import nn

from skkd import KDClassifier

from .conftest import TINY


class ConstantLogits(nn.Module):
    """Outputs the same logits for every series (a hand-checkable network)."""

    def __init__(self, n_channels, n_classes, logits=(0.0, 0.0)):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits, dtype=torch.float32))
        self.n_features = n_classes
        self.head = nn.Identity()

    def forward_features(self, x):
        return self.logits.expand(len(x), -1)

    def forward(self, x):
        return self.head(self.forward_features(x))


X = np.zeros((4, 1, 5), dtype=np.float32)
Y = np.array([0, 1, 0, 1])


def _initialised(temperature, alpha, target_weight=1.0):
    teacher = ConstantLogits(1, 2, logits=(0.0, math.log(3.0)))  # p_T = (1/4, 3/4)
    student = KDClassifier(
        teacher,
        module=ConstantLogits,
        temperature=temperature,
        alpha=alpha,
        target_weight=target_weight,
        max_epochs=0,  # build the modules, train nothing
    )
    return student.fit(X, Y)


def test_kd_loss_golden_value_by_hand():
    # T = 1: KL((1/4, 3/4) || (1/2, 1/2)) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120
    # CE of a uniform 2-class student = ln 2 = 0.6931472
    student = _initialised(temperature=1.0, alpha=0.5)
    terms = student.compute_losses(torch.from_numpy(X), torch.from_numpy(Y), None)
    assert terms["kd_src"].item() == pytest.approx(0.1308120, abs=1e-6)
    assert terms["ce"].item() == pytest.approx(0.6931472, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(0.5 * 0.6931472 + 0.5 * 0.1308120)
    # with a target batch its KD term is added (target_weight 1)
    terms = student.compute_losses(
        torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(X[:2])
    )
    assert terms["kd_tgt"].item() == pytest.approx(0.1308120, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(0.5 * 0.6931472 + 0.5 * 0.2616240)


def test_kd_loss_scales_with_temperature_squared():
    # T = 2: p_T = (1, sqrt 3) / (1 + sqrt 3); times T^2 = 4
    p = np.array([1.0, math.sqrt(3.0)]) / (1.0 + math.sqrt(3.0))
    expected = 4.0 * float(np.sum(p * np.log(p / 0.5)))  # = 0.1453631
    student = _initialised(temperature=2.0, alpha=1.0)
    terms = student.compute_losses(torch.from_numpy(X), torch.from_numpy(Y), None)
    assert expected == pytest.approx(0.1453631, abs=1e-6)
    assert terms["kd_src"].item() == pytest.approx(expected, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(expected, abs=1e-6)  # alpha=1: no CE


def test_alpha_zero_is_plain_cross_entropy():
    student = _initialised(temperature=4.0, alpha=0.0)
    terms = student.compute_losses(torch.from_numpy(X), torch.from_numpy(Y), None)
    assert terms["loss"].item() == pytest.approx(terms["ce"].item())


def test_target_transfer_set_is_used_only_when_given(shift_data, fitted_teacher):
    teacher = FrozenEstimator(fitted_teacher)
    with_target = KDClassifier(teacher, **TINY, random_state=0)
    with_target.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    source_only = KDClassifier(teacher, **TINY, random_state=0)
    source_only.fit(shift_data.X_src, shift_data.y_src)
    assert "train_kd_tgt" in with_target.history_[-1]
    assert "train_kd_tgt" not in source_only.history_[-1]


def test_student_learns_to_match_the_teacher(shift_data, fitted_teacher):
    student = KDClassifier(
        FrozenEstimator(fitted_teacher),
        **{**TINY, "max_epochs": 8},
        alpha=1.0,
        random_state=0,
    )
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    kd = student.history_[:, "train_kd_src"]
    assert kd[-1] < kd[0]


@pytest.mark.parametrize(
    "params, match", [({"temperature": 0}, "temperature"), ({"alpha": 1.5}, "alpha")]
)
def test_bad_hyperparameters_are_clear_errors(
    shift_data, fitted_teacher, params, match
):
    student = KDClassifier(FrozenEstimator(fitted_teacher), **TINY, **params)
    with pytest.raises(ValueError, match=match):
        student.fit(shift_data.X_src, shift_data.y_src)
