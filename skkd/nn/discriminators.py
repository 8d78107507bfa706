"""Gradient reversal and domain discriminators for adversarial adaptation.

Implements the gradient reversal layer (GRL) and domain classifier of Ganin &
Lempitsky (2015), "Unsupervised domain adaptation by backpropagation", ICML.
"""

import torch
from torch import nn

__all__ = ["DomainDiscriminator", "GradientReversal", "grad_reverse"]


class _GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-alpha``."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = float(alpha)
        # view_as returns a new tensor node so autograd calls our backward.
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * -ctx.alpha, None


def grad_reverse(x, alpha=1.0):
    """Apply the gradient reversal operator.

    Forward is the identity, ``R(x) = x``; backward is ``dR/dx = -alpha * I``
    (Ganin & Lempitsky, 2015, "Unsupervised domain adaptation by
    backpropagation", ICML).

    Parameters
    ----------
    x : torch.Tensor
        Input tensor.
    alpha : float, default=1.0
        Scale of the reversed gradient.

    Returns
    -------
    torch.Tensor
        A tensor equal to ``x``.

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import grad_reverse
    >>> x = torch.ones(3, requires_grad=True)
    >>> grad_reverse(x, 0.5).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """
    return _GradReverse.apply(x, alpha)


class GradientReversal(nn.Module):
    """Gradient reversal layer as a module with a settable ``alpha``.

    Identity in the forward pass and gradient times ``-alpha`` in the backward
    pass (Ganin & Lempitsky, 2015). Training engines usually ramp ``alpha``
    from 0 to 1 by assigning the attribute at every step.

    Parameters
    ----------
    alpha : float, default=1.0
        Scale of the reversed gradient.

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import GradientReversal
    >>> grl = GradientReversal(alpha=2.0)
    >>> grl.alpha = 0.1
    >>> grl
    GradientReversal(alpha=0.1)
    >>> torch.equal(grl(torch.arange(3.0)), torch.arange(3.0))
    True
    """

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        """Return ``x`` unchanged; gradients flowing back are scaled by ``-alpha``."""
        return grad_reverse(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class DomainDiscriminator(nn.Module):
    """Three-layer MLP domain classifier, optionally behind a GRL.

    ``[GRL ->] Linear(n_features, hidden) - ReLU - Linear(hidden, hidden) - ReLU
    - Linear(hidden, n_domains)``, returning logits, as in DANN (Ganin &
    Lempitsky, 2015). With ``n_domains=1`` it outputs a single logit for use
    with ``BCEWithLogitsLoss``.

    Parameters
    ----------
    n_features : int
        Width of the input embedding (usually the student's ``n_features``).
    n_domains : int, default=2
        Number of output logits.
    hidden : int, default=64
        Hidden layer width.
    grl : bool, default=True
        If True, inputs pass through a :class:`GradientReversal` first,
        available as the ``grl`` attribute so its ``alpha`` can be changed. If
        False, ``grl`` is None.

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import DomainDiscriminator
    >>> disc = DomainDiscriminator(32, n_domains=1)
    >>> disc.grl.alpha = 0.3
    >>> disc(torch.randn(5, 32)).shape
    torch.Size([5, 1])
    """

    def __init__(self, n_features, n_domains=2, hidden=64, grl=True):
        super().__init__()
        self.n_features = n_features
        self.n_domains = n_domains
        self.hidden = hidden
        self.grl = GradientReversal() if grl else None
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_domains),
        )

    def forward(self, x):
        """Return domain logits of shape ``(batch, n_domains)``.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_features)
            Embeddings.

        Returns
        -------
        torch.Tensor of shape (batch, n_domains)
            Domain logits.
        """
        if self.grl is not None:
            x = self.grl(x)
        return self.net(x)
