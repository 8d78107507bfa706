"""The base of every distiller: the engine plus a frozen teacher."""

import copy

import numpy as np
import torch
from sklearn.base import clone
from torch import nn

from ..base import BaseTimeSeriesClassifier
from ..nn import CNN1D
from ..teacher import (
    TeacherCache,
    frozen_copy,
    probe,
    resolve_teacher,
    teacher_features,
    teacher_logits,
)

__all__ = ["BaseDistiller"]


class BaseDistiller(BaseTimeSeriesClassifier):
    """Engine of the distillers: :class:`BaseTimeSeriesClassifier` plus a teacher.

    The teacher is never modified: ``teacher_module_`` is a frozen deep copy
    (no gradient, eval mode, in no optimizer), rebuilt at every fit. ``clone``
    keeps the teacher fitted (a fitted estimator is shared, a bare module
    copied), so ``GridSearchCV`` can search distillation hyperparameters. The
    teacher outputs a method reads are declared in its tags
    (``time_series.teacher_outputs``).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained teacher; ``FrozenEstimator(fitted_net)`` is the recommended
        form.
    module : type or torch.nn.Module, default=CNN1D
        The student.
    teacher_feature_layer : str or None, default=None
        For feature-based methods and a teacher without ``forward_features``:
        the name (as in ``named_modules()``) of the layer whose output is the
        teacher's feature (3-D outputs are averaged over time).
    cache_teacher : bool, default=True
        Compute the frozen teacher's outputs on the training series (source
        and target) once per fit and look them up by content in each step.
        The outputs equal the uncached teacher's (up to float rounding of
        batched arithmetic); series not in the cache are computed on the fly.
        Skipped above ``TEACHER_CACHE_MAX_BYTES`` and for methods that train
        their copy of the teacher.
    **kwargs
        As :class:`BaseTimeSeriesClassifier`.

    Attributes
    ----------
    teacher_module_ : torch.nn.Module
        Frozen copy of the teacher's network.
    teacher_n_features_ : int
        Width of the teacher's features (feature-based methods only).
    """

    _default_kwargs = {
        **BaseTimeSeriesClassifier._default_kwargs,
        "optimizer__betas": (0.5, 0.99),
    }

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        teacher_feature_layer=None,
        cache_teacher=True,
        **kw,
    ):
        super().__init__(module, **kw)
        self.teacher = teacher
        self.teacher_feature_layer = teacher_feature_layer
        self.cache_teacher = cache_teacher

    def __setattr__(self, name, value):
        if name == "teacher":
            # a bare nn.Module teacher is a hyperparameter, not a skorch component
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def __sklearn_clone__(self):
        # sklearn's clone would re-create a bare fitted skorch teacher unfitted
        params = self.get_params(deep=False)
        teacher = params.pop("teacher")
        if isinstance(teacher, nn.Module):
            teacher = copy.deepcopy(teacher)
        params = {k: clone(v, safe=False) for k, v in params.items()}
        new = type(self)(teacher=teacher, **params)
        if hasattr(self, "_metadata_request"):
            new._metadata_request = copy.deepcopy(self._metadata_request)
        return new

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.teacher_outputs = ("logits",)
        return tags

    def _reads(self, output):
        return output in self.__sklearn_tags__().time_series.teacher_outputs

    def frozen_modules(self):
        return ["teacher_module"]

    def _resolve_teacher(self):
        """``(module, classes)`` of the teacher; see :func:`resolve_teacher`."""
        return resolve_teacher(self.teacher, type(self).__name__)

    def prepare_fit(self, X, y, X_tgt):
        """Check the teacher against the data before anything is built."""
        module, classes = self._resolve_teacher()
        n_classes = len(self.classes_)
        if classes is not None and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"The teacher was fitted on classes {np.asarray(classes).tolist()} but "
                f"y has classes {self.classes_.tolist()}; distil on data with the "
                "teacher's label set."
            )
        sample = torch.from_numpy(X[:2])
        # a copy in eval mode: the probe must not touch the caller's teacher
        teacher = frozen_copy(module, self.device)
        out = probe(teacher, sample)
        out = out[0] if isinstance(out, tuple) else out
        if out.ndim != 2 or out.shape[1] != n_classes:
            raise ValueError(
                f"The teacher outputs {tuple(out.shape[1:])} values per sample but y "
                f"has {n_classes} classes; the teacher must be trained on the same "
                "classes."
            )
        if self._reads("features"):
            with torch.no_grad():
                features = self._features(teacher, sample)
            self.teacher_n_features_ = int(features.shape[1])

    def initialize_module(self):
        """Build the student and a frozen copy of the teacher."""
        super().initialize_module()
        module, _ = self._resolve_teacher()
        trainable = "teacher_module" not in self.frozen_modules()
        self.teacher_module_ = frozen_copy(module, self.device, trainable=trainable)
        return self

    def initialize_adapter(self):
        """The ``adapter`` component: student features -> teacher feature space.

        Built from the class given as ``adapter`` (``torch.nn.Linear`` by
        default) with ``in_features``/``out_features`` taken from the two
        networks; routed ``adapter__*`` parameters apply.
        """
        return self.initialize_component(
            "adapter",
            in_features=self.module_.n_features,
            out_features=self.teacher_n_features_,
        )

    def initialize_feature_discriminator(self, name):
        """A one-logit discriminator on teacher-width features, without GRL."""
        return self.initialize_component(
            name, n_features=self.teacher_n_features_, n_domains=1, grl=False
        )

    # ------------------------------------------------ teacher outputs (cached)
    def _open_session(self, X, X_tgt):
        super()._open_session(X, X_tgt)
        if self.cache_teacher and "teacher_module" in self.frozen_modules():
            arrays = [X] if X_tgt is None else [X, X_tgt]
            self._session.teacher_cache = TeacherCache.build(
                self.teacher_forward, arrays
            )

    def _features(self, teacher, X, with_logits=False):
        try:
            return teacher_features(teacher, X, self.teacher_feature_layer, with_logits)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}: {exc}") from exc

    def teacher_forward(self, X):
        """Every teacher output the method reads, from one forward, no gradient.

        Parameters
        ----------
        X : torch.Tensor
            A batch of series.

        Returns
        -------
        dict of str to torch.Tensor
            One row per series: ``"logits"``, plus ``"features"`` for methods
            whose tags list them; recurrent distillers add ``"sequence"``.
        """
        with torch.no_grad():
            if self._reads("features"):
                features, logits = self._features(self.teacher_module_, X, True)
                return {"features": features, "logits": logits}
            return {"logits": teacher_logits(self.teacher_module_, X)}

    def _teacher_batch(self, X):
        """:meth:`teacher_forward` of a batch, from the cache when it holds it."""
        cache = getattr(getattr(self, "_session", None), "teacher_cache", None)
        out = None if cache is None else cache.lookup(X)
        return self.teacher_forward(X) if out is None else out

    def teacher_logits(self, X):
        """Teacher logits for a batch, without gradient."""
        return self._teacher_batch(X)["logits"]

    def teacher_features(self, X):
        """Teacher features for a batch, without gradient.

        ``forward_features`` of skkd backbones, or the output of the layer
        named by ``teacher_feature_layer`` (averaged over time when 3-D).
        """
        return self.teacher_outputs(X)[0]

    def teacher_outputs(self, X, *, grad=False):
        """Teacher ``(features, logits)`` of a batch from one forward pass.

        Parameters
        ----------
        X : torch.Tensor
            A batch of series.
        grad : bool, default=False
            Keep the graph (for methods that train their copy of the teacher);
            without it the outputs may come from the cache.

        Returns
        -------
        features, logits : torch.Tensor
        """
        if not grad:
            out = self._teacher_batch(X)
            if "features" in out:
                return out["features"], out["logits"]
        with torch.set_grad_enabled(grad):
            return self._features(self.teacher_module_, X, with_logits=True)
