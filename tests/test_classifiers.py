"""Teacher trainers: supervised and DANN, and the AdaTime DANN recipe."""

import numpy as np
import pytest
import torch

from skkd import DANNClassifier, TimeSeriesClassifier
from skkd.schedules import grl_coefficient

from .conftest import TINY


def test_supervised_classifier_ignores_target_data(shift_data):
    a = TimeSeriesClassifier(**TINY, random_state=0)
    a.fit(shift_data.X_src, shift_data.y_src)
    b = TimeSeriesClassifier(**TINY, random_state=0)
    b.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    np.testing.assert_array_equal(
        a.predict_proba(shift_data.X_tgt_test), b.predict_proba(shift_data.X_tgt_test)
    )


def test_supervised_classifier_learns(shift_data):
    clf = TimeSeriesClassifier(module__widths=(8, 16), max_epochs=15, random_state=0)
    clf.fit(shift_data.X_src, shift_data.y_src)
    assert clf.score(shift_data.X_src, shift_data.y_src) > 0.9


def test_dann_logs_its_terms_and_trains_both_optimizers(shift_data):
    dann = DANNClassifier(**TINY, random_state=0)
    dann.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    for key in ("train_ce", "train_domain"):
        assert np.isfinite(dann.history_[:, key]).all()
    assert len(dann._optimizers) == 2
    # 2 domains, chance-level domain CE at init is ~2 ln 2 (two terms)
    assert 0 < dann.history_[0, "train_domain"] < 4


def test_gradient_reversal_reaches_the_feature_extractor(shift_data):
    dann = DANNClassifier(**{**TINY, "max_epochs": 0}, lambda_cls=0.0, random_state=0)
    dann.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    dann.module_.eval()  # no dropout, fixed BatchNorm: both passes see the same net
    X = torch.from_numpy(shift_data.X_src[:8])
    Xt = torch.from_numpy(shift_data.X_tgt[:8])
    first_conv = dann.module_.features[0][0].weight

    loss = dann.compute_losses(X, torch.zeros(8, dtype=torch.long), Xt)["loss"]
    loss.backward()
    reversed_grad = first_conv.grad.clone()

    # the same domain loss without the reversal layer
    dann.module_.zero_grad()
    domain = torch.nn.functional.cross_entropy
    plain = domain(
        dann.discriminator_.net(dann.module_.forward_features(X)),
        torch.ones(8, dtype=torch.long),
    ) + domain(
        dann.discriminator_.net(dann.module_.forward_features(Xt)),
        torch.zeros(8, dtype=torch.long),
    )
    plain.backward()
    assert reversed_grad.abs().sum() > 0
    torch.testing.assert_close(reversed_grad, -first_conv.grad)


@pytest.mark.parametrize(
    "progress, schedule, expected",
    [(0.0, "ramp", 0.0), (1.0, "ramp", 0.9999092), (0.5, "constant", 1.0)],
)
def test_grl_coefficient(progress, schedule, expected):
    assert grl_coefficient(progress, schedule) == pytest.approx(expected, abs=1e-6)


def test_grl_schedule_is_validated(shift_data):
    with pytest.raises(ValueError, match="grl_schedule"):
        DANNClassifier(**TINY, grl_schedule="linear").fit(
            shift_data.X_src, shift_data.y_src, shift_data.X_tgt
        )


def test_ramp_schedule_is_applied(shift_data):
    dann = DANNClassifier(**TINY, grl_schedule="ramp", random_state=0)
    dann.fit(shift_data.X_src, shift_data.y_src, shift_data.X_tgt)
    # the last step sets alpha from the progress before it (< 1)
    assert 0.9 < dann.discriminator_.grl.alpha < 1.0


def test_adatime_har_dann_recipe_holds_only_dann_parameters():
    from skkd.classifiers import ADATIME_HAR_DANN

    dann = DANNClassifier(**ADATIME_HAR_DANN, module__widths=(64, 128, 128))
    params = dann.get_params()
    for name, value in ADATIME_HAR_DANN.items():
        assert name in params, name
        assert params[name] == value
    # AdaTime, configs/hparams.py, class HAR (train_params and DANN)
    assert ADATIME_HAR_DANN["max_epochs"] == 40 and ADATIME_HAR_DANN["lr"] == 1e-3
    assert ADATIME_HAR_DANN["lambda_domain"] / ADATIME_HAR_DANN["lambda_cls"] == (
        pytest.approx(0.573, abs=1e-3)
    )
