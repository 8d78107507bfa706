"""RCD-KD: the equations that pin the method, the agent, teacher requirements."""

import copy
import itertools

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from torch import nn

from skkd import DANNClassifier, RCDKDClassifier, TimeSeriesClassifier
from skkd.distillers.rcdkd import dropout_only_train, mc_dropout_proba
from skkd.losses import kd_kl_div, rcdkd_rewards, rcdkd_signals
from skkd.nn import CNN1D
from skkd.nn.rl import DuelingQNetwork, NoisyLinear, ReplayBuffer
from skkd.stages import TrainingStep

from ._estimators import fingerprint

pytestmark = pytest.mark.usefixtures("one_thread")

#: a small agent and few episodes: the method, quickly
QUICK = {
    "module__widths": (4, 8),
    "n_episodes": 2,
    "mc_passes": 3,
    "q_network__hidden": 16,
    "batch_size": 16,
    "max_epochs": 1,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def dann_teacher(shift_data):
    """A small DANN teacher with dropout after every block (never modified)."""
    teacher = DANNClassifier(
        module__widths=(8, 8),
        module__dropout_blocks="all",
        max_epochs=1,
        batch_size=16,
        random_state=0,
    )
    return teacher.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


def _fit(teacher, data, **params):
    est = RCDKDClassifier(FrozenEstimator(teacher), **{**QUICK, **params})
    return est.fit(data.X_src, data.y_src, data.X_tgt)


# ------------------------------------------------------------------ rewards
def _reward_rule(a, m_s, m_t, n):
    # the spec's table, written out case by case
    r_unc = (
        1
        if (a == 1 and m_s == 1 and m_t == 1) or (a == 0 and m_s == -1 and m_t == -1)
        else -1
    )
    r_tr = 1 if (a == 1 and n > 0) or (a == 0 and n <= 0) else -1
    return 0.2 * (r_unc - 0.5) + 1.8 * (r_tr - 0.5)


def test_reward_table():
    cases = list(itertools.product([0, 1], [-1, 1], [-1, 1], [-1, 1]))
    a, m_s, m_t, n = (
        torch.tensor(c, dtype=torch.float) for c in zip(*cases, strict=True)
    )
    rewards = rcdkd_rewards(a.long(), m_s, m_t, n)
    expected = torch.tensor([_reward_rule(*c) for c in cases], dtype=torch.float)
    torch.testing.assert_close(rewards, expected)
    assert {round(float(r), 6) for r in rewards} == {1.0, 0.6, -2.6, -3.0}
    # the four patterns of the spec
    one = torch.ones(1)
    assert rcdkd_rewards(one.long(), one, one, one).item() == pytest.approx(1.0)
    assert rcdkd_rewards(one.long(), -one, one, one).item() == pytest.approx(0.6)
    assert rcdkd_rewards(one.long(), one, one, -one).item() == pytest.approx(-2.6)
    assert rcdkd_rewards(one.long(), -one, one, -one).item() == pytest.approx(-3.0)


def test_reward_weights_and_zero_signals():
    a = torch.tensor([1, 0])
    zero = torch.zeros(2)
    # a sample at the batch mean (sign 0) earns no uncertainty reward; n = 0 is
    # "not transferable"
    torch.testing.assert_close(
        rcdkd_rewards(a, zero, zero, zero, weights=(1.0, 0.0)),
        torch.tensor([-1.5, -1.5]),
    )
    torch.testing.assert_close(
        rcdkd_rewards(a, zero, zero, zero, weights=(0.0, 1.0)),
        torch.tensor([-1.5, 0.5]),
    )


def test_signals_compare_with_the_batch_mean():
    p_s = torch.tensor([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.7, 0.2, 0.1]])
    p_t = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.34, 0.33, 0.33]])
    m_s, m_t, n = rcdkd_signals(p_s, p_t)
    h_s = -(p_s * p_s.log()).sum(1)
    h_t = -(p_t * p_t.log()).sum(1)
    d = (p_s * (p_s.log() - p_t.log())).sum(1)
    torch.testing.assert_close(m_s, torch.sign(h_s.mean() - h_s))
    torch.testing.assert_close(m_t, torch.sign(h_t.mean() - h_t))
    torch.testing.assert_close(n, torch.sign(d.mean() - d))
    assert m_s.tolist() == [1.0, -1.0, -1.0]
    with pytest.raises(ValueError, match="same shape"):
        rcdkd_signals(p_s, p_t[:2])


# ------------------------------------------------------------------- agent
def test_dueling_aggregation_averages_over_actions_per_sample():
    torch.manual_seed(0)
    q = DuelingQNetwork(3, n_actions=2, hidden=8)
    states = torch.randn(5, 3)
    h = torch.relu(q.input(states))
    value, advantage = q.value(h), q.advantage(h)
    out = q(states)
    torch.testing.assert_close(out, value + advantage - advantage.mean(1, keepdim=True))
    # per sample: the mean Q over actions is V; a batch mean would mix samples
    torch.testing.assert_close(out.mean(dim=1), value.squeeze(1))
    first = q(states[:1])
    torch.testing.assert_close(first, out[:1])


def test_noisy_linear_noise_is_fixed_until_reset():
    torch.manual_seed(0)
    layer = NoisyLinear(6, 3, sigma_init=0.4)
    x = torch.randn(4, 6)
    y = layer(x)
    torch.testing.assert_close(layer(x), y)
    layer.reset_noise()
    assert not torch.allclose(layer(x), y)
    # factorised: rank-one weight noise; the released code's sigma scales
    assert torch.linalg.matrix_rank(layer.weight_epsilon) == 1
    assert layer.weight_sigma[0, 0].item() == pytest.approx(0.4 / 6**0.5)
    assert layer.bias_sigma[0].item() == pytest.approx(0.4 / 3**0.5)
    mean = x @ layer.weight_mu.T + layer.bias_mu
    torch.testing.assert_close(layer.eval()(x), mean)


def test_replay_buffer_is_a_ring():
    buf = ReplayBuffer(5, n_features=1)
    for start in (0, 3):
        s = torch.arange(start, start + 3, dtype=torch.float)[:, None]
        buf.push(s, torch.ones(3, dtype=torch.long), s[:, 0], s, torch.zeros(3))
    assert len(buf) == 5
    # the oldest transition (0) was overwritten by the newest (5)
    assert sorted(buf.storage["rewards"].tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    states, actions, rewards, _, _ = buf.sample(5)
    torch.testing.assert_close(states[:, 0], rewards)
    assert actions.dtype == torch.long


# -------------------------------------------------------------- MC dropout
def test_mc_dropout_switches_only_dropout_and_restores_modes():
    net = nn.Sequential(
        nn.Conv1d(2, 4, 3),
        nn.BatchNorm1d(4),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * 6, 3),
    ).eval()
    seen = {}

    def record(module, inputs, output):
        seen[type(module).__name__] = module.training

    for m in net:
        m.register_forward_hook(record)
    running = net[1].running_mean.clone()
    proba = mc_dropout_proba(net, torch.randn(5, 2, 8), n_passes=4)
    assert seen == {
        "Conv1d": False,
        "BatchNorm1d": False,
        "Dropout": True,
        "Flatten": False,
        "Linear": False,
    }
    assert [m.training for m in net] == [False] * 5
    torch.testing.assert_close(net[1].running_mean, running)  # BN untouched
    torch.testing.assert_close(proba.sum(1), torch.ones(5))
    # a module in training mode stays so; only dropout modes are switched
    net.train()
    with dropout_only_train(net):
        pass
    assert all(m.training for m in net)


def test_mc_dropout_is_the_mean_of_stochastic_passes():
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2)).eval()
    X = torch.randn(4, 3)
    torch.manual_seed(0)
    batched = mc_dropout_proba(net, X, n_passes=6)
    with torch.no_grad():
        deterministic = torch.softmax(net(X), dim=1)
    assert not torch.allclose(batched, deterministic)
    torch.manual_seed(0)  # same draws as one forward of the 6 stacked copies
    with torch.no_grad(), dropout_only_train(net):
        stacked = torch.softmax(net(X.repeat(6, 1)), dim=1).reshape(6, 4, 2)
    torch.testing.assert_close(batched, stacked.mean(0))


# ----------------------------------------------------------------- the loss
class AlwaysDistil(nn.Module):
    """A stand-in agent whose action is always 1 (distil)."""

    def __init__(self, n_features, **ignored):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([0.0, 1.0]))

    def forward(self, states):
        return self.bias.expand(len(states), 2)


def _step(est, data, n=16):
    X = torch.from_numpy(data.X_src[:n])
    X_tgt = torch.from_numpy(data.X_tgt[:n])
    y = torch.from_numpy(est.label_encoder_.transform(data.y_src[:n]))
    return TrainingStep(X, y, X_tgt)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_all_actions_one_is_hinton_kd_on_target(dann_teacher, shift_data, reduction):
    est = _fit(
        dann_teacher,
        shift_data,
        q_network=AlwaysDistil,
        lambda_dc=0.0,
        kd_reduction=reduction,
    )
    step = _step(est, shift_data)
    est.agent_stage(step)
    terms = est.student_stage(step)
    logits = step.shared("episode_0", None).logits
    assert step.shared("episode_0", None).actions.tolist() == [1] * 16
    with torch.no_grad():
        teacher_logits = est.teacher_module_(step.X_tgt)
    tau = est.temperature
    p_t = torch.softmax(teacher_logits / tau, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(logits / tau, 1))).sum(1)
    expected = tau**2 * (kl.sum() if reduction == "sum" else kl.mean())
    torch.testing.assert_close(terms["kd"], expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        terms["loss"], est.lambda_kd * expected, rtol=1e-5, atol=1e-6
    )
    hinton = kd_kl_div(logits, teacher_logits, tau, reduction=reduction)
    torch.testing.assert_close(terms["kd"], hinton.detach(), rtol=1e-5, atol=1e-6)


def test_unselected_samples_are_not_distilled(dann_teacher, shift_data):
    est = _fit(dann_teacher, shift_data)
    step = _step(est, shift_data)
    est.agent_stage(step)
    episode = step.shared("episode_0", None)
    terms = est.student_stage(step)
    with torch.no_grad():
        teacher_logits = est.teacher_module_(step.X_tgt)
    per_sample = kd_kl_div(episode.logits, teacher_logits, 2.0, reduction="none")
    expected = (per_sample * episode.actions).sum()
    torch.testing.assert_close(terms["kd"], expected.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["cooperative", "adversarial"])
def test_domain_term_direction(dann_teacher, shift_data, mode):
    est = _fit(dann_teacher, shift_data, lambda_kd=0.0, dc_mode=mode)
    grads = {}
    for label, source in (("mode", mode), ("reference", "cooperative")):
        est.set_params(dc_mode=source)
        est.adapter_.zero_grad()
        est.discriminator_.zero_grad()
        step = _step(est, shift_data)
        torch.manual_seed(0)
        est.agent_stage(step)
        est.student_stage(step)["loss"].backward()
        grads[label] = (
            est.adapter_.weight.grad.clone(),
            est.discriminator_.net[0].weight.grad.clone(),
        )
    sign = -1.0 if mode == "adversarial" else 1.0
    # the student's gradient flips in adversarial mode, D's never does
    torch.testing.assert_close(grads["mode"][0], sign * grads["reference"][0])
    torch.testing.assert_close(grads["mode"][1], grads["reference"][1])


# ----------------------------------------------------------- the estimator
def test_discriminator_starts_as_a_copy_of_the_teachers(dann_teacher, shift_data):
    before = fingerprint(dann_teacher)
    est = _fit(dann_teacher, shift_data, optimizer_disc__lr=0.0)
    own = est.discriminator_
    assert own is not dann_teacher.discriminator_
    assert own.grl is None  # no reversal: the cooperative released code
    for mine, theirs in zip(
        own.parameters(), dann_teacher.discriminator_.parameters(), strict=True
    ):
        torch.testing.assert_close(mine, theirs)
    assert fingerprint(dann_teacher) == before
    assert dann_teacher.discriminator_.grl is not None


def test_agent_learns_and_history_is_recorded(dann_teacher, shift_data):
    est = _fit(dann_teacher, shift_data, replay_warmup=16, max_epochs=2)
    row = est.history_[-1]
    for key in ("kd", "dc", "dqn", "selection_rate", "agent_reward"):
        assert np.isfinite(row["train_" + key]), key
    assert 0.0 <= row["train_selection_rate"] <= 1.0
    assert -3.0 <= row["train_agent_reward"] <= 1.0
    # every step pushes its target batch once per episode; the 3 target draws
    # of an epoch cover the 40 target series once (16 + 16 + 8)
    assert len(est.replay_) == 2 * 2 * len(shift_data.X_tgt)
    assert not _same_params(est.q_target_, est.q_network_)
    assert not any(p.requires_grad for p in est.q_target_.parameters())
    assert est.optimizer_q_.defaults["lr"] == 1e-4
    assert est.optimizer_q_.defaults["betas"] == (0.9, 0.999)
    assert est.optimizer_q_.defaults["fused"]  # the same update, faster
    routed = _fit(dann_teacher, shift_data, optimizer_q__foreach=True)
    assert not routed.optimizer_q_.defaults["fused"]


def _same_params(a, b):
    return all(
        torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True)
    )


def test_agent_waits_for_a_warm_replay_buffer(dann_teacher, shift_data):
    est = _fit(dann_teacher, shift_data, replay_warmup=10**6)
    assert "train_dqn" not in est.history_[-1]
    assert "train_selection_rate" in est.history_[-1]
    assert _same_params(est.q_target_, est.q_network_)  # never updated


def test_soft_update_then_new_noise(dann_teacher, shift_data):
    est = _fit(dann_teacher, shift_data)
    step = _step(est, shift_data)
    online = copy.deepcopy(est.q_network_)
    target = copy.deepcopy(est.q_target_)
    with torch.no_grad():
        for p in est.q_network_.parameters():
            p.add_(1.0)
    est._context(step).updated = True
    est.sync_agent(step)
    tau = est.target_update
    for new, old, moved in zip(
        est.q_target_.parameters(),
        target.parameters(),
        est.q_network_.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(new, old + tau * (moved - old))
    noise = [
        m.weight_epsilon
        for m in est.q_network_.modules()
        if hasattr(m, "weight_epsilon")
    ]
    before = [
        m.weight_epsilon for m in online.modules() if hasattr(m, "weight_epsilon")
    ]
    assert not any(torch.equal(a, b) for a, b in zip(noise, before, strict=True))
    # nothing happens when the agent did not learn in this stage
    frozen = copy.deepcopy(est.q_target_)
    est.sync_agent(step)
    assert _same_params(frozen, est.q_target_)


@pytest.mark.parametrize("resample, calls", [("episode", 2), ("step", 1)])
def test_mc_resample(dann_teacher, shift_data, resample, calls, monkeypatch):
    est = _fit(dann_teacher, shift_data, mc_resample=resample)
    seen = []
    original = RCDKDClassifier.teacher_proba

    def counting(self, X):
        seen.append(len(X))
        return original(self, X)

    monkeypatch.setattr(RCDKDClassifier, "teacher_proba", counting)
    step = _step(est, shift_data)
    for _ in range(est.n_episodes):
        est.agent_stage(step)
        est.student_stage(step)
    assert seen == [16] * calls


def test_src_ce_adds_the_source_term(dann_teacher, shift_data):
    est = _fit(dann_teacher, shift_data, src_ce=True)
    assert np.isfinite(est.history_[-1, "train_ce"])
    assert "train_ce" not in _fit(dann_teacher, shift_data).history_[-1]


def test_reproducible_and_inputs_untouched(dann_teacher, shift_data):
    arrays = (shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    before = [fingerprint(a) for a in arrays], fingerprint(dann_teacher)
    first = _fit(dann_teacher, shift_data, replay_warmup=16)
    second = _fit(dann_teacher, shift_data, replay_warmup=16)
    np.testing.assert_array_equal(
        first.predict_proba(shift_data.X_tgt_test),
        second.predict_proba(shift_data.X_tgt_test),
    )
    assert ([fingerprint(a) for a in arrays], fingerprint(dann_teacher)) == before
    assert not first.teacher_module_.training


def test_teacher_without_discriminator_warns(fitted_teacher, shift_data):
    with pytest.warns(UserWarning, match="no domain discriminator"):
        est = _fit(fitted_teacher, shift_data)
    assert est.discriminator_.grl is None
    assert est.discriminator_.net[0].in_features == est.teacher_n_features_


def test_teacher_without_dropout_is_a_clear_error(shift_data):
    teacher = TimeSeriesClassifier(
        module=CNN1D, module__widths=(4,), module__dropout=0.0, max_epochs=1
    ).fit(shift_data.X_src, shift_data.y_src)
    with pytest.raises(ValueError, match="module__dropout="):
        _fit(teacher, shift_data)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_episodes": 0}, "n_episodes must be an integer >= 1"),
        ({"mc_passes": 1.5}, "mc_passes must be an integer"),
        ({"replay_capacity": 8, "dqn_batch_size": 32}, "must hold at least one"),
        ({"reward_weights": (0.2, float("nan"))}, "finite"),
        ({"reward_weights": (0.2, float("inf"))}, "finite"),
        ({"reward_weights": (1.0,)}, "two finite"),
        ({"kd_reduction": "none"}, "kd_reduction must be one of"),
        ({"dc_mode": "grl"}, "dc_mode must be one of"),
        ({"mc_resample": "batch"}, "mc_resample must be one of"),
        ({"gamma": 1.5}, "gamma"),
    ],
)
def test_bad_settings_fail_at_fit(dann_teacher, shift_data, params, match):
    est = RCDKDClassifier(FrozenEstimator(dann_teacher), **{**QUICK, **params})
    with pytest.raises(ValueError, match=match):
        est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)


def test_fit_without_target_data_is_refused(dann_teacher, shift_data):
    est = RCDKDClassifier(FrozenEstimator(dann_teacher), **QUICK)
    with pytest.raises(ValueError, match="needs unlabelled target data"):
        est.fit(shift_data.X_src, shift_data.y_src)


def test_cnn1d_dropout_after_every_block():
    first = CNN1D(3, 2, widths=(4, 8, 8))
    every = CNN1D(3, 2, widths=(4, 8, 8), dropout_blocks="all")
    count = lambda net: sum(isinstance(m, nn.Dropout) for m in net.modules())  # noqa: E731
    assert (count(first), count(every)) == (1, 3)
    assert sum(p.numel() for p in first.parameters()) == sum(
        p.numel() for p in every.parameters()
    )
    every.load_state_dict(first.state_dict())  # same parameters, same names
    with pytest.raises(ValueError, match="dropout_blocks"):
        CNN1D(3, 2, dropout_blocks="last")


def test_select_all_distils_every_target_sample(dann_teacher, shift_data):
    est = _fit(dann_teacher, shift_data, select="all")
    assert all(rate == 1.0 for rate in est.history[:, "train_selection_rate"])
    with pytest.raises(ValueError, match="select must be one of"):
        _fit(dann_teacher, shift_data, select="some")
