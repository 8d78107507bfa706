"""What an skkd estimator needs, declared as scikit-learn estimator tags.

``sklearn.utils.get_tags(estimator)`` of every skkd estimator is a
:class:`SkkdTags`: scikit-learn's tags plus ``time_series``, a
:class:`TimeSeriesTags`. The engine reads them (whether ``fit`` draws target
batches, which teacher outputs to cache, length checks) and so do the tests; a
method declares its capabilities by extending ``__sklearn_tags__``.
"""

from dataclasses import dataclass, field, fields

from sklearn.utils import Tags

__all__ = ["SkkdTags", "TimeSeriesTags", "TARGET_USES"]

#: how a method uses unlabelled target data ``X_tgt``
TARGET_USES = ("required", "optional", "ignored", "refused")


@dataclass(slots=True)
class TimeSeriesTags:
    """Capabilities of an skkd estimator.

    Parameters
    ----------
    target : {"required", "optional", "ignored", "refused"}, default="optional"
        ``X_tgt`` is needed (a missing one is an error), used when given,
        accepted and not used, or an error (the method has no use for it and
        would silently ignore a user's intent).
    teacher_outputs : tuple of str, default=()
        Teacher outputs the method reads: ``"logits"``, ``"features"``,
        ``"sequence"`` (recurrent hidden states). Empty for estimators
        without a teacher.
    equal_length : bool, default=True
        Every series must have the same length (no NaN padding).
    min_timepoints : int, default=1
        Shortest series the method can train on.

    Examples
    --------
    >>> TimeSeriesTags(target="required").target
    'required'
    """

    target: str = "optional"
    teacher_outputs: tuple = ()
    equal_length: bool = True
    min_timepoints: int = 1


@dataclass(slots=True)
class SkkdTags(Tags):
    """scikit-learn's :class:`~sklearn.utils.Tags` plus ``time_series``.

    Examples
    --------
    >>> from sklearn.utils import get_tags
    >>> from skkd import DANNClassifier
    >>> get_tags(DANNClassifier()).time_series.target
    'required'
    """

    time_series: TimeSeriesTags = field(default_factory=TimeSeriesTags)

    @classmethod
    def from_tags(cls, tags):
        """Extend scikit-learn ``tags`` with default ``time_series`` tags.

        Parameters
        ----------
        tags : sklearn.utils.Tags

        Returns
        -------
        SkkdTags
        """
        if isinstance(tags, cls):
            return tags
        return cls(**{f.name: getattr(tags, f.name) for f in fields(tags)})
