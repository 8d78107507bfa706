"""ChannelStandardScaler, and pipelines whose preprocessing sees the target rows."""

import numpy as np
import pytest
import sklearn
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skkd import UniKDClassifier
from skkd.preprocessing import ChannelStandardScaler

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "module__widths": (4,)}


@parametrize_with_checks([ChannelStandardScaler()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_channels_standardised_and_inverted():
    rng = np.random.default_rng(0)
    X = rng.normal([[1.0], [-20.0], [300.0]], [[1.0], [5.0], [40.0]], (30, 3, 16))
    scaler = ChannelStandardScaler().fit(X)
    Xt = scaler.transform(X)
    np.testing.assert_allclose(Xt.mean(axis=(0, 2)), 0, atol=1e-10)
    np.testing.assert_allclose(Xt.std(axis=(0, 2)), 1, atol=1e-10)
    np.testing.assert_allclose(scaler.inverse_transform(Xt), X, rtol=1e-5, atol=1e-4)
    assert scaler.transform(X.astype(np.float32)).dtype == np.float32


def test_wrong_channels_rejected():
    scaler = ChannelStandardScaler().fit(np.zeros((4, 2, 8)))
    with pytest.raises(ValueError, match="channel"):
        scaler.transform(np.zeros((4, 3, 8)))


class _RecordsTarget(UniKDClassifier):
    """Test-only: remembers the target rows it trained on."""

    def prepare_fit(self, X, y, X_tgt):
        self.seen_target_ = X_tgt.copy()
        super().prepare_fit(X, y, X_tgt)


def _packed(d):
    X = np.concatenate([d.X_src, d.X_tgt])
    y = np.concatenate([d.y_src, -np.ones(len(d.X_tgt), dtype=int)])
    sd = np.r_[np.ones(len(d.X_src), int), -2 * np.ones(len(d.X_tgt), int)]
    return X, y, sd


@pytest.mark.parametrize("routing", [False, True])
def test_pipeline_preprocesses_packed_target_rows(shift_data, fitted_teacher, routing):
    d = shift_data
    X, y, sd = _packed(d)
    pipe = Pipeline(
        [
            ("scale", ChannelStandardScaler()),
            ("kd", _RecordsTarget(FrozenEstimator(fitted_teacher), **FAST)),
        ]
    )
    with sklearn.config_context(enable_metadata_routing=routing):
        params = {"sample_domain": sd} if routing else {"kd__sample_domain": sd}
        pipe.fit(X, y, **params)
        assert pipe.predict(d.X_tgt_test).shape == (len(d.X_tgt_test),)
        assert 0 <= pipe.score(d.X_tgt_test, d.y_tgt_test) <= 1
    scaler = pipe.named_steps["scale"]
    # the scaler was fitted on source and target rows together ...
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=(0, 2)), rtol=1e-5)
    # ... and the distiller's target set went through it
    np.testing.assert_allclose(
        pipe.named_steps["kd"].seen_target_, scaler.transform(d.X_tgt), atol=1e-5
    )


def test_x_tgt_bypasses_the_transformers(shift_data, fitted_teacher):
    """Why the packed form: a fit parameter is never transformed by a Pipeline."""
    d = shift_data
    pipe = make_pipeline(
        ChannelStandardScaler(), _RecordsTarget(FrozenEstimator(fitted_teacher), **FAST)
    )
    pipe.fit(d.X_src, d.y_src, _recordstarget__X_tgt=d.X_tgt)
    np.testing.assert_allclose(pipe[-1].seen_target_, d.X_tgt)  # raw, unscaled
