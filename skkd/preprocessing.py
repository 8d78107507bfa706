"""Transformers for time-series panels, for use in front of skkd estimators."""

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import check_time_series

__all__ = ["ChannelStandardScaler"]


class ChannelStandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise each channel of a time-series panel to zero mean, unit variance.

    The mean and standard deviation of each channel are taken over all samples
    and time points seen in ``fit``, so the shape of the series is kept (unlike
    :class:`sklearn.preprocessing.StandardScaler`, which needs 2-D data). In a
    :class:`~sklearn.pipeline.Pipeline` in front of a distiller, fit it on
    source *and* target rows by passing skada's packed form
    (``sample_domain`` < 0 for target rows): data given as ``X_tgt=`` bypasses
    every transformer of a pipeline.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the channel means.
    with_std : bool, default=True
        Divide by the channel standard deviations (a constant channel is left
        unscaled).

    Attributes
    ----------
    mean_ : ndarray of shape (n_channels,)
        Channel means.
    scale_ : ndarray of shape (n_channels,)
        Channel standard deviations (1 where a channel is constant).
    n_channels_in_ : int
        Channels seen in ``fit``.
    n_timepoints_in_ : int
        Series length seen in ``fit`` (``transform`` needs the same).
    n_features_in_ : int
        Only for 2-D input, sklearn's name for the series length.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(5.0, 3.0, size=(20, 2, 50))
    >>> Xt = ChannelStandardScaler().fit_transform(X)
    >>> Xt.shape, bool(np.allclose(Xt.mean(axis=(0, 2)), 0, atol=1e-6))
    ((20, 2, 50), True)
    """

    # sample_domain is accepted (and ignored) so the scaler fits in skada's
    # pipelines; it is not requested: routing never needs to send it here
    def __init__(self, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check(self, X, fitted):
        if not hasattr(X, "shape") or hasattr(X, "__array_function__"):
            X = np.asarray(X)
        was_2d = len(X.shape) == 2
        if fitted and was_2d and X.shape[1] != self.n_timepoints_in_:
            # 2-D data are sklearn's (n_samples, n_features): say it in its words
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_timepoints_in_} features as input."
            )
        arr = check_time_series(
            X,
            n_channels=self.n_channels_in_ if fitted else None,
            n_timepoints=self.n_timepoints_in_ if fitted else None,
        ).astype(np.float64)
        keep = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return arr, was_2d, keep

    def fit(self, X, y=None):
        """Compute the per-channel mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timepoints)
            Series (2-D is read as univariate).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        arr, was_2d, _ = self._check(X, fitted=False)
        self.n_channels_in_ = arr.shape[1]
        self.n_timepoints_in_ = arr.shape[2]
        if was_2d:
            self.n_features_in_ = arr.shape[2]
        mean = arr.mean(axis=(0, 2))
        std = arr.std(axis=(0, 2))
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        # a constant channel stays unscaled, as in sklearn's StandardScaler
        scale = np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)
        self.scale_ = scale if self.with_std else np.ones_like(scale)
        return self

    def transform(self, X):
        """Standardise ``X`` channel by channel.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timepoints)
            Series with the channels seen in ``fit``.

        Returns
        -------
        Xt : ndarray of the input's shape
            float64, or float32 for float32 input (computed from float32
            values, the precision of every skkd estimator).
        """
        check_is_fitted(self, "mean_")
        arr, was_2d, keep = self._check(X, fitted=True)
        out = (arr - self.mean_[None, :, None]) / self.scale_[None, :, None]
        out = out.astype(keep, copy=False)
        return out[:, 0, :] if was_2d else out

    def inverse_transform(self, X):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_channels, n_timepoints)
            Standardised series.

        Returns
        -------
        X : ndarray of the input's shape
        """
        check_is_fitted(self, "mean_")
        arr, was_2d, keep = self._check(X, fitted=True)
        out = (arr * self.scale_[None, :, None] + self.mean_[None, :, None]).astype(
            keep, copy=False
        )
        return out[:, 0, :] if was_2d else out
