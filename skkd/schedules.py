"""Training schedules shared by the cross-domain distillers (pure functions)."""

import math

__all__ = ["grl_coefficient", "progressive_beta"]


def grl_coefficient(progress, schedule="constant"):
    """Gradient-reversal coefficient for a training progress in [0, 1].

    ``"ramp"`` is the DANN schedule ``2 / (1 + exp(-10 p)) - 1`` (Ganin et al.,
    JMLR 2016); ``"constant"`` is 1 throughout (what the UNI-KD/AdaTime released
    code effectively uses, since its progress variable saturates at once).

    Parameters
    ----------
    progress : float
        Fraction of training done, in [0, 1].
    schedule : {"constant", "ramp"}
        Which schedule.

    Returns
    -------
    alpha : float

    Examples
    --------
    >>> grl_coefficient(0.0, "ramp"), grl_coefficient(0.3, "constant")
    (0.0, 1.0)
    """
    if schedule == "constant":
        return 1.0
    if schedule == "ramp":
        return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0
    raise ValueError(f"grl_schedule must be 'constant' or 'ramp', got {schedule!r}.")


def progressive_beta(epoch, n_epochs, beta_0=0.1, beta_end=0.9, schedule="ln"):
    """UNI-KD's progressive weight ``beta_e = beta_0 * exp(g * e)``.

    Xu et al., IJCAI 2023, eq. (f): ``g = ln(beta_E / beta_0) / E`` so that
    ``beta`` grows from ``beta_0`` to ``beta_E`` over ``E`` epochs, moving the
    emphasis from domain confusion to distillation. The released code uses
    ``log10`` inside the exponent (``"log10"``), which makes beta go only from
    0.11 to 0.26 over 10 epochs.

    Epochs past ``E`` (warm starts) keep ``beta_E``.

    Parameters
    ----------
    epoch : int
        Current epoch, 1-based (``e = 1..E``).
    n_epochs : int
        Total epochs ``E``.
    beta_0, beta_end : float
        Start and end values.
    schedule : {"ln", "log10"}
        The paper's natural log, or the released code's log10.

    Returns
    -------
    beta : float

    Examples
    --------
    >>> round(progressive_beta(10, 10), 6)
    0.9
    >>> round(progressive_beta(10, 10, schedule="log10"), 4)
    0.2597
    """
    if schedule == "ln":
        log = math.log
    elif schedule == "log10":
        log = math.log10
    else:
        raise ValueError(f"beta_schedule must be 'ln' or 'log10', got {schedule!r}.")
    if beta_0 <= 0 or beta_end <= 0:
        raise ValueError("beta_0 and beta_end must be positive.")
    n_epochs = max(1, n_epochs)
    gamma = log(beta_end / beta_0) / n_epochs
    return beta_0 * math.exp(gamma * min(epoch, n_epochs))
