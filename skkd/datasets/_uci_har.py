"""Per-subject UCI-HAR loader and cross-subject scenarios."""

import numbers
import re
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from ._adatime import load_adatime_pt
from ._base import get_data_home

__all__ = [
    "EMBEDDED_SUBJECTS",
    "HAR_ADDITIONAL_SCENARIOS",
    "HAR_CHANNEL_NAMES",
    "HAR_MAIN_SCENARIOS",
    "HAR_TARGET_NAMES",
    "load_har_scenario",
    "load_uci_har",
]

#: The nine inertial channels, in the order stored in the files.
HAR_CHANNEL_NAMES = (
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
)

#: Activity names; label ``k`` is ``HAR_TARGET_NAMES[k]``.
HAR_TARGET_NAMES = (
    "walking",
    "walking_upstairs",
    "walking_downstairs",
    "sitting",
    "standing",
    "lying",
)

#: The five main cross-subject scenarios of UNI-KD (IJCAI 2023).
HAR_MAIN_SCENARIOS = ("2->11", "7->13", "12->16", "9->18", "6->23")

#: The five additional cross-subject scenarios of UNI-KD (IJCAI 2023).
HAR_ADDITIONAL_SCENARIOS = ("18->27", "20->5", "24->8", "28->27", "30->20")

#: Subjects shipped inside the package, so "2->11" works offline.
EMBEDDED_SUBJECTS = (2, 11)

_N_SUBJECTS = 30
_EMBEDDED_PACKAGE = "skkd.datasets"
_KEYS = ("X_train", "y_train", "X_test", "y_test")

_DESCR = """\
UCI-HAR, one subject (cross-subject domain-adaptation benchmark)
---------------------------------------------------------------

Subject {subject} of "Human Activity Recognition Using Smartphones"
(Anguita, Ghio, Oneto, Parra, Reyes-Ortiz, ESANN 2013), UCI Machine Learning
Repository, licence CC BY 4.0. Windows preprocessed and split per subject as in
AdaTime (Ragab, Eldele et al., "ADATIME: A Benchmarking Suite for Domain
Adaptation on Time Series Data", ACM TKDD 2023). Cite both when reporting
results.

- 9 channels (body_acc, body_gyro, total_acc; x, y, z), 50 Hz, windows of 128
  samples (2.56 s) with 50% overlap, at their preprocessed scale.
- 6 classes: walking, walking upstairs, walking downstairs, sitting, standing,
  lying.
- This subject: {n_train} train / {n_test} test windows.
- Read from: {filename}
"""


def _check_subject(subject):
    """Return ``subject`` as an int in 1..30 or raise a clear ValueError."""
    # bool is an Integral but almost certainly a mistake here.
    if isinstance(subject, bool) or not isinstance(subject, numbers.Integral):
        raise ValueError(
            f"subject must be an integer between 1 and {_N_SUBJECTS}, got {subject!r}."
        )
    subject = int(subject)
    if not 1 <= subject <= _N_SUBJECTS:
        raise ValueError(
            f"subject must be an integer between 1 and {_N_SUBJECTS}, got {subject}."
        )
    return subject


def _candidate_npz(home, subject):
    """Paths searched for the per-subject npz file, in order."""
    name = f"subject_{subject:02d}.npz"
    return [home / "uci_har" / name, home / name]


def _candidate_adatime_dirs(home):
    """Folders searched for AdaTime ``train_<id>.pt`` / ``test_<id>.pt``."""
    # AdaTime itself downloads HAR into a folder called "HAR".
    return [home / "uci_har", home / "HAR", home]


def _read_npz(source, filename):
    """Read the four arrays from an npz path or file object."""
    # allow_pickle=False: an npz never needs pickle for numeric arrays.
    with np.load(source, allow_pickle=False) as npz:
        missing = [key for key in _KEYS if key not in npz.files]
        if missing:
            raise ValueError(
                f"{filename}: missing arrays {missing}; found {npz.files}."
            )
        return {key: npz[key] for key in _KEYS}


def _validate(arrays, filename):
    """Check shapes and cast to float32 / int64."""
    out = {}
    for split in ("train", "test"):
        X = np.asarray(arrays[f"X_{split}"])
        y = np.asarray(arrays[f"y_{split}"])
        if X.ndim != 3:
            raise ValueError(
                f"{filename}: X_{split} must be 3-D (n, channels, timepoints), "
                f"got shape {X.shape}."
            )
        if X.shape[1] != len(HAR_CHANNEL_NAMES):
            raise ValueError(
                f"{filename}: X_{split} must have {len(HAR_CHANNEL_NAMES)} "
                f"channels on axis 1, got shape {X.shape}."
            )
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"{filename}: y_{split} must be 1-D with one label per window; "
                f"got shape {y.shape} for X_{split} of shape {X.shape}."
            )
        out[f"X_{split}"] = np.ascontiguousarray(X, dtype=np.float32)
        out[f"y_{split}"] = y.astype(np.int64, copy=False)
    if out["X_train"].shape[1:] != out["X_test"].shape[1:]:
        raise ValueError(
            f"{filename}: X_train {out['X_train'].shape} and X_test "
            f"{out['X_test'].shape} differ in channels or length."
        )
    return out


def _load_subject_arrays(subject, data_home, allow_pickle):
    """Find and read one subject's arrays; return ``(arrays, filename)``."""
    home = get_data_home(data_home)
    searched = []

    for path in _candidate_npz(home, subject):
        searched.append(str(path))
        if path.is_file():
            return _read_npz(path, path), str(path)

    for folder in _candidate_adatime_dirs(home):
        # AdaTime writes ids without zero padding: train_2.pt, not train_02.pt.
        train, test = folder / f"train_{subject}.pt", folder / f"test_{subject}.pt"
        searched.append(f"{train} + {test.name}")
        if train.is_file() and test.is_file():
            n_channels = len(HAR_CHANNEL_NAMES)
            X_train, y_train = load_adatime_pt(
                train, n_channels=n_channels, allow_pickle=allow_pickle
            )
            X_test, y_test = load_adatime_pt(
                test, n_channels=n_channels, allow_pickle=allow_pickle
            )
            arrays = dict(
                X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test
            )
            return arrays, f"{train} + {test.name}"

    if subject in EMBEDDED_SUBJECTS:
        name = f"uci_har_subject_{subject:02d}.npz"
        resource = resources.files(_EMBEDDED_PACKAGE).joinpath("data", name)
        filename = f"embedded copy ({_EMBEDDED_PACKAGE}/data/{name})"
        with resource.open("rb") as fh:
            return _read_npz(fh, filename), filename

    listing = "\n".join(f"  - {p}" for p in searched)
    raise FileNotFoundError(
        f"UCI-HAR subject {subject} was not found. Searched:\n{listing}\n"
        f"Only subjects {', '.join(map(str, EMBEDDED_SUBJECTS))} ship with skkd. "
        "To fix this, pass data_home=<folder> or set the SKKD_DATA environment "
        "variable to a folder laid out as either\n"
        "  <folder>/uci_har/subject_XX.npz or <folder>/subject_XX.npz "
        "(XX = 01..30, arrays X_train, y_train, X_test, y_test), or\n"
        "  <folder>/train_<id>.pt and <folder>/test_<id>.pt "
        "(AdaTime layout, id = 1..30 without zero padding)."
    )


def load_uci_har(subject, data_home=None, *, allow_pickle=False):
    """Load the train and test windows of one UCI-HAR subject.

    UCI-HAR (Anguita et al., ESANN 2013; UCI Machine Learning Repository,
    CC BY 4.0) split per subject as in AdaTime (Ragab, Eldele et al., ACM
    TKDD 2023): every one of the 30 volunteers is a domain.

    Files are searched in this order, the first hit wins:

    1. ``<data_home>/uci_har/subject_XX.npz`` then
       ``<data_home>/subject_XX.npz`` (``XX`` zero padded, ``01``..``30``);
    2. AdaTime files ``train_<id>.pt`` and ``test_<id>.pt`` (``id`` not
       padded) in ``<data_home>/uci_har``, ``<data_home>/HAR`` then
       ``<data_home>``;
    3. the copy embedded in the package (subjects 2 and 11 only).

    Parameters
    ----------
    subject : int
        Subject id, from 1 to 30.
    data_home : str or os.PathLike, default=None
        Data folder; see :func:`get_data_home` (``SKKD_DATA`` or
        ``~/skkd_data`` when ``None``).
    allow_pickle : bool, default=False
        Passed to :func:`load_adatime_pt` for AdaTime ``.pt`` files that need
        full unpickling. Use only for files you trust.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with attributes:

        X_train : ndarray of shape (n_train, 9, 128), dtype float32
            Training windows.
        y_train : ndarray of shape (n_train,), dtype int64
            Training labels, 0..5.
        X_test : ndarray of shape (n_test, 9, 128), dtype float32
            Test windows.
        y_test : ndarray of shape (n_test,), dtype int64
            Test labels, 0..5.
        subject : int
            The subject id.
        channel_names : list of str
            The 9 channel names, in axis-1 order.
        target_names : list of str
            The 6 activity names, indexed by label.
        filename : str
            Where the data were read from.
        DESCR : str
            Description of the data set, with its attribution.

    Raises
    ------
    ValueError
        If ``subject`` is not an int in 1..30, or a file is malformed.
    FileNotFoundError
        If the subject is not found; the message lists the paths searched.

    Examples
    --------
    Subject 2 is embedded, so this works offline:

    >>> from skkd.datasets import load_uci_har
    >>> data = load_uci_har(2)
    >>> data.X_train.shape, data.X_test.shape
    ((211, 9, 128), (91, 9, 128))
    >>> data.target_names[data.y_train[0]] in data.target_names
    True
    >>> data.channel_names[:3]
    ['body_acc_x', 'body_acc_y', 'body_acc_z']
    """
    subject = _check_subject(subject)
    arrays, filename = _load_subject_arrays(subject, data_home, allow_pickle)
    arrays = _validate(arrays, filename)
    descr = _DESCR.format(
        subject=subject,
        n_train=len(arrays["X_train"]),
        n_test=len(arrays["X_test"]),
        filename=filename,
    )
    return Bunch(
        **arrays,
        subject=subject,
        channel_names=list(HAR_CHANNEL_NAMES),
        target_names=list(HAR_TARGET_NAMES),
        filename=filename,
        DESCR=descr,
    )


_SCENARIO_RE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*$")


def _parse_scenario(scenario):
    """Return ``(source, target)`` subject ids from ``"a->b"`` or ``(a, b)``."""
    if isinstance(scenario, str):
        match = _SCENARIO_RE.match(scenario)
        if match is None:
            raise ValueError(
                f"scenario must look like '2->11' (source->target subject ids), "
                f"got {scenario!r}."
            )
        pair = (int(match.group(1)), int(match.group(2)))
    elif isinstance(scenario, tuple | list) and len(scenario) == 2:
        pair = tuple(scenario)
    else:
        raise ValueError(
            "scenario must be a string like '2->11' or a pair (source, target), "
            f"got {scenario!r}."
        )
    source, target = (_check_subject(s) for s in pair)
    if source == target:
        raise ValueError(
            f"scenario source and target must be different subjects, got "
            f"{source}->{target}."
        )
    return source, target


def load_har_scenario(scenario, data_home=None, *, allow_pickle=False):
    """Load a cross-subject UCI-HAR domain-adaptation scenario.

    In scenario ``a->b`` the source is subject ``a``'s train split
    (labelled), the target-train data are subject ``b``'s train split
    (unlabelled), and methods are scored on subject ``b``'s full test split.
    The ten UNI-KD (IJCAI 2023) scenarios are in :data:`HAR_MAIN_SCENARIOS`
    and :data:`HAR_ADDITIONAL_SCENARIOS`. ``"2->11"`` works offline because
    both subjects are embedded in the package.

    Parameters
    ----------
    scenario : str or tuple of int
        ``"a->b"`` (e.g. ``"2->11"``) or ``(a, b)``, with ``a != b`` in 1..30.
    data_home : str or os.PathLike, default=None
        Data folder; see :func:`load_uci_har`.
    allow_pickle : bool, default=False
        See :func:`load_uci_har`.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with attributes:

        X_src : ndarray of shape (n_src, 9, 128), dtype float32
            Source subject, train split.
        y_src : ndarray of shape (n_src,), dtype int64
            Source labels.
        X_tgt : ndarray of shape (n_tgt, 9, 128), dtype float32
            Target subject, train split, to be used unlabelled.
        y_tgt : ndarray of shape (n_tgt,), dtype int64
            Target-train labels, for analysis only: never used for training.
        X_tgt_test : ndarray of shape (n_tgt_test, 9, 128), dtype float32
            Target subject, test split.
        y_tgt_test : ndarray of shape (n_tgt_test,), dtype int64
            Target test labels, used for scoring.
        source, target : int
            Subject ids.
        scenario : str
            ``"a->b"``.
        target_names : list of str
            The 6 activity names, indexed by label.
        channel_names : list of str
            The 9 channel names.
        DESCR : str
            Description of the scenario and of the data set.

    Raises
    ------
    ValueError
        If the scenario is malformed or source equals target.
    FileNotFoundError
        If a subject's files are not found (see :func:`load_uci_har`).

    Examples
    --------
    >>> from skkd.datasets import HAR_MAIN_SCENARIOS, load_har_scenario
    >>> data = load_har_scenario(HAR_MAIN_SCENARIOS[0])
    >>> data.scenario, data.source, data.target
    ('2->11', 2, 11)
    >>> data.X_src.shape, data.X_tgt.shape, data.X_tgt_test.shape
    ((211, 9, 128), (221, 9, 128), (95, 9, 128))
    >>> load_har_scenario((2, 11)).scenario
    '2->11'
    """
    source, target = _parse_scenario(scenario)
    src = load_uci_har(source, data_home, allow_pickle=allow_pickle)
    tgt = load_uci_har(target, data_home, allow_pickle=allow_pickle)
    name = f"{source}->{target}"
    descr = (
        f"UCI-HAR cross-subject scenario {name}: source = subject {source} train "
        f"split (labelled), target = subject {target} train split (unlabelled), "
        f"scored on subject {target}'s full test split.\n\n" + tgt.DESCR
    )
    return Bunch(
        X_src=src.X_train,
        y_src=src.y_train,
        X_tgt=tgt.X_train,
        y_tgt=tgt.y_train,
        X_tgt_test=tgt.X_test,
        y_tgt_test=tgt.y_test,
        source=source,
        target=target,
        scenario=name,
        target_names=list(HAR_TARGET_NAMES),
        channel_names=list(HAR_CHANNEL_NAMES),
        DESCR=descr,
    )
