"""Model selection: GridSearchCV over distillation hyperparameters, target slicing,
and the label-free selection scorers of ``skkd.metrics``."""

import numpy as np
import pytest
import sklearn
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skkd import MemKDClassifier, UniKDClassifier
from skkd.metrics import (
    SourceAccuracyScorer,
    TargetEntropyScorer,
    TeacherAgreementScorer,
    TeacherKLScorer,
    selection_scorers,
)
from skkd.model_selection import TargetSet

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}


def _unikd(teacher, **params):
    return UniKDClassifier(
        FrozenEstimator(teacher), **{**FAST, "module__widths": (4,), **params}
    )


class _RecordsTarget(UniKDClassifier):
    """Test-only: remembers how many target rows fit trained on."""

    def prepare_fit(self, X, y, X_tgt):
        self.n_target_seen_ = len(X_tgt)
        super().prepare_fit(X, y, X_tgt)


@pytest.mark.parametrize("routing", [False, True])
def test_grid_search_unikd_two_jobs(shift_data, fitted_teacher, routing):
    d = shift_data
    grid = {
        "temperature": [2.0, 4.0],
        "lambda_ukd": [1.0],
        "module__widths": [(4,), (4, 8)],
    }
    with sklearn.config_context(enable_metadata_routing=routing):
        search = GridSearchCV(
            _unikd(fitted_teacher), grid, cv=2, n_jobs=2, error_score="raise"
        )
        search.fit(d.X_src, d.y_src, X_tgt=d.X_tgt)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["temperature"] in (2.0, 4.0)
    # the refitted student keeps its teacher and predicts on target data
    assert search.best_estimator_.predict(d.X_tgt_test).shape == (len(d.X_tgt_test),)


def test_grid_search_memkd(shift_data, lstm_teacher):
    d = shift_data
    student = MemKDClassifier(
        FrozenEstimator(lstm_teacher), module__hidden_size=4, n_pairs=5, **FAST
    )
    search = GridSearchCV(
        student,
        {"memory_weight": [0.1, 1.0], "module__hidden_size": [3, 4]},
        cv=2,
        scoring=selection_scorers(d.X_tgt),
        refit="teacher_agreement",
        error_score="raise",
    )
    search.fit(d.X_src, d.y_src, X_tgt=d.X_tgt)
    for name in selection_scorers():
        assert np.isfinite(search.cv_results_[f"mean_test_{name}"]).all()
    best = search.cv_results_["rank_test_teacher_agreement"].argmin()
    assert search.best_index_ == best


@pytest.mark.parametrize("routing", [False, True])
def test_equal_length_target_set_is_never_silently_sliced(
    shift_data, fitted_teacher, routing
):
    d = shift_data
    X_tgt = d.X_tgt[: len(d.X_src)]
    X_tgt = np.concatenate([X_tgt, d.X_tgt_test])[: len(d.X_src)]
    assert len(X_tgt) == len(d.X_src)
    with sklearn.config_context(enable_metadata_routing=routing):
        search = GridSearchCV(
            _unikd(fitted_teacher), {"temperature": [2.0]}, cv=2, error_score="raise"
        )
        with pytest.raises(ValueError, match="TargetSet"):
            search.fit(d.X_src, d.y_src, X_tgt=X_tgt)
        # wrapped, every fold trains on the whole target set
        params = {"X_tgt": TargetSet(X_tgt)}
        result = cross_validate(
            _RecordsTarget(FrozenEstimator(fitted_teacher), **FAST),
            d.X_src,
            d.y_src,
            cv=KFold(2),
            return_estimator=True,
            params=params,
            error_score="raise",
        )
    assert [e.n_target_seen_ for e in result["estimator"]] == [len(X_tgt)] * 2


def test_equal_lengths_outside_cross_validation_are_fine(shift_data, fitted_teacher):
    d = shift_data
    student = _RecordsTarget(FrozenEstimator(fitted_teacher), **FAST)
    student.fit(d.X_src, d.y_src, d.X_tgt[: len(d.X_src) - 8].repeat(2, axis=0)[:48])
    assert student.n_target_seen_ == len(d.X_src)


def test_different_length_target_set_reaches_folds_whole(shift_data, fitted_teacher):
    d = shift_data
    result = cross_validate(
        _RecordsTarget(FrozenEstimator(fitted_teacher), **FAST),
        d.X_src,
        d.y_src,
        cv=2,
        return_estimator=True,
        params={"X_tgt": d.X_tgt},
        error_score="raise",
    )
    assert [e.n_target_seen_ for e in result["estimator"]] == [len(d.X_tgt)] * 2


# ------------------------------------------------------------------ scorers
def test_scorers_by_hand(shift_data, unikd_student):
    student = unikd_student
    d = shift_data
    X_tgt = d.X_tgt
    proba = student.predict_proba(X_tgt)
    import torch

    teacher = torch.softmax(
        student.teacher_logits(torch.from_numpy(X_tgt.astype(np.float32))), 1
    ).numpy()
    agree = TeacherAgreementScorer(X_tgt=X_tgt)(student, d.X_src, d.y_src)
    assert agree == pytest.approx(np.mean(proba.argmax(1) == teacher.argmax(1)))
    kl = TeacherKLScorer(X_tgt=X_tgt)(student, d.X_src, d.y_src)
    expected = np.sum(teacher * np.log(teacher / proba), axis=1).mean()
    assert kl == pytest.approx(-expected, rel=1e-4, abs=1e-6)
    ent = TargetEntropyScorer(X_tgt=X_tgt)(student, d.X_src, d.y_src)
    assert ent == pytest.approx(np.sum(proba * np.log(proba), axis=1).mean(), rel=1e-4)
    acc = SourceAccuracyScorer()(student, d.X_src, d.y_src)
    assert acc == pytest.approx(student.score(d.X_src, d.y_src))


def test_scorers_read_target_rows_of_the_packed_form(shift_data, unikd_student):
    student = unikd_student
    d = shift_data
    X = np.concatenate([d.X_src, d.X_tgt])
    y = np.concatenate([d.y_src, -np.ones(len(d.X_tgt), dtype=int)])
    sd = np.r_[np.ones(len(d.X_src), int), -2 * np.ones(len(d.X_tgt), int)]
    packed = TeacherAgreementScorer()(student, X, y, sample_domain=sd)
    assert packed == TeacherAgreementScorer(X_tgt=d.X_tgt)(student, d.X_src, d.y_src)
    acc = SourceAccuracyScorer()(student, X, y, sample_domain=sd)
    assert acc == pytest.approx(student.score(d.X_src, d.y_src))


@pytest.mark.parametrize(
    "scorer", [TeacherAgreementScorer, TeacherKLScorer, TargetEntropyScorer]
)
def test_target_scorer_without_target_data_is_a_clear_error(
    shift_data, unikd_student, scorer
):
    d, student = shift_data, unikd_student
    with pytest.raises(ValueError, match="needs|received none"):
        scorer()(student, d.X_src, d.y_src)
    # packed rows without a single target row: the same error
    sd = np.ones(len(d.X_src), dtype=int)
    with pytest.raises(ValueError, match="received none"):
        scorer()(student, d.X_src, d.y_src, sample_domain=sd)
    with pytest.raises(ValueError, match="one entry per row"):
        scorer()(student, d.X_src, d.y_src, sample_domain=sd[:-1])


def test_teacher_scorer_needs_a_distiller(shift_data, fitted_teacher):
    with pytest.raises(TypeError, match="distiller"):
        TeacherAgreementScorer(X_tgt=shift_data.X_tgt)(
            fitted_teacher, shift_data.X_src, shift_data.y_src
        )


def test_scorers_route_sample_domain_with_routing_on():
    with sklearn.config_context(enable_metadata_routing=True):
        routing = TeacherAgreementScorer().get_metadata_routing()
        assert routing.consumes("score", ["sample_domain"]) == {"sample_domain"}


# --------------------------------------------------------------- bad input
def test_packed_form_without_target_rows_same_error_as_missing_target(
    shift_data, fitted_teacher
):
    d = shift_data
    student = _unikd(fitted_teacher)
    with pytest.raises(ValueError) as missing:
        student.fit(d.X_src, d.y_src)
    with pytest.raises(ValueError) as packed:
        student.fit(d.X_src, d.y_src, sample_domain=np.ones(len(d.X_src), int))
    assert str(packed.value) == str(missing.value)
    with pytest.raises(ValueError, match="one entry per row"):
        student.fit(d.X_src, d.y_src, sample_domain=np.ones(3, int))
