"""The engine's contract: data, labels, teacher, pairing, seeding, clone, pickle."""

import pickle

import numpy as np
import pytest
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skkd import DANNClassifier, KDClassifier, TimeSeriesClassifier
from skkd.nn import CNN1D

from .conftest import TINY


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------- data
def test_2d_input_is_univariate_and_dtypes_are_cast(shift_data):
    X = shift_data.X_src[:, 0, :].astype(np.float64)
    clf = TimeSeriesClassifier(**TINY, random_state=0).fit(X, shift_data.y_src)
    assert clf.n_channels_in_ == 1 and clf.n_timepoints_in_ == X.shape[1]
    assert clf.predict_proba(X.astype(np.int32)).dtype == np.float32


def test_string_labels_are_returned_in_the_users_encoding(shift_data):
    names = np.array(["walk", "sit", "lie"])
    clf = TimeSeriesClassifier(**TINY, random_state=0)
    clf.fit(shift_data.X_src, names[shift_data.y_src])
    assert set(clf.predict(shift_data.X_src)) <= set(names)
    assert sorted(clf.classes_) == sorted(names)
    proba = clf.predict_proba(shift_data.X_src)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(proba >= 0)
    np.testing.assert_array_equal(
        clf.predict(shift_data.X_src), clf.classes_[proba.argmax(axis=1)]
    )


def test_callers_arrays_are_never_modified(shift_data, fitted_teacher):
    X, y, Xt = (shift_data.X_src.copy(), shift_data.y_src.copy(), shift_data.X_tgt)
    Xt = Xt.copy()
    before = (X.copy(), y.copy(), Xt.copy())
    KDClassifier(FrozenEstimator(fitted_teacher), **TINY, random_state=0).fit(X, y, Xt)
    for now, then in zip((X, y, Xt), before, strict=True):
        np.testing.assert_array_equal(now, then)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: {**d, "X": np.where(d["X"] > 1, np.nan, d["X"])}, "NaN or infinity"),
        (lambda d: {**d, "X_tgt": np.full_like(d["X_tgt"], np.inf)}, "NaN or infinity"),
        (lambda d: {**d, "X": d["X"][:, 0, 0]}, "must be 3-D"),
        (lambda d: {**d, "X": d["X"][..., None]}, "must be 3-D"),
        (lambda d: {**d, "X_tgt": d["X_tgt"][:, :2]}, "channel"),
        (lambda d: {**d, "X_tgt": d["X_tgt"][:, :, :10]}, "length"),
        (lambda d: {**d, "X_tgt": d["X_tgt"][:0]}, "empty"),
        (lambda d: {**d, "y": d["y"][:-1]}, "labels"),
        (lambda d: {**d, "y": np.zeros_like(d["y"])}, "one class"),
        (lambda d: {**d, "y": None}, "requires y"),
    ],
)
def test_bad_input_gets_a_clear_error(shift_data, mutate, match):
    data = {"X": shift_data.X_src, "y": shift_data.y_src, "X_tgt": shift_data.X_tgt}
    data = mutate(data)
    snapshot = {
        k: None if v is None else np.array(v, copy=True) for k, v in data.items()
    }
    with pytest.raises((ValueError, TypeError), match=match):
        DANNClassifier(**TINY).fit(data["X"], data["y"], data["X_tgt"])
    for key, value in data.items():
        if value is not None:
            np.testing.assert_array_equal(value, snapshot[key])


def test_predict_validates_channels_and_length(shift_data):
    clf = TimeSeriesClassifier(**TINY).fit(shift_data.X_src, shift_data.y_src)
    with pytest.raises(ValueError, match="channel"):
        clf.predict(shift_data.X_src[:, :2])
    with pytest.raises(ValueError, match="length"):
        clf.predict(shift_data.X_src[:, :, :5])


def test_predict_before_fit_is_a_clear_error(shift_data):
    with pytest.raises(NotFittedError, match="not fitted"):
        TimeSeriesClassifier().predict(shift_data.X_src)


def test_dataset_smaller_than_one_batch_trains(shift_data):
    X, y = shift_data.X_src[:6], shift_data.y_src[:6]
    clf = TimeSeriesClassifier(**{**TINY, "batch_size": 32}, random_state=0).fit(X, y)
    assert clf.history_[-1, "train_batch_count"] == 1
    assert clf.predict(X).shape == (6,)


def test_methods_that_need_target_data_say_so(shift_data):
    with pytest.raises(ValueError, match="X_tgt"):
        DANNClassifier(**TINY).fit(shift_data.X_src, shift_data.y_src)


# ------------------------------------------------------------------ teacher
def test_teacher_is_never_modified(shift_data, fitted_teacher):
    before = _state(fitted_teacher.module_)
    flags = [p.requires_grad for p in fitted_teacher.module_.parameters()]
    training = fitted_teacher.module_.training
    for teacher in (fitted_teacher, FrozenEstimator(fitted_teacher)):
        student = KDClassifier(teacher, **TINY, random_state=0)
        student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
        assert _same_state(before, _state(fitted_teacher.module_))
    assert flags == [p.requires_grad for p in fitted_teacher.module_.parameters()]
    assert fitted_teacher.module_.training == training


def test_teacher_copy_is_frozen_and_outside_every_optimizer(shift_data, fitted_teacher):
    student = KDClassifier(FrozenEstimator(fitted_teacher), **TINY, random_state=0)
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    teacher = student.teacher_module_
    assert teacher is not fitted_teacher.module_
    assert not teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    optimised = {id(p) for g in student.optimizer_.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in student.module_.parameters()}
    # skorch switches registered modules to train mode: the teacher stays in eval
    student._set_training(True)
    assert student.module_.training and not student.teacher_module_.training


def test_bare_module_teacher_is_accepted_and_untouched(shift_data, fitted_teacher):
    module = fitted_teacher.module_
    before = _state(module)
    student = KDClassifier(module, **TINY, random_state=0)
    student.fit(shift_data.X_src, shift_data.y_src)
    assert _same_state(before, _state(module))
    assert clone(student).teacher is not module  # a bare module is copied per clone


def test_unfitted_teacher_is_a_clear_error(shift_data):
    for teacher in (TimeSeriesClassifier(), FrozenEstimator(TimeSeriesClassifier())):
        with pytest.raises(NotFittedError, match="not fitted"):
            KDClassifier(teacher, **TINY).fit(shift_data.X_src, shift_data.y_src)
    with pytest.raises(ValueError, match="needs a fitted teacher"):
        KDClassifier(None, **TINY).fit(shift_data.X_src, shift_data.y_src)
    with pytest.raises(TypeError, match="teacher must be"):
        KDClassifier("resnet", **TINY).fit(shift_data.X_src, shift_data.y_src)


def test_teacher_with_other_classes_is_a_clear_error(shift_data, fitted_teacher):
    wrong_module = CNN1D(3, 5, widths=(4,))
    with pytest.raises(ValueError, match="outputs"):
        KDClassifier(wrong_module, **TINY).fit(shift_data.X_src, shift_data.y_src)
    two_classes = shift_data.y_src < 2
    with pytest.raises(ValueError, match="classes"):
        KDClassifier(fitted_teacher, **TINY).fit(
            shift_data.X_src[two_classes], shift_data.y_src[two_classes]
        )


def test_teacher_on_other_shapes_is_a_clear_error(shift_data, fitted_teacher):
    with pytest.raises(ValueError, match="teacher failed"):
        KDClassifier(fitted_teacher, **TINY).fit(
            shift_data.X_src[:, :2], shift_data.y_src
        )


# ----------------------------------------------------------- clone / search
def test_clone_keeps_a_fitted_teacher_fitted(shift_data, fitted_teacher):
    for teacher in (fitted_teacher, FrozenEstimator(fitted_teacher)):
        student = clone(KDClassifier(teacher, **TINY, random_state=0))
        assert student.teacher is teacher
        student.fit(shift_data.X_src, shift_data.y_src)
        assert student.score(shift_data.X_src, shift_data.y_src) > 0


@pytest.mark.parametrize("frozen", [True, False])
@pytest.mark.parametrize("routing", [False, True])
def test_grid_search_over_distillation_hyperparameters(
    shift_data, fitted_teacher, frozen, routing
):
    teacher = FrozenEstimator(fitted_teacher) if frozen else fitted_teacher
    search = GridSearchCV(
        KDClassifier(teacher, **TINY, random_state=0),
        {"temperature": [2.0, 4.0], "module__widths": [(4,), (4, 8)]},
        cv=2,
        n_jobs=2,
    )
    with config_context(enable_metadata_routing=routing):
        search.fit(shift_data.X_src, shift_data.y_src, X_tgt=shift_data.X_tgt[:25])
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert "train_kd_tgt" in search.best_estimator_.history_[-1]


def test_set_params_routes_to_extra_modules_and_optimizers(shift_data):
    dann = DANNClassifier(
        **TINY, discriminator__hidden=7, optimizer_disc__lr=0.05, random_state=0
    )
    dann.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    assert dann.discriminator_.hidden == 7
    assert dann.optimizer_disc_.param_groups[0]["lr"] == 0.05
    assert dann.optimizer_.param_groups[0]["lr"] == dann.lr
    disc = {id(p) for p in dann.discriminator_.parameters()}
    assert disc == {
        id(p) for g in dann.optimizer_disc_.param_groups for p in g["params"]
    }
    assert not disc & {id(p) for g in dann.optimizer_.param_groups for p in g["params"]}
    dann.set_params(optimizer_disc__lr=0.001)
    assert dann.optimizer_disc_.param_groups[0]["lr"] == 0.001
    dann.set_params(discriminator__hidden=5)
    assert dann.discriminator_.hidden == 5


# ------------------------------------------------- determinism and pickling
def test_random_state_gives_bit_identical_fits(shift_data, fitted_teacher):
    def fit(seed):
        est = KDClassifier(FrozenEstimator(fitted_teacher), **TINY, random_state=seed)
        est.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
        return est.predict_proba(shift_data.X_tgt_test), _state(est.module_)

    (p1, s1), (p2, s2), (p3, _) = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(p1, p2)
    assert _same_state(s1, s2)
    assert not np.array_equal(p1, p3)


def test_seeding_leaves_the_global_torch_rng_alone(shift_data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TimeSeriesClassifier(**TINY, random_state=0).fit(shift_data.X_src, shift_data.y_src)
    torch.testing.assert_close(torch.rand(3), expected)


def test_pickle_round_trip(shift_data, fitted_teacher):
    student = KDClassifier(FrozenEstimator(fitted_teacher), **TINY, random_state=0)
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    restored = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(
        restored.predict_proba(shift_data.X_tgt_test),
        student.predict_proba(shift_data.X_tgt_test),
    )
    assert not hasattr(restored, "_session")


# ------------------------------------------------------ pairing and history
class _Spy(KDClassifier):
    """Records the size of each paired target batch (tests only)."""

    def compute_losses(self, X, y, X_tgt):
        self.history.record_batch("n_tgt", len(X_tgt))
        return super().compute_losses(X, y, X_tgt)


def test_source_and_target_batches_are_paired(shift_data, fitted_teacher):
    X, y = shift_data.X_src[:40], shift_data.y_src[:40]
    X_tgt = shift_data.X_tgt[:12]  # smaller than the source: the target cycles
    spy = _Spy(FrozenEstimator(fitted_teacher), **{**TINY, "batch_size": 8})
    spy.fit(X, y, X_tgt)
    for epoch in spy.history_:
        # each epoch covers the source set once, in 5 steps
        assert [b["train_batch_size"] for b in epoch["batches"]] == [8] * 5
    # the target loader cycles across steps and epochs: passes of 8 + 4 windows
    drawn = [b["n_tgt"] for e in spy.history_ for b in e["batches"]]
    assert drawn == [8, 4] * 5


def test_history_records_every_loss_term(shift_data, fitted_teacher):
    student = KDClassifier(FrozenEstimator(fitted_teacher), **TINY, random_state=0)
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    for key in ("train_loss", "train_ce", "train_kd_src", "train_kd_tgt"):
        values = student.history_[:, key]
        assert len(values) == TINY["max_epochs"] and np.isfinite(values).all()


def test_packed_sample_domain_equals_explicit_target(shift_data):
    X, y, Xt = shift_data.X_src, shift_data.y_src, shift_data.X_tgt
    explicit = DANNClassifier(**TINY, random_state=0).fit(X, y, Xt)
    packed_X = np.concatenate([X, Xt])
    packed_y = np.concatenate([y, np.full(len(Xt), -1)])
    domain = np.concatenate([np.ones(len(X)), -np.ones(len(Xt))]).astype(int)
    packed = DANNClassifier(**TINY, random_state=0)
    packed.fit(packed_X, packed_y, sample_domain=domain)
    np.testing.assert_array_equal(
        packed.predict_proba(shift_data.X_tgt_test, sample_domain=domain[:30]),
        explicit.predict_proba(shift_data.X_tgt_test),
    )
    with pytest.raises(ValueError, match="not both"):
        DANNClassifier(**TINY).fit(packed_X, packed_y, Xt, sample_domain=domain)


def test_module_instance_is_copied_not_trained_in_place(shift_data):
    module = CNN1D(3, 3, widths=(4,))
    before = _state(module)
    clf = TimeSeriesClassifier(module, **TINY, random_state=0)
    clf.fit(shift_data.X_src, shift_data.y_src)
    assert _same_state(before, _state(module)) and clf.module_ is not module


class _Interrupt(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


def test_interrupted_training_keeps_the_model(shift_data, fitted_teacher):
    student = KDClassifier(
        FrozenEstimator(fitted_teacher),
        **{**TINY, "max_epochs": 5},
        callbacks=[("stop", _Interrupt())],
    )
    student.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    assert len(student.history_) == 2
    assert student.predict(shift_data.X_tgt_test).shape == (30,)
    assert not hasattr(student, "_session")
    pickle.dumps(student)  # no live iterator left behind


def test_warm_start_continues_training(shift_data):
    clf = TimeSeriesClassifier(**TINY, warm_start=True, random_state=0)
    clf.fit(shift_data.X_src, shift_data.y_src)
    first = _state(clf.module_)
    clf.fit(shift_data.X_src, shift_data.y_src)
    assert len(clf.history_) == 2 * TINY["max_epochs"]
    assert not _same_state(first, _state(clf.module_))
    with pytest.raises(ValueError, match="not seen"):
        clf.partial_fit(shift_data.X_src, shift_data.y_src + 7)


@pytest.mark.parametrize("drop_last, steps", [(False, 3), (True, 2)])
def test_progress_counts_the_steps_the_loader_takes(shift_data, drop_last, steps):
    # 48 source series in batches of 20: 3 steps, or 2 without the partial one
    clf = TimeSeriesClassifier(
        module__widths=(4,),
        max_epochs=2,
        batch_size=20,
        iterator_train__drop_last=drop_last,
        random_state=0,
    ).fit(shift_data.X_src, shift_data.y_src)
    assert clf.steps_per_epoch_ == steps
    assert len(clf.history_[-1]["batches"]) == steps
    assert clf.progress == 1.0
