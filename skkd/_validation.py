"""Input validation shared by every skkd estimator.

Every check raises a ``ValueError``/``TypeError`` whose message names the problem
and the fix, and never modifies the caller's arrays (inputs are copied on cast).
"""

import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning

__all__ = [
    "SeriesLayoutWarning",
    "check_time_series",
    "check_labels",
    "split_packed_domains",
]


class SeriesLayoutWarning(UserWarning):
    """``X`` looks like ``(n_samples, n_timepoints, n_channels)``.

    skkd reads the second axis as channels and the third as time; an array
    with more "channels" than time points is most often transposed.
    """


def _to_numpy(X, name):
    # a torch.Tensor, recognised without importing torch
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        return X.detach().cpu().numpy()
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix; skkd needs a dense array of shape "
            "(n_samples, n_channels, n_timepoints). Convert it with X.toarray()."
        )
    if hasattr(X, "to_numpy") and hasattr(X, "index"):  # pandas
        return _from_pandas(X, name)
    if isinstance(X, (list, tuple)) and len(X) and _is_frame(X[0]):
        return _from_df_list(X, name)
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # nested lists of unequal lengths
        raise _ragged_error(name) from exc
    if arr.dtype.kind == "O" and arr.ndim == 1 and len(arr) and _is_series(arr[0]):
        arr = _stack_series(list(arr), name)  # an object array of (c, t) series
    return arr


def _ragged_error(name):
    return ValueError(
        f"{name} holds series of different lengths (or channel counts); skkd needs "
        "equal-length series. Resample or pad them to one length first (e.g. "
        "skkd.datasets.load_sktime_dataset(unequal_length='resample'))."
    )


def _is_series(value):
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def _stack_series(rows, name):
    try:
        return np.stack([np.asarray(r, dtype=np.float64) for r in rows])
    except ValueError as exc:
        raise _ragged_error(name) from exc


def _is_frame(value):
    return hasattr(value, "to_numpy") and hasattr(value, "columns")


def _from_df_list(X, name):
    """sktime's df-list panel: one ``(n_timepoints, n_channels)`` frame per series.

    Its rows are time points, so stacking the frames as they are would read
    time as channels: each frame is transposed, as sktime's own converter
    to numpy3D does.
    """
    if not all(_is_frame(frame) for frame in X):
        raise TypeError(
            f"{name} is a list mixing pandas DataFrames and other objects; pass "
            "sktime's df-list (one (n_timepoints, n_channels) DataFrame per "
            "series) or an array of shape (n_samples, n_channels, n_timepoints)."
        )
    return _stack_series([frame.to_numpy().T for frame in X], name)


def _layout_message(name, shape):
    n, c, t = shape
    return (
        f"{name} has shape {shape}: skkd reads it as {n} series of {c} channels "
        f"and {t} time points, more channels than time points. If your series are "
        f"(n_samples, n_timepoints, n_channels), pass {name}.transpose(0, 2, 1) "
        f"(shape ({n}, {t}, {c})): skkd expects (n_samples, n_channels, "
        "n_timepoints)."
    )


def _from_pandas(X, name):
    """pandas containers: a 2-D frame, or sktime's pd-multiindex / nested_univ."""
    import pandas as pd

    if isinstance(X, pd.DataFrame) and isinstance(X.index, pd.MultiIndex):
        # sktime pd-multiindex: rows (instance, time), one column per channel
        instances = X.index.get_level_values(0)
        codes, uniques = pd.factorize(instances)
        counts = np.bincount(codes)
        if len(set(counts.tolist())) != 1:
            raise _ragged_error(name)
        if np.any(np.diff(codes) < 0):  # rows of an instance must be together
            X = X.iloc[np.argsort(codes, kind="stable")]
        values = X.to_numpy()
        return values.reshape(len(uniques), counts[0], X.shape[1]).transpose(0, 2, 1)
    if (
        isinstance(X, pd.DataFrame)
        and len(X)
        and all(dtype == np.dtype(object) for dtype in X.dtypes)
        and _is_series(X.iloc[0, 0])
    ):
        # sktime nested_univ: one cell per (instance, channel) holding a series
        lengths = {len(cell) for cell in X.to_numpy().ravel()}
        if len(lengths) != 1:
            raise _ragged_error(name)
        return _stack_series([list(map(np.asarray, row)) for row in X.to_numpy()], name)
    return X.to_numpy()


def _count_nonfinite(arr, chunk=4096):
    # chunked, so the check needs memory for a few thousand series, not all
    n_bad = 0
    for start in range(0, len(arr), chunk):
        part = arr[start : start + chunk]
        n_bad += int((~np.isfinite(part)).any(axis=(1, 2)).sum())
    return n_bad


def check_time_series(
    X,
    *,
    name="X",
    n_channels=None,
    n_timepoints=None,
    reference=None,
    action="fitting",
):
    """Validate a time-series panel and return it as float32 of shape (n, c, t).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_channels, n_timepoints) or (n_samples, \
n_timepoints)
        Series; 2-D input is read as univariate ``(n, 1, t)``.
    name : str, default="X"
        Name used in error messages.
    n_channels : int, optional
        Required channel count (the one seen in ``fit``).
    n_timepoints : int, optional
        Required series length, for modules that need a fixed length.
    reference : str, optional
        What the required shape comes from, for messages (e.g. ``"X"``); by
        default the data the estimator was fitted on.
    action : str, default="fitting"
        What the data are for, in messages (``"predicting"`` ...).

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels, n_timepoints), float32
        C-contiguous. The caller's array itself when it already is a writable
        float32 C-contiguous 3-D array (skkd never writes to it), else a copy.

    Warns
    -----
    SeriesLayoutWarning
        Without a required shape, when the series have more channels than
        time points (most often a transposed ``(n, n_timepoints,
        n_channels)`` array). With one, an array whose shape is exactly the
        transposed required shape raises a ``ValueError`` instead.

    Examples
    --------
    >>> import numpy as np
    >>> check_time_series(np.zeros((4, 10))).shape
    (4, 1, 10)
    """
    arr = _to_numpy(X, name)
    if arr.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {arr.dtype}. Pass real "
            "values (e.g. np.abs(X) or the real and imaginary parts as channels)."
        )
    if arr.dtype.kind == "O":  # numbers stored as objects are fine
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must hold numbers, but an entry could not be converted "
                f"({exc}). Convert it to a numeric array of shape "
                "(n_samples, n_channels, n_timepoints)."
            ) from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold numbers, got dtype {arr.dtype}. Convert it to a numeric "
            "array of shape (n_samples, n_channels, n_timepoints)."
        )
    if arr.ndim == 2:
        arr = arr[:, np.newaxis, :]
    elif arr.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D (n_samples, n_channels, n_timepoints), or 2-D "
            f"(n_samples, n_timepoints) for univariate series; got shape {arr.shape}. "
            "Reshape your data, e.g. X.reshape(n_samples, n_channels, n_timepoints)."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); pass at least one series.")
    if arr.shape[2] == 0:
        shape = _to_numpy(X, name).shape
        raise ValueError(
            f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is "
            f"required: {name} holds series of length 0; pass non-empty series."
        )
    if arr.dtype == np.float32 and arr.flags.c_contiguous and arr.flags.writeable:
        # already what torch needs: no copy (skkd never writes to its inputs),
        # so a large X or X_tgt costs no extra memory
        pass
    else:
        with np.errstate(over="ignore"):  # overflow is reported below, clearly
            arr = np.array(arr, dtype=np.float32, order="C", copy=True)
    n_bad = _count_nonfinite(arr)
    original = _to_numpy(X, name) if n_bad else arr  # only on the error path
    if n_bad and original.dtype.kind == "f" and original.dtype.itemsize > 4:
        if not _count_nonfinite(original.reshape(arr.shape)):
            raise ValueError(
                f"{name} has values beyond the float32 range (|x| > 3.4e38) in "
                f"{n_bad} sample(s); skkd trains in float32. Rescale the series "
                "(e.g. standardise each channel)."
            )
    if n_bad:
        raise ValueError(
            f"{name} contains NaN or infinity in {n_bad} sample(s). Impute or drop "
            f"them before {action} (e.g. np.nan_to_num, or sktime's Imputer)."
        )
    source = "the estimator was fitted on" if reference is None else f"{reference} has"
    if n_channels is None and arr.shape[1] > arr.shape[2]:
        warnings.warn(
            _layout_message(name, arr.shape), SeriesLayoutWarning, stacklevel=3
        )
    transposed = (arr.shape[2], arr.shape[1]) == (n_channels, n_timepoints)
    if transposed and n_channels != n_timepoints:
        # the required shape, axes swapped: certainly (n, time, channels)
        raise ValueError(
            f"{name} has shape {arr.shape}, the transpose of the ({n_channels} "
            f"channels, {n_timepoints} time points) {source}: pass "
            f"{name}.transpose(0, 2, 1). skkd expects (n_samples, n_channels, "
            "n_timepoints)."
        )
    if n_channels is not None and arr.shape[1] != n_channels:
        hint = (
            f" If {name} is (n_samples, n_timepoints, n_channels), pass "
            f"{name}.transpose(0, 2, 1)."
            if arr.shape[2] == n_channels
            else ""
        )
        raise ValueError(
            f"{name} has {arr.shape[1]} channel(s) but {source} {n_channels}. Pass "
            "series with the same channels, in the same order." + hint
        )
    if n_timepoints is not None and arr.shape[2] != n_timepoints:
        raise ValueError(
            f"{name} has series of length {arr.shape[2]} but {source} length "
            f"{n_timepoints}. Resample or pad the series to {n_timepoints} points."
        )
    return arr


def check_labels(y, n_samples):
    """Validate class labels and return them as a 1-D array.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (numbers or strings).
    n_samples : int
        Number of series the labels belong to.

    Returns
    -------
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> check_labels(["a", "b"], 2)
    array(['a', 'b'], dtype='<U1')
    """
    if y is None:
        raise ValueError(
            "This classifier requires y to be passed, but the target y is None: pass "
            "the class labels of the (source) series as fit(X, y)."
        )
    y = np.asarray(_to_numpy(y, "y"))
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is "
            "raveled. Pass y with shape (n_samples,) to silence this warning.",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D (one label per series), got shape {y.shape}. "
            "Multi-output targets are not supported."
        )
    if len(y) != n_samples:
        raise ValueError(
            f"X has {n_samples} series but y has {len(y)} labels; pass one label per "
            "series."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; drop the unlabelled rows.")
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise ValueError(
            "Unknown label type: y holds continuous values; skkd estimators are "
            "classifiers and need class labels (ints or strings)."
        )
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"y has only one class ({np.unique(y)!r}); a classifier needs at least 2 "
            "classes in the training labels."
        )
    return y


def split_packed_domains(X, y, X_tgt, sample_domain):
    """Split skada's packed form into source and target arrays.

    Rows with ``sample_domain < 0`` are target rows (their labels are ignored).

    Parameters
    ----------
    X, y : array-like
        All rows, source and target together.
    X_tgt : array-like or None
        Must be None when ``sample_domain`` is given.
    sample_domain : array-like of int, shape (n_samples,)
        Domain of each row; negative for target rows (skada's convention).

    Returns
    -------
    X_src, y_src, X_tgt : arrays
        ``X_tgt`` is None when there is no target row.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((4, 1, 5)); y = np.array([0, 1, -1, -1])
    >>> Xs, ys, Xt = split_packed_domains(X, y, None, np.array([1, 1, -2, -2]))
    >>> Xs.shape, ys.tolist(), Xt.shape
    ((2, 1, 5), [0, 1], (2, 1, 5))
    """
    if sample_domain is None:
        return X, y, X_tgt
    if X_tgt is not None:
        raise ValueError(
            "Pass the target data either as X_tgt or packed in X with "
            "sample_domain < 0 for target rows, not both."
        )
    sample_domain = np.asarray(sample_domain)
    X = _to_numpy(X, "X")
    if sample_domain.shape != (len(X),):
        raise ValueError(
            f"sample_domain must have one entry per row of X ({len(X)}), got shape "
            f"{sample_domain.shape}."
        )
    is_target = sample_domain < 0
    y = None if y is None else np.asarray(_to_numpy(y, "y"))
    X_tgt = X[is_target] if is_target.any() else None
    y_src = None if y is None else y[~is_target]
    return X[~is_target], y_src, X_tgt


def check_fit_target(X, X_tgt, tags, name):
    """Check ``X``'s length and ``X_tgt`` against an estimator's tags.

    Parameters
    ----------
    X : ndarray of shape (n, n_channels, n_timepoints)
        The validated source series.
    X_tgt : array-like or None
        The target series as given.
    tags : skkd.tags.TimeSeriesTags
        The estimator's capabilities.
    name : str
        The estimator's class name, for messages.

    Returns
    -------
    X_tgt : ndarray or None
        Validated like ``X`` (same channels and length).
    """
    if X.shape[2] < tags.min_timepoints:
        raise ValueError(
            f"{name} needs series of at least {tags.min_timepoints} time steps, "
            f"got {X.shape[2]}: with fewer there is no pair of time steps to "
            "compare. Use longer windows."
        )
    if X_tgt is not None:
        X_tgt = check_time_series(
            X_tgt,
            name="X_tgt",
            n_channels=X.shape[1],
            n_timepoints=X.shape[2],
            reference="X",
        )
        if tags.target == "refused":
            raise ValueError(
                f"{name} cannot use the unlabelled X_tgt: fit(X, y) without it, "
                "or use KDClassifier/MemKDClassifier for a transfer set."
            )
    elif tags.target == "required":
        raise ValueError(
            f"{name} needs unlabelled target data: call fit(X_src, y_src, X_tgt)"
            " or pass skada's packed form with sample_domain < 0 for target rows."
        )
    return X_tgt


def check_switches(estimator, switches):
    """Raise a ValueError naming the parameter whose value is not allowed.

    Parameters
    ----------
    estimator : object
        Holds the parameters as attributes.
    switches : dict of str to tuple
        Parameter name -> allowed values.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> check_switches(SimpleNamespace(mode="a"), {"mode": ("a", "b")})
    >>> check_switches(SimpleNamespace(mode="c"), {"mode": ("a", "b")})
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of ('a', 'b'), got 'c'.
    """
    for name, allowed in switches.items():
        value = getattr(estimator, name)
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")
