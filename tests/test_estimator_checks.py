"""scikit-learn's estimator checks over every skkd estimator.

sklearn's checks call ``fit(X, y)`` on 2-D data with 1 to 4 classes. Two facts of
the methods meet that: target-domain methods need ``X_tgt``, and a distiller's
teacher is fitted for one label set. So every estimator runs *in full* through a
test-only subclass that supplies what sklearn cannot (the series themselves as
the target set, a teacher fitted on the data of the check), and every method
with a teacher or a target set also runs as it ships, with the failures listed
below and their reasons. A new estimator joins by being exported from ``skkd``.
"""

import inspect

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skkd import BaseDistiller, TimeSeriesClassifier
from skkd.nn import CNN1D, LSTMClassifier
from skkd.teacher import resolve_teacher

from ._estimators import ALL_ESTIMATORS
from ._estimators import target_use as _target_use

SMALL = {"max_epochs": 2, "random_state": 0}
#: a small network of the estimator's default backbone
SMALL_MODULE = {
    CNN1D: {"module__widths": (8, 8)},
    LSTMClassifier: {"module__hidden_size": 4},
}


class _TargetFromX:
    """Test-only: the training series double as the unlabelled target set."""

    def _validate_training_data(self, X, y, X_tgt, sample_domain, reset):
        if X_tgt is None and sample_domain is None:
            X_tgt = X
        return super()._validate_training_data(X, y, X_tgt, sample_domain, reset)


class _OwnTeacher:
    """Test-only: a small teacher is fitted on the data of each check."""

    def prepare_fit(self, X, y, X_tgt):
        teacher = _small_teacher(type(self))
        self.check_teacher_ = teacher.fit(X, self.classes_[y])
        super().prepare_fit(X, y, X_tgt)

    def _resolve_teacher(self):
        return resolve_teacher(self.check_teacher_)


def _self_contained(cls):
    """A subclass of ``cls`` that sklearn's ``fit(X, y)`` can train in full."""
    mixins = []
    if _target_use(cls) == "required":
        mixins.append(_TargetFromX)
    if issubclass(cls, BaseDistiller):
        mixins.append(_OwnTeacher)
    if not mixins:
        return cls
    name = f"SelfContained{cls.__name__}"
    klass = type(name, (*mixins, cls), {"__module__": __name__})
    globals()[name] = klass  # importable by name, so the pickling checks work
    return klass


def _default_module(cls):
    # ITMC's default student (None) is a copy of the teacher, here a CNN1D
    return inspect.signature(cls).parameters["module"].default or CNN1D


def _small(cls):
    return {**SMALL, **SMALL_MODULE[_default_module(cls)]}


def _small_teacher(cls):
    """An unfitted small teacher of the student's backbone family."""
    module = _default_module(cls)
    size = {"module__widths": (4,)} if module is CNN1D else {"module__hidden_size": 5}
    return TimeSeriesClassifier(module=module, max_epochs=1, random_state=0, **size)


def _teacher_for_checks(cls):
    # fitted on classes 0, 1, 2: the label set of most sklearn checks
    X = np.random.default_rng(0).normal(size=(30, 1, 10))
    return _small_teacher(cls).fit(X, np.arange(30) % 3)


def _as_shipped(cls):
    if issubclass(cls, BaseDistiller):
        return cls(_teacher_for_checks(cls), **_small(cls))
    return cls(**_small(cls))


ESTIMATORS = [_self_contained(cls)(**_small(cls)) for cls in ALL_ESTIMATORS] + [
    _as_shipped(cls)
    for cls in ALL_ESTIMATORS
    if _target_use(cls) == "required" or issubclass(cls, BaseDistiller)
]

#: sklearn checks that fail by design, for every estimator
COMMON_XFAIL = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_ "
        "and stores routed module__/optimizer__ parameters"
    ),
    "check_n_features_in_after_fitting": (
        "series are (n, channels, time): the fitted input size is n_channels_in_ "
        "and n_timepoints_in_, and the error message says so in those words"
    ),
    "check_n_features_in": "as check_n_features_in_after_fitting",
}
NEEDS_TARGET = (
    "the method needs unlabelled target series and sklearn's checks call fit(X, y) "
    "only (the full contract runs through its SelfContained subclass)"
)
FIXED_TEACHER = (
    "the teacher was fitted on classes 0, 1, 2; this check uses another label set, "
    "which is a clear ValueError (the full contract runs through its SelfContained "
    "subclass)"
)
#: checks that fit and then use the fitted model: they cannot pass without X_tgt,
#: nor with a teacher fitted on other classes
FIT_DEPENDENT = [
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_classifiers_train",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_fit2d_1feature",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_pipeline_consistency",
]
#: further checks that need a successful fit(X, y) on the classes of the teacher
TARGET_ONLY = [
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_estimators_partial_fit_n_features",
    "check_f_contiguous_array_estimator",
    "check_fit2d_predict1d",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_supervised_y_2d",
]
DEEPCOPY_HASH = (
    "the check compares joblib.hash of a deep copy of the fitted skorch teacher with "
    "the original, and a deep-copied skorch net hashes differently; the teacher is "
    "not changed (tests/test_base.py::test_teacher_is_never_modified checks its bytes)"
)


#: MemKD compares hidden states at pairs of time steps: series need >= 3 steps
SHORT_SERIES_CHECKS = [
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_classifiers_train",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_estimators_partial_fit_n_features",
    "check_fit2d_1feature",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_readonly_memmap_input",
]
SHORT_SERIES = (
    "the check's 2-D data are series of 1 or 2 time steps, which MemKD rejects by "
    "design (no pairs of steps to compare; tests/test_memkd.py checks the message)"
)
POOR_SCORE = (
    "a 4-unit LSTM student trained for 2 epochs does not reach the check's 0.83 "
    "accuracy on 2-step blobs; learning is tested in tests/test_recurrent_kd.py"
)

PRUNED_TINY = (
    "ITMC's student starts as the check's 1-epoch 4-channel teacher and is pruned to "
    "half its parameters in 2 epochs, below the check's 0.83 accuracy; learning and "
    "pruning are tested in tests/test_itmc.py"
)

VAT_RADIUS = (
    "VAT's default radius vat_eps=3.5 is set for standardised HAR windows (9 x 128 "
    "values); on the check's standardised 2-feature blobs a ball of radius 3.5 "
    "spans the classes and VAT flattens the classifier (with vat_eps=0.1 the check "
    "passes); learning is tested in tests/test_vada.py"
)
REFINED_TINY = (
    "DIRT-T refines the check's 1-epoch 4-channel teacher without labels, and that "
    "teacher alone is below the check's 0.83 accuracy; refinement is tested in "
    "tests/test_vada.py"
)

RCDKD_TINY = (
    "RCD-KD (as released) learns from the teacher only, without source labels, on "
    "the target samples its agent selects; the check's 1-epoch 4-channel teacher "
    "is below the check's 0.83 accuracy; learning is tested in tests/test_rcdkd.py"
)


def _expected_failures(estimator):
    failures = dict(COMMON_XFAIL)
    cls = type(estimator)
    shipped = next(c for c in cls.__mro__ if c in ALL_ESTIMATORS)
    if _default_module(shipped) is LSTMClassifier:
        failures["check_classifiers_train"] = POOR_SCORE
    if shipped.__name__ == "MemKDClassifier":
        failures.update(dict.fromkeys(SHORT_SERIES_CHECKS, SHORT_SERIES))
    if shipped.__name__ == "ITMCClassifier":
        failures["check_classifiers_train"] = PRUNED_TINY
    if shipped.__name__ == "VADAClassifier":
        failures["check_classifiers_train"] = VAT_RADIUS
    if shipped.__name__ == "DIRTTClassifier":
        failures["check_classifiers_train"] = REFINED_TINY
    if shipped.__name__ == "RCDKDClassifier":
        failures["check_classifiers_train"] = RCDKD_TINY
    if cls not in ALL_ESTIMATORS:  # the SelfContained subclasses
        return failures
    if issubclass(cls, BaseDistiller):
        failures.update(dict.fromkeys(FIT_DEPENDENT, FIXED_TEACHER))
        failures["check_estimators_overwrite_params"] = DEEPCOPY_HASH
    if _target_use(cls) == "required":
        failures.update(dict.fromkeys(FIT_DEPENDENT + TARGET_ONLY, NEEDS_TARGET))
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_test_subclasses_keep_the_shipped_contract(cls):
    # the subclasses change where X_tgt / the teacher come from, nothing else
    assert set(_self_contained(cls)().get_params()) == set(cls().get_params())
    if _target_use(cls) == "required":
        with pytest.raises(ValueError, match="target"):
            _as_shipped(cls).fit(np.zeros((4, 1, 8)), [0, 1, 2, 0])


def test_every_estimator_is_checked():
    names = {cls.__name__ for cls in ALL_ESTIMATORS}
    assert {"TimeSeriesClassifier", "DANNClassifier", "KDClassifier"} <= names
    assert {"UniKDClassifier", "MobileDAClassifier", "JKUClassifier"} <= names
