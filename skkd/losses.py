"""Distillation and domain-alignment losses as pure tensor functions.

All functions take and return ``torch`` tensors, are differentiable and
validate their input shapes, raising ``ValueError`` with a clear message on
mismatch.
"""

import torch
import torch.nn.functional as F

__all__ = ["coral", "hint_l1", "hint_mse", "kd_kl_div", "mmd"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_2d(name, t):
    if t.dim() != 2:
        raise ValueError(
            f"{name} must be 2-D (batch, dim), got shape {tuple(t.shape)}."
        )


def _check_same_shape(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )


def kd_kl_div(
    student_logits,
    teacher_logits,
    temperature=4.0,
    *,
    weights=None,
    scale_t2=True,
    reduction="mean",
):
    """Temperature-scaled knowledge-distillation KL divergence.

    For sample ``i`` with teacher probabilities ``p_i = softmax(t_i / T)`` and
    student probabilities ``q_i = softmax(s_i / T)``::

        KL_i = sum_c p_ic (log p_ic - log q_ic)
        loss = T^2 * (1 / b) * sum_i w_i KL_i      (reduction="mean")

    as in Hinton, Vinyals & Dean (2015), "Distilling the knowledge in a neural
    network", NIPS Deep Learning Workshop. The ``T^2`` factor keeps gradient
    magnitudes comparable across temperatures. Probabilities are computed
    with ``log_softmax`` for numerical stability.

    Parameters
    ----------
    student_logits : torch.Tensor of shape (batch, n_classes)
        Student logits ``s``.
    teacher_logits : torch.Tensor of shape (batch, n_classes)
        Teacher logits ``t``; usually detached by the caller.
    temperature : float, default=4.0
        Softmax temperature ``T > 0``.
    weights : torch.Tensor of shape (batch,), default=None
        Optional per-sample weights ``w_i`` multiplying each ``KL_i``.
    scale_t2 : bool, default=True
        Multiply the result by ``T^2``.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides the weighted sum by the batch size, ``"sum"``
        returns the weighted sum, ``"none"`` the per-sample values.

    Returns
    -------
    torch.Tensor
        Scalar, or shape ``(batch,)`` when ``reduction="none"``.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import kd_kl_div
    >>> s = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(kd_kl_div(s, s))
    0.0
    >>> float(kd_kl_div(s, s.flip(1), temperature=1.0)) > 0
    True
    """
    _check_2d("student_logits", student_logits)
    _check_2d("teacher_logits", teacher_logits)
    _check_same_shape(
        "student_logits", student_logits, "teacher_logits", teacher_logits
    )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    per_sample = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    if weights is not None:
        weights = torch.as_tensor(
            weights, dtype=per_sample.dtype, device=per_sample.device
        )
        if weights.shape != per_sample.shape:
            raise ValueError(
                f"weights must have shape ({per_sample.shape[0]},), "
                f"got {tuple(weights.shape)}."
            )
        per_sample = per_sample * weights
    if scale_t2:
        per_sample = per_sample * temperature**2
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def hint_l1(student_features, teacher_features):
    """Mean absolute error between student and teacher features (hint loss).

    ``loss = mean(|f_s - f_t|)`` over all elements, the L1 variant of the
    FitNets hint (Romero et al., 2015, "FitNets: hints for thin deep nets",
    ICLR). Features must already have the same shape (project them first if
    widths differ).

    Parameters
    ----------
    student_features : torch.Tensor
        Student features.
    teacher_features : torch.Tensor
        Teacher features, same shape.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import hint_l1
    >>> float(hint_l1(torch.zeros(2, 2), torch.tensor([[1.0, -1.0], [2.0, 0.0]])))
    1.0
    """
    _check_same_shape(
        "student_features", student_features, "teacher_features", teacher_features
    )
    return (student_features - teacher_features).abs().mean()


def hint_mse(student_features, teacher_features):
    """Mean squared error between student and teacher features (FitNet hint).

    ``loss = mean((f_s - f_t)^2)`` over all elements (Romero et al., 2015,
    "FitNets: hints for thin deep nets", ICLR).

    Parameters
    ----------
    student_features : torch.Tensor
        Student features.
    teacher_features : torch.Tensor
        Teacher features, same shape.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import hint_mse
    >>> float(hint_mse(torch.zeros(2, 2), torch.tensor([[1.0, -1.0], [2.0, 0.0]])))
    1.5
    """
    _check_same_shape(
        "student_features", student_features, "teacher_features", teacher_features
    )
    return (student_features - teacher_features).pow(2).mean()


def _covariance(x):
    n = x.shape[0]
    centered = x - x.mean(dim=0, keepdim=True)
    # Unbiased estimate as in Deep CORAL; a single sample has zero covariance,
    # so clamping the denominator avoids a division by zero without changing it.
    return centered.T @ centered / max(n - 1, 1)


def coral(source_features, target_features):
    """Deep CORAL loss between two batches of features.

    ``loss = ||C_s - C_t||_F^2 / (4 d^2)`` where ``C_s`` and ``C_t`` are the
    unbiased feature covariance matrices and ``d`` the feature dimension (Sun
    & Saenko, 2016, "Deep CORAL: correlation alignment for deep domain
    adaptation", ECCV Workshops). Batch sizes may differ.

    Parameters
    ----------
    source_features : torch.Tensor of shape (n_source, d)
        Source-domain features.
    target_features : torch.Tensor of shape (n_target, d)
        Target-domain features.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import coral
    >>> x = torch.randn(8, 3)
    >>> float(coral(x, x + 5.0)) < 1e-6
    True
    """
    _check_2d("source_features", source_features)
    _check_2d("target_features", target_features)
    if source_features.shape[1] != target_features.shape[1]:
        raise ValueError(
            "source_features and target_features must have the same feature "
            f"dimension, got {source_features.shape[1]} and {target_features.shape[1]}."
        )
    d = source_features.shape[1]
    diff = _covariance(source_features) - _covariance(target_features)
    return diff.pow(2).sum() / (4 * d * d)


def mmd(x, y, kernel_mul=2.0, kernel_num=5):
    """Squared maximum mean discrepancy with a multi-bandwidth Gaussian kernel.

    Biased estimate ``MMD^2 = mean(K_xx) + mean(K_yy) - 2 mean(K_xy)``
    (Gretton et al., 2012, "A kernel two-sample test", JMLR) with the kernel
    ``k(a, b) = sum_j exp(-||a - b||^2 / sigma_j)`` used by DDC/DAN (Long et
    al., 2015, "Learning transferable features with deep adaptation
    networks", ICML): ``sigma_j = sigma_0 * kernel_mul^(j - kernel_num // 2)``
    for ``j = 0..kernel_num-1``, with ``sigma_0`` the mean pairwise squared
    distance of the pooled samples. The bandwidth is a data-driven heuristic
    and is treated as a constant (no gradient).

    Parameters
    ----------
    x : torch.Tensor of shape (n_x, d)
        First sample.
    y : torch.Tensor of shape (n_y, d)
        Second sample.
    kernel_mul : float, default=2.0
        Ratio between consecutive bandwidths.
    kernel_num : int, default=5
        Number of bandwidths.

    Returns
    -------
    torch.Tensor
        Scalar ``MMD^2`` estimate.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import mmd
    >>> x = torch.randn(16, 4)
    >>> abs(float(mmd(x, x))) < 1e-6
    True
    >>> float(mmd(x, x + 3.0)) > 0.1
    True
    """
    _check_2d("x", x)
    _check_2d("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            "x and y must have the same feature dimension, "
            f"got {x.shape[1]} and {y.shape[1]}."
        )
    n_x = x.shape[0]
    total = torch.cat([x, y], dim=0)
    n = total.shape[0]
    # Explicit differences rather than cdist: exact zeros on the diagonal and a
    # finite gradient there (the square root inside cdist is not).
    sq_dist = (total.unsqueeze(1) - total.unsqueeze(0)).pow(2).sum(dim=-1)
    with torch.no_grad():
        # Mean over off-diagonal pairs; clamp so identical samples do not give 0/0.
        base = sq_dist.sum() / max(n * n - n, 1)
        base = base.clamp_min(1e-12) / kernel_mul ** (kernel_num // 2)
    kernel = sum(
        torch.exp(-sq_dist / (base * kernel_mul**j)) for j in range(kernel_num)
    )
    k_xx = kernel[:n_x, :n_x].mean()
    k_yy = kernel[n_x:, n_x:].mean()
    k_xy = kernel[:n_x, n_x:].mean()
    return k_xx + k_yy - 2 * k_xy
