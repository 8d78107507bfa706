"""skkd.pruning: schedules, importance, physical pruning == masking."""

import copy

import pytest
import torch
from torch import nn

from skkd import pruning
from skkd.compression import count_parameters
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier, ResNet1D


def _net(kind):
    torch.manual_seed(0)
    if kind == "cnn":
        return CNN1D(3, 4, widths=(6, 8, 5))
    if kind == "mlp":  # a flatten between the last conv and a hidden linear layer
        return nn.Sequential(
            nn.Conv1d(3, 6, 3, padding=1),
            nn.BatchNorm1d(6),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(6 * 10, 7),
            nn.ReLU(),
            nn.Linear(7, 4),
        )
    cls, layers = {
        "lstm1": (LSTMClassifier, 1),
        "lstm2": (LSTMClassifier, 2),
        "gru1": (GRUClassifier, 1),
        "gru3": (GRUClassifier, 3),
    }[kind]
    return cls(3, 4, hidden_size=6, num_layers=layers)


def _train_mode_bn_stats(net):
    # non-trivial BatchNorm statistics, so masking/pruning them matters
    net.train()
    with torch.no_grad():
        net(torch.randn(16, 3, 10) * 3 + 1)
    return net.eval()


@pytest.mark.parametrize("kind", ["cnn", "mlp", "lstm1", "lstm2", "gru1", "gru3"])
def test_pruned_equals_masked(kind):
    net = _train_mode_bn_stats(_net(kind))
    groups = pruning.channel_groups(net)
    gen = torch.Generator().manual_seed(1)
    removal = {}
    n_coupled = None
    for g in groups:
        n = (
            n_coupled
            if g.coupling and n_coupled
            else int(torch.randint(1, g.size, (1,), generator=gen))
        )
        if g.coupling:
            n_coupled = n
        removal[g.name] = torch.randperm(g.size, generator=gen)[:n].tolist()
    x = torch.randn(5, 3, 10)
    pruned = pruning.prune_channels(copy.deepcopy(net), removal)
    masked = pruning.mask_channels(copy.deepcopy(net), removal)
    with torch.no_grad():
        diff = (pruned(x) - masked(x)).abs().max().item()
    assert diff < 1e-5
    # physically smaller: exactly the predicted parameter count
    counts = {k: len(v) for k, v in removal.items()}
    assert count_parameters(pruned) == pruning.parameters_after(net, groups, counts)
    assert count_parameters(pruned) < count_parameters(net)
    # the classifier outputs never change and the masked network really differs
    assert pruned(x).shape == (5, 4)
    assert not torch.allclose(net(x), masked(x))


def test_pruned_attributes_follow_the_tensors():
    net = pruning.prune_channels(
        _net("cnn"), {"features.0.0": [0], "features.2.0": [1, 2]}
    )
    assert net.widths == (5, 8, 3) and net.n_features == 3
    assert net.features[1][0].in_channels == 5 and net.head.in_features == 3
    rnn = pruning.prune_channels(_net("lstm2"), {"rnn.l0": [0, 1], "rnn.l1": [3, 4]})
    assert rnn.rnn.hidden_size == 4 == rnn.hidden_size == rnn.head.in_features
    assert rnn(torch.randn(2, 3, 7)).shape == (2, 4)
    # the pruned state loads into a fresh network of the pruned size
    fresh = LSTMClassifier(3, 4, hidden_size=4, num_layers=2)
    fresh.load_state_dict(rnn.state_dict())
    x = torch.randn(2, 3, 7)
    assert torch.equal(fresh(x), rnn(x))


def test_coupled_layers_lose_units_in_lockstep():
    with pytest.raises(ValueError, match="same number"):
        pruning.prune_channels(_net("gru3"), {"rnn.l0": [0]})


def test_never_removes_the_last_channel():
    net = _net("cnn")
    scores = {g.name: torch.zeros(g.size) for g in pruning.channel_groups(net)}
    removal = pruning.select_channels(net, scores, n_channels=10_000)
    pruned = pruning.prune_channels(net, removal)
    assert pruned.widths == (1, 1, 1)
    with pytest.raises(ValueError, match="keeps one"):
        pruning.prune_channels(_net("cnn"), {"features.0.0": list(range(6))})


def test_zero_activation_channel_gets_zero_taylor_importance():
    net = _net("cnn").train()
    with torch.no_grad():  # channel 2 of block 1 outputs exactly 0 after ReLU
        net.features[0][1].weight[2] = 0.0
        net.features[0][1].bias[2] = -1.0
    batch = (torch.randn(8, 3, 10), torch.randint(0, 4, (8,)))
    for kind in ("taylor", "taylor_weight"):
        scores = pruning.taylor_importance(net, [batch], kind=kind)
        assert scores["features.0.0"][2] == 0
        assert (scores["features.0.0"] > 0).sum() == 5


def test_importance_alternatives():
    net = _net("cnn")
    with torch.no_grad():
        net.features[1][1].weight.copy_(torch.arange(8.0) - 3)
    bn = pruning.channel_importance(net, "bn_scale")
    assert torch.equal(bn["features.1.0"], (torch.arange(8.0) - 3).abs())
    mag = pruning.channel_importance(net, "magnitude")
    w = net.features[1][0].weight.detach()
    assert torch.allclose(mag["features.1.0"], w.abs().sum(dim=(1, 2)))
    with pytest.raises(ValueError, match="BatchNorm"):
        pruning.channel_importance(_net("lstm1"), "bn_scale")


def test_global_ranking_after_per_layer_normalisation():
    net = _net("cnn")
    scores = {
        "features.0.0": torch.tensor([1.0, 1, 1, 1, 1, 0.01]),
        "features.1.0": torch.full((8,), 100.0),
        "features.2.0": torch.tensor([5.0, 5, 5, 5, 0.5]),
    }
    removal = pruning.select_channels(net, scores, n_channels=2)
    # raw scale does not matter, only the rank inside each normalised layer
    assert removal == {"features.0.0": [5], "features.2.0": [4]}


@pytest.mark.parametrize("kind", ["cubic", "linear", "one_shot"])
def test_schedule_endpoints_and_monotone(kind):
    values = [pruning.pruning_schedule(e, 2, 7, 0.6, kind) for e in range(11)]
    assert values[:3] == [0.0, 0.0, 0.0]
    assert values[7:] == [0.6] * 4
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("total,final", [(100, 0.8), (288, 0.745), (7, 0.5), (3, 0.0)])
def test_schedule_counts_sum_to_the_target(total, final):
    counts = pruning.schedule_counts(total, 2, 7, final)
    assert len(counts) == 7 and counts[:2] == [0, 0]
    assert sum(counts) == round(final * total)
    assert all(c >= 0 for c in counts)


def test_cubic_golden_values():
    # r(e) = 0.8 [1 - (1 - (e - 2) / 4)^3]
    assert pruning.pruning_schedule(3, 2, 6, 0.8) == pytest.approx(0.8 * (1 - 0.75**3))
    assert pruning.schedule_counts(100, 2, 6, 0.8) == [0, 0, 46, 24, 9, 1]


def test_prune_to_meets_the_budget_within_one_channel():
    net = CNN1D(9, 6, widths=(64, 128, 128))
    full = count_parameters(net)
    for ratio in (0.5, 0.0665, 0.02):
        small = pruning.prune_to(net, ratio)
        n = count_parameters(small)
        assert n <= ratio * full
        # one more channel of the cheapest kind would exceed the budget
        assert n > ratio * full - 2 * 128 * 8 - 8
    assert count_parameters(net) == full  # the input is not modified
    small = pruning.prune_to(net, target_params=13366, importance="bn_scale")
    assert 13366 - 2100 < count_parameters(small) <= 13366


def test_prune_to_bad_input():
    net = _net("cnn")
    for ratio in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            pruning.prune_to(net, ratio)
    with pytest.raises(ValueError, match="larger than the starting model"):
        pruning.prune_to(net, target_params=10**6)
    with pytest.raises(ValueError, match="single channel"):
        pruning.prune_to(net, target_params=5)
    with pytest.raises(ValueError, match="no prunable channels"):
        pruning.channel_groups(nn.Sequential(nn.Flatten(), nn.Linear(30, 4)))
    with pytest.raises(ValueError, match="no prunable channels"):
        pruning.channel_groups(CNN1D(3, 4, widths=(1, 1)))
    with pytest.raises(ValueError, match="bidirectional"):
        pruning.channel_groups(nn.LSTM(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="cannot prune"):
        pruning.channel_groups(
            nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        )


def test_residual_networks_are_rejected_clearly():
    with pytest.raises(ValueError, match="chain"):
        pruning.check_prunable(ResNet1D(3, 4, n_filters=(4, 4)), (3, 16))
