"""Tests for skkd.compression."""

import pytest
import torch
from torch import nn

from skkd.compression import (
    CompressionReport,
    as_module,
    compression_report,
    count_macs,
    count_parameters,
    measure_latency,
    model_bytes,
)
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier, ResNet1D


class FakeFitted:
    """Stands in for a fitted skorch/skkd net."""

    def __init__(self, module):
        self.module_ = module


class FakeFrozen:
    """Stands in for sklearn's FrozenEstimator."""

    def __init__(self, estimator):
        self.estimator = estimator


def test_count_parameters_and_trainable_only():
    net = CNN1D(9, 6, widths=(16, 32, 32))
    assert count_parameters(net) == 13_366
    assert count_parameters(CNN1D(9, 6)) == 200_902
    for p in net.features.parameters():
        p.requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == 32 * 6 + 6
    assert count_parameters(FakeFitted(net)) == 13_366


def test_macs_match_uni_kd_paper():
    assert count_macs(CNN1D(9, 6, widths=(16, 32, 32)), (9, 128)) == 649_408
    assert count_macs(CNN1D(9, 6), (9, 128)) == 9_282_304


def test_macs_lstm_and_gru_by_hand():
    # Per layer per step: gates * (in*h + h*h); plus the head h * n_classes.
    lstm = LSTMClassifier(3, 4, hidden_size=5, num_layers=2)
    expected = 10 * 4 * (3 * 5 + 5 * 5) + 10 * 4 * (5 * 5 + 5 * 5) + 5 * 4
    assert count_macs(lstm, (3, 10)) == expected == 3620
    gru = GRUClassifier(3, 4, hidden_size=5, num_layers=2)
    expected = 10 * 3 * (3 * 5 + 5 * 5) + 10 * 3 * (5 * 5 + 5 * 5) + 5 * 4
    assert count_macs(gru, (3, 10)) == expected == 2720


def test_macs_bidirectional_and_plain_rnn():
    class Bi(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(2, 3, num_layers=2, bidirectional=True)

        def forward(self, x):
            return self.rnn(x.permute(2, 0, 1))[0]

    # Layer 0 reads 2 inputs, layer 1 reads 2*3; two directions each.
    expected = 2 * 7 * 4 * (2 * 3 + 9) + 2 * 7 * 4 * (6 * 3 + 9)
    assert count_macs(Bi(), (2, 7)) == expected

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(2, 3, batch_first=True)

        def forward(self, x):
            return self.rnn(x.transpose(1, 2))[0]

    assert count_macs(Plain(), (2, 7)) == 7 * (2 * 3 + 9)


def test_macs_resnet_and_linear_3d():
    net = ResNet1D(2, 3, n_filters=(4,), kernel_sizes=(3,))
    # conv k=3 (same): 10*4*2*3, 1x1 shortcut: 10*4*2, head: 4*3.
    assert count_macs(net, (2, 10)) == 240 + 80 + 12
    grouped = nn.Conv1d(4, 6, 3, groups=2)
    assert count_macs(grouped, (4, 10)) == 8 * 6 * 2 * 3
    # Linear on (1, 2, 10): 2 rows of 10*5.
    assert count_macs(nn.Linear(10, 5), (2, 10)) == 2 * 10 * 5


def test_model_bytes_scales_with_size():
    small = model_bytes(CNN1D(9, 6, widths=(16, 32, 32)))
    big = model_bytes(CNN1D(9, 6))
    assert small >= 4 * 13_366
    assert big >= 4 * 200_902
    assert big > small
    assert isinstance(small, int)


def test_measure_latency_behaviour():
    net = CNN1D(3, 2, widths=(4, 8))
    net.train()
    out = measure_latency(net, (3, 16), batch_size=2, repeats=3, warmup=1)
    assert set(out) == {"median", "p90"}
    assert isinstance(out["median"], float) and out["median"] > 0
    assert out["p90"] >= out["median"] > 0
    assert net.training  # caller's module untouched
    with pytest.raises(ValueError):
        measure_latency(net, (3, 16), repeats=0)


def test_as_module_rules():
    net = nn.Linear(2, 2)
    assert as_module(net) is net
    assert as_module(FakeFitted(net)) is net
    assert as_module(FakeFrozen(FakeFitted(net))) is net
    assert as_module(FakeFrozen(net)) is net
    with pytest.raises(TypeError, match="module_"):
        as_module(object())
    with pytest.raises(TypeError, match="FrozenEstimator"):
        as_module(FakeFrozen(object()))


def test_as_module_with_sklearn_frozen_estimator():
    frozen_mod = pytest.importorskip("sklearn.frozen")
    net = nn.Linear(2, 2)
    assert as_module(frozen_mod.FrozenEstimator(FakeFitted(net))) is net


@pytest.mark.parametrize(
    "wrap", [lambda m: m, FakeFitted, lambda m: FakeFrozen(FakeFitted(m))]
)
def test_compression_report(wrap):
    teacher = CNN1D(9, 6)
    student = CNN1D(9, 6, widths=(16, 32, 32))
    teacher.train()
    rep = compression_report(
        wrap(teacher), wrap(student), (9, 128), latency=True, batch_size=1
    )
    assert isinstance(rep, CompressionReport)
    d = rep.as_dict()
    assert d["teacher"]["params"] == 200_902
    assert d["student"]["params"] == 13_366
    assert d["teacher"]["macs"] == 9_282_304
    assert d["student"]["macs"] == 649_408
    assert d["ratios"]["params"] == pytest.approx(200_902 / 13_366)
    assert d["ratios"]["macs"] == pytest.approx(9_282_304 / 649_408)
    assert d["ratios"]["bytes"] == pytest.approx(
        d["teacher"]["bytes"] / d["student"]["bytes"]
    )
    assert d["teacher"]["latency_s"] > 0 and d["student"]["latency_s"] > 0
    assert d["ratios"]["latency"] > 0
    text = str(rep)
    assert text == rep.to_markdown()
    assert "Parameters" in text and "MACs" in text and "Latency" in text
    assert teacher.training and all(m.training for m in teacher.modules())
    assert student.training


def test_compression_report_without_latency():
    rep = compression_report(
        CNN1D(2, 2, widths=(8,)), CNN1D(2, 2, widths=(4,)), (2, 16), latency=False
    )
    assert "latency" not in rep.ratios
    assert "latency_s" not in rep.teacher
    assert "Latency" not in rep.to_markdown()


def test_count_macs_does_not_touch_caller_module():
    net = CNN1D(9, 6, widths=(4,))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_macs(net, (9, 1))
    assert net.training
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not net._forward_hooks
    assert all(not m._forward_hooks for m in net.modules())
