"""Reader for the ``.pt`` files written by the AdaTime benchmark."""

import pickle
from pathlib import Path

import numpy as np

__all__ = ["load_adatime_pt"]


def _numpy_safe_globals():
    """Numpy objects that plain arrays need when unpickled by ``torch.load``.

    AdaTime stores some data sets as numpy arrays inside the ``.pt`` dict.
    Rebuilding a numpy array only needs these three globals, none of which
    can run arbitrary code, so allowing them keeps ``weights_only=True`` safe.
    """
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    safe = [np.ndarray, np.dtype, _reconstruct]
    # Older pickles reference the per-dtype classes (numpy >= 1.25).
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        safe.extend(
            type(np.dtype(code)) for code in ("f2", "f4", "f8", "i1", "i2", "i4", "i8")
        )
    return safe


def _to_numpy(value, name, path):
    """Convert a tensor or array-like from the file to a numpy array."""
    if hasattr(value, "detach"):  # torch.Tensor
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {name!r} cannot be converted to an array.") from exc


def load_adatime_pt(path, *, n_channels=None, allow_pickle=False):
    """Read one AdaTime ``.pt`` file into ``(X, y)`` numpy arrays.

    AdaTime (Ragab, Eldele et al., ACM TKDD 2023) stores every split as a
    ``torch.save``-d dict ``{"samples": ..., "labels": ...}`` whose samples
    are tensors or numpy arrays shaped ``(n, C, L)`` or ``(n, L, C)``.

    The file is read with ``torch.load(path, weights_only=True)``, which
    refuses arbitrary Python objects, so reading an untrusted file cannot run
    code. Plain numpy arrays are allowed as well.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.pt`` file, e.g. ``train_2.pt``.
    n_channels : int, default=None
        Known number of channels (9 for UCI-HAR). It decides whether samples
        are stored channels-last and must be transposed. If ``None``, the
        smaller of the last two axes is taken as the channel axis.
    allow_pickle : bool, default=False
        If True, fall back to ``torch.load(path, weights_only=False)`` when
        the file holds objects the safe loader refuses. Unpickling can
        execute arbitrary code: use it only for files you trust.

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels, n_timepoints), dtype float32
        The samples, channels first.
    y : ndarray of shape (n_samples,), dtype int64
        The integer labels.

    Raises
    ------
    ValueError
        If the file needs unpickling and ``allow_pickle`` is False, or if its
        content does not have the expected keys and shapes.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from skkd.datasets import load_adatime_pt
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "train_2.pt"
    >>> samples = torch.zeros(4, 128, 9)  # (n, L, C): channels last
    >>> torch.save({"samples": samples, "labels": torch.tensor([0, 1, 2, 3])}, path)
    >>> X, y = load_adatime_pt(path, n_channels=9)
    >>> X.shape, X.dtype, y.dtype
    ((4, 9, 128), dtype('float32'), dtype('int64'))
    >>> tmp.cleanup()
    """
    # torch is heavy; importing it here keeps `import skkd.datasets` light.
    import torch

    path = Path(path)
    try:
        safe_globals = getattr(torch.serialization, "safe_globals", None)
        if safe_globals is None:  # torch < 2.5: no allow-list context
            data = torch.load(path, map_location="cpu", weights_only=True)
        else:
            with safe_globals(_numpy_safe_globals()):
                data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_pickle:
            raise ValueError(
                f"{path} cannot be read safely: it contains Python objects that "
                "require unpickling (torch.load with weights_only=True refused "
                "it). Unpickling can execute arbitrary code. If, and only if, "
                "you trust this file, pass allow_pickle=True."
            ) from exc
        data = torch.load(path, map_location="cpu", weights_only=False)

    if not isinstance(data, dict) or not {"samples", "labels"} <= set(data):
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data)
        raise ValueError(
            f"{path}: expected a dict with keys 'samples' and 'labels' "
            f"(AdaTime format), found {found}."
        )

    X = _to_numpy(data["samples"], "samples", path)
    y = _to_numpy(data["labels"], "labels", path)
    if X.ndim == 2:  # univariate series stored as (n, L)
        X = X[:, np.newaxis, :]
    if X.ndim != 3:
        raise ValueError(
            f"{path}: 'samples' must be 3-D (n, C, L) or (n, L, C), "
            f"got shape {X.shape}."
        )
    if n_channels is not None:
        if X.shape[1] != n_channels and X.shape[2] == n_channels:
            X = np.swapaxes(X, 1, 2)
        elif X.shape[1] != n_channels:
            raise ValueError(
                f"{path}: expected {n_channels} channels, got samples of "
                f"shape {X.shape}."
            )
    elif X.shape[2] < X.shape[1]:
        # Series are longer than they are wide, so the short axis is channels.
        X = np.swapaxes(X, 1, 2)
    X = np.ascontiguousarray(X, dtype=np.float32)

    y = np.ravel(y) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"{path}: 'labels' must be 1-D with one label per sample; got shape "
            f"{y.shape} for {len(X)} samples."
        )
    # AdaTime sometimes stores labels as floats; refuse silent truncation.
    y_int = y.astype(np.int64)
    if not np.array_equal(y_int, y):
        raise ValueError(f"{path}: 'labels' are not integer valued.")
    return X, y_int
