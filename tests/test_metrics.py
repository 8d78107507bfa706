"""Tests for skkd.metrics."""

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, cross_val_score

from skkd.metrics import macro_f1, macro_f1_scorer, target_scores


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 6, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 6, 200))
    expected = f1_score(y_true, y_pred, average="macro")
    assert macro_f1(y_true, y_pred) == pytest.approx(expected)
    assert isinstance(macro_f1(y_true, y_pred), float)


def test_macro_f1_edge_cases():
    assert macro_f1([0, 1, 2], [0, 1, 2]) == 1.0
    assert macro_f1([0, 0, 1, 1], [1, 1, 0, 0]) == 0.0
    # A class never predicted scores 0.
    assert macro_f1([0, 0, 1, 1], [0, 0, 0, 0]) == pytest.approx((2 / 3 + 0) / 2)
    # Labels need not be 0..k-1.
    assert macro_f1(["a", "b"], ["a", "b"]) == 1.0


def test_macro_f1_no_warning_on_missing_class(recwarn):
    macro_f1([0, 0, 1, 1], [0, 0, 0, 0])
    assert not [w for w in recwarn if "ill-defined" in str(w.message)]


def test_target_scores():
    X = np.arange(20, dtype=float).reshape(-1, 1)
    y = (X.ravel() >= 10).astype(int)
    clf = LogisticRegression().fit(X, y)
    scores = target_scores(clf, X, y)
    assert set(scores) == {"macro_f1", "accuracy"}
    y_pred = clf.predict(X)
    assert scores["accuracy"] == pytest.approx(accuracy_score(y, y_pred))
    assert scores["macro_f1"] == pytest.approx(f1_score(y, y_pred, average="macro"))
    for value in scores.values():
        assert isinstance(value, float) and 0.0 <= value <= 1.0


def test_target_scores_majority_baseline():
    X, y = np.zeros((6, 2)), np.array([0, 0, 0, 0, 1, 2])
    clf = DummyClassifier(strategy="most_frequent").fit(X, y)
    scores = target_scores(clf, X, y)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["macro_f1"] == pytest.approx((0.8 + 0 + 0) / 3)


def test_target_scores_on_3d_inputs():
    class FirstValue:
        # Stand-in for a time-series model that predicts from (n, C, L) input.
        def predict(self, X):
            return (X[:, 0, 0] > 0).astype(int)

    X = np.zeros((4, 3, 5))
    X[2:, 0, 0] = 1.0
    assert target_scores(FirstValue(), X, [0, 0, 1, 1]) == {
        "macro_f1": 1.0,
        "accuracy": 1.0,
    }


def test_scorer_in_grid_search_and_cross_val():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    search = GridSearchCV(
        LogisticRegression(max_iter=500),
        {"C": [0.01, 1.0]},
        scoring=macro_f1_scorer,
        cv=3,
    ).fit(X, y)
    assert 0.0 <= search.best_score_ <= 1.0
    cv = cross_val_score(
        LogisticRegression(max_iter=500), X, y, cv=3, scoring=macro_f1_scorer
    )
    assert cv.shape == (3,)
    # The scorer equals macro_f1 on the estimator's predictions.
    clf = search.best_estimator_
    assert macro_f1_scorer(clf, X, y) == pytest.approx(macro_f1(y, clf.predict(X)))


@pytest.mark.usefixtures("routing_on")  # importing skada turns routing on for good
def test_skada_view_lets_every_label_free_skada_scorer_score_a_skkd_net():
    import torch
    from skada.metrics import (
        DeepEmbeddedValidation,
        ImportanceWeightedScorer,
        MaNoScorer,
        PredictionEntropyScorer,
        SoftNeighborhoodDensity,
    )

    from skkd import DANNClassifier
    from skkd.datasets import make_domain_shift
    from skkd.metrics import SkadaView

    torch.set_num_threads(1)
    d = make_domain_shift(n_samples=60, n_target=40, random_state=0)
    net = DANNClassifier(max_epochs=2, random_state=0).fit(d.X_src, d.y_src, d.X_tgt)
    weights = [p.detach().clone() for p in net.module_.parameters()]
    view = SkadaView(net)
    net.module_.train()  # reading features must not change the user's module mode
    assert view.predict_features(d.X_tgt).shape == (40, net.module_.n_features)
    logits = view.infer(d.X_tgt)
    assert net.module_.training
    X = np.concatenate([d.X_src, d.X_tgt])
    y = np.concatenate([d.y_src, -np.ones(len(d.X_tgt), dtype=int)])
    domain = np.concatenate([np.ones(len(d.X_src)), -2 * np.ones(len(d.X_tgt))])
    scorers = [
        PredictionEntropyScorer(),
        SoftNeighborhoodDensity(),
        DeepEmbeddedValidation(random_state=0),
        ImportanceWeightedScorer(),
        MaNoScorer(),
    ]
    for scorer in scorers:
        assert np.isfinite(scorer(view, X, y, sample_domain=domain)), scorer
    np.testing.assert_allclose(
        torch.softmax(logits, 1).numpy(),
        net.predict_proba(d.X_tgt),
        rtol=1e-5,
        atol=1e-6,
    )
    after = list(net.module_.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, after, strict=True))
    with pytest.raises(TypeError, match="never refits"):
        view.fit(d.X_src, d.y_src)
