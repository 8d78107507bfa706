"""Paired target sampling: one target mini-batch per source mini-batch."""

import torch

__all__ = ["TargetSampler"]


class TargetSampler:
    """Draws target mini-batches from a set that is reshuffled on every pass.

    An epoch covers the source set once; the target set cycles independently
    of it. The position is an explicit ``(order, position)`` pair rather than
    an iterator, so that a checkpoint can save it and a resumed fit draws the
    same target batches as an uninterrupted one.

    Parameters
    ----------
    X_tgt : torch.Tensor of shape (n_target, n_channels, n_timepoints)
        The target series (not copied).
    batch_size : int
        Rows per batch; ``<= 0`` draws the whole set.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> sampler = TargetSampler(torch.arange(5.0)[:, None], batch_size=2)
    >>> [len(sampler.draw()) for _ in range(4)]
    [2, 2, 1, 2]
    >>> sampler.n_draws
    4
    """

    def __init__(self, X_tgt, batch_size):
        self.X_tgt = X_tgt
        n = len(X_tgt)
        self.size = n if batch_size <= 0 else min(batch_size, n)
        self.order = None
        self.position = 0
        self.n_draws = 0

    def draw(self):
        """The next target mini-batch (a new permutation after each pass).

        Returns
        -------
        torch.Tensor of shape (batch, n_channels, n_timepoints)
        """
        n = len(self.X_tgt)
        if self.order is None or self.position >= n:
            self.order = torch.randperm(n)
            self.position = 0
        start = self.position
        self.position = start + self.size
        self.n_draws += 1
        return self.X_tgt[self.order[start : start + self.size]]

    def state_dict(self):
        """Where the sampler stands: what a checkpoint saves.

        Returns
        -------
        dict
        """
        return {"target_order": self.order, "target_pos": self.position}

    def load_state_dict(self, state):
        """Continue from a saved :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`.
        """
        self.order = state.get("target_order")
        self.position = state.get("target_pos", 0)
