"""Tests for skkd.nn backbones and discriminators."""

import pytest
import torch
from torch import nn

from skkd.nn import (
    CNN1D,
    DomainDiscriminator,
    GradientReversal,
    GRUClassifier,
    LSTMClassifier,
    ResNet1D,
    grad_reverse,
)

LENGTHS = [1, 2, 7, 128]


def _small(cls, n_channels, n_classes):
    # Small widths keep the whole file fast on 2 CPU cores.
    if cls is CNN1D:
        return CNN1D(n_channels, n_classes, widths=(8, 16, 16))
    if cls is ResNet1D:
        return ResNet1D(n_channels, n_classes, n_filters=(8, 16, 16))
    return cls(n_channels, n_classes, hidden_size=12)


BACKBONES = [CNN1D, LSTMClassifier, GRUClassifier, ResNet1D]


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_cnn1d_parameter_counts_uci_har():
    assert n_params(CNN1D(9, 6)) == 200_902
    assert n_params(CNN1D(9, 6, widths=(16, 32, 32))) == 13_366


@pytest.mark.parametrize("cls", BACKBONES)
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize(("n_channels", "n_classes"), [(1, 2), (3, 5)])
@pytest.mark.parametrize("train", [True, False])
def test_backbone_shapes(cls, length, n_channels, n_classes, train):
    torch.manual_seed(0)
    net = _small(cls, n_channels, n_classes).train(train)
    x = torch.randn(3, n_channels, length)
    assert net(x).shape == (3, n_classes)
    assert net.forward_features(x).shape == (3, net.n_features)
    assert isinstance(net.head, nn.Linear)
    assert net.head.in_features == net.n_features
    assert net.head.out_features == n_classes


@pytest.mark.parametrize("cls", BACKBONES)
def test_forward_is_head_of_features(cls):
    torch.manual_seed(0)
    net = _small(cls, 4, 3).eval()
    x = torch.randn(5, 4, 20)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.head(net.forward_features(x)))


@pytest.mark.parametrize("cls", BACKBONES)
def test_head_is_replaceable(cls):
    net = _small(cls, 2, 3).eval()
    net.head = nn.Linear(net.n_features, 7)
    assert net(torch.randn(2, 2, 9)).shape == (2, 7)


@pytest.mark.parametrize("cls", BACKBONES)
def test_deterministic_given_seed(cls):
    torch.manual_seed(123)
    a = _small(cls, 2, 3)
    torch.manual_seed(123)
    b = _small(cls, 2, 3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert repr(a) == repr(b)


@pytest.mark.parametrize("widths", [(4,), (4, 6), (4, 6, 8, 10)])
def test_cnn1d_any_number_of_blocks(widths):
    net = CNN1D(2, 3, widths=widths).eval()
    assert len(net.features) == len(widths)
    assert net.n_features == widths[-1]
    assert net(torch.randn(2, 2, 7)).shape == (2, 3)


def test_cnn1d_block_structure():
    net = CNN1D(9, 6, kernel_size=7, stride=2, dropout=0.2)
    first = net.features[0]
    conv = first[0]
    assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == (
        (7,),
        (2,),
        (3,),
        None,
    )
    assert isinstance(first[-1], nn.Dropout) and first[-1].p == 0.2
    later = net.features[1][0]
    assert (later.kernel_size, later.padding) == ((8,), (4,))
    with pytest.raises(ValueError):
        CNN1D(9, 6, widths=())


@pytest.mark.parametrize("cls", [LSTMClassifier, GRUClassifier])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_recurrent_sequence_and_last_step(cls, num_layers):
    torch.manual_seed(0)
    net = cls(3, 4, hidden_size=10, num_layers=num_layers, dropout=0.1).eval()
    x = torch.randn(2, 3, 11)
    seq = net.forward_sequence(x)
    assert seq.shape == (2, 11, 10)
    torch.testing.assert_close(net.forward_features(x), seq[:, -1, :])
    assert net.n_features == 10


def test_recurrent_cell_types():
    assert isinstance(LSTMClassifier(2, 2).rnn, nn.LSTM)
    assert isinstance(GRUClassifier(2, 2).rnn, nn.GRU)
    assert GRUClassifier(2, 2).rnn.batch_first


def test_resnet_shortcuts():
    net = ResNet1D(3, 2, n_filters=(8, 8, 16))
    blocks = list(net.features)
    assert isinstance(blocks[0].shortcut, nn.Sequential)  # 3 -> 8
    assert isinstance(blocks[1].shortcut, nn.Identity)  # 8 -> 8
    assert isinstance(blocks[2].shortcut, nn.Sequential)  # 8 -> 16
    kernels = [m.kernel_size[0] for m in blocks[0].body if isinstance(m, nn.Conv1d)]
    assert kernels == [8, 5, 3]


def test_grad_reverse_forward_identity_backward_negated():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    upstream = torch.randn(4, 3)
    (grad,) = torch.autograd.grad(y, x, upstream)
    torch.testing.assert_close(grad, -0.7 * upstream)


def test_grad_reverse_gradcheck():
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    # Reversal with alpha=-1 is the identity Jacobian, which gradcheck can verify
    # numerically; other alphas intentionally disagree with the forward.
    assert torch.autograd.gradcheck(lambda t: grad_reverse(t, -1.0), (x,))


def test_gradient_reversal_module_alpha_is_settable():
    grl = GradientReversal(alpha=1.0)
    x = torch.ones(2, requires_grad=True)
    grl.alpha = 0.25
    grl(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((2,), -0.25))
    assert "alpha=0.25" in repr(grl)


@pytest.mark.parametrize("n_domains", [1, 2, 3])
def test_domain_discriminator_shapes(n_domains):
    disc = DomainDiscriminator(n_features=16, n_domains=n_domains, hidden=8)
    assert disc(torch.randn(5, 16)).shape == (5, n_domains)
    linears = [m for m in disc.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (16, 8),
        (8, 8),
        (8, n_domains),
    ]


def test_domain_discriminator_grl_flag_reverses_gradient():
    torch.manual_seed(0)
    with_grl = DomainDiscriminator(4, n_domains=1)
    without = DomainDiscriminator(4, n_domains=1, grl=False)
    without.load_state_dict(with_grl.state_dict())
    assert isinstance(with_grl.grl, GradientReversal)
    assert without.grl is None
    with_grl.grl.alpha = 0.5
    x1 = torch.randn(3, 4, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    out1, out2 = with_grl(x1), without(x2)
    torch.testing.assert_close(out1, out2)
    out1.sum().backward()
    out2.sum().backward()
    torch.testing.assert_close(x1.grad, -0.5 * x2.grad)


@pytest.mark.parametrize("cls", [LSTMClassifier, GRUClassifier])
def test_recurrent_init_orthogonal_with_memory_gate_bias(cls):
    torch.manual_seed(0)
    h = 6
    net = cls(3, 2, hidden_size=h, num_layers=2, forget_bias=1.0)
    for name, p in net.rnn.named_parameters():
        if name.startswith("weight_hh"):
            for block in p.detach().split(h):
                torch.testing.assert_close(block @ block.T, torch.eye(h))
        elif name.startswith("bias_ih"):
            # LSTM: input, forget, cell, output; GRU: reset, update, new
            expected = torch.zeros_like(p)
            expected[h : 2 * h] = 1.0
            torch.testing.assert_close(p.detach(), expected)
        elif name.startswith("bias_hh"):
            assert not p.detach().any()
    plain = cls(3, 2, hidden_size=h, init="pytorch")
    assert plain.rnn.bias_ih_l0.detach().abs().sum() > 0
    with pytest.raises(ValueError, match="init must be one of"):
        cls(3, 2, init="xavier")
