"""Hyperparameter search and benchmark sweeps on a Dask LocalCluster (loopback,
2 worker processes), with the teacher shipped to each worker once."""

import pickle

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

distributed = pytest.importorskip("distributed")

from joblib import parallel_config  # noqa: E402

from benchmarks._runner import run_jobs  # noqa: E402
from skkd import MemKDClassifier, TimeSeriesClassifier, UniKDClassifier  # noqa: E402
from skkd.distributed import ScatteredTeacher, _fetch_count, scatter_teacher  # noqa: E402
from skkd.metrics import TeacherAgreementScorer  # noqa: E402
from skkd.nn import LSTMClassifier  # noqa: E402

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0}


def test_grid_search_on_dask_ships_the_teacher_once(client, shift_data):
    d = shift_data
    teacher = TimeSeriesClassifier(module__widths=(64, 64), **FAST)
    teacher.fit(d.X_src, d.y_src)
    ref = scatter_teacher(FrozenEstimator(teacher), client)
    student = UniKDClassifier(ref, module__widths=(4,), **FAST)
    # the task payload carries a key, not the teacher
    plain = UniKDClassifier(FrozenEstimator(teacher), module__widths=(4,), **FAST)
    assert len(pickle.dumps(student)) < len(pickle.dumps(plain)) / 5
    grid = {"temperature": [2.0, 4.0], "lambda_ukd": [0.5, 1.0]}
    search = GridSearchCV(
        student,
        grid,
        cv=2,
        scoring=TeacherAgreementScorer(X_tgt=d.X_tgt),
        error_score="raise",
    )
    with parallel_config(backend="dask"):
        search.fit(d.X_src, d.y_src, X_tgt=d.X_tgt)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # 8 fits ran on the 2 workers; each worker received the teacher once
    fetches = client.run(_fetch_count)
    assert sorted(fetches.values()) == [1, 1]
    # the refitted student (in this process) used the local teacher
    assert isinstance(search.best_estimator_.teacher, ScatteredTeacher)
    assert search.best_estimator_.predict(d.X_tgt_test).shape == (30,)


@pytest.mark.slow
def test_memkd_search_on_dask(client, shift_data):
    d = shift_data
    teacher = TimeSeriesClassifier(module=LSTMClassifier, module__hidden_size=6, **FAST)
    teacher.fit(d.X_src, d.y_src)
    student = MemKDClassifier(
        scatter_teacher(FrozenEstimator(teacher), client),
        module__hidden_size=3,
        n_pairs=4,
        **FAST,
    )
    search = GridSearchCV(student, {"memory_weight": [0.1, 1.0]}, cv=2)
    with parallel_config(backend="dask"):
        search.fit(d.X_src, d.y_src)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_benchmark_sweep_on_dask(client, tmp_path):
    jobs = [{"x": i} for i in range(4)]
    rows = run_jobs(
        jobs,
        dict,
        csv_path=tmp_path / "sweep.csv",
        key=["x"],
        scheduler=client.scheduler.address,
        progress=False,
    )
    assert sorted(r["x"] for r in rows) == [0, 1, 2, 3]
    assert {r["status"] for r in rows} == {"ok"}


def test_missing_teacher_times_out_with_a_clear_error(client, monkeypatch):
    import skkd.distributed as dist

    monkeypatch.setattr(dist, "FETCH_TIMEOUT", 1)
    with pytest.raises(RuntimeError, match="scatter_teacher again after adding"):
        dist._resolve("skkd-test-no-such-teacher")
