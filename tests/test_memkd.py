"""MemKD: golden values of the memory loss and the estimator's behaviour."""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from skkd import TimeSeriesClassifier
from skkd.distillers.memkd import MemKDClassifier
from skkd.losses import memory_discrepancy, memory_pairs, relative_memory_change
from skkd.nn import CNN1D, GRUClassifier, LSTMClassifier

torch.set_num_threads(1)

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}


def _data(n=24, channels=1, length=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, channels, length)).astype(np.float32)
    y = (X[:, 0, : length // 2].mean(axis=1) > 0).astype(int)
    y[:2] = [0, 1]
    return X, y


def _orthogonal(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q


# ------------------------------------------------------------- golden values
def test_relative_memory_change_by_hand():
    # h(0) = (3, 4), h(1) = (0, 4), h(2) = (6, 8)
    h = torch.tensor([[[3.0, 4.0], [0.0, 4.0], [6.0, 8.0]]], dtype=torch.float64)
    r = relative_memory_change(
        h, torch.tensor([0, 1, 0, 1]), torch.tensor([1, 2, 2, 1]), eps=0.0
    )
    # |(-3, 0)| / 5 = 0.6; |(6, 4)| / 4 = sqrt(52)/4; |(3, 4)| / 5 = 1; r(1,1) = 0
    expected = [0.6, math.sqrt(52) / 4, 1.0, 0.0]
    assert r.shape == (1, 4)
    assert r[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_memory_discrepancy_by_hand():
    # teacher r(0,1) = 0.6 (above); student h(0) = (1,), h(1) = (3,) -> r = 2
    h_t = torch.tensor([[[3.0, 4.0], [0.0, 4.0], [6.0, 8.0]]], dtype=torch.float64)
    h_s = torch.tensor([[[1.0], [3.0], [3.0]]], dtype=torch.float64)
    s, e = torch.tensor([0, 1]), torch.tensor([1, 2])
    # pair (0,1): |2 - 0.6| = 1.4 > 1 -> 1.4 - 0.5 = 0.9
    # pair (1,2): student 0, teacher sqrt(52)/4 = 1.8028 -> 1.3028
    expected = (0.9 + (math.sqrt(52) / 4 - 0.5)) / 2
    loss = memory_discrepancy(h_s, h_t, s, e, eps=0.0)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_zero_loss_for_equal_scaled_and_rotated_states():
    gen = torch.Generator().manual_seed(0)
    h_t = torch.randn(4, 10, 6, generator=gen, dtype=torch.float64)
    (s1, e1), (sz, ez) = memory_pairs(10, 50, generator=gen)
    q = _orthogonal(6)
    for h_s in (h_t.clone(), 2.5 * h_t, 0.3 * h_t @ q.T):
        for s, e in ((s1, e1), (sz, ez)):
            assert memory_discrepancy(h_s, h_t, s, e, eps=0.0).item() < 1e-20
    # with the default eps the invariance holds up to eps
    assert memory_discrepancy(7.0 * h_t @ q, h_t, s1, e1).item() < 1e-14


def test_different_widths_without_projector():
    gen = torch.Generator().manual_seed(1)
    h_t = torch.randn(3, 8, 100, generator=gen)
    h_s = torch.randn(3, 8, 8, generator=gen, requires_grad=True)
    (s, e), _ = memory_pairs(8, 0)
    loss = memory_discrepancy(h_s, h_t, s, e)
    loss.backward()
    assert loss.item() > 0 and h_s.grad is not None


def test_zero_state_gives_finite_loss_and_gradient():
    h_t = torch.zeros(2, 5, 4)
    h_s = torch.zeros(2, 5, 3, requires_grad=True)
    (s, e), (sz, ez) = memory_pairs(5, 20, generator=torch.Generator().manual_seed(0))
    loss = memory_discrepancy(h_s, h_t, s, e) + memory_discrepancy(h_s, h_t, sz, ez)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h_s.grad).all()


def test_teacher_is_detached_in_the_loss():
    h_t = torch.randn(2, 6, 5, requires_grad=True)
    h_s = torch.randn(2, 6, 3, requires_grad=True)
    (s, e), _ = memory_pairs(6, 0)
    memory_discrepancy(h_s, h_t, s, e).backward()
    assert h_t.grad is None and h_s.grad is not None


def test_pairs_in_range_and_reproducible():
    (s1, e1), (sz, ez) = memory_pairs(
        7, 500, generator=torch.Generator().manual_seed(3)
    )
    assert s1.tolist() == list(range(6)) and e1.tolist() == list(range(1, 7))
    assert (sz >= 0).all() and (sz <= ez).all() and (ez < 6).all()  # [0, T-1)
    again = memory_pairs(7, 500, generator=torch.Generator().manual_seed(3))[1]
    assert torch.equal(again[0], sz) and torch.equal(again[1], ez)


def test_short_series_rejected_by_pairs():
    with pytest.raises(ValueError, match="at least 3 time steps"):
        memory_pairs(2)


# --------------------------------------------------------------- estimator
def _teacher(X, y, module=LSTMClassifier, **kw):
    params = {"module__hidden_size": 16, **kw}
    return TimeSeriesClassifier(module, **params, **FAST).fit(X, y)


@pytest.mark.parametrize("teacher_cls", [LSTMClassifier, GRUClassifier])
@pytest.mark.parametrize("student_cls", [LSTMClassifier, GRUClassifier])
@pytest.mark.parametrize("channels", [1, 3])
def test_fits_lstm_and_gru_uni_and_multivariate(teacher_cls, student_cls, channels):
    X, y = _data(channels=channels)
    teacher = _teacher(X, y, module=teacher_cls)
    student = MemKDClassifier(
        FrozenEstimator(teacher), module=student_cls, module__hidden_size=4, **FAST
    ).fit(X, y)
    assert student.predict(X).shape == (len(X),)
    assert student.teacher_hidden_size_ == 16
    last = student.history_[-1]
    assert np.isfinite(last["train_mem_consecutive"]) and "train_mem_random" in last


def test_zero_memory_loss_when_student_equals_teacher():
    X, y = _data()
    net = LSTMClassifier(1, 2, hidden_size=5)
    student = MemKDClassifier(net, module=net, max_epochs=0).fit(X, y)
    Xt = torch.from_numpy(X)
    terms = student.compute_losses(Xt, torch.from_numpy(y), None)
    assert terms["mem_consecutive"].item() == pytest.approx(0.0, abs=1e-12)
    assert terms["mem_random"].item() == pytest.approx(0.0, abs=1e-12)
    assert terms["loss"].item() == pytest.approx(terms["ce"].item())


def test_gradient_reaches_every_student_parameter_and_not_the_teacher():
    X, y = _data()
    teacher = LSTMClassifier(1, 2, hidden_size=12, num_layers=2)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = MemKDClassifier(
        teacher, module__hidden_size=4, memory_weight=1.0, max_epochs=0
    ).fit(X, y)
    terms = student.compute_losses(torch.from_numpy(X), torch.from_numpy(y), None)
    (terms["mem_consecutive"] + terms["mem_random"]).backward()
    for name, p in student.module_.rnn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in student.teacher_module_.parameters())
    assert all(not p.requires_grad for p in student.teacher_module_.parameters())
    student.set_params(max_epochs=2).fit(X, y)
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_cache_gives_the_same_fit_as_the_plain_teacher():
    X, y = _data()
    teacher = LSTMClassifier(1, 2, hidden_size=8)
    kw = {"module__hidden_size": 4, "max_epochs": 2, "random_state": 0}
    a = MemKDClassifier(teacher, cache_teacher=True, **kw).fit(X, y)
    b = MemKDClassifier(teacher, cache_teacher=False, **kw).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)
    assert not hasattr(a, "_session")


def test_transfer_set_adds_memory_terms():
    X, y = _data()
    X_tgt, _ = _data(n=10, seed=5)
    student = MemKDClassifier(
        LSTMClassifier(1, 2, hidden_size=8), module__hidden_size=4, **FAST
    ).fit(X, y, X_tgt)
    assert "train_mem_consecutive_tgt" in student.history_[-1]


def test_optional_hinton_term_and_pair_variants():
    X, y = _data()
    teacher = LSTMClassifier(1, 2, hidden_size=8)
    student = MemKDClassifier(
        teacher, module__hidden_size=4, kd_weight=0.5, pairs="random", **FAST
    ).fit(X, y)
    last = student.history_[-1]
    assert "train_kd" in last and "train_mem_random" in last
    assert "train_mem_consecutive" not in last


def test_curriculum_moves_through_the_pair_sets_by_epoch():
    X, y = _data()
    student = MemKDClassifier(
        LSTMClassifier(1, 2, hidden_size=8),
        module__hidden_size=4,
        pairs="curriculum",
        curriculum_epochs=(1, 2),
        **{**FAST, "max_epochs": 3},
    ).fit(X, y)
    used = [
        sorted(k for k in row if k.startswith("train_mem_")) for row in student.history_
    ]
    assert used == [
        ["train_mem_consecutive"],
        ["train_mem_stride2"],
        ["train_mem_random"],
    ]


def test_stride2_slices_equal_the_gathered_pairs():
    X, y = _data(length=9)
    teacher = LSTMClassifier(1, 2, hidden_size=8)
    student = MemKDClassifier(
        teacher, module__hidden_size=4, pairs="stride2", max_epochs=0
    ).fit(X, y)
    (starts, ends) = student.draw_pairs(9)["stride2"]
    assert starts.tolist() == list(range(7)) and (ends - starts).eq(2).all()
    Xt = torch.from_numpy(X)
    terms = student.compute_losses(Xt, torch.from_numpy(y), None)
    expected = memory_discrepancy(
        student.module_.forward_sequence(Xt),
        student.teacher_module_.forward_sequence(Xt),
        starts,
        ends,
    )
    assert set(terms) >= {"mem_stride2"} and "mem_consecutive" not in terms
    assert terms["mem_stride2"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_sigmoid_mix_warms_up_on_consecutive_pairs_then_shifts_to_random():
    est = MemKDClassifier(pairs="sigmoid", curriculum_epochs=(10, 30))
    assert est.pair_weights(1) == est.pair_weights(10) == {"consecutive": 1.0}
    w = [est.pair_weights(e)["random"] for e in range(11, 60)]
    assert (np.diff(w) > 0).all()
    assert w[0] < 0.02 and w[19] > 0.99 and est.pair_weights(20)["random"] == 0.5
    assert all(
        sum(est.pair_weights(e).values()) == pytest.approx(1.0) for e in range(1, 60)
    )


def test_clone_keeps_teacher_and_reproducible():
    X, y = _data()
    teacher = _teacher(X, y)
    student = MemKDClassifier(FrozenEstimator(teacher), module__hidden_size=4, **FAST)
    a = clone(student).fit(X, y).predict_proba(X)
    b = clone(student).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------- bad input
def test_non_recurrent_student_or_teacher_names_supported_backbones():
    X, y = _data()
    with pytest.raises(TypeError, match="LSTMClassifier or skkd.nn.GRUClassifier"):
        MemKDClassifier(LSTMClassifier(1, 2), module=CNN1D, **FAST).fit(X, y)
    with pytest.raises(TypeError, match="teacher CNN1D has no forward_sequence"):
        MemKDClassifier(CNN1D(1, 2, widths=(4,)), **FAST).fit(X, y)


@pytest.mark.parametrize("length", [1, 2])
def test_too_short_series_rejected(length):
    X, y = _data(length=4)
    X = X[:, :, :length]
    with pytest.raises(ValueError, match="at least 3 time steps"):
        MemKDClassifier(LSTMClassifier(1, 2), **FAST).fit(X, y)


def test_variable_length_rejected_with_padding_hint():
    X, y = _data(n=4)
    ragged = [X[0, 0], X[1, 0, :8], X[2, 0], X[3, 0, :10]]
    with pytest.raises(ValueError, match="different lengths.*Pad or resample"):
        MemKDClassifier(LSTMClassifier(1, 2), **FAST).fit(ragged, [0, 1, 0, 1])
    padded = X.copy()
    padded[1, :, 8:] = np.nan
    with pytest.raises(ValueError, match="padded with NaN.*Pad or resample"):
        MemKDClassifier(LSTMClassifier(1, 2), **FAST).fit(padded, y[:4])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pairs": "all"}, "pairs must be one of"),
        ({"memory_weight": -1}, "memory_weight must be >= 0"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"n_pairs": 0}, "n_pairs must be an int >= 1"),
        ({"pairs": "curriculum", "curriculum_epochs": (5, 5)}, "0 <= first < second"),
        ({"pairs": "sigmoid", "curriculum_epochs": 5}, "two epochs"),
    ],
)
def test_invalid_hyperparameters(params, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        MemKDClassifier(LSTMClassifier(1, 2), **params, **FAST).fit(X, y)


def test_parameter_ratio_of_the_500x_point():
    from skkd.compression import count_parameters

    teacher = LSTMClassifier(1, 2, hidden_size=100, num_layers=3)
    student = LSTMClassifier(1, 2, hidden_size=8)
    assert count_parameters(teacher) == 203002
    assert count_parameters(student) == 370
    assert 500 <= count_parameters(teacher) / count_parameters(student) <= 560


def test_regular_object_arrays_are_not_mistaken_for_variable_length():
    X, y = _data()
    student = MemKDClassifier(LSTMClassifier(1, 2, hidden_size=4), **FAST)
    student.fit(X.astype(object), y)  # numbers stored as objects: one length
    assert student.predict(X).shape == (len(X),)


def test_memory_matrix_equals_the_pairwise_definition():
    from skkd.distillers.memkd import memory_matrix

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(70, 9, 5, generator=gen, dtype=torch.float64)  # > one chunk
    h[0, 2] = 0.0  # h(s) = 0 stays finite
    R = memory_matrix(h)
    starts, ends = torch.triu_indices(9, 9)
    expected = relative_memory_change(h, starts, ends)
    torch.testing.assert_close(R[:, starts, ends], expected)
    assert torch.isfinite(R).all()


def test_cached_fit_reads_the_teacher_memory_matrix(monkeypatch):
    # the per-fit cache holds r_T of every pair instead of the hidden sequence
    X, y = _data()
    seen = {}
    original = MemKDClassifier.teacher_memory_change

    def spy(self, out, starts, ends):
        seen.setdefault("keys", set(out))
        return original(self, out, starts, ends)

    monkeypatch.setattr(MemKDClassifier, "teacher_memory_change", spy)
    teacher = LSTMClassifier(1, 2, hidden_size=8)
    MemKDClassifier(teacher, module__hidden_size=4, **FAST).fit(X, y)
    assert seen["keys"] == {"logits", "row"}
