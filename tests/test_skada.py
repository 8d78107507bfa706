"""skada interoperability: packed form, make_da_pipeline, skada's splitters and
scorers, and a skada DANN as teacher (skada is an optional extra)."""

import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, cross_validate

# `import skada` switches metadata routing on for the whole process: keep the
# session's setting for the other test modules, and switch it on per test here
_ROUTING = sklearn.get_config()["enable_metadata_routing"]
skada = pytest.importorskip("skada")
sklearn.set_config(enable_metadata_routing=_ROUTING)

from skada import make_da_pipeline  # noqa: E402
from skada.metrics import (  # noqa: E402
    CircularValidation,
    ImportanceWeightedScorer,
    PredictionEntropyScorer,
    SoftNeighborhoodDensity,
)
from skada.model_selection import (  # noqa: E402
    DomainShuffleSplit,
    SourceTargetShuffleSplit,
)

from skkd import (  # noqa: E402
    KDClassifier,
    MemKDClassifier,
    TimeSeriesClassifier,
    UniKDClassifier,  # noqa: E402
)
from skkd.metrics import TeacherAgreementScorer  # noqa: E402
from skkd.nn import LSTMClassifier  # noqa: E402
from skkd.preprocessing import ChannelStandardScaler  # noqa: E402

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}

pytestmark = pytest.mark.usefixtures("routing_on")


def _unikd(teacher, **params):
    return UniKDClassifier(
        FrozenEstimator(teacher), **{**FAST, "module__widths": (4,), **params}
    )


def test_packed_form_unikd_and_memkd(shift_data, fitted_teacher, packed):
    d = shift_data
    X, y, sd = packed
    lstm = TimeSeriesClassifier(module=LSTMClassifier, module__hidden_size=6, **FAST)
    lstm.fit(d.X_src, d.y_src)
    students = [
        _unikd(fitted_teacher),
        MemKDClassifier(FrozenEstimator(lstm), module__hidden_size=3, **FAST),
    ]
    sd_test = -2 * np.ones(len(d.X_tgt_test), dtype=int)
    for student in students:
        packed_fit = student.fit(X, y, sample_domain=sd)
        pred = packed_fit.predict(d.X_tgt_test, sample_domain=sd_test)
        # sample_domain is accepted and ignored at prediction time
        np.testing.assert_array_equal(pred, packed_fit.predict(d.X_tgt_test))
        assert 0 <= packed_fit.score(d.X_tgt_test, d.y_tgt_test, sample_domain=sd_test)
        # the packed form is the same fit as X_tgt=
        separate = clone(student).fit(d.X_src, d.y_src, d.X_tgt)
        np.testing.assert_allclose(
            separate.predict_proba(d.X_tgt_test),
            packed_fit.predict_proba(d.X_tgt_test),
            atol=1e-6,
        )


def test_make_da_pipeline(shift_data, fitted_teacher, packed):
    d = shift_data
    X, y, sd = packed
    pipe = make_da_pipeline(ChannelStandardScaler(), _unikd(fitted_teacher))
    pipe.fit(X, y, sample_domain=sd)
    sd_test = -2 * np.ones(len(d.X_tgt_test), dtype=int)
    assert pipe.predict(d.X_tgt_test, sample_domain=sd_test).shape == (30,)
    assert pipe.predict_proba(d.X_tgt_test).shape == (30, 3)
    np.testing.assert_allclose(
        pipe[0].base_estimator_.mean_, X.mean(axis=(0, 2)), rtol=1e-5
    )


SCORERS = {
    "entropy": PredictionEntropyScorer,
    "importance_weighted": ImportanceWeightedScorer,
    "snd": SoftNeighborhoodDensity,
    "circular": CircularValidation,
    "teacher_agreement": TeacherAgreementScorer,
}


@pytest.mark.parametrize("cv", [SourceTargetShuffleSplit, DomainShuffleSplit])
@pytest.mark.parametrize("scorer", SCORERS)
def test_skada_splitters_and_scorers(fitted_teacher, packed, cv, scorer):
    X, y, sd = packed
    # ImportanceWeightedScorer re-weights source rows: the distiller's score
    # takes sample_weight once it is requested
    student = _unikd(fitted_teacher).set_score_request(sample_weight=True)
    pipe = make_da_pipeline(ChannelStandardScaler(), student)
    run = dict(
        params={"sample_domain": sd},
        cv=cv(n_splits=2, random_state=0),
        scoring=SCORERS[scorer](),
        error_score="raise",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skada's warnings on tiny folds
        if scorer == "circular" and cv is DomainShuffleSplit:
            # here the student predicts 2 of the 3 classes on target: skada
            # re-encodes the pseudo-labels to 0..1 for the backward fit, which
            # no longer match the teacher's classes (a clear error, documented)
            with pytest.raises(ValueError, match="teacher was fitted on classes"):
                cross_validate(pipe, X, y, **run)
            return
        result = cross_validate(pipe, X, y, **run)
    assert np.isfinite(result["test_score"]).all()


def test_grid_search_routes_sample_domain_to_skkd_scorers(fitted_teacher, packed):
    X, y, sd = packed
    search = GridSearchCV(
        _unikd(fitted_teacher),
        {"temperature": [2.0, 4.0]},
        cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
        scoring={
            "agree": TeacherAgreementScorer(),
            "entropy": PredictionEntropyScorer(),
        },
        refit="agree",
        error_score="raise",
    )
    search.fit(X, y, sample_domain=sd)
    assert np.isfinite(search.cv_results_["mean_test_agree"]).all()


def test_skada_dann_as_teacher(shift_data, skada_dann):
    d = shift_data
    before = [p.detach().clone() for p in skada_dann.module_.parameters()]
    kd = KDClassifier(FrozenEstimator(skada_dann), module__widths=(4,), **FAST)
    kd.fit(d.X_src, d.y_src, d.X_tgt)
    unikd = _unikd(skada_dann, teacher_feature_layer="base_module_.embed")
    unikd.fit(d.X_src, d.y_src, d.X_tgt)
    assert unikd.teacher_n_features_ == 8
    for student in (kd, unikd):
        assert student.predict(d.X_tgt_test).shape == (30,)
        # the teacher copy gives the skada net's own eval-mode outputs
        x = torch.from_numpy(d.X_tgt_test[:5])
        with torch.no_grad():
            expected = skada_dann.module_.eval()(x)
        torch.testing.assert_close(student.teacher_logits(x), expected)
    for p, q in zip(skada_dann.module_.parameters(), before, strict=True):
        assert torch.equal(p, q)
