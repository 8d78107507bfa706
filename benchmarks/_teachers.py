"""The label-free teachers of the UCI-HAR suites: one factory and one cache.

``skkd bench har`` and ``skkd bench itmc`` distil the teacher chosen with
``--teacher`` (every kind is trained without target labels); the MobileDA
and AAD students always distil the source-only teacher. A teacher's *name*
is its kind, plus the member count of an ensemble that does not have the
default 5 (``"ensemble-2"``); it is recorded in the ``teacher`` column of
every row and in the name of every cached teacher, so results and cached
teachers of different teachers never mix.
"""

import os
import re
import time
from pathlib import Path

import joblib

__all__ = [
    "DEFAULT_TEACHER",
    "ENSEMBLE_MEMBERS",
    "TEACHERS",
    "TEACHER_WIDTHS",
    "add_teacher_arguments",
    "load_or_fit_teacher",
    "make_teacher",
    "teacher_epochs",
    "teacher_name",
]

TEACHER_WIDTHS = (64, 128, 128)
#: the teacher of every row without a ``teacher`` column (earlier runs)
DEFAULT_TEACHER = "dann"
ENSEMBLE_MEMBERS = 5
#: ``--teacher`` kinds (CNN 64/128/128, no target labels) -> description
TEACHERS = {
    "dann": "DANN, skkd's defaults (UNI-KD's teacher pre-training)",
    "dann-adatime": "DANN, AdaTime's HAR recipe skkd.classifiers.ADATIME_HAR_DANN "
    "(always its 40 epochs)",
    "vada": "VADA, AdaTime's tuned HAR setting (VADAClassifier's defaults)",
    "dirtt": "DIRT-T refinement of the VADA teacher (as many epochs again)",
    "ensemble": "TeacherEnsemble of DANN seeds with the collapse filter",
}


def teacher_name(kind, members=ENSEMBLE_MEMBERS):
    """The name of a teacher, as rows and cached teachers record it.

    Parameters
    ----------
    kind : str
        A key of :data:`TEACHERS`.
    members : int, default=5
        Members of an ``"ensemble"`` teacher (ignored for the other kinds).

    Returns
    -------
    name : str

    Examples
    --------
    >>> teacher_name("vada"), teacher_name("ensemble"), teacher_name("ensemble", 2)
    ('vada', 'ensemble', 'ensemble-2')
    """
    if kind not in TEACHERS:
        raise ValueError(f"unknown teacher {kind!r}; choose from {list(TEACHERS)}")
    if kind == "ensemble" and members != ENSEMBLE_MEMBERS:
        return f"ensemble-{int(members)}"
    return kind


def teacher_epochs(name, epochs):
    """Epochs a teacher trains for: its recipe's own, else ``epochs``.

    Parameters
    ----------
    name : str
        Teacher name (see :func:`teacher_name`) or ``"source"``.
    epochs : int
        The suite's teacher epochs (``--teacher-epochs``).

    Returns
    -------
    epochs : int
        40 for ``"dann-adatime"`` (AdaTime's ``num_epochs``, part of the
        recipe), else ``epochs``.

    Examples
    --------
    >>> teacher_epochs("dann-adatime", 10), teacher_epochs("vada", 10)
    (40, 10)
    """
    from skkd.classifiers import ADATIME_HAR_DANN

    return ADATIME_HAR_DANN["max_epochs"] if name == "dann-adatime" else epochs


def add_teacher_arguments(parser):
    """Add ``--teacher`` and ``--ensemble-members`` to a suite's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser

    Returns
    -------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> import argparse
    >>> p = add_teacher_arguments(argparse.ArgumentParser())
    >>> args = p.parse_args(["--teacher", "ensemble", "--ensemble-members", "2"])
    >>> teacher_name(args.teacher, args.ensemble_members)
    'ensemble-2'
    """
    kinds = "; ".join(f"{k}: {v}" for k, v in TEACHERS.items())
    parser.add_argument(
        "--teacher",
        default=DEFAULT_TEACHER,
        choices=list(TEACHERS),
        help=f"label-free teacher the students distil ({kinds}); recorded in "
        f"every row (default: {DEFAULT_TEACHER})",
    )
    parser.add_argument(
        "--ensemble-members",
        type=int,
        default=ENSEMBLE_MEMBERS,
        help=f"members of --teacher ensemble (default {ENSEMBLE_MEMBERS}; another "
        "count is recorded as teacher ensemble-N)",
    )
    return parser


def make_teacher(name, seed, epochs, params=None):
    """The unfitted teacher ``name`` (or ``"source"``), CNN 64/128/128.

    Parameters
    ----------
    name : str
        ``"source"`` (a source-only :class:`~skkd.TimeSeriesClassifier`) or
        a teacher name other than ``"dirtt"`` (see :func:`load_or_fit_teacher`).
    seed, epochs : int
        ``random_state`` and ``max_epochs``. An ensemble of ``K`` members
        gets the seeds ``seed * K`` to ``seed * K + K - 1`` (with ``K = 5``
        and seed 0, its members are the ``"dann"`` teachers of seeds 0-4).
    params : dict, optional
        Parameters set on the teacher last (a recipe ablation: they win over
        the recipe and ``epochs``).

    Returns
    -------
    estimator : unfitted estimator

    Examples
    --------
    >>> make_teacher("ensemble-2", 1, 3).seeds
    [2, 3]
    >>> make_teacher("dann-adatime", 0, 10, {"lr": 1e-2}).get_params()["lr"]
    0.01
    """
    from skkd import DANNClassifier, TimeSeriesClassifier, VADAClassifier
    from skkd.classifiers import ADATIME_HAR_DANN
    from skkd.ensemble import TeacherEnsemble
    from skkd.nn import CNN1D

    common = {"module": CNN1D, "module__widths": TEACHER_WIDTHS, "max_epochs": epochs}
    ensemble = re.fullmatch(r"ensemble(?:-(\d+))?", name)
    if ensemble:
        k = int(ensemble.group(1) or ENSEMBLE_MEMBERS)
        model = TeacherEnsemble(
            DANNClassifier(**common),
            n_members=k,
            seeds=list(range(seed * k, seed * k + k)),
            member_filter="collapse",
        )
        return model.set_params(**(params or {}))
    classes = {
        "source": (TimeSeriesClassifier, {}),
        "dann": (DANNClassifier, {}),
        "dann-adatime": (DANNClassifier, ADATIME_HAR_DANN),
        "vada": (VADAClassifier, {}),
    }
    if name not in classes:
        raise ValueError(f"no teacher {name!r}; choose from {list(classes)}")
    cls, recipe = classes[name]
    return cls(**{**recipe, **common, **(params or {})}, random_state=seed)


def _params_slug(params):
    """File-name suffix of a recipe ablation: ``-lr=0.01-max_epochs=10``."""
    return "".join(
        "-" + re.sub(r"[^\w.=+-]", "", f"{k}={v}") for k, v in sorted(params.items())
    )


def load_or_fit_teacher(kind, scenario, seed, epochs, data, cache=None, params=None):
    """A fitted HAR teacher and its fit seconds, from ``cache`` when there.

    Parameters
    ----------
    kind : str
        ``"source"`` (source-only :class:`~skkd.TimeSeriesClassifier`) or a
        teacher name (see :func:`teacher_name`), fitted with the unlabelled
        target series: ``"dirtt"`` is the ``"vada"`` teacher of the same
        seed and epochs (cached as such) refined by
        :class:`~skkd.DIRTTClassifier` for ``epochs`` more epochs, and its
        seconds include the VADA fit.
    scenario : str
        UCI-HAR ``"source->target"`` subjects (for the cache file name).
    seed, epochs : int
        ``random_state`` and ``max_epochs`` (a recipe's own epochs win, see
        :func:`teacher_epochs`).
    data : skkd.datasets.DomainShiftData
        The scenario's arrays.
    cache : str, optional
        Folder of cached teachers (``{kind}-{scenario}-seed{seed}-ep{epochs}.pkl``),
        shared by ``skkd bench har`` and ``skkd bench itmc``.
    params : dict, optional
        A recipe ablation: parameters set on the teacher (see
        :func:`make_teacher`); they are part of the cached file's name, and a
        ``max_epochs`` among them is the teacher's epochs.

    Returns
    -------
    teacher, seconds : fitted estimator, float

    Examples
    --------
    >>> from skkd.datasets import load_har_scenario
    >>> data = load_har_scenario("2->11")
    >>> teacher, seconds = load_or_fit_teacher("source", "2->11", 0, 1, data)
    >>> teacher.classes_.tolist()
    [0, 1, 2, 3, 4, 5]
    """
    from sklearn.frozen import FrozenEstimator

    from skkd import DIRTTClassifier

    params = dict(params or {})
    epochs = params.pop("max_epochs", None) or teacher_epochs(kind, epochs)
    path = None
    if cache:
        stem = f"{kind}-{scenario.replace('->', 'to')}-seed{seed}-ep{epochs}"
        name = f"{stem}{_params_slug(params)}.pkl"
        path = Path(cache) / name
        if path.exists():
            return joblib.load(path)
    before = 0.0
    if kind == "dirtt":
        vada, before = load_or_fit_teacher("vada", scenario, seed, epochs, data, cache)
        model = DIRTTClassifier(
            FrozenEstimator(vada), max_epochs=epochs, random_state=seed, **params
        )
    else:
        model = make_teacher(kind, seed, epochs, params)
    start = time.perf_counter()
    model.fit(data.X_src, data.y_src, *([] if kind == "source" else [data.X_tgt]))
    result = (model, before + time.perf_counter() - start)
    if path is not None:
        # write then rename: a parallel job never reads a half-written file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        joblib.dump(result, tmp)
        os.replace(tmp, path)
    return result
