"""skkd.sktime.SktimeDistiller: sktime's checks, pipelines, containers, evaluation."""

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator

pytest.importorskip("sktime")

from sklearn.model_selection import KFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sktime.classification.model_evaluation import evaluate  # noqa: E402
from sktime.datatypes import convert_to  # noqa: E402
from sktime.transformations.compose import FitInTransform  # noqa: E402
from sktime.transformations.series.adapt import TabularToSeriesAdaptor  # noqa: E402
from sktime.utils.estimator_checks import check_estimator  # noqa: E402

from skkd import MemKDClassifier, TimeSeriesClassifier, UniKDClassifier  # noqa: E402
from skkd.nn import LSTMClassifier  # noqa: E402
from skkd.sktime import SktimeDistiller  # noqa: E402

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}

#: sktime checks that fail for a reason outside the adapter
EXCLUDED = {
    "test_set_params": (
        "skorch's get_params(deep=True) builds new default callback objects "
        "(estimator__callbacks__print_log ...) on every call, so set_params then "
        "get_params compares two different PrintLog instances by identity"
    ),
}


@pytest.mark.slow
def test_sktime_check_estimator():
    results = check_estimator(
        SktimeDistiller,
        raise_exceptions=False,
        tests_to_exclude=list(EXCLUDED),
    )
    failed = {name: r for name, r in results.items() if r != "PASSED"}
    assert not failed, failed
    assert len(results) > 100


def _unikd(teacher):
    return UniKDClassifier(FrozenEstimator(teacher), module__widths=(4,), **FAST)


def test_unikd_with_target_set_in_sktime_containers(shift_data, fitted_teacher):
    d = shift_data
    X = convert_to(d.X_src, to_type="pd-multiindex")
    X_tgt = convert_to(d.X_tgt, to_type="nested_univ")
    clf = SktimeDistiller(_unikd(fitted_teacher), X_tgt=X_tgt).fit(X, d.y_src)
    inner = clf.estimator_
    assert (inner.n_channels_in_, inner.n_timepoints_in_) == (3, 32)
    ref = _unikd(fitted_teacher).fit(d.X_src, d.y_src, d.X_tgt)
    np.testing.assert_allclose(
        clf.predict_proba(convert_to(d.X_tgt_test, to_type="nested_univ")),
        ref.predict_proba(d.X_tgt_test),
        atol=1e-5,
    )
    np.testing.assert_array_equal(clf.classes_, ref.classes_)


def test_missing_target_set_is_the_estimators_error(shift_data, fitted_teacher):
    with pytest.raises(ValueError, match="needs unlabelled target data"):
        SktimeDistiller(_unikd(fitted_teacher)).fit(shift_data.X_src, shift_data.y_src)


def test_transformer_pipeline_keeps_series_3d(shift_data, fitted_teacher):
    d = shift_data
    # per-series standardisation; X_tgt bypasses the pipeline's transformers,
    # so it gets the same (stateless, per series) transform by hand
    scale = FitInTransform(TabularToSeriesAdaptor(StandardScaler()))
    X_tgt = convert_to(scale.fit_transform(d.X_tgt), to_type="numpy3D")
    pipe = scale * SktimeDistiller(_unikd(fitted_teacher), X_tgt=X_tgt)
    pipe.fit(d.X_src, d.y_src)
    fitted = pipe.steps_[-1][1]
    assert fitted.estimator_.n_channels_in_ == 3  # not flattened to one table
    assert fitted.estimator_.n_timepoints_in_ == 32
    assert pipe.predict(d.X_tgt_test).shape == (len(d.X_tgt_test),)


def test_memkd_with_teacher_trained_per_fold_in_sktime_evaluate(shift_data):
    d = shift_data
    clf = SktimeDistiller(
        MemKDClassifier(module__hidden_size=3, n_pairs=4, **FAST),
        X_tgt=d.X_tgt,
        teacher=TimeSeriesClassifier(
            module=LSTMClassifier, module__hidden_size=5, **FAST
        ),
    )
    results = evaluate(clf, cv=KFold(n_splits=2), X=d.X_src, y=d.y_src)
    assert len(results) == 2
    score = [c for c in results.columns if c.startswith("test_")][0]
    assert results[score].between(0, 1).all()
    # the adapter's teacher is fitted per fit, never the one given
    clf.fit(d.X_src, d.y_src)
    assert clf.teacher_ is not clf.teacher
    assert not hasattr(clf.teacher, "module_")
