"""Seeded synthetic source/target time series with a controllable shift."""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_domain_shift"]


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def _check_nonneg(value, name):
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def make_domain_shift(
    n_samples=120,
    n_target=None,
    n_test=None,
    n_channels=3,
    n_timepoints=64,
    n_classes=3,
    shift=1.0,
    noise=0.3,
    random_state=None,
):
    """Generate a small multichannel source/target classification problem.

    Each class has, per channel, its own sinusoid frequency and phase. Every
    sample adds a random amplitude, a small phase jitter and Gaussian noise.
    The target domain applies, scaled by ``shift``, a per-channel gain, a
    per-channel offset and a change of all frequencies, so a model trained on
    the source alone degrades on the target as ``shift`` grows. With
    ``shift=0`` both domains follow the same distribution.

    Meant for fast tests and examples of domain-adaptation estimators; the
    keys match :func:`load_har_scenario`.

    Parameters
    ----------
    n_samples : int, default=120
        Number of labelled source samples.
    n_target : int, default=None
        Number of unlabelled target-train samples; ``None`` means
        ``n_samples``.
    n_test : int, default=None
        Number of target test samples; ``None`` means ``n_samples``.
    n_channels : int, default=3
        Number of channels.
    n_timepoints : int, default=64
        Length of each series.
    n_classes : int, default=3
        Number of classes (at least 2). Classes are balanced up to one
        sample.
    shift : float, default=1.0
        Strength of the source-to-target shift; 0 means no shift.
    noise : float, default=0.3
        Standard deviation of the additive Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output: the same int gives identical arrays.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with attributes:

        X_src : ndarray of shape (n_samples, n_channels, n_timepoints)
            Source samples, float32.
        y_src : ndarray of shape (n_samples,)
            Source labels, int64.
        X_tgt : ndarray of shape (n_target, n_channels, n_timepoints)
            Target-train samples (to be used unlabelled), float32.
        y_tgt : ndarray of shape (n_target,)
            Target-train labels, for analysis only: never used for training.
        X_tgt_test : ndarray of shape (n_test, n_channels, n_timepoints)
            Target test samples, float32.
        y_tgt_test : ndarray of shape (n_test,)
            Target test labels, int64.
        target_names : list of str
            ``["class_0", ...]``.
        DESCR : str
            Short description with the generation parameters.

    Examples
    --------
    >>> from skkd.datasets import make_domain_shift
    >>> data = make_domain_shift(n_samples=30, n_test=12, shift=2.0, random_state=0)
    >>> data.X_src.shape, data.X_tgt.shape, data.X_tgt_test.shape
    ((30, 3, 64), (30, 3, 64), (12, 3, 64))
    >>> data.X_src.dtype, data.y_src.dtype
    (dtype('float32'), dtype('int64'))
    >>> sorted(set(data.y_src.tolist()))
    [0, 1, 2]
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_target = n_samples if n_target is None else _check_int(n_target, "n_target", 1)
    n_test = n_samples if n_test is None else _check_int(n_test, "n_test", 1)
    n_channels = _check_int(n_channels, "n_channels", 1)
    n_timepoints = _check_int(n_timepoints, "n_timepoints", 2)
    n_classes = _check_int(n_classes, "n_classes", 2)
    shift = _check_nonneg(shift, "shift")
    noise = _check_nonneg(noise, "noise")
    rng = check_random_state(random_state)

    # Task and shift parameters are drawn first so that changing the sample
    # counts does not change the task for a given seed.
    # Frequencies (cycles per window) are spaced by class so classes are
    # separable, with a per-channel jitter so channels are not redundant.
    freq = 2.0 + 1.5 * np.arange(n_classes)[:, None]
    freq = freq + rng.uniform(0.0, 0.5, size=(n_classes, n_channels))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n_classes, n_channels))
    # Log-normal gain keeps it positive whatever the shift.
    gain = np.exp(shift * rng.normal(0.0, 0.3, size=n_channels))
    offset = shift * rng.normal(0.0, 0.5, size=n_channels)
    freq_scale = 1.0 + 0.10 * shift * rng.choice([-1.0, 1.0])

    t = np.arange(n_timepoints) / n_timepoints

    def sample(n, domain_gain, domain_offset, domain_freq_scale):
        y = rng.permutation(np.arange(n) % n_classes)
        amp = rng.uniform(0.8, 1.2, size=(n, 1, 1))
        jitter = rng.normal(0.0, 0.2, size=(n, n_channels, 1))
        f = freq[y][:, :, None] * domain_freq_scale
        X = amp * np.sin(2 * np.pi * f * t + phase[y][:, :, None] + jitter)
        X = domain_gain[:, None] * X + domain_offset[:, None]
        X = X + noise * rng.standard_normal(size=X.shape)
        return X.astype(np.float32), y.astype(np.int64)

    ones, zeros = np.ones(n_channels), np.zeros(n_channels)
    X_src, y_src = sample(n_samples, ones, zeros, 1.0)
    X_tgt, y_tgt = sample(n_target, gain, offset, freq_scale)
    X_tgt_test, y_tgt_test = sample(n_test, gain, offset, freq_scale)

    descr = (
        f"Synthetic domain shift: {n_classes} classes of {n_channels}-channel "
        f"sinusoids of length {n_timepoints}, noise={noise}, shift={shift} "
        "(target: per-channel gain and offset, frequency change)."
    )
    return Bunch(
        X_src=X_src,
        y_src=y_src,
        X_tgt=X_tgt,
        y_tgt=y_tgt,
        X_tgt_test=X_tgt_test,
        y_tgt_test=y_tgt_test,
        target_names=[f"class_{c}" for c in range(n_classes)],
        DESCR=descr,
    )
