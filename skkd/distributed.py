"""Hyperparameter search on a Dask cluster, with the teacher shipped once.

scikit-learn's searches run their fits through joblib, so they run on a Dask
cluster inside ``joblib.parallel_config(backend="dask")``. joblib ships every
candidate-and-fold task with its own clone of the estimator, teacher included:
a large teacher would cross the network once per fit. :func:`scatter_teacher`
broadcasts it to every worker once and puts a small reference in its place.
Needs ``dask.distributed`` (the ``bench`` or ``test`` extra).
"""

import pickle
import threading

__all__ = ["ScatteredTeacher", "scatter_teacher"]

# per-process cache of resolved teachers: each worker deserialises a teacher once
_CACHE = {}
_LOCK = threading.Lock()
_FETCHES = {"count": 0}
#: seconds a worker waits for a scattered teacher it does not hold
FETCH_TIMEOUT = 300


def _fetch_count():
    """How many teachers this process received or fetched (for tests)."""
    return _FETCHES["count"]


def _install(key, payload):
    """Run on every worker by :func:`scatter_teacher`: keep the teacher in memory."""
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = pickle.loads(payload)
            _FETCHES["count"] += 1
    return key


def _fetch(key):
    """The teacher from the cluster, for a process that was not sent it."""
    from distributed import Future, get_client, get_worker, worker_client

    try:
        get_worker()
    except ValueError:  # not a worker: this process's client
        return Future(key, get_client()).result(timeout=FETCH_TIMEOUT)
    # a task blocking on the cluster leaves the worker's thread pool first
    with worker_client() as client:
        return Future(key, client).result(timeout=FETCH_TIMEOUT)


def _resolve(key):
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            value = _fetch(key)
        except TimeoutError as exc:
            raise RuntimeError(
                f"The scattered teacher {key!r} did not reach this process within "
                f"{FETCH_TIMEOUT} s. Keep the ScatteredTeacher returned by "
                "scatter_teacher (and its client) alive during the search, and call "
                "scatter_teacher again after adding workers to the cluster."
            ) from exc
        _CACHE[key] = value
        _FETCHES["count"] += 1
        return value


class ScatteredTeacher:
    """A reference to a teacher held in the memory of every Dask worker.

    Pass it as ``teacher=`` to any skkd distiller: it pickles as its key
    only, and resolves (once per process) to the teacher the workers hold. In
    the process that created it the original object is used directly. Create
    it with :func:`scatter_teacher`.

    Parameters
    ----------
    future : distributed.Future
        Future of the broadcast teacher (keeps the data alive on the cluster).
    local : object
        The teacher itself (never pickled).

    Attributes
    ----------
    key : str
        Key of the teacher on the cluster.

    Examples
    --------
    >>> from torch import nn
    >>> class FakeFuture:
    ...     key = "teacher-0"
    >>> ref = ScatteredTeacher(FakeFuture(), nn.Linear(2, 2))
    >>> type(ref.estimator).__name__
    'Linear'
    """

    def __init__(self, future, local):
        self._future = future
        self._local = local
        self.key = future.key

    @property
    def estimator(self):
        """The teacher (the wrapped object, as ``FrozenEstimator.estimator``)."""
        if self._local is not None:
            return self._local
        return _resolve(self.key)

    def __getstate__(self):
        # only the key travels; the future and the teacher stay here
        return {"key": self.key}

    def __setstate__(self, state):
        self.key = state["key"]
        self._future = None
        self._local = None

    def __repr__(self):
        return f"ScatteredTeacher(key={self.key!r})"


def scatter_teacher(teacher, client=None):
    """Broadcast a teacher to every Dask worker once; return a small reference.

    Parameters
    ----------
    teacher : object
        What you would pass as ``teacher=``: ``FrozenEstimator(fitted_net)``,
        a fitted net or a trained ``torch.nn.Module``.
    client : distributed.Client, optional
        The cluster's client (default: the current one).

    Returns
    -------
    ref : ScatteredTeacher
        Use as ``teacher=ref``; keep it (and the client) alive during the
        search.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from joblib import parallel_config  # doctest: +SKIP
    >>> with Client(LocalCluster(n_workers=2)) as client:  # doctest: +SKIP
    ...     student = UniKDClassifier(scatter_teacher(FrozenEstimator(teacher)))
    ...     with parallel_config(backend="dask"):
    ...         GridSearchCV(student, grid).fit(X_src, y_src, X_tgt=X_tgt)
    """
    try:
        from distributed import get_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "scatter_teacher needs dask.distributed: pip install 'skkd[bench]'"
        ) from exc
    if isinstance(teacher, ScatteredTeacher):
        return teacher
    client = get_client() if client is None else client
    # the scattered copy serves workers that join later; a broadcast is not
    # relied on: the scheduler drops replicas that no task depends on
    future = client.scatter(teacher, hash=False)
    # every current worker keeps its own copy, sent once per worker, outside
    # the scheduler's memory management; clones made here use the original
    client.run(_install, future.key, pickle.dumps(teacher))
    with _LOCK:
        _CACHE.setdefault(future.key, teacher)
    return ScatteredTeacher(future, teacher)
