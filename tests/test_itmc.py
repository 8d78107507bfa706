"""ITMCClassifier: transfer KD with a real-time teacher and adaptive channel pruning."""

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from skorch.callbacks import Callback

from skkd import ITMCClassifier, KDClassifier, TimeSeriesClassifier
from skkd.compression import compression_report, count_macs, count_parameters
from skkd.nn import CNN1D, LSTMClassifier
from skkd.pruning import channel_groups

FAST = {"max_epochs": 4, "batch_size": 16, "random_state": 0}


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class _OptimizerAudit(Callback):
    """After every epoch (after its pruning step): the optimizer holds exactly
    the live student parameters."""

    def initialize(self):
        self.ok = []
        return self

    def on_epoch_end(self, net, **kwargs):
        held = {id(p) for g in net.optimizer_.param_groups for p in g["params"]}
        live = {id(p) for p in net.module_.parameters()}
        self.ok.append(held == live)


def test_prunes_physically_to_the_ratio(shift_data, fitted_teacher):
    d = shift_data
    audit = _OptimizerAudit()
    before = _state(fitted_teacher.module_)
    est = ITMCClassifier(
        FrozenEstimator(fitted_teacher),
        target_ratio=0.4,
        callbacks=[("audit", audit)],
        **FAST,
    ).fit(d.X_src, d.y_src, d.X_tgt)
    start = count_parameters(fitted_teacher.module_)
    assert est.start_params_ == start
    n = count_parameters(est.module_)
    assert n == est.history_[-1, "n_params"] <= 0.4 * start
    # within one channel's worth of the budget (the widest channel: 8 * 8 + ...)
    assert n > 0.4 * start - (8 * 8 + 8 * 8 + 2 + 3)
    widths = est.module_.widths
    assert sum(widths) < 16 and min(widths) >= 1
    assert est.module_.features[1][0].weight.shape[:2] == widths[::-1]
    # the schedule: nothing during warm-up, then monotone to the target
    e0, e1 = est.prune_epochs_
    channels = est.history_[:, "n_channels"]
    assert channels[:e0] == [16] * e0
    assert all(a >= b for a, b in zip(channels, channels[1:], strict=False))
    assert audit.ok == [True] * FAST["max_epochs"]
    # the user's teacher is bit-identical; the private copy did adapt
    after = _state(fitted_teacher.module_)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(
        not torch.equal(before[k], v) for k, v in _state(est.teacher_module_).items()
    )
    # smaller in the report and cheaper to run
    shape = d.X_src.shape[1:]
    report = compression_report(fitted_teacher, est, shape, latency=False)
    assert report.ratios["params"] > 2
    assert count_macs(est.module_, shape) < count_macs(fitted_teacher.module_, shape)
    assert est.predict_proba(d.X_tgt_test).shape == (len(d.X_tgt_test), 3)


def test_target_params_and_reproducible(shift_data, fitted_teacher):
    d = shift_data
    est = ITMCClassifier(
        FrozenEstimator(fitted_teacher),
        target_params=300,
        importance="magnitude",
        schedule="one_shot",
        **FAST,
    )
    p1 = est.fit(d.X_src, d.y_src, d.X_tgt).predict_proba(d.X_tgt_test)
    assert count_parameters(est.module_) <= 300
    p2 = clone(est).fit(d.X_src, d.y_src, d.X_tgt).predict_proba(d.X_tgt_test)
    np.testing.assert_array_equal(p1, p2)
    # one-shot: the only pruning step is at the end of the window
    channels = est.history_[:, "n_channels"]
    e1 = est.prune_epochs_[1]
    assert channels[: e1 - 1] == [16] * (e1 - 1) and channels[e1 - 1] < 16


def test_tkd_reduces_to_hinton_kd(shift_data, fitted_teacher):
    # beta = 1, gamma = 0, frozen teacher, no pruning: the student step is
    # alpha CE + (1 - alpha) tau^2 KL_s + tau^2 KL_t, i.e. KDClassifier with
    # alpha' = 1 - alpha and target_weight = 1 / alpha'
    d = shift_data
    common = {"module": CNN1D, "module__widths": (4, 4), "temperature": 4.0, **FAST}
    itmc = ITMCClassifier(
        FrozenEstimator(fitted_teacher),
        alpha=0.3,
        beta_0=1.0,
        beta_end=1.0,
        teacher_update="frozen",
        target_ratio=1.0,
        **common,
    ).fit(d.X_src, d.y_src, d.X_tgt)
    kd = KDClassifier(
        FrozenEstimator(fitted_teacher), alpha=0.7, target_weight=1 / 0.7, **common
    ).fit(d.X_src, d.y_src, d.X_tgt)
    np.testing.assert_allclose(
        itmc.history_[:, "train_loss"], kd.history_[:, "train_loss"], rtol=1e-4
    )
    np.testing.assert_allclose(
        itmc.predict_proba(d.X_tgt_test), kd.predict_proba(d.X_tgt_test), atol=1e-4
    )
    assert itmc.module_.widths == (4, 4)


@pytest.mark.parametrize(
    "params",
    [
        {"teacher_update": "dann", "importance": "bn_scale"},
        {"importance": "taylor_weight", "gamma": 0.5, "schedule": "linear"},
        {"student_init": "random", "warmup_epochs": 0, "pruning_epochs": 4},
    ],
)
def test_options_run(shift_data, fitted_teacher, params):
    d = shift_data
    est = ITMCClassifier(
        FrozenEstimator(fitted_teacher), target_ratio=0.5, **params, **FAST
    ).fit(d.X_src, d.y_src, d.X_tgt)
    assert count_parameters(est.module_) <= 0.5 * est.start_params_
    assert np.isfinite(est.history_[-1, "train_loss"])


def test_recurrent_student(shift_data):
    d = shift_data
    teacher = TimeSeriesClassifier(
        module=LSTMClassifier,
        module__hidden_size=8,
        module__num_layers=2,
        max_epochs=1,
        random_state=0,
    ).fit(d.X_src, d.y_src)
    est = ITMCClassifier(
        FrozenEstimator(teacher), target_ratio=0.5, max_epochs=2, random_state=0
    ).fit(d.X_src, d.y_src, d.X_tgt)
    rnn = est.module_.rnn
    assert rnn.hidden_size < 8 and rnn.num_layers == 2
    assert est.module_.head.in_features == rnn.hidden_size
    assert count_parameters(est.module_) <= 0.5 * est.start_params_
    assert est.predict(d.X_tgt_test).shape == (len(d.X_tgt_test),)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"target_ratio": 0.0}, r"\(0, 1\]"),
        ({"target_ratio": 1.5}, r"\(0, 1\]"),
        ({"target_params": 10**7}, "larger than the starting model"),
        ({"target_params": 3}, "single channel"),
        ({"target_ratio": 0.5, "target_params": 100}, "not both"),
        ({"module": CNN1D, "module__widths": (1, 1)}, "no prunable channels"),
        ({"teacher_update": "coral"}, "teacher_update"),
        ({"importance": "random"}, "importance"),
        ({"warmup_epochs": 4}, "fit in max_epochs"),
        ({"module": CNN1D, "student_init": "teacher"}, "architecture"),
    ],
)
def test_bad_input_fails_before_training(shift_data, fitted_teacher, params, match):
    d = shift_data
    est = ITMCClassifier(FrozenEstimator(fitted_teacher), **{**FAST, **params})
    with pytest.raises(ValueError, match=match):
        est.fit(d.X_src, d.y_src, d.X_tgt)
    assert not est.initialized_ and not hasattr(est, "optimizer_")


def test_needs_target(shift_data, fitted_teacher):
    with pytest.raises(ValueError, match="target"):
        ITMCClassifier(FrozenEstimator(fitted_teacher), **FAST).fit(
            shift_data.X_src, shift_data.y_src
        )


def test_student_is_copy_of_teacher_at_start(shift_data, fitted_teacher):
    # with no pruning and no training steps that change it, the default student
    # starts as the teacher (same architecture and weights)
    est = ITMCClassifier(FrozenEstimator(fitted_teacher), **FAST)
    d = shift_data
    est._validate_training_data(d.X_src, d.y_src, d.X_tgt, None, True)
    teacher = copy.deepcopy(fitted_teacher.module_)
    student = est._start_student(teacher)
    assert student is not teacher
    assert all(
        torch.equal(a, b)
        for a, b in zip(student.parameters(), teacher.parameters(), strict=True)
    )
    assert [g.size for g in channel_groups(student)] == [8, 8]
