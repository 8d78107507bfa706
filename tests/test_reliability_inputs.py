"""Bad-input matrix: every estimator against messy data (issue #8, item 1).

Each case either raises a clear exception (a ValueError/TypeError/NotFittedError
whose message names the problem and the fix, never a raw torch error) or gives
the documented result (docs/reliability.rst). In every case the caller's
arrays and the teacher are bit-identical afterwards. An estimator joins the
matrix by being exported from ``skkd`` (see ``tests/_estimators.py``).
"""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skkd import BaseDistiller, TimeSeriesClassifier
from skkd.callbacks import NonFiniteLossError

from ._estimators import (
    ALL_ESTIMATORS,
    TEACHER,
    default_module,
    fingerprint,
    fit_args,
    ids,
    make,
    teacher_for,
    tiny_data,
)

CLEAR = (ValueError, TypeError, NotFittedError)
CASES = {}


def case(applies=None):
    """Register a case; ``applies(cls)`` limits it to some estimators."""

    def register(fn):
        CASES[fn.__name__.removeprefix("case_")] = (fn, applies or (lambda cls: True))
        return fn

    return register


def is_distiller(cls):
    return issubclass(cls, BaseDistiller)


class Guard:
    """Fingerprints of the caller's objects; ``check()`` asserts they are intact."""

    def __init__(self, *objects):
        self.objects = objects
        self.before = [fingerprint(o) for o in objects]

    def check(self):
        after = [fingerprint(o) for o in self.objects]
        assert after == self.before, "the caller's arrays or teacher were modified"


def expect_clear_error(call, match, exc=CLEAR):
    with pytest.raises(exc, match=match) as info:
        call()
    # the message is skkd's own, not a torch/numpy error passed through
    assert not isinstance(info.value, RuntimeError)
    assert "Traceback" not in str(info.value)
    return info.value


def fit_predict(est, *args):
    est.fit(*args)
    proba = est.predict_proba(args[0])
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    return est


def teacher_of(est):
    return getattr(est, "teacher", None)


# -------------------------------------------------------------- non-finite data
@case()
def case_nan_in_x(cls):
    X, y, X_tgt = tiny_data()
    X[3, 1, 5] = np.nan
    est = make(cls)
    guard = Guard(X, y, X_tgt, teacher_of(est))
    expect_clear_error(lambda: est.fit(*fit_args(cls, X, y, X_tgt)), "NaN or inf")
    guard.check()


@case()
def case_inf_in_x_tgt(cls):
    X, y, X_tgt = tiny_data()
    X_tgt[0, 0, 0] = np.inf
    est = make(cls)
    guard = Guard(X, y, X_tgt, teacher_of(est))
    expect_clear_error(lambda: est.fit(X, y, X_tgt), "X_tgt contains NaN or inf")
    guard.check()


@case()
def case_nan_at_predict(cls):
    X, y, X_tgt = tiny_data()
    est = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    X_bad = X.copy()
    X_bad[0, 0, 0] = np.nan
    guard = Guard(X_bad)
    expect_clear_error(lambda: est.predict(X_bad), "NaN or inf")
    guard.check()


@case()
def case_float64_beyond_float32(cls):
    X, y, X_tgt = tiny_data()
    X = X.astype(np.float64)
    X[0, 0, 0] = 1e300
    est = make(cls)
    guard = Guard(X, y)
    expect_clear_error(lambda: est.fit(X, y), "beyond the float32 range")
    guard.check()


@case()
def case_huge_values(cls):
    # documented: 1e30 is finite in float32; BatchNorm-normalised nets train
    # and predict finite probabilities; if a loss overflows the guard says so
    X, y, X_tgt = tiny_data()
    X, X_tgt = X * 1e30, X_tgt * 1e30
    est = make(cls)
    guard = Guard(X, y, X_tgt, teacher_of(est))
    try:
        fit_predict(est, *fit_args(cls, X, y, X_tgt))
    except NonFiniteLossError as exc:
        assert "epoch 1" in str(exc) and "Scale the inputs" in str(exc)
    guard.check()


# -------------------------------------------------------------------- shapes
@case()
def case_4d_x(cls):
    X, y, _ = tiny_data()
    X4 = X[..., np.newaxis]
    expect_clear_error(lambda: make(cls).fit(X4, y), "must be 3-D")


@case()
def case_1d_x(cls):
    _, y, _ = tiny_data()
    expect_clear_error(lambda: make(cls).fit(np.zeros(12), y), "must be 3-D")


@case()
def case_ragged_list(cls):
    X, y, _ = tiny_data()
    ragged = [x if i % 2 else x[:, :10] for i, x in enumerate(X)]
    expect_clear_error(lambda: make(cls).fit(ragged, y), "different lengths")


@case()
def case_object_array_of_series(cls):
    # documented: a 1-D object array of equal-shape series is stacked
    X, y, X_tgt = tiny_data()
    X_obj = np.empty(len(X), dtype=object)
    for i, x in enumerate(X):
        X_obj[i] = x
    guard = Guard(X_obj, y)
    est = make(cls).fit(*fit_args(cls, X_obj, y, X_tgt))
    reference = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X))
    guard.check()


@case()
def case_nested_lists(cls):
    # documented: nested lists are read as the array they spell
    X, y, X_tgt = tiny_data()
    est = make(cls).fit(*fit_args(cls, X.tolist(), y.tolist(), X_tgt.tolist()))
    reference = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X))


@case()
def case_object_array_of_strings(cls):
    X, y, _ = tiny_data()
    X_str = X.astype(str).astype(object)
    X_str[0, 0, 0] = "n/a"
    expect_clear_error(lambda: make(cls).fit(X_str, y), "must hold numbers")


@case()
def case_channel_mismatch_x_tgt(cls):
    X, y, X_tgt = tiny_data()
    X_tgt3 = np.concatenate([X_tgt, X_tgt[:, :1]], axis=1)
    expect_clear_error(
        lambda: make(cls).fit(X, y, X_tgt3), "X_tgt has 3 channel.*X has 2"
    )


@case()
def case_length_mismatch_x_tgt(cls):
    X, y, X_tgt = tiny_data()
    expect_clear_error(
        lambda: make(cls).fit(X, y, X_tgt[:, :, :12]), "length 12.*X has length 16"
    )


@case()
def case_channel_mismatch_at_predict(cls):
    X, y, X_tgt = tiny_data()
    est = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    expect_clear_error(lambda: est.predict(X[:, :1]), "1 channel.*fitted on 2")


@case()
def case_empty_x_tgt(cls):
    X, y, X_tgt = tiny_data()
    expect_clear_error(lambda: make(cls).fit(X, y, X_tgt[:0]), "X_tgt is empty")


@case()
def case_single_sample_x_tgt(cls):
    # documented: a one-series target set trains (its batches have one series)
    X, y, X_tgt = tiny_data()
    one = X_tgt[:1]
    guard = Guard(X, y, one)
    fit_predict(make(cls), *fit_args(cls, X, y, one))
    guard.check()


@case()
def case_last_batch_of_one(cls):
    # 13 series in batches of 6: the last source batch holds a single series
    X, y, X_tgt = tiny_data()
    X13, y13 = np.concatenate([X, X[:1]]), np.r_[y, y[:1]]
    fit_predict(make(cls, batch_size=6), *fit_args(cls, X13, y13, X_tgt))


# -------------------------------------------------------------- containers
@case()
def case_pandas_2d_univariate(cls):
    # documented: a (n, t) DataFrame is n univariate series
    X, y, X_tgt = tiny_data()
    df = pd.DataFrame(X[:, 0])
    est = make(cls, teacher=_teacher_for_channels(cls, 1))
    tgt = pd.DataFrame(X_tgt[:, 0])
    fit_predict(est, *fit_args(cls, df, pd.Series(y), tgt))
    assert est.n_channels_in_ == 1


@case()
def case_sktime_multiindex(cls):
    # documented: sktime's pd-multiindex panel (rows (instance, time), one
    # column per channel) is read as (n, channels, time)
    X, y, X_tgt = tiny_data()
    est = make(cls)
    reference = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    est.fit(*fit_args(cls, _to_multiindex(X), y, _to_multiindex(X_tgt)))
    np.testing.assert_array_equal(
        est.predict_proba(_to_multiindex(X)), reference.predict_proba(X)
    )


@case()
def case_sktime_nested_univ(cls):
    X, y, X_tgt = tiny_data()
    est = make(cls)
    reference = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    est.fit(*fit_args(cls, _to_nested(X), y, _to_nested(X_tgt)))
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X))


@case()
def case_sktime_nested_unequal(cls):
    X, y, _ = tiny_data()
    nested = _to_nested(X)
    nested.iloc[0, 0] = nested.iloc[0, 0].iloc[:5]
    expect_clear_error(lambda: make(cls).fit(nested, y), "different lengths")


@case()
def case_torch_tensor(cls):
    X, y, X_tgt = tiny_data()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    guard = Guard(Xt, yt)
    fit_predict(make(cls), *fit_args(cls, Xt, yt, torch.from_numpy(X_tgt)))
    guard.check()


# ------------------------------------------------------------------ labels
@case()
def case_one_class(cls):
    X, y, X_tgt = tiny_data()
    expect_clear_error(
        lambda: make(cls).fit(*fit_args(cls, X, np.zeros(12, int), X_tgt)),
        "only one class",
    )


@case()
def case_y_wrong_length(cls):
    X, y, X_tgt = tiny_data()
    expect_clear_error(
        lambda: make(cls).fit(*fit_args(cls, X, y[:-1], X_tgt)),
        "12 series but y has 11 labels",
    )


@case()
def case_float_labels_that_are_integers(cls):
    # documented: 0.0/1.0/2.0 are classes; classes_ keeps the user's floats
    X, y, X_tgt = tiny_data()
    y_float = y.astype(np.float64)
    guard = Guard(y_float)
    est = fit_predict(make(cls), *fit_args(cls, X, y_float, X_tgt))
    assert est.classes_.dtype.kind == "f"
    np.testing.assert_array_equal(est.classes_, [0.0, 1.0, 2.0])
    guard.check()


@case()
def case_continuous_labels(cls):
    X, y, X_tgt = tiny_data()
    expect_clear_error(
        lambda: make(cls).fit(*fit_args(cls, X, y + 0.5, X_tgt)), "continuous"
    )


@case()
def case_unseen_labels_at_score(cls):
    # documented: score is accuracy; a label the model never saw counts as wrong
    X, y, X_tgt = tiny_data()
    est = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    y_new = y.copy()
    y_new[:6] = 7
    pred = est.predict(X)
    assert est.score(X, y_new) == pytest.approx(np.mean(pred == y_new))
    assert est.score(X, y_new) <= 0.5


@case()
def case_string_labels(cls):
    X, y, X_tgt = tiny_data()
    labels = np.array(["walk", "sit", "lie"])[y]
    teacher = _teacher_for_labels(cls, labels)
    est = fit_predict(make(cls, teacher=teacher), *fit_args(cls, X, labels, X_tgt))
    assert set(est.predict(X)) <= {"walk", "sit", "lie"}


# ----------------------------------------------------------------- teacher
@case(applies=is_distiller)
def case_teacher_class_mismatch(cls):
    X, y, X_tgt = tiny_data()
    y2 = y % 2  # teacher knows 3 classes
    est = make(cls)
    guard = Guard(X, y2, teacher_of(est))
    expect_clear_error(
        lambda: est.fit(*fit_args(cls, X, y2, X_tgt)), "teacher.*classes"
    )
    guard.check()


@case(applies=is_distiller)
def case_bare_module_teacher_wrong_outputs(cls):
    X, y, X_tgt = tiny_data()
    module = teacher_for(default_module(cls)).module_
    est = make(cls, teacher=module)
    y2 = y % 2  # the module outputs 3 logits
    guard = Guard(module)
    expect_clear_error(lambda: est.fit(*fit_args(cls, X, y2, X_tgt)), "2 classes")
    guard.check()


@case(applies=is_distiller)
def case_unfitted_teacher(cls):
    X, y, X_tgt = tiny_data()
    family = default_module(cls)
    teacher = TimeSeriesClassifier(module=family, **TEACHER[family])
    est = make(cls, teacher=FrozenEstimator(teacher))
    expect_clear_error(
        lambda: est.fit(*fit_args(cls, X, y, X_tgt)), "not fitted", NotFittedError
    )


@case(applies=is_distiller)
def case_missing_teacher(cls):
    X, y, X_tgt = tiny_data()
    est = make(cls, teacher=None)
    expect_clear_error(lambda: est.fit(*fit_args(cls, X, y, X_tgt)), "needs a fitted")


@case(applies=is_distiller)
def case_wrong_type_teacher(cls):
    X, y, X_tgt = tiny_data()
    lr = LogisticRegression().fit(X.reshape(len(X), -1), y)
    est = make(cls, teacher=lr)
    expect_clear_error(
        lambda: est.fit(*fit_args(cls, X, y, X_tgt)), "torch.nn.Module", TypeError
    )


@case(applies=is_distiller)
def case_teacher_on_meta_device(cls):
    # no second real device here: 'meta' stands for "not on this net's device"
    X, y, X_tgt = tiny_data()
    module = teacher_for(default_module(cls)).module_
    meta = copy.deepcopy(module).to("meta")
    est = make(cls, teacher=meta)
    expect_clear_error(lambda: est.fit(*fit_args(cls, X, y, X_tgt)), "'meta' device")


@case(applies=is_distiller)
def case_teacher_channel_mismatch(cls):
    X, y, X_tgt = tiny_data()
    X3 = np.concatenate([X, X[:, :1]], axis=1)
    est = make(cls)
    expect_clear_error(
        lambda: est.fit(
            *fit_args(cls, X3, y, np.concatenate([X_tgt, X_tgt[:, :1]], 1))
        ),
        "teacher",
    )


# ------------------------------------------------------------ array layout
@case()
def case_non_contiguous(cls):
    X, y, X_tgt = tiny_data()
    wide = np.repeat(X, 2, axis=2)[:, :, ::2]  # a strided view, same values
    assert not wide.flags.c_contiguous
    guard = Guard(wide, X)
    est = fit_predict(make(cls), *fit_args(cls, wide, y, X_tgt))
    reference = make(cls).fit(*fit_args(cls, X, y, X_tgt))
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X))
    guard.check()


@case()
def case_fortran_order(cls):
    X, y, X_tgt = tiny_data()
    Xf = np.asfortranarray(X)
    guard = Guard(Xf)
    fit_predict(make(cls), *fit_args(cls, Xf, y, X_tgt))
    guard.check()


@case()
def case_read_only(cls):
    X, y, X_tgt = tiny_data()
    for a in (X, y, X_tgt):
        a.setflags(write=False)
    guard = Guard(X, y, X_tgt)
    est = make(cls)
    with warnings.catch_warnings():
        # e.g. torch's "The given NumPy array is not writable"
        warnings.simplefilter("error", UserWarning)
        fit_predict(est, *fit_args(cls, X, y, X_tgt))
        est.predict(X)
    guard.check()


@pytest.mark.parametrize("dtype", ["float64", "float16", "int32", "int64", "bool"])
@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=ids)
def test_numeric_dtypes_are_cast_to_float32(cls, dtype):
    # documented: any real numeric dtype is cast to float32 on a copy
    X, y, X_tgt = tiny_data()
    Xd = (X * 3).astype(dtype)
    Xt = (X_tgt * 3).astype(dtype)
    guard = Guard(Xd, Xt)
    est = fit_predict(make(cls), *fit_args(cls, Xd, y, Xt))
    assert est.predict(Xd).shape == (12,)
    guard.check()


# --------------------------------------------------------------- the matrix
def _teacher_for_channels(cls, n_channels):
    if not is_distiller(cls):
        return "default"
    family = default_module(cls)
    X, y, _ = tiny_data()
    t = TimeSeriesClassifier(
        module=family, max_epochs=1, random_state=0, **TEACHER[family]
    )
    return FrozenEstimator(t.fit(X[:, :n_channels], y))


def _teacher_for_labels(cls, labels):
    if not is_distiller(cls):
        return "default"
    family = default_module(cls)
    X, _, _ = tiny_data()
    t = TimeSeriesClassifier(
        module=family, max_epochs=1, random_state=0, **TEACHER[family]
    )
    return FrozenEstimator(t.fit(X, labels))


def _to_multiindex(X):
    n, c, t = X.shape
    index = pd.MultiIndex.from_product([range(n), range(t)], names=["id", "time"])
    return pd.DataFrame(
        X.transpose(0, 2, 1).reshape(n * t, c),
        index=index,
        columns=[f"ch{i}" for i in range(c)],
    )


def _to_nested(X):
    return pd.DataFrame(
        {f"ch{j}": [pd.Series(x[j]) for x in X] for j in range(X.shape[1])}
    )


MATRIX = [
    pytest.param(cls, name, id=f"{cls.__name__}-{name}")
    for cls in ALL_ESTIMATORS
    for name, (_, applies) in CASES.items()
    if applies(cls)
]


@pytest.mark.parametrize(("cls", "name"), MATRIX)
def test_bad_input(cls, name):
    CASES[name][0](cls)


def test_matrix_covers_every_estimator_and_case():
    covered = {cls for cls, _ in (p.values for p in MATRIX)}
    assert covered == set(ALL_ESTIMATORS)
    assert len(CASES) >= 30
