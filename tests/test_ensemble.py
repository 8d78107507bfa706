"""TeacherEnsemble: one teacher made of seeds, its module, filters and contract."""

import pickle
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from skkd import DANNClassifier, KDClassifier, TimeSeriesClassifier, UniKDClassifier
from skkd.ensemble import CollapseFilter, EnsembleModule, TeacherEnsemble
from skkd.metrics import prediction_collapse
from skkd.nn import CNN1D, LSTMClassifier, ResNet1D

BASE = {"module__widths": (4, 8), "max_epochs": 1, "batch_size": 16}
STUDENT = {"module__widths": (4,), "max_epochs": 1, "batch_size": 16}


def _base(**kw):
    return TimeSeriesClassifier(**{**BASE, **kw})


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class LogitsOnly(nn.Module):
    """A network whose logits are not a linear head over features."""

    def __init__(self, n_channels, n_classes):
        super().__init__()
        self.n_channels = n_channels
        self.conv = nn.Conv1d(n_channels, n_classes, 3, padding=1)

    def forward(self, x):
        return self.conv(x).amax(dim=-1)


# ------------------------------------------------------------------ the module
@pytest.mark.parametrize(
    "make",
    [
        lambda: CNN1D(3, 4, widths=(4, 8)),
        lambda: ResNet1D(3, 4, n_filters=(4, 6), kernel_sizes=(3,)),
        lambda: LSTMClassifier(3, 4, hidden_size=5),
    ],
    ids=["cnn", "resnet", "lstm"],
)
def test_head_over_concatenated_features_reproduces_the_logit_average(make):
    torch.manual_seed(0)
    nets = [make().eval() for _ in range(3)]
    ens = EnsembleModule(nets).eval()
    x = torch.randn(7, 3, 20)
    with torch.no_grad():
        mean = torch.stack([net(x) for net in nets]).mean(0)
        features = ens.forward_features(x)
        assert features.shape == (7, sum(n.n_features for n in nets))
        assert ens.n_features == features.shape[1]
        assert isinstance(ens.head, nn.Linear)
        torch.testing.assert_close(ens.head(features), ens(x))
        torch.testing.assert_close(ens(x), mean, rtol=1e-5, atol=1e-6)
    assert ens.n_channels == 3 and ens.n_classes == 4


def test_members_without_a_linear_head_average_logits_and_name_the_fix():
    torch.manual_seed(0)
    nets = [LogitsOnly(3, 4).eval() for _ in range(2)]
    ens = EnsembleModule(nets).eval()
    x = torch.randn(5, 3, 16)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), (nets[0](x) + nets[1](x)) / 2)
    assert not ens.has_feature_head and not hasattr(ens, "head")
    with pytest.raises(TypeError, match="KDClassifier"):
        ens.forward_features(x)
    with pytest.raises(ValueError, match="feature_head='auto'"):
        EnsembleModule(nets, feature_head=True)
    with pytest.raises(ValueError, match="non-empty"):
        EnsembleModule([])


# ---------------------------------------------------------------- the estimator
def test_fit_gives_one_classifier_of_averaged_logits(teacher_ensemble, shift_data):
    d, ens = shift_data, teacher_ensemble
    assert len(ens.estimators_) == 3 and ens.seeds_.tolist() == [0, 1, 2]
    assert ens.kept_.tolist() == [True] * 3 and ens.member_scores_ is None
    assert ens.initialized_ and isinstance(ens.module_, EnsembleModule)
    assert not ens.module_.training
    assert ens.module_.n_features == 3 * 8
    np.testing.assert_array_equal(ens.classes_, np.unique(d.y_src))
    logits = []
    for member in ens.estimators_:
        member.module_.eval()
        with torch.no_grad():
            logits.append(member.module_(torch.from_numpy(d.X_tgt_test)))
    mean = torch.stack(logits).mean(0)
    np.testing.assert_allclose(
        ens.predict_proba(d.X_tgt_test), torch.softmax(mean, 1).numpy(), atol=1e-6
    )
    np.testing.assert_array_equal(
        ens.predict(d.X_tgt_test), ens.classes_[mean.argmax(1).numpy()]
    )
    assert 0.0 <= ens.score(d.X_tgt_test, d.y_tgt_test) <= 1.0


def test_seeds_reproduce_the_single_fits(shift_data):
    d = shift_data
    ens = TeacherEnsemble(_base(), n_members=2, seeds=[7, 3])
    ens.fit(d.X_src, d.y_src, d.X_tgt)
    assert ens.seeds_.tolist() == [7, 3]
    for seed, member in zip([7, 3], ens.estimators_, strict=True):
        single = _base(random_state=seed).fit(d.X_src, d.y_src, d.X_tgt)
        assert member.random_state == seed
        assert _states_equal(member.module_, single.module_)


def test_callers_arrays_and_estimator_are_not_modified(shift_data):
    d = shift_data
    X, y, X_tgt = d.X_src.astype(np.float64), d.y_src.copy(), d.X_tgt.copy()
    X0, y0, X_tgt0 = X.copy(), y.copy(), X_tgt.copy()
    base = _base()
    params = base.get_params(deep=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # may keep one member only
        TeacherEnsemble(base, n_members=2, member_filter="collapse").fit(X, y, X_tgt)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(X_tgt, X_tgt0)
    assert not base.initialized_ and base.random_state is None
    assert base.get_params(deep=False).keys() == params.keys()


def test_clone_params_and_pickle(teacher_ensemble, shift_data):
    ens = teacher_ensemble
    params = ens.get_params()
    assert params["n_members"] == 3 and "estimator__lr" in params
    fresh = clone(ens)
    assert not hasattr(fresh, "module_") and not fresh.initialized_
    fresh.set_params(estimator__lr=0.5, n_members=2)
    assert fresh.estimator.lr == 0.5 and ens.estimator.lr != 0.5
    back = pickle.loads(pickle.dumps(ens))
    X = shift_data.X_tgt_test
    np.testing.assert_array_equal(back.predict_proba(X), ens.predict_proba(X))
    # members and module still share their networks after the round trip
    assert back.module_.members[0] is back.estimators_[0].module_


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_members": 0}, ValueError, "n_members must be an integer >= 1"),
        ({"n_members": 2.5}, ValueError, "n_members must be an integer"),
        ({"n_members": 3, "seeds": [0, 1]}, ValueError, "one seed per member"),
        ({"n_members": 2, "seeds": [4, 4]}, ValueError, "distinct seeds"),
        ({"n_members": 2, "seeds": [0.5, 1]}, ValueError, "sequence of integers"),
        ({"member_filter": "entropy"}, ValueError, "member_filter must be"),
    ],
)
def test_bad_parameters_are_clear_errors(shift_data, kwargs, error, match):
    d = shift_data
    with pytest.raises(error, match=match):
        TeacherEnsemble(_base(), **kwargs).fit(d.X_src, d.y_src, d.X_tgt)


def test_estimator_without_random_state_or_module_is_a_clear_error(shift_data):
    d = shift_data
    X2 = d.X_src.reshape(len(d.X_src), -1)
    with pytest.raises(TypeError, match="random_state parameter"):
        TeacherEnsemble(KNeighborsClassifier(), n_members=2).fit(X2, d.y_src)
    with pytest.raises(TypeError, match="get_params"):
        TeacherEnsemble(CNN1D(3, 3), n_members=2).fit(d.X_src, d.y_src)


def test_filter_without_target_data_is_a_clear_error(shift_data):
    d = shift_data
    with pytest.raises(ValueError, match=r"fit\(X, y, X_tgt\)"):
        TeacherEnsemble(_base(), n_members=2, member_filter="collapse").fit(
            d.X_src, d.y_src
        )


def test_unfitted_ensemble_is_not_a_teacher(shift_data):
    d = shift_data
    student = KDClassifier(FrozenEstimator(TeacherEnsemble(_base())), **STUDENT)
    with pytest.raises(NotFittedError, match="TeacherEnsemble is not fitted"):
        student.fit(d.X_src, d.y_src, d.X_tgt)
    with pytest.raises(NotFittedError):
        TeacherEnsemble(_base()).predict(d.X_tgt_test)


# -------------------------------------------------------------------- distilling
@pytest.mark.parametrize("cls", [KDClassifier, UniKDClassifier])
def test_frozen_ensemble_teaches_distillers(teacher_ensemble, shift_data, cls):
    d = shift_data
    before = {k: v.clone() for k, v in teacher_ensemble.module_.state_dict().items()}
    student = cls(FrozenEstimator(teacher_ensemble), random_state=0, **STUDENT)
    student.fit(d.X_src, d.y_src, d.X_tgt)
    assert student.predict(d.X_tgt_test).shape == (len(d.X_tgt_test),)
    if cls is UniKDClassifier:
        assert student.teacher_n_features_ == teacher_ensemble.module_.n_features
    x = torch.from_numpy(d.X_tgt_test[:5])
    with torch.no_grad():
        torch.testing.assert_close(
            student.teacher_module_(x),
            teacher_ensemble.module_(x),
            rtol=1e-5,
            atol=1e-6,
        )
    after = teacher_ensemble.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # clone keeps the ensemble fitted (GridSearchCV clones per candidate)
    assert clone(student).teacher.estimator is teacher_ensemble


def test_logit_only_members_teach_kd_and_feature_methods_name_the_fix(shift_data):
    d = shift_data
    base = TimeSeriesClassifier(LogitsOnly, max_epochs=1, batch_size=16)
    ens = TeacherEnsemble(base, n_members=2)
    ens.fit(d.X_src, d.y_src, d.X_tgt)
    assert not ens.module_.has_feature_head
    KDClassifier(FrozenEstimator(ens), **STUDENT).fit(d.X_src, d.y_src, d.X_tgt)
    with pytest.raises(TypeError, match="UniKDClassifier.*logit-based method"):
        UniKDClassifier(FrozenEstimator(ens), **STUDENT).fit(d.X_src, d.y_src, d.X_tgt)


# ----------------------------------------------------------------------- export
def test_onnx_round_trip_of_the_ensemble_module(teacher_ensemble, shift_data, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from skkd.export import load_onnx, to_onnx

    X = shift_data.X_tgt_test
    path = to_onnx(
        teacher_ensemble.module_,
        tmp_path / "ens.onnx",
        n_timepoints=X.shape[2],
        X_verify=X,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(None, {"input": X})[0]
    np.testing.assert_allclose(
        onnx_logits, teacher_ensemble.decision_function(X), rtol=1e-4, atol=1e-5
    )
    # the estimator itself (and FrozenEstimator of it) export with its classes
    for obj in (teacher_ensemble, FrozenEstimator(teacher_ensemble)):
        clf = load_onnx(to_onnx(obj, tmp_path / "est.onnx", X_verify=X))
        np.testing.assert_array_equal(clf.predict(X), teacher_ensemble.predict(X))


# ---------------------------------------------------------------------- filters
def test_prediction_collapse_and_its_errors():
    stats = prediction_collapse(np.array(["a", "a", "b", "a"]), ["a", "b", "c"])
    np.testing.assert_allclose(stats.shares, [0.75, 0.25, 0.0])
    assert stats.max_class_share == 0.75
    assert stats.entropy == pytest.approx(
        -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)) / np.log(3)
    )
    assert prediction_collapse([1, 1], [1]).entropy == 0.0
    with pytest.raises(ValueError, match="classes=clf.classes_"):
        prediction_collapse([0, 5], [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        prediction_collapse([], [0, 1])


def test_collapse_filter_rules():
    classes = np.arange(6)
    even = np.tile(classes, 10)
    three = np.tile([0, 1, 2], 20)  # spread over 3 of 6 classes only
    one = np.r_[np.zeros(50, int), np.arange(6), np.arange(4)]  # share 0.85
    keep, scores, details = CollapseFilter().select([even, three, one], even, classes)
    assert keep.tolist() == [True, False, False]
    assert details["max_class_share_threshold"] == pytest.approx(7 / 12)
    assert details["entropy_threshold"] == pytest.approx(0.75)
    np.testing.assert_allclose(scores, details["entropy"])
    assert scores[0] == pytest.approx(1.0)
    # thresholds are parameters
    keep, _, _ = CollapseFilter(max_class_share=0.9, min_entropy_ratio=0.5).select(
        [even, three, one], even, classes
    )
    assert keep.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="max_class_share"):
        CollapseFilter(max_class_share=1.5).select([even], even, classes)


def test_collapse_filter_in_fit_is_consistent(shift_data):
    d = shift_data
    ens = TeacherEnsemble(_base(), n_members=3, member_filter="collapse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ens.fit(d.X_src, d.y_src, d.X_tgt)
    det = ens.filter_details_
    rule = (det["max_class_share"] <= det["max_class_share_threshold"]) & (
        det["entropy"] >= det["entropy_threshold"]
    )
    if rule.any():
        np.testing.assert_array_equal(ens.kept_, rule)
    assert len(ens.module_.members) == ens.kept_.sum() >= 1
    np.testing.assert_allclose(ens.member_scores_, det["entropy"])
    kept = [m.module_ for m, k in zip(ens.estimators_, ens.kept_, strict=True) if k]
    assert all(a is b for a, b in zip(ens.module_.members, kept, strict=True))


def test_callable_filter_and_never_dropping_every_member(shift_data):
    d = shift_data
    seen = []

    def keep_seed_one(member, X_tgt):
        seen.append(X_tgt.shape)
        return member.random_state == 1

    ens = TeacherEnsemble(_base(), n_members=3, member_filter=keep_seed_one)
    ens.fit(d.X_src, d.y_src, d.X_tgt)
    assert seen == [d.X_tgt.shape] * 3
    assert ens.kept_.tolist() == [False, True, False]
    assert ens.member_scores_.tolist() == [0.0, 1.0, 0.0]
    assert ens.module_.members[0] is ens.estimators_[1].module_
    ens.set_params(member_filter=lambda member, X_tgt: False)
    with pytest.warns(UserWarning, match="flagged all 3 members"):
        ens.fit(d.X_src, d.y_src, d.X_tgt)
    assert ens.kept_.tolist() == [True, False, False]


@pytest.mark.usefixtures("routing_on")  # skada's scorers route sample_domain
def test_a_filter_built_on_a_skada_scorer(shift_data):
    metrics = pytest.importorskip("skada.metrics")
    d = shift_data

    def confident(member, X_tgt, max_entropy=1.0):
        # skada's scorers read target rows from sample_domain < 0
        sd = -np.ones(len(X_tgt), dtype=int)
        scorer = metrics.PredictionEntropyScorer()  # minus the mean entropy
        return -scorer(member, X_tgt, -np.ones(len(X_tgt)), sample_domain=sd) < (
            max_entropy
        )

    ens = TeacherEnsemble(_base(), n_members=2, member_filter=confident)
    ens.fit(d.X_src, d.y_src, d.X_tgt)
    assert ens.kept_.sum() >= 1 and ens.member_scores_ is not None


def test_packed_form_feeds_members_and_the_filter(shift_data):
    d = shift_data
    X = np.concatenate([d.X_src, d.X_tgt])
    y = np.r_[d.y_src, -np.ones(len(d.X_tgt), dtype=int)]
    sd = np.r_[np.ones(len(d.X_src), dtype=int), -np.ones(len(d.X_tgt), dtype=int)]
    shapes = []
    ens = TeacherEnsemble(
        DANNClassifier(**BASE),
        n_members=2,
        member_filter=lambda m, X_tgt: shapes.append(X_tgt.shape) or True,
    )
    ens.fit(X, y, sample_domain=sd)
    assert shapes == [d.X_tgt.shape] * 2
    np.testing.assert_array_equal(ens.classes_, np.unique(d.y_src))


def test_members_fit_on_dask(shift_data):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    d = shift_data
    ens = TeacherEnsemble(_base(), n_members=2)
    with (
        distributed.Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ),
        parallel_config(backend="dask"),
    ):
        ens.fit(d.X_src, d.y_src, d.X_tgt)
    local = TeacherEnsemble(_base(), n_members=2).fit(d.X_src, d.y_src, d.X_tgt)
    for a, b in zip(ens.estimators_, local.estimators_, strict=True):
        assert _states_equal(a.module_, b.module_)


def _code_blocks(text):
    """The bodies of the ``.. code-block:: python`` directives of an rst text."""
    lines, blocks = text.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() != ".. code-block:: python":
            continue
        indent = len(line) - len(line.lstrip())
        body = []
        for next_line in lines[i + 1 :]:
            if next_line.strip() and len(next_line) - len(next_line.lstrip()) <= indent:
                break
            body.append(next_line)
        blocks.append(textwrap.dedent("\n".join(body)))
    return blocks


def test_user_guide_example_runs(capsys):
    guide = Path(__file__).resolve().parents[1] / "docs" / "user_guide.rst"
    text = guide.read_text(encoding="utf-8")
    section = text.split("\nEnsembles of teachers\n")[1]
    section = section.split("\nCompression report")[0]
    blocks = _code_blocks(section)
    assert len(blocks) == 2
    namespace = {}
    for code in blocks:
        exec(compile(code, str(guide), "exec"), namespace)
    out = capsys.readouterr().out
    assert "teacher F1:" in out and "student F1:" in out
    assert isinstance(namespace["teacher"], TeacherEnsemble)
    assert namespace["confident_teacher"].member_filter is namespace["confident"]
