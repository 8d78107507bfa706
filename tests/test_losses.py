"""Tests for skkd.losses: golden values computed independently, invariances."""

import math

import numpy as np
import pytest
import torch

from skkd.losses import (
    conditional_entropy,
    coral,
    hint_l1,
    hint_mse,
    kd_kl_div,
    mmd,
    vat_loss,
)

S = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
T = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]


def _softmax(row, temperature):
    exps = [math.exp(v / temperature) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _kl_by_hand(s_row, t_row, temperature):
    p = _softmax(t_row, temperature)
    q = _softmax(s_row, temperature)
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_kd_golden_two_samples_three_classes():
    # Written-out probabilities at T=1 for the first row as an explicit check.
    z = math.exp(1) + math.exp(2) + math.exp(0.5)
    q0 = [math.exp(1) / z, math.exp(2) / z, math.exp(0.5) / z]
    z_t = math.exp(2) + 1 + math.exp(1)
    p0 = [math.exp(2) / z_t, 1 / z_t, math.exp(1) / z_t]
    kl0 = sum(p * math.log(p / q) for p, q in zip(p0, q0, strict=True))
    # Second row: uniform teacher.
    z1 = 1 + math.exp(-1) + math.exp(3)
    q1 = [1 / z1, math.exp(-1) / z1, math.exp(3) / z1]
    kl1 = sum((1 / 3) * math.log((1 / 3) / q) for q in q1)
    assert kl0 == pytest.approx(_kl_by_hand(S[0], T[0], 1.0))

    s, t = torch.tensor(S, dtype=torch.float64), torch.tensor(T, dtype=torch.float64)
    none = kd_kl_div(s, t, temperature=1.0, reduction="none")
    np.testing.assert_allclose(none.numpy(), [kl0, kl1], rtol=1e-12)
    mean = kd_kl_div(s, t, temperature=1.0)
    assert float(mean) == pytest.approx((kl0 + kl1) / 2, rel=1e-12)
    total = kd_kl_div(s, t, temperature=1.0, reduction="sum")
    assert float(total) == pytest.approx(kl0 + kl1, rel=1e-12)


@pytest.mark.parametrize("temperature", [0.5, 2.0, 4.0])
def test_kd_temperature_and_t2_scaling(temperature):
    s, t = torch.tensor(S, dtype=torch.float64), torch.tensor(T, dtype=torch.float64)
    expected = [_kl_by_hand(a, b, temperature) for a, b in zip(S, T, strict=True)]
    unscaled = kd_kl_div(s, t, temperature, scale_t2=False, reduction="none")
    np.testing.assert_allclose(unscaled.numpy(), expected, rtol=1e-12)
    scaled = kd_kl_div(s, t, temperature)
    assert float(scaled) == pytest.approx(temperature**2 * sum(expected) / 2, rel=1e-12)


def test_kd_weights():
    s, t = torch.tensor(S, dtype=torch.float64), torch.tensor(T, dtype=torch.float64)
    kl = [_kl_by_hand(a, b, 2.0) for a, b in zip(S, T, strict=True)]
    w = torch.tensor([0.25, 2.0], dtype=torch.float64)
    mean = kd_kl_div(s, t, 2.0, weights=w, scale_t2=False)
    # (1/b) sum_i w_i KL_i, not a weighted average.
    assert float(mean) == pytest.approx((0.25 * kl[0] + 2.0 * kl[1]) / 2, rel=1e-12)
    none = kd_kl_div(s, t, 2.0, weights=w, scale_t2=False, reduction="none")
    np.testing.assert_allclose(none.numpy(), [0.25 * kl[0], 2.0 * kl[1]], rtol=1e-12)


def test_kd_invariances():
    torch.manual_seed(0)
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    base = kd_kl_div(s, t, reduction="none")
    assert (base >= 0).all()
    shift = torch.tensor([[3.0], [-2.0], [0.0], [10.0], [1.0], [-7.0]])
    torch.testing.assert_close(kd_kl_div(s + shift, t, reduction="none"), base)
    torch.testing.assert_close(kd_kl_div(s, t - shift, reduction="none"), base)
    assert float(kd_kl_div(t, t)) == pytest.approx(0.0, abs=1e-7)


def test_kd_numerically_stable_with_large_logits():
    s = torch.tensor([[1000.0, 0.0, -1000.0]])
    t = torch.tensor([[0.0, 1000.0, -1000.0]])
    out = kd_kl_div(s, t, temperature=1.0)
    assert torch.isfinite(out)
    assert float(out) == pytest.approx(1000.0, rel=1e-5)


def test_kd_gradient_flows_to_student():
    s = torch.randn(3, 5, requires_grad=True)
    kd_kl_div(s, torch.randn(3, 5)).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_kd_validation():
    with pytest.raises(ValueError, match="same shape"):
        kd_kl_div(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="same shape"):
        kd_kl_div(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="2-D"):
        kd_kl_div(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        kd_kl_div(torch.zeros(2, 3), torch.zeros(2, 3), reduction="avg")
    with pytest.raises(ValueError, match="temperature"):
        kd_kl_div(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0)
    with pytest.raises(ValueError, match="weights"):
        kd_kl_div(torch.zeros(2, 3), torch.zeros(2, 3), weights=torch.ones(3))


def test_hint_losses_golden():
    s = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    t = torch.tensor([[0.0, 4.0], [3.0, 1.0]])
    # |diffs| = 1, 2, 0, 2 ; squares = 1, 4, 0, 4
    assert float(hint_l1(s, t)) == pytest.approx(5 / 4)
    assert float(hint_mse(s, t)) == pytest.approx(9 / 4)
    assert float(hint_mse(s, s)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        hint_mse(s, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="same shape"):
        hint_l1(s, torch.zeros(3, 2))


def test_coral_golden():
    xs = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]])
    xt = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])

    def cov(a):
        c = a - a.mean(axis=0)
        return c.T @ c / (len(a) - 1)

    expected = ((cov(xs) - cov(xt)) ** 2).sum() / (4 * 2**2)
    got = coral(torch.tensor(xs), torch.tensor(xt))
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_coral_properties():
    torch.manual_seed(0)
    x = torch.randn(16, 5)
    # Covariance ignores the mean, so a pure shift has zero CORAL loss.
    assert float(coral(x, x + 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(coral(x, 3.0 * x)) > 0
    assert torch.isfinite(coral(x[:1], x))
    with pytest.raises(ValueError, match="feature dimension"):
        coral(x, torch.randn(16, 4))


def test_mmd_properties():
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    y = torch.randn(32, 4)
    assert float(mmd(x, x)) == pytest.approx(0.0, abs=1e-6)
    same = float(mmd(x, y))
    shifted = float(mmd(x, y + 2.0))
    assert shifted > same
    assert shifted > 0
    # Unequal batch sizes are supported.
    assert torch.isfinite(mmd(x, y[:10]))
    with pytest.raises(ValueError, match="feature dimension"):
        mmd(x, torch.randn(32, 3))


def test_mmd_golden_single_bandwidth():
    # kernel_num=1 gives one Gaussian with sigma = mean off-diagonal squared distance.
    x = np.array([[0.0], [1.0]])
    y = np.array([[3.0]])
    pts = np.concatenate([x, y])
    d2 = (pts - pts.T) ** 2
    sigma = d2.sum() / (3 * 3 - 3)
    k = np.exp(-d2 / sigma)
    expected = k[:2, :2].mean() + k[2:, 2:].mean() - 2 * k[:2, 2:].mean()
    got = mmd(torch.tensor(x), torch.tensor(y), kernel_num=1)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_mmd_gradient_finite_for_identical_points():
    x = torch.zeros(4, 3, requires_grad=True)
    out = mmd(x, torch.ones(4, 3))
    out.backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------- conditional entropy, VAT
def test_conditional_entropy_golden():
    # row 1: p = (1/4, 3/4); row 2: p = (1/2, 1/2)
    logits = torch.tensor([[0.0, math.log(3.0)], [5.0, 5.0]], dtype=torch.float64)
    h1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # = log 4 - (3/4) log 3
    h2 = math.log(2.0)
    assert h1 == pytest.approx(math.log(4) - 0.75 * math.log(3))
    got = conditional_entropy(logits)
    assert float(got) == pytest.approx((h1 + h2) / 2, rel=1e-12)


def test_conditional_entropy_invariances_and_bounds():
    torch.manual_seed(0)
    z = torch.randn(8, 5, dtype=torch.float64)
    base = conditional_entropy(z)
    shift = torch.randn(8, 1, dtype=torch.float64) * 10
    torch.testing.assert_close(conditional_entropy(z + shift), base)
    torch.testing.assert_close(conditional_entropy(z[:, [3, 0, 4, 1, 2]]), base)
    assert 0 < float(base) < math.log(5)
    assert float(conditional_entropy(torch.zeros(2, 5))) == pytest.approx(math.log(5))
    assert float(conditional_entropy(torch.tensor([[1e4, 0.0, -1e4]]))) == 0.0
    z.requires_grad_()
    conditional_entropy(z).backward()
    assert torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="2-D"):
        conditional_entropy(torch.zeros(3))


class Recording:
    """A linear classifier on the flattened series that records its inputs."""

    def __init__(self, W):
        self.W = W
        self.inputs = []

    def __call__(self, x):
        self.inputs.append(x.detach())
        return x.flatten(start_dim=1) @ self.W.T


# two classes: the KL's Hessian in the input is rank one, along v = w_0 - w_1,
# so a single power iteration finds the adversarial direction exactly
W2 = torch.tensor(
    [[1.0, 2.0, 0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 2.0, 0.0, 0.5, 0.0]],
    dtype=torch.float64,
)
V = W2[0] - W2[1]  # (1, 2, -2, 0, 0, 0), |v| = 3


def test_vat_golden_two_class_linear_model():
    # at x = 0 the prediction is (1/2, 1/2); r = +-eps v / |v| moves the logit
    # difference by a = +-eps |v|, and KL((1/2, 1/2) || softmax(a, 0)) is even in a
    eps = 1.0
    a = eps * 3.0
    expected = -math.log(2) + 0.5 * (math.log1p(math.exp(-a)) + math.log1p(math.exp(a)))
    assert expected == pytest.approx(0.855440, abs=1e-6)
    model = Recording(W2)
    X = torch.zeros(2, 2, 3, dtype=torch.float64)  # 2 series, 2 channels x 3 steps
    got = vat_loss(model, X, eps=eps, generator=torch.Generator().manual_seed(0))
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # calls: logits (no gradient), one power iteration, the adversarial point
    assert len(model.inputs) == 3
    r = (model.inputs[-1] - X).flatten(start_dim=1)
    cos = (r @ V) / (r.norm(dim=1) * V.norm())
    np.testing.assert_allclose(cos.abs().numpy(), [1.0, 1.0], rtol=1e-9)


def test_vat_direction_is_the_top_eigenvector_after_power_iterations():
    # three classes at x = 0: p uniform, the KL's Hessian is W^T H W with
    # H = (I - 11^T / K) / K; enough power iterations find its top eigenvector
    W = torch.tensor(
        [[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 1.0], [-1.0, 0.5, 0.0, 3.0]],
        dtype=torch.float64,
    )
    K = 3
    H = (np.eye(K) - np.ones((K, K)) / K) / K
    values, vectors = np.linalg.eigh(W.numpy().T @ H @ W.numpy())
    top = vectors[:, -1]
    model = Recording(W)
    X = torch.zeros(3, 1, 4, dtype=torch.float64)
    vat_loss(model, X, eps=0.5, n_power=40, generator=torch.Generator().manual_seed(1))
    r = (model.inputs[-1] - X).flatten(start_dim=1).numpy()
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 0.5, rtol=1e-9)
    np.testing.assert_allclose(np.abs(r @ top) / 0.5, 1.0, rtol=1e-6)


def test_vat_perturbation_has_norm_eps_per_sample():
    torch.manual_seed(0)
    model = Recording(torch.randn(3, 8, dtype=torch.float64))
    scale = torch.tensor([1.0, 3.0, 0.3, 0.1, 2.0], dtype=torch.float64)
    X = torch.randn(5, 2, 4, dtype=torch.float64) * scale.view(5, 1, 1)
    vat_loss(model, X, eps=2.0)
    r = model.inputs[-1] - X
    np.testing.assert_allclose(r.flatten(start_dim=1).norm(dim=1).numpy(), 2.0)


def _constant_connected(x):
    # depends on x in the graph, not in value
    return x.flatten(start_dim=1)[:, :3] * 0.0 + torch.tensor([1.0, 2.0, 0.0])


def _constant_detached(x):
    return torch.tensor([[1.0, -1.0]]).expand(len(x), 2)


def test_vat_is_zero_for_a_model_that_ignores_its_input():
    X = torch.randn(4, 2, 5)
    assert float(vat_loss(_constant_connected, X)) == 0.0
    assert float(vat_loss(_constant_detached, X)) == 0.0


def test_vat_gradient_reaches_the_model_but_not_the_given_logits():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 3))
    X = torch.randn(6, 2, 5)
    logits = net(X)
    loss = vat_loss(net, X, logits, generator=torch.Generator().manual_seed(3))
    assert loss.item() > 0
    loss.backward()
    # p(x) is a constant: the gradient is that of the loss with p(x) computed
    # apart, without gradient (logits=None)
    grad = net[1].weight.grad.clone()
    assert grad.abs().sum() > 0
    net.zero_grad()
    vat_loss(net, X, None, generator=torch.Generator().manual_seed(3)).backward()
    torch.testing.assert_close(net[1].weight.grad, grad)


def test_vat_grows_with_the_radius_and_is_reproducible():
    model = Recording(W2)
    X = torch.zeros(1, 2, 3, dtype=torch.float64)
    values = [float(vat_loss(model, X, eps=e)) for e in (0.1, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] > 0
    torch.manual_seed(0)
    X = torch.randn(4, 2, 3, dtype=torch.float64)
    runs = [
        vat_loss(model, X, generator=torch.Generator().manual_seed(7)) for _ in range(2)
    ]
    assert float(runs[0]) == float(runs[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"xi": 0.0}, "xi must be > 0"),
        ({"eps": -1.0}, "eps must be > 0"),
        ({"n_power": 0}, "n_power must be an integer >= 1"),
        ({"n_power": 1.5}, "n_power must be an integer >= 1"),
    ],
)
def test_vat_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vat_loss(torch.nn.Linear(3, 2), torch.zeros(2, 3), **kwargs)


def test_vat_batch_mismatch():
    with pytest.raises(ValueError, match="batch size"):
        vat_loss(torch.nn.Linear(3, 2), torch.zeros(2, 3), torch.zeros(3, 2))
