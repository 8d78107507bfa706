"""Reliability across processes (issue #8, items 3 and 4).

A fit killed with SIGKILL resumes from its checkpoint to the result of an
uninterrupted fit; a fixed ``random_state`` gives bit-identical predictions in
separate processes; joblib's ``n_jobs`` and the Dask backend give the results of
a sequential run.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.model_selection import cross_val_score
from skorch.callbacks import LoadInitState

from skkd.callbacks import Checkpoint

from ._estimators import ALL_ESTIMATORS, accepts_target, fit_args, make, tiny_data

ROOT = Path(__file__).resolve().parents[1]


def run_python(code, *args, wait=True):
    """Run ``code`` in a fresh interpreter that imports this checkout's skkd."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", textwrap.dedent(code), *map(str, args)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return out.decode()


# --------------------------------------------------------------- kill, resume
CHILD_FIT = """
import pathlib, sys, time
import torch
torch.set_num_threads(1)
from skorch.callbacks import Callback, LoadInitState
import skkd
from skkd.callbacks import Checkpoint
from tests._estimators import fit_args, make, tiny_data

cls, folder = getattr(skkd, sys.argv[1]), sys.argv[2]

class Stall(Callback):
    # in epoch 3, after its first batch: tell the parent, then wait to be killed
    def on_batch_begin(self, net, training=False, **kwargs):
        if training and len(net.history) == 3 and len(net.history[-1]["batches"]) == 2:
            pathlib.Path(folder, "stalled").touch()
            time.sleep(120)

cp = Checkpoint(dirname=folder)
est = make(cls, max_epochs=4, batch_size=6,
           callbacks=[cp, LoadInitState(cp), ("stall", Stall())])
est.fit(*fit_args(cls, *tiny_data()))
"""


@pytest.mark.parametrize(
    "name",
    [
        "UniKDClassifier",  # three optimizers, adapter, two discriminators
        pytest.param("MemKDClassifier", marks=pytest.mark.slow),  # recurrent
    ],
)
def test_sigkilled_fit_resumes_to_the_uninterrupted_result(name, tmp_path):
    import skkd

    cls = getattr(skkd, name)
    proc = run_python(CHILD_FIT, name, tmp_path, wait=False)
    deadline = time.monotonic() + 240
    while not (tmp_path / "stalled").exists():
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "the child never reached epoch 3"
        time.sleep(0.1)
    proc.kill()  # SIGKILL: no cleanup, no finally blocks
    proc.communicate()
    assert proc.returncode == -9

    X, y, X_tgt = tiny_data()
    args = fit_args(cls, X, y, X_tgt)
    cp = Checkpoint(dirname=str(tmp_path))
    resumed = make(cls, max_epochs=4, batch_size=6, callbacks=[cp, LoadInitState(cp)])
    resumed.fit(*args)
    full = make(cls, max_epochs=4, batch_size=6).fit(*args)
    assert len(resumed.history_) == 4
    assert [row["epoch"] for row in resumed.history_] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.predict_proba(X), full.predict_proba(X))


# ------------------------------------------------------------ reproducibility
PREDICTION_HASHES = """
import hashlib, json
import torch
torch.set_num_threads(1)
from tests._estimators import ALL_ESTIMATORS, fit_args, make, tiny_data

X, y, X_tgt = tiny_data()
out = {}
for cls in ALL_ESTIMATORS:
    for seed in (0, 1):
        est = make(cls, max_epochs=2, batch_size=6, random_state=seed)
        proba = est.fit(*fit_args(cls, X, y, X_tgt)).predict_proba(X)
        out[f"{cls.__name__}-{seed}"] = hashlib.sha256(proba.tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_same_seed_same_bits_in_two_processes():
    procs = [run_python(PREDICTION_HASHES, wait=False) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert results[0] == results[1]
    # and the same bits here, in the test process
    X, y, X_tgt = tiny_data()
    for cls in ALL_ESTIMATORS:
        est = make(cls, max_epochs=2, batch_size=6, random_state=0)
        proba = est.fit(*fit_args(cls, X, y, X_tgt)).predict_proba(X)
        digest = hashlib.sha256(proba.tobytes()).hexdigest()
        assert digest == results[0][f"{cls.__name__}-0"], cls.__name__
        # a different seed gives a different model
        assert results[0][f"{cls.__name__}-0"] != results[0][f"{cls.__name__}-1"]


def _cv_scores(cls, n_jobs=None):
    X, y, X_tgt = tiny_data()
    params = {"X_tgt": X_tgt} if accepts_target(cls) else None
    est = make(cls, max_epochs=2, batch_size=4)
    scores = cross_val_score(est, X, y, cv=2, n_jobs=n_jobs, params=params)
    # predictions, not only scores: bit-identical models
    est.fit(*fit_args(cls, X, y, X_tgt))
    return np.concatenate([scores, est.predict_proba(X).ravel()])


@pytest.mark.slow
def test_n_jobs_and_dask_do_not_change_results():
    pytest.importorskip("distributed")
    from dask.distributed import Client

    sequential = {cls: _cv_scores(cls) for cls in ALL_ESTIMATORS}
    for cls in ALL_ESTIMATORS:
        np.testing.assert_array_equal(
            _cv_scores(cls, n_jobs=2), sequential[cls], err_msg=cls.__name__
        )
    # threads in one process: seeded fits take turns on torch's global RNG
    with joblib.parallel_backend("threading", n_jobs=2):
        for cls in ALL_ESTIMATORS:
            np.testing.assert_array_equal(
                _cv_scores(cls, n_jobs=2), sequential[cls], err_msg=cls.__name__
            )
    with (
        Client(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ),
        joblib.parallel_backend("dask"),
    ):
        differ = [
            cls.__name__
            for cls in ALL_ESTIMATORS
            if not np.array_equal(_cv_scores(cls, n_jobs=2), sequential[cls])
        ]
    # a worker thread scores one fold while the other fits the next: prediction
    # must not draw from torch's RNG that the seeded fit holds
    assert differ == []


def test_predict_leaves_torchs_rng_alone():
    """A DataLoader draws a seed from torch's global RNG each time it is
    iterated; skkd's predict must not (see test_n_jobs_and_dask_...)."""
    import torch

    from skkd import TimeSeriesClassifier

    X, y, _ = tiny_data()
    est = make(TimeSeriesClassifier).fit(X, y)
    before = torch.random.get_rng_state()
    est.predict_proba(X)
    est.score(X, y)
    assert torch.equal(torch.random.get_rng_state(), before)
