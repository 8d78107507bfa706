"""What a new user meets in the first hour: torch threads set per call, a
guard against transposed series and sktime panels, a warning when ``X_tgt``
bypasses a Pipeline's steps, and clear messages for bad keywords and NaN."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import Callback

from skkd import DANNClassifier, TimeSeriesClassifier
from skkd.base import SeriesLayoutWarning
from skkd.model_selection import TargetBypassWarning
from skkd.preprocessing import ChannelStandardScaler

TINY = {"module__widths": (4,), "max_epochs": 1, "batch_size": 16, "random_state": 0}


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class _ThreadProbe(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_begin(self, net, **kwargs):
        self.seen.append(torch.get_num_threads())


# ------------------------------------------------------------------- threads
@pytest.mark.usefixtures("restore_threads")
def test_n_threads_applies_inside_fit_and_predict_and_is_restored(shift_data):
    d = shift_data
    torch.set_num_threads(2)
    probe = _ThreadProbe()
    est = TimeSeriesClassifier(**TINY, n_threads=1, callbacks=[("probe", probe)])
    est.fit(d.X_src, d.y_src)
    assert probe.seen == [1]
    assert torch.get_num_threads() == 2

    seen = []
    original = type(est).infer

    def spy(self, x, **kw):
        seen.append(torch.get_num_threads())
        return original(self, x, **kw)

    est.infer = spy.__get__(est)
    est.predict(d.X_tgt_test)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2


@pytest.mark.usefixtures("restore_threads")
def test_n_threads_is_restored_when_fit_raises(shift_data):
    d = shift_data
    torch.set_num_threads(2)
    est = TimeSeriesClassifier(**TINY, n_threads=1, module__nonsense=3)
    with pytest.raises(TypeError, match="module__nonsense"):
        est.fit(d.X_src, d.y_src)
    assert torch.get_num_threads() == 2


@pytest.mark.usefixtures("restore_threads")
def test_n_threads_none_keeps_torch_setting_and_default_is_one(shift_data):
    d = shift_data
    assert TimeSeriesClassifier().n_threads == 1
    assert clone(TimeSeriesClassifier(n_threads=-1)).get_params()["n_threads"] == -1
    torch.set_num_threads(2)
    probe = _ThreadProbe()
    TimeSeriesClassifier(**TINY, n_threads=None, callbacks=[("probe", probe)]).fit(
        d.X_src, d.y_src
    )
    assert probe.seen == [2]


@pytest.mark.parametrize("bad", [0, -2, 1.5, "1"])
def test_bad_n_threads_is_a_clear_error(shift_data, bad):
    with pytest.raises(ValueError, match="n_threads must be"):
        TimeSeriesClassifier(**TINY, n_threads=bad).fit(
            shift_data.X_src, shift_data.y_src
        )


# -------------------------------------------------------------------- layout
def test_more_channels_than_time_points_warns_with_the_fix(shift_data):
    d = shift_data  # (n, 3 channels, 32 time points)
    with pytest.warns(SeriesLayoutWarning, match=r"X\.transpose\(0, 2, 1\)"):
        TimeSeriesClassifier(**TINY).fit(d.X_src.transpose(0, 2, 1), d.y_src)


def test_usual_layout_does_not_warn(shift_data):
    d = shift_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeriesLayoutWarning)
        est = TimeSeriesClassifier(**TINY).fit(d.X_src, d.y_src)
        est.predict(d.X_tgt_test)


def test_transposed_input_after_fit_is_refused(shift_data):
    d = shift_data
    est = TimeSeriesClassifier(**TINY).fit(d.X_src, d.y_src)
    with pytest.raises(ValueError, match=r"transpose of the \(3 channels, 32"):
        est.predict(d.X_tgt_test.transpose(0, 2, 1))
    with pytest.raises(ValueError, match=r"X_tgt\.transpose\(0, 2, 1\)"):
        DANNClassifier(**TINY).fit(d.X_src, d.y_src, d.X_tgt.transpose(0, 2, 1))


def test_sktime_panels_are_read_as_channels_by_time(shift_data):
    pytest.importorskip("sktime")
    from sktime.datatypes import convert_to

    d = shift_data
    est = TimeSeriesClassifier(**TINY).fit(d.X_src, d.y_src)
    expected = est.predict_proba(d.X_tgt_test)
    for mtype in ["df-list", "nested_univ", "pd-multiindex"]:
        panel = convert_to(d.X_tgt_test, to_type=mtype, as_scitype="Panel")
        with warnings.catch_warnings():
            warnings.simplefilter("error", SeriesLayoutWarning)
            np.testing.assert_allclose(est.predict_proba(panel), expected, atol=1e-6)
    # fitting on a df-list is fitting on the numpy3D panel
    frames = convert_to(d.X_src, to_type="df-list", as_scitype="Panel")
    a = TimeSeriesClassifier(**TINY).fit(frames, d.y_src)
    np.testing.assert_allclose(a.predict_proba(d.X_tgt_test), expected, atol=1e-6)


# ----------------------------------------------------------------- pipelines
@pytest.fixture(scope="module")
def raw_shift():
    """Raw-scale source and target series (far from standardised), the target
    shifted in mean and scale: a scaler in front of the model matters."""
    from skkd.datasets import make_domain_shift

    d = make_domain_shift(
        n_samples=48, n_target=40, n_test=30, n_timepoints=32, random_state=0
    )
    return 10 * d.X_src + 5, d.y_src, 14 * d.X_tgt + 8


def _dann_pipe(first):
    return Pipeline([("first", first), ("dann", DANNClassifier(**TINY))])


def test_target_that_bypassed_a_scaler_warns_with_the_remedies(raw_shift):
    X, y, X_tgt = raw_shift
    with pytest.warns(TargetBypassWarning, match="packed form") as record:
        _dann_pipe(ChannelStandardScaler()).fit(X, y, dann__X_tgt=X_tgt)
    assert "TargetSet" in str(record[0].message)


def test_no_bypass_warning_for_a_transformed_shifted_target(raw_shift):
    X, y, X_tgt = raw_shift
    scaler = ChannelStandardScaler().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetBypassWarning)
        # the target transformed by the user: shifted, but on the scaled side
        _dann_pipe(ChannelStandardScaler()).fit(
            X, y, dann__X_tgt=scaler.transform(X_tgt)
        )
        # steps that leave X as it is
        _dann_pipe(FunctionTransformer()).fit(X, y, dann__X_tgt=X_tgt)
        # no Pipeline: a shifted target is ordinary domain adaptation
        DANNClassifier(**TINY).fit(X, y, X_tgt)
        # the packed form: target rows go through the steps with X
        Xp = np.concatenate([X, X_tgt])
        yp = np.r_[y, -np.ones(len(X_tgt), dtype=int)]
        sd = np.r_[np.ones(len(X), dtype=int), -2 * np.ones(len(X_tgt), dtype=int)]
        _dann_pipe(ChannelStandardScaler()).fit(Xp, yp, dann__sample_domain=sd)


def test_no_bypass_warning_when_the_steps_move_x_less_than_the_shift(shift_data):
    # near-standardised series: scaling them changes less than the domain gap,
    # so the target's statistics are no evidence of a bypass
    d = shift_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetBypassWarning)
        _dann_pipe(ChannelStandardScaler()).fit(
            d.X_src, d.y_src, dann__X_tgt=3 * d.X_tgt + 1
        )


# ------------------------------------------------------------------ messages
def test_unknown_module_keyword_names_module_keyword_and_accepted(shift_data):
    d = shift_data
    with pytest.raises(TypeError) as err:
        TimeSeriesClassifier(module__width=(4,), max_epochs=1).fit(d.X_src, d.y_src)
    message = str(err.value)
    assert "module__width " in message and "CNN1D" in message
    assert "module__widths" in message and "module__kernel_size" in message
    with pytest.raises(TypeError, match="discriminator__hiden.*Discriminator"):
        DANNClassifier(**TINY, discriminator__hiden=4).fit(d.X_src, d.y_src, d.X_tgt)


def test_nan_at_predict_time_says_predicting(shift_data, fitted_teacher):
    X = shift_data.X_tgt_test.copy()
    X[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="before predicting"):
        fitted_teacher.predict(X)
    with pytest.raises(ValueError, match="before fitting"):
        TimeSeriesClassifier(**TINY).fit(X, shift_data.y_tgt_test)


def test_scoring_helpers_follow_sklearn_argument_orders(shift_data, fitted_teacher):
    import inspect

    from skkd.metrics import macro_f1, macro_f1_scorer, target_scores

    assert list(inspect.signature(macro_f1).parameters) == ["y_true", "y_pred"]
    assert list(inspect.signature(target_scores).parameters) == ["estimator", "X", "y"]
    d = shift_data
    scores = target_scores(fitted_teacher, d.X_tgt_test, d.y_tgt_test)
    y_pred = fitted_teacher.predict(d.X_tgt_test)
    assert scores["macro_f1"] == macro_f1(d.y_tgt_test, y_pred)
    assert macro_f1_scorer(fitted_teacher, d.X_tgt_test, d.y_tgt_test) == pytest.approx(
        scores["macro_f1"]
    )


def test_compression_reads_a_fitted_teacher_ensemble(teacher_ensemble):
    # the user guide's compression report follows its ensemble example
    from skkd.compression import as_module, count_parameters

    assert as_module(teacher_ensemble) is teacher_ensemble.module_
    assert count_parameters(teacher_ensemble) > 0
