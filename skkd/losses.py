"""Distillation and domain-alignment losses as pure tensor functions.

All functions take and return ``torch`` tensors, are differentiable and
validate their input shapes, raising ``ValueError`` with a clear message on
mismatch.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "adversarial_bce",
    "attention_transfer",
    "conditional_entropy",
    "coral",
    "dkd",
    "hint_l1",
    "hint_mse",
    "kd_kl_div",
    "memory_discrepancy",
    "memory_pairs",
    "mmd",
    "rcdkd_rewards",
    "rcdkd_signals",
    "relative_memory_change",
    "rkd_angle",
    "rkd_distance",
    "vat_loss",
]

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


# --------------------------------------------------------------------------
# Recurrent and relational distillation losses (MemKD and its baselines)
# --------------------------------------------------------------------------


def _check_sequence(name, t):
    if t.dim() != 3:
        raise ValueError(
            f"{name} must be 3-D (batch, time, hidden), got shape {tuple(t.shape)}."
        )


def _check_pairs(starts, ends, n_timepoints):
    starts = torch.as_tensor(starts, dtype=torch.long)
    ends = torch.as_tensor(ends, dtype=torch.long)
    if starts.dim() != 1 or starts.shape != ends.shape:
        raise ValueError(
            "starts and ends must be 1-D and of the same length, got shapes "
            f"{tuple(starts.shape)} and {tuple(ends.shape)}."
        )
    if len(starts) == 0:
        raise ValueError("at least one (start, end) pair is needed.")
    if (starts < 0).any() or (ends >= n_timepoints).any() or (starts > ends).any():
        raise ValueError(
            f"pairs must satisfy 0 <= start <= end < n_timepoints={n_timepoints}."
        )
    return starts, ends


def memory_pairs(n_timepoints, n_random=100, *, generator=None):
    """Time-step pairs ``(s, e)`` at which MemKD compares hidden states.

    Udayangani et al. (2025), "MemKD: Memory-discrepancy knowledge distillation
    for efficient time series classification", ICASSP. Two sets, shared by
    teacher, student and every sample of a batch:

    * ``P_1``: all consecutive pairs ``(t, t + 1)``, ``t = 0..T-2``;
    * ``P_z``: ``n_random`` random pairs; two integers ``a, b`` are drawn
      uniformly from ``[0, T - 1)`` and ``(s, e) = (min(a, b), max(a, b))``
      (equal values are allowed and give ``r = 0``).

    Parameters
    ----------
    n_timepoints : int
        Series length ``T``; at least 3 (shorter series have no pair worth
        comparing).
    n_random : int, default=100
        Number of random pairs (0 for none).
    generator : torch.Generator, optional
        Source of randomness, for reproducible pairs.

    Returns
    -------
    consecutive : tuple of torch.Tensor
        ``(starts, ends)`` of ``P_1``, each of shape ``(T - 1,)``.
    random : tuple of torch.Tensor or None
        ``(starts, ends)`` of ``P_z``, each of shape ``(n_random,)``; None when
        ``n_random == 0``.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import memory_pairs
    >>> gen = torch.Generator().manual_seed(0)
    >>> (s1, e1), (sz, ez) = memory_pairs(4, 3, generator=gen)
    >>> s1.tolist(), e1.tolist()
    ([0, 1, 2], [1, 2, 3])
    >>> bool((sz <= ez).all() and (ez < 3).all())
    True
    """
    n_timepoints = int(n_timepoints)
    if n_timepoints < 3:
        raise ValueError(
            f"MemKD compares hidden states at pairs of time steps and needs series "
            f"of at least 3 time steps; got {n_timepoints}. Use longer windows."
        )
    if n_random < 0:
        raise ValueError(f"n_random must be >= 0, got {n_random}.")
    starts = torch.arange(n_timepoints - 1)
    consecutive = (starts, starts + 1)
    if n_random == 0:
        return consecutive, None
    draws = torch.randint(0, n_timepoints - 1, (2, int(n_random)), generator=generator)
    return consecutive, (draws.min(dim=0).values, draws.max(dim=0).values)


def relative_memory_change(hidden, starts, ends, *, eps=1e-8):
    """Relative change of a recurrent network's memory over time windows.

    For a hidden-state sequence ``h`` (the top recurrent layer's output) and a
    window ``(s, e]``, MemKD (Udayangani et al., 2025, ICASSP) defines::

        r(s, e) = ||h(e) - h(s)||_2 / (||h(s)||_2 + eps)

    a scalar per sample and window. ``eps`` keeps ``h(s) = 0`` finite. ``r``
    is unchanged by a global scaling ``c * h`` (``c > 0``, up to ``eps``) and
    by any orthogonal rotation ``Q h`` of the hidden space, so networks of
    different widths can be compared without a projector.

    Parameters
    ----------
    hidden : torch.Tensor of shape (batch, time, hidden)
        Hidden states over time.
    starts, ends : torch.Tensor of shape (n_pairs,)
        Time indices with ``0 <= start <= end < time``.
    eps : float, default=1e-8
        Added to the denominator.

    Returns
    -------
    torch.Tensor of shape (batch, n_pairs)

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import relative_memory_change
    >>> h = torch.tensor([[[3.0, 4.0], [3.0, 4.0], [0.0, 0.0]]])  # |h(0)| = 5
    >>> relative_memory_change(h, torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]))
    tensor([[0., 1., 1.]])
    """
    _check_sequence("hidden", hidden)
    starts, ends = _check_pairs(starts, ends, hidden.shape[1])
    starts, ends = starts.to(hidden.device), ends.to(hidden.device)
    h_start = hidden[:, starts, :]
    h_end = hidden[:, ends, :]
    return (h_end - h_start).norm(dim=-1) / (h_start.norm(dim=-1) + eps)


def memory_discrepancy(
    student_hidden, teacher_hidden, starts, ends, *, eps=1e-8, beta=1.0
):
    """MemKD loss: mismatch of the relative memory changes of two networks.

    Udayangani et al. (2025), "MemKD: Memory-discrepancy knowledge distillation
    for efficient time series classification", ICASSP. For a set of pairs
    ``P`` and a batch of ``B`` series::

        L_mem(P) = (1/B) sum_i (1/|P|) sum_{(s,e) in P}
                   SmoothL1_beta( r_S,i(s, e), sg[r_T,i(s, e)] )

    with ``r`` from :func:`relative_memory_change` and ``sg`` the stop-gradient
    (the teacher's values are detached here). Student and teacher hidden
    sizes may differ; the time axes must match.

    Parameters
    ----------
    student_hidden : torch.Tensor of shape (batch, time, hidden_s)
        Student's top-layer hidden states.
    teacher_hidden : torch.Tensor of shape (batch, time, hidden_t)
        Teacher's top-layer hidden states.
    starts, ends : torch.Tensor of shape (n_pairs,)
        The pairs ``P`` (see :func:`memory_pairs`).
    eps : float, default=1e-8
        Denominator guard of ``r``.
    beta : float, default=1.0
        SmoothL1 threshold (PyTorch's default).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import memory_discrepancy
    >>> h_t = torch.randn(2, 5, 100)
    >>> s, e = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 4])
    >>> float(memory_discrepancy(3.0 * h_t, h_t, s, e)) < 1e-10
    True
    """
    _check_sequence("student_hidden", student_hidden)
    _check_sequence("teacher_hidden", teacher_hidden)
    if student_hidden.shape[:2] != teacher_hidden.shape[:2]:
        raise ValueError(
            "student_hidden and teacher_hidden must share (batch, time), got "
            f"{tuple(student_hidden.shape[:2])} and {tuple(teacher_hidden.shape[:2])}."
        )
    r_s = relative_memory_change(student_hidden, starts, ends, eps=eps)
    r_t = relative_memory_change(teacher_hidden.detach(), starts, ends, eps=eps)
    return F.smooth_l1_loss(r_s, r_t, beta=beta)


def _pairwise_distances(x, eps=1e-12):
    # from the Gram matrix in float64 (O(B^2 D) without a (B, B, D) tensor);
    # the clamp keeps the square root's gradient finite for equal samples
    x64 = x.double()
    g = x64 @ x64.T
    diag = g.diagonal()
    sq = diag.unsqueeze(0) + diag.unsqueeze(1) - 2 * g
    return sq.clamp_min(eps).sqrt().to(x.dtype)


def rkd_distance(student, teacher):
    """Distance-wise relational KD loss.

    Park, Kim, Lu, Cho (2019), "Relational knowledge distillation", CVPR. With
    ``psi(x_i, x_j) = ||x_i - x_j||_2 / mu`` and ``mu`` the mean distance over
    the ``i != j`` pairs of the batch::

        L_D = mean_{i != j} SmoothL1( psi_S(i, j), psi_T(i, j) )

    Representations are flattened per sample, so widths (and sequence
    lengths) of student and teacher may differ. The teacher is detached.

    Parameters
    ----------
    student : torch.Tensor of shape (batch, ...)
        Student representations.
    teacher : torch.Tensor of shape (batch, ...)
        Teacher representations.

    Returns
    -------
    torch.Tensor
        Scalar loss (0 for a batch of one sample).

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import rkd_distance
    >>> t = torch.randn(6, 10)
    >>> float(rkd_distance(2.0 * t[:, :4], t[:, :4])) < 1e-10
    True
    """
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"student and teacher must have the same batch size, got "
            f"{student.shape[0]} and {teacher.shape[0]}."
        )
    n = student.shape[0]
    if n < 2:
        return student.sum() * 0.0
    s = student.flatten(start_dim=1)
    t = teacher.detach().flatten(start_dim=1)
    off = ~torch.eye(n, dtype=torch.bool, device=s.device)
    d_s = _pairwise_distances(s)[off]
    d_t = _pairwise_distances(t)[off]
    d_s = d_s / d_s.mean().clamp_min(1e-12)
    d_t = d_t / d_t.mean().clamp_min(1e-12)
    return F.smooth_l1_loss(d_s, d_t)


def rkd_angle(student, teacher):
    """Angle-wise relational KD loss.

    Park, Kim, Lu, Cho (2019), "Relational knowledge distillation", CVPR. For
    every triplet of samples, ``e_ij = (x_i - x_j) / ||x_i - x_j||`` and::

        psi_A(i, j, k) = <e_ij, e_kj>
        L_A = mean_{i, j, k} SmoothL1( psi_A,S(i, j, k), psi_A,T(i, j, k) )

    Representations are flattened per sample; the teacher is detached.

    Parameters
    ----------
    student : torch.Tensor of shape (batch, ...)
        Student representations.
    teacher : torch.Tensor of shape (batch, ...)
        Teacher representations.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import rkd_angle
    >>> t = torch.randn(5, 3)
    >>> q, _ = torch.linalg.qr(torch.randn(3, 3))
    >>> float(rkd_angle(0.5 * t @ q, t)) < 1e-10
    True
    """
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"student and teacher must have the same batch size, got "
            f"{student.shape[0]} and {teacher.shape[0]}."
        )

    def angles(x):
        # <x_i - x_j, x_k - x_j> from the Gram matrix: O(B^2 D + B^3) instead of
        # O(B^3 D), in float64 against cancellation
        g = x.double() @ x.double().T
        dots = (
            g.unsqueeze(0)
            - g.unsqueeze(2)
            - g.unsqueeze(1)
            + g.diagonal().view(-1, 1, 1)
        )  # dots[j, i, k]
        sq = dots.diagonal(dim1=1, dim2=2)  # ||x_i - x_j||^2 at [j, i]
        tol = 1e-12 * (1.0 + g.diagonal().max().detach())
        valid = sq > tol
        norm = sq.clamp_min(tol).sqrt()
        cos = dots / (norm.unsqueeze(2) * norm.unsqueeze(1))
        mask = valid.unsqueeze(2) & valid.unsqueeze(1)
        return torch.where(mask, cos, torch.zeros_like(cos)).flatten().to(x.dtype)

    s = student.flatten(start_dim=1)
    t = teacher.detach().flatten(start_dim=1)
    return F.smooth_l1_loss(angles(s), angles(t))


def attention_transfer(student_hidden, teacher_hidden, *, p=2):
    """Attention transfer over time for sequence models.

    Zagoruyko & Komodakis (2017), "Paying more attention to attention:
    improving the performance of convolutional neural networks via attention
    transfer", ICLR, adapted from spatial maps to time: the attention of a
    hidden sequence ``h`` of shape ``(T, H)`` is ``a(t) = mean_c |h_c(t)|^p``,
    L2-normalised along time, and::

        L_AT = mean_{i, t} ( a_S,i(t) - a_T,i(t) )^2

    Widths may differ; the time axes must match. The teacher is detached.

    Parameters
    ----------
    student_hidden : torch.Tensor of shape (batch, time, hidden_s)
        Student hidden states.
    teacher_hidden : torch.Tensor of shape (batch, time, hidden_t)
        Teacher hidden states.
    p : float, default=2
        Exponent of the attention map.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import attention_transfer
    >>> h = torch.randn(2, 7, 4)
    >>> float(attention_transfer(torch.cat([h, -h], dim=2), h)) < 1e-12
    True
    """
    _check_sequence("student_hidden", student_hidden)
    _check_sequence("teacher_hidden", teacher_hidden)
    if student_hidden.shape[:2] != teacher_hidden.shape[:2]:
        raise ValueError(
            "student_hidden and teacher_hidden must share (batch, time), got "
            f"{tuple(student_hidden.shape[:2])} and {tuple(teacher_hidden.shape[:2])}."
        )

    def attention(h):
        return F.normalize(h.abs().pow(p).mean(dim=2), p=2, dim=1)

    return (
        (attention(student_hidden) - attention(teacher_hidden.detach())).pow(2).mean()
    )


def dkd(
    student_logits, teacher_logits, target, *, alpha=1.0, beta=8.0, temperature=4.0
):
    """Decoupled knowledge distillation loss (TCKD + NCKD).

    Zhao, Cui, Song, Qiu, Liang (2022), "Decoupled knowledge distillation",
    CVPR. With ``p = softmax(z / T)``, target class ``y``, binary
    probabilities ``b = (p_y, 1 - p_y)`` and ``p~`` the softmax over the
    non-target classes only::

        TCKD = KL(b_T || b_S)
        NCKD = KL(p~_T || p~_S)
        L = T^2 * (alpha * TCKD + beta * NCKD)          (mean over the batch)

    Logarithms are computed with log-softmax / log-sum-exp (stable). With two
    classes NCKD is 0. The teacher is detached.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor of shape (batch, n_classes)
        Logits.
    target : torch.Tensor of shape (batch,)
        Integer class labels.
    alpha, beta : float, default=1.0, 8.0
        Weights of TCKD and NCKD (the paper's CIFAR setting).
    temperature : float, default=4.0
        Softmax temperature ``T``.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import dkd
    >>> z = torch.tensor([[2.0, 0.0, -1.0]])
    >>> float(dkd(z, z, torch.tensor([0])))
    0.0
    >>> float(dkd(z.flip(1), z, torch.tensor([0]))) > 0
    True
    """
    _check_2d("student_logits", student_logits)
    _check_2d("teacher_logits", teacher_logits)
    _check_same_shape(
        "student_logits", student_logits, "teacher_logits", teacher_logits
    )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    target = torch.as_tensor(target, dtype=torch.long, device=student_logits.device)
    gt = F.one_hot(target, student_logits.shape[1]).bool()

    def binary_log_probs(z):
        log_p = F.log_softmax(z / temperature, dim=1)
        log_target = log_p[gt]
        log_rest = log_p.masked_fill(gt, float("-inf")).logsumexp(dim=1)
        return torch.stack([log_target, log_rest], dim=1)

    def kl(log_p, log_q):  # KL(p || q) per sample, 0 * log 0 = 0
        p = log_p.exp()
        return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(1)

    teacher_logits = teacher_logits.detach()
    tckd = kl(binary_log_probs(teacher_logits), binary_log_probs(student_logits))
    # non-target distributions: the target logit is masked out (-1000 in the paper)
    log_pt = F.log_softmax((teacher_logits / temperature).masked_fill(gt, -1e4), 1)
    log_ps = F.log_softmax((student_logits / temperature).masked_fill(gt, -1e4), 1)
    nckd = kl(log_pt, log_ps) if student_logits.shape[1] > 2 else tckd * 0.0
    return temperature**2 * (alpha * tckd + beta * nckd).mean()


def adversarial_bce(real_logits, fake_logits):
    """Discriminator loss of a GAN-style feature discriminator.

    ``BCE(D(real), 1) + BCE(D(fake), 0)``, each a batch mean over logits
    (Goodfellow et al., "Generative Adversarial Nets", NIPS 2014); used by
    UNI-KD's feature-domain discriminator and by AAD, with teacher features as
    "real" and adapted student features as "fake".

    Parameters
    ----------
    real_logits, fake_logits : torch.Tensor
        Discriminator logits of the real and the fake samples.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> round(float(adversarial_bce(torch.zeros(3, 1), torch.zeros(2, 1))), 4)
    1.3863
    """
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return bce(real_logits, torch.ones_like(real_logits)) + bce(
        fake_logits, torch.zeros_like(fake_logits)
    )


# --------------------------------------------------------------------------
# Label-free training losses (VADA, DIRT-T)
# --------------------------------------------------------------------------


def conditional_entropy(logits):
    """Mean entropy of the predicted class distributions.

    The conditional-entropy term of VADA and DIRT-T (Shu, Bui, Narui, Ermon,
    "A DIRT-T approach to unsupervised domain adaptation", ICLR 2018, after
    Grandvalet & Bengio, 2005): with ``p_i = softmax(z_i)``::

        L_c = -(1 / b) * sum_i sum_c p_ic log p_ic

    Minimising it pushes decision boundaries away from dense regions of the
    (unlabelled) data. Computed with ``log_softmax`` for numerical stability;
    the gradient flows into ``logits``.

    Parameters
    ----------
    logits : torch.Tensor of shape (batch, n_classes)
        Class logits ``z``.

    Returns
    -------
    torch.Tensor
        Scalar, between 0 (one-hot predictions) and ``log(n_classes)``
        (uniform predictions).

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import conditional_entropy
    >>> round(float(conditional_entropy(torch.zeros(3, 4))), 4)  # log 4
    1.3863
    >>> float(conditional_entropy(torch.tensor([[100.0, 0.0]]))) < 1e-12
    True
    """
    _check_2d("logits", logits)
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def _kl_from_logits(p_logits, q_logits):
    """``(1 / b) sum_i KL(softmax(p_i) || softmax(q_i))``."""
    log_p = F.log_softmax(p_logits, dim=1)
    log_q = F.log_softmax(q_logits, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def _unit_per_sample(d):
    # L2 normalisation of each sample over all of its non-batch dimensions;
    # a zero direction stays zero
    flat = d.reshape(d.shape[0], -1)
    return F.normalize(flat, p=2, dim=1).reshape(d.shape)


def vat_loss(forward, X, logits=None, *, xi=1e-6, eps=3.5, n_power=1, generator=None):
    """Virtual adversarial training loss (local distributional smoothness).

    Miyato, Maeda, Koyama, Ishii, "Virtual adversarial training: a
    regularization method for supervised and semi-supervised learning", IEEE
    TPAMI 2018, as used by VADA and DIRT-T (Shu, Bui, Narui, Ermon, "A DIRT-T
    approach to unsupervised domain adaptation", ICLR 2018) to make the
    classifier locally Lipschitz::

        L_v = (1 / b) * sum_i KL( sg[p(x_i)] || p(x_i + r_i) ),
        r_i = eps * g_i / ||g_i||,
        g_i = grad_d KL( sg[p(x_i)] || p(x_i + d) ) at d = xi * u_i / ||u_i||

    with ``p = softmax(forward(.))``, ``u_i`` a standard normal direction,
    ``sg`` the stop-gradient (``p(x)`` is a constant: the gradient flows only
    through ``p(x + r)``) and ``n_power`` power iterations (each replaces
    ``u`` by ``g``). Norms are taken per sample over all its dimensions
    (channels and time). ``r`` approximates the direction of largest KL
    within the ``eps``-ball; for a model whose output does not depend on the
    input, ``g = 0``, ``r = 0`` and the loss is 0.

    Parameters
    ----------
    forward : callable
        The classifier, ``forward(X) -> logits`` (e.g. the network itself).
        Called ``n_power + 1`` times (once more if ``logits`` is None).
    X : torch.Tensor of shape (batch, ...)
        Inputs (usually ``(batch, n_channels, n_timepoints)``).
    logits : torch.Tensor of shape (batch, n_classes), optional
        ``forward(X)`` if already computed (it is detached here); None
        computes it without gradient.
    xi : float, default=1e-6
        Length of the finite-difference step of the power iteration (> 0).
    eps : float, default=3.5
        Radius of the adversarial perturbation (> 0); the DIRT-T code's and
        AdaTime's value.
    n_power : int, default=1
        Number of power iterations (>= 1).
    generator : torch.Generator, optional
        Source of the random start directions.

    Returns
    -------
    torch.Tensor
        Scalar loss, differentiable with respect to the parameters of
        ``forward``.

    Examples
    --------
    >>> import torch
    >>> from skkd.losses import vat_loss
    >>> constant = lambda x: x.sum(dim=1, keepdim=True) * 0.0 + torch.tensor([1.0, 2.0])
    >>> float(vat_loss(constant, torch.randn(4, 3)))
    0.0
    >>> net = torch.nn.Linear(3, 2)
    >>> float(vat_loss(net, torch.randn(4, 3), eps=1.0)) > 0
    True
    """
    if not xi > 0:
        raise ValueError(f"xi must be > 0 (the power-iteration step), got {xi}.")
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (the perturbation radius), got {eps}.")
    if int(n_power) != n_power or n_power < 1:
        raise ValueError(f"n_power must be an integer >= 1, got {n_power}.")
    X = X.detach()
    if logits is None:
        with torch.no_grad():
            logits = forward(X)
    logits = logits.detach()
    _check_2d("logits", logits)
    if logits.shape[0] != X.shape[0]:
        raise ValueError(
            f"logits and X must have the same batch size, got {logits.shape[0]} "
            f"and {X.shape[0]}."
        )
    d = torch.randn(X.shape, generator=generator, dtype=X.dtype).to(X.device)
    for _ in range(int(n_power)):
        d = (xi * _unit_per_sample(d)).requires_grad_()
        with torch.enable_grad():
            distance = _kl_from_logits(logits, forward(X + d))
        if distance.requires_grad:  # only the direction's gradient, no parameter's
            (grad,) = torch.autograd.grad(distance, [d], allow_unused=True)
        else:  # the output ignores the input
            grad = None
        d = torch.zeros_like(d) if grad is None else grad.detach()
    r_adv = eps * _unit_per_sample(d)
    return _kl_from_logits(logits, forward(X + r_adv))


# --------------------------------------------------------------------------
# RCD-KD: rewards of the sample-selection agent
# --------------------------------------------------------------------------


def _below_batch_mean(values):
    # sign(mean - x): +1 below the batch mean, -1 above, 0 at it
    return torch.sign(values.mean() - values)


def rcdkd_signals(student_proba, teacher_proba):
    """RCD-KD's per-sample reward signals, relative to the batch.

    With ``H`` the entropy and ``d_i = KL(p_S,i || p_T,i)``::

        m_S = sign(mean(H(p_S)) - H(p_S))   (+1: student more confident than average)
        m_T = sign(mean(H(p_T)) - H(p_T))   (same for the teacher)
        n   = sign(mean(d) - d)             (+1: transferable, below-average gap)

    Xu et al., "Reinforced Cross-Domain Knowledge Distillation on Time Series
    Data", NeurIPS 2024 (the released code's ``update_mcdo_new_2``).

    Parameters
    ----------
    student_proba : torch.Tensor of shape (batch, n_classes)
        Student probabilities on target samples (before the update).
    teacher_proba : torch.Tensor of shape (batch, n_classes)
        Teacher probabilities (the Monte Carlo dropout mean).

    Returns
    -------
    m_student, m_teacher, transferable : torch.Tensor of shape (batch,)
        Values in {-1, 0, 1}.

    Examples
    --------
    >>> import torch
    >>> p_s = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
    >>> p_t = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    >>> [s.tolist() for s in rcdkd_signals(p_s, p_t)]
    [[1.0, -1.0], [1.0, -1.0], [1.0, -1.0]]
    """
    _check_2d("student_proba", student_proba)
    _check_same_shape("student_proba", student_proba, "teacher_proba", teacher_proba)
    p_s, p_t = student_proba.detach(), teacher_proba.detach()
    entropy_s = -torch.xlogy(p_s, p_s).sum(dim=1)
    entropy_t = -torch.xlogy(p_t, p_t).sum(dim=1)
    tiny = torch.finfo(p_t.dtype).tiny  # a zero teacher probability stays finite
    gap = (torch.xlogy(p_s, p_s) - torch.xlogy(p_s, p_t.clamp_min(tiny))).sum(dim=1)
    return (
        _below_batch_mean(entropy_s),
        _below_batch_mean(entropy_t),
        (_below_batch_mean(gap)),
    )


def rcdkd_rewards(actions, m_student, m_teacher, transferable, weights=(0.2, 1.8)):
    """RCD-KD's reward of each (sample, action) pair.

    ``r_unc = +1`` if (``a = 1``, ``m_S = +1``, ``m_T = +1``) or (``a = 0``,
    ``m_S = -1``, ``m_T = -1``), else ``-1``; ``r_tr = +1`` if (``a = 1`` and
    ``n > 0``) or (``a = 0`` and ``n <= 0``), else ``-1``; the reward is
    ``w_unc (r_unc - 0.5) + w_tr (r_tr - 0.5)``, so with the default weights
    (0.2, 1.8) it is one of 1.0, 0.6, -2.6, -3.0. Xu et al., NeurIPS 2024.

    Parameters
    ----------
    actions : torch.Tensor of shape (batch,)
        1 = distil the sample, 0 = skip it.
    m_student, m_teacher, transferable : torch.Tensor of shape (batch,)
        The signals of :func:`rcdkd_signals`.
    weights : tuple of float, default=(0.2, 1.8)
        ``(w_unc, w_tr)``.

    Returns
    -------
    torch.Tensor of shape (batch,)

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([1, 1, 0, 0])
    >>> ones = torch.ones(4)
    >>> rcdkd_rewards(a, ones, ones, torch.tensor([1.0, -1.0, -1.0, 1.0]))
    tensor([ 1.0000, -2.6000,  0.6000, -3.0000])
    """
    selected = actions.bool()
    both = (m_student == m_teacher) & (m_student.abs() == 1)
    agree = both & torch.where(selected, m_student > 0, m_student < 0)
    r_unc = torch.where(agree, 1.0, -1.0)
    r_tr = torch.where(selected == (transferable > 0), 1.0, -1.0)
    w_unc, w_tr = weights
    return w_unc * (r_unc - 0.5) + w_tr * (r_tr - 0.5)
