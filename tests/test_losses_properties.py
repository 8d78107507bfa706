"""Property-based tests of the loss functions (issue #8, item 7).

For random inputs of every scale: non-negativity where the loss is a
divergence or a distance, zero at equality, the symmetries and invariances
stated in each loss's docstring (and paper), and finite outputs for finite
inputs of extreme magnitude.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skkd import losses

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)
#: magnitudes of the inputs: tiny, ordinary, large, extreme
SCALES = st.sampled_from([1e-6, 1.0, 1e3, 1e6])
UNIT = st.floats(-1.0, 1.0, allow_nan=False, width=32)


def tensors(shape_strategy):
    """Float32 tensors with entries in [-1, 1] (scaled by the tests)."""
    return shape_strategy.flatmap(
        lambda shape: arrays(np.float32, shape, elements=UNIT)
    ).map(torch.from_numpy)


BATCH = st.integers(2, 6)
FEATURES = st.tuples(BATCH, st.integers(1, 5))
SEQUENCES = st.tuples(BATCH, st.integers(3, 6), st.integers(1, 4))


def pair(shape_strategy):
    """Two tensors of one shape."""
    return shape_strategy.flatmap(
        lambda shape: st.tuples(
            arrays(np.float32, shape, elements=UNIT),
            arrays(np.float32, shape, elements=UNIT),
        )
    ).map(lambda ab: (torch.from_numpy(ab[0]), torch.from_numpy(ab[1])))


def close_to_zero(value, scale=1.0):
    return abs(float(value)) <= 1e-5 * max(1.0, scale)


def finite(value):
    return bool(torch.isfinite(torch.as_tensor(value)).all())


# ------------------------------------------------------------ logit losses
@SETTINGS
@given(pair(st.tuples(BATCH, st.integers(2, 5))), SCALES, st.floats(0.5, 8.0))
def test_kd_kl_div(ab, scale, temperature):
    s, t = ab[0] * scale, ab[1] * scale
    value = losses.kd_kl_div(s, t, temperature)
    assert finite(value) and float(value) >= -1e-6 * temperature**2
    assert close_to_zero(losses.kd_kl_div(t, t, temperature))
    # softmax is invariant to adding a constant to each sample's logits
    shifted = losses.kd_kl_div(s + 3.0, t - 2.0, temperature)
    assert float(shifted) == pytest.approx(float(value), rel=1e-3, abs=1e-4)


@SETTINGS
@given(pair(st.tuples(BATCH, st.integers(2, 5))), SCALES)
def test_dkd(ab, scale):
    s, t = ab[0] * scale, ab[1] * scale
    target = torch.arange(len(s)) % s.shape[1]
    value = losses.dkd(s, t, target)
    assert finite(value) and float(value) >= -1e-5
    assert close_to_zero(losses.dkd(t, t, target), 16.0)


@SETTINGS
@given(pair(FEATURES), st.sampled_from([1e-6, 1.0, 1e3, 1e6, 1e30]))
def test_adversarial_bce(ab, scale):
    value = losses.adversarial_bce(ab[0] * scale, ab[1] * scale)
    assert finite(value) and float(value) >= 0


# ----------------------------------------------------------- feature losses
@SETTINGS
@given(pair(FEATURES), SCALES)
def test_hint_losses(ab, scale):
    a, b = ab[0] * scale, ab[1] * scale
    for loss in (losses.hint_l1, losses.hint_mse):
        value = loss(a, b)
        assert finite(value) and float(value) >= 0
        assert float(loss(b, a)) == float(value)  # symmetric
        assert float(loss(a, a)) == 0.0


@SETTINGS
@given(pair(FEATURES), SCALES)
def test_coral(ab, scale):
    a, b = ab[0] * scale, ab[1] * scale
    value = losses.coral(a, b)
    assert finite(value) and float(value) >= 0
    assert float(losses.coral(b, a)) == pytest.approx(float(value), rel=1e-5)
    assert float(losses.coral(a, a)) == 0.0
    # covariances ignore a shift of either domain
    moved = losses.coral(a + 0.5 * scale, b)
    assert float(moved) == pytest.approx(float(value), rel=1e-2, abs=1e-6)


@SETTINGS
@given(pair(FEATURES), SCALES)
def test_mmd(ab, scale):
    a, b = ab[0] * scale, ab[1] * scale
    value = losses.mmd(a, b)
    assert finite(value) and float(value) >= -1e-5
    assert float(losses.mmd(b, a)) == pytest.approx(float(value), abs=1e-5)
    assert close_to_zero(losses.mmd(a, a))


@SETTINGS
@given(pair(FEATURES), SCALES, st.floats(0.1, 10.0))
def test_rkd_losses(ab, scale, factor):
    s, t = ab[0] * scale, ab[1] * scale
    for loss in (losses.rkd_distance, losses.rkd_angle):
        value = loss(s, t)
        assert finite(value) and float(value) >= 0
        assert close_to_zero(loss(t, t))
        # relations only: a scaled and shifted student has the same loss (for
        # distances well above the 1e-12 guard of the normalisation)
        if scale >= 1.0:
            same = loss(s * factor + 1.0 * scale, t)
            assert float(same) == pytest.approx(float(value), rel=1e-2, abs=1e-4)


# ---------------------------------------------------------- sequence losses
@SETTINGS
@given(pair(SEQUENCES), SCALES, st.floats(0.1, 10.0))
def test_memory_discrepancy(ab, scale, factor):
    s, t = ab[0] * scale, ab[1] * scale
    n = s.shape[1]
    starts, ends = torch.arange(n - 1), torch.arange(1, n)
    value = losses.memory_discrepancy(s, t, starts, ends)
    assert finite(value) and float(value) >= 0
    assert float(losses.memory_discrepancy(t, t, starts, ends)) == 0.0
    r = losses.relative_memory_change(s, starts, ends)
    assert finite(r) and bool((r >= 0).all())
    # r is unchanged by scaling the hidden states, where eps is negligible
    # (h(s) = 0 makes r = |h(e)| / eps, which scales)
    away = s[:, starts, :].norm(dim=-1) > 1e-3
    scaled = losses.relative_memory_change(s * factor, starts, ends)
    torch.testing.assert_close(scaled[away], r[away], rtol=1e-3, atol=1e-5)


@SETTINGS
@given(pair(SEQUENCES), SCALES)
def test_attention_transfer(ab, scale):
    s, t = ab[0] * scale, ab[1] * scale
    value = losses.attention_transfer(s, t)
    assert finite(value) and float(value) >= 0
    assert close_to_zero(losses.attention_transfer(t, t))
