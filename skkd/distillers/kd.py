"""Hinton knowledge distillation."""

from ..losses import kd_kl_div
from ..nn import CNN1D
from .base import BaseDistiller

__all__ = ["KDClassifier"]


class KDClassifier(BaseDistiller):
    """Knowledge distillation from a fitted teacher (Hinton KD).

    Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network",
    NIPS Deep Learning Workshop 2015. The student minimises::

        L = (1 - alpha) * CE(z_S(x_s), y_s)
            + alpha * T^2 * [KL(sigma(z_T(x_s)/T) || sigma(z_S(x_s)/T))
                             + target_weight * KL(... on x_t ...)]

    where each KL is averaged over its mini-batch and the target term is used
    when ``fit`` receives unlabelled ``X_tgt`` (a transfer set: target series
    labelled by the teacher's soft outputs).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained teacher, preferably ``FrozenEstimator(fitted_net)``; never
        modified.
    module : type or torch.nn.Module, default=CNN1D
        The student (e.g. ``module__widths=(16, 32, 32)``).
    temperature : float, default=4.0
        Softmax temperature T.
    alpha : float, default=0.5
        Weight of the distillation terms against the source cross-entropy.
    target_weight : float, default=1.0
        Weight of the KD term on target series (when ``X_tgt`` is given).
    **kwargs
        As :class:`skkd.base.BaseTimeSeriesClassifier`.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import KDClassifier, TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = TimeSeriesClassifier(max_epochs=2, random_state=0)
    >>> teacher = teacher.fit(d.X_src, d.y_src)
    >>> student = KDClassifier(FrozenEstimator(teacher), module__widths=(8, 16),
    ...                        max_epochs=2, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (120,)
    """

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        temperature=4.0,
        alpha=0.5,
        target_weight=1.0,
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.temperature = temperature
        self.alpha = alpha
        self.target_weight = target_weight

    def prepare_fit(self, X, y, X_tgt):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
        super().prepare_fit(X, y, X_tgt)

    def compute_losses(self, X, y, X_tgt):
        logits = self.module_(X)
        ce = self.criterion_(logits, y)
        kd_src = kd_kl_div(logits, self.teacher_logits(X), self.temperature)
        terms = {"ce": ce, "kd_src": kd_src, "y_pred": logits}
        kd = kd_src
        if X_tgt is not None:
            kd_tgt = kd_kl_div(
                self.module_(X_tgt), self.teacher_logits(X_tgt), self.temperature
            )
            terms["kd_tgt"] = kd_tgt
            kd = kd + self.target_weight * kd_tgt
        terms["loss"] = (1 - self.alpha) * ce + self.alpha * kd
        return terms
