"""Time-series classification data sets bundled with sktime, loaded offline."""

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["SKTIME_BUNDLED_CLASSIFICATION", "load_sktime_dataset"]

#: Classification data sets whose files ship inside the sktime package (1.x):
#: they load without a network connection.
SKTIME_BUNDLED_CLASSIFICATION = (
    "ACSF1",
    "ArrowHead",
    "BasicMotions",
    "GunPoint",
    "ItalyPowerDemand",
    "JapaneseVowels",
    "OSULeaf",
    "PLAID",
    "UnitTest",
)

_RESAMPLE = ("resample", "pad", "error")


def _import_sktime():
    try:
        import sktime  # noqa: F401
        from sktime.datasets import load_UCR_UEA_dataset
    except ImportError as exc:
        raise ImportError(
            "load_sktime_dataset needs sktime: pip install 'skkd[sktime]'"
        ) from exc
    return load_UCR_UEA_dataset


def _bundled_dir(name):
    import sktime

    return Path(sktime.__file__).resolve().parent / "datasets" / "data" / name


def _resample(series, length):
    """Linear interpolation of a (channels, time) array to ``length`` steps."""
    n = series.shape[-1]
    if n == length:
        return series
    old = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, channel) for channel in series])


def _nested_to_list(X):
    """sktime nested_univ frame -> list of (channels, time) float arrays."""
    out = []
    for i in range(len(X)):
        channels = [np.asarray(X.iloc[i, j], dtype=float) for j in range(X.shape[1])]
        length = min(len(c) for c in channels)
        out.append(np.stack([c[:length] for c in channels]))
    return out


def _to_panel(series_list, length, unequal_length, name):
    lengths = {s.shape[-1] for s in series_list}
    if len(lengths) > 1 and unequal_length == "error":
        raise ValueError(
            f"{name} has series of {min(lengths)} to {max(lengths)} time steps; "
            "pass unequal_length='resample' or 'pad' to get one length."
        )
    if unequal_length == "pad":
        # repeat each series' last value: an RNN reading the last step sees
        # the series' final state rather than zeros
        return np.stack(
            [
                np.pad(s, ((0, 0), (0, length - s.shape[-1])), mode="edge")
                for s in series_list
            ]
        )
    return np.stack([_resample(s, length) for s in series_list])


def load_sktime_dataset(name, *, unequal_length="resample", n_timepoints=None):
    """Load a classification data set bundled with sktime (no download).

    The official train/test split of the UCR/UEA archive (Dau et al., 2019,
    "The UCR time series archive", IEEE/CAA J. Autom. Sinica; Bagnall et al.,
    2018, "The UEA multivariate time series classification archive", arXiv
    1811.00075) as shipped in sktime's package data.

    Parameters
    ----------
    name : str
        One of :data:`SKTIME_BUNDLED_CLASSIFICATION` (e.g. ``"GunPoint"``).
    unequal_length : {"resample", "pad", "error"}, default="resample"
        For data sets with series of different lengths (JapaneseVowels,
        PLAID): linearly resample every series to the longest length,
        pad each at the end with its last value, or raise.
    n_timepoints : int, optional
        Linearly resample every series (train and test) to this length, e.g.
        100 for the recurrent-KD benchmarks; None keeps the native length.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train`` and ``X_test`` (float32, ``(n, n_channels, n_timepoints)``),
        ``y_train`` and ``y_test`` (str labels), ``name``, and
        ``original_lengths`` (shortest and longest series before any
        resampling or padding).

    Raises
    ------
    ImportError
        If sktime is not installed (``pip install 'skkd[sktime]'``).
    ValueError
        If the data set is not bundled with the installed sktime.

    Examples
    --------
    >>> from skkd.datasets import load_sktime_dataset
    >>> d = load_sktime_dataset("ItalyPowerDemand")
    >>> d.X_train.shape, d.X_test.shape, d.X_train.dtype
    ((67, 1, 24), (1029, 1, 24), dtype('float32'))
    >>> load_sktime_dataset("JapaneseVowels").X_train.shape
    (270, 12, 29)
    """
    loader = _import_sktime()
    if unequal_length not in _RESAMPLE:
        raise ValueError(
            f"unequal_length must be one of {_RESAMPLE}, got {unequal_length!r}."
        )
    if n_timepoints is not None and int(n_timepoints) < 1:
        raise ValueError(f"n_timepoints must be >= 1, got {n_timepoints}.")
    folder = _bundled_dir(name)
    if not (folder / f"{name}_TRAIN.ts").exists():
        bundled = [n for n in SKTIME_BUNDLED_CLASSIFICATION if _bundled_dir(n).exists()]
        raise ValueError(
            f"{name!r} is not bundled with the installed sktime, and skkd does "
            f"not download data. Bundled classification data sets: {bundled}."
        )
    import warnings

    splits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for split in ("train", "test"):
            X, y = loader(name, split=split, return_type="nested_univ")
            splits[split] = (_nested_to_list(X), np.asarray(y).astype(str))
    all_lengths = [s.shape[-1] for part in splits.values() for s in part[0]]
    length = max(all_lengths) if n_timepoints is None else int(n_timepoints)
    arrays = {}
    for split, (series, y) in splits.items():
        panel = _to_panel(series, max(all_lengths), unequal_length, name)
        if n_timepoints is not None:
            panel = np.stack([_resample(s, length) for s in panel])
        arrays[f"X_{split}"] = panel.astype(np.float32)
        arrays[f"y_{split}"] = y
    return Bunch(
        **arrays,
        name=name,
        original_lengths=(min(all_lengths), max(all_lengths)),
    )
