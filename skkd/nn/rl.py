"""Reinforcement-learning blocks of RCD-KD: noisy layers, a dueling Q-network
and a tensor replay buffer.

The Q-network is the dueling architecture of Wang et al. (2016), "Dueling
network architectures for deep reinforcement learning", ICML, with the
factorised Gaussian noisy layers of Fortunato et al. (2018), "Noisy networks
for exploration", ICLR, as used by RCD-KD (Xu et al., NeurIPS 2024).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DuelingQNetwork", "NoisyLinear", "ReplayBuffer"]


def _scaled_noise(size, device):
    # f(x) = sign(x) sqrt(|x|): the factorised-noise transform of Fortunato et al.
    x = torch.randn(size, device=device)
    return x.sign() * x.abs().sqrt()


class NoisyLinear(nn.Module):
    """Linear layer with factorised Gaussian weight noise.

    ``y = (mu_W + sigma_W * eps_W) x + mu_b + sigma_b * eps_b`` in training
    mode, with ``eps_W = f(eps_out) f(eps_in)^T``, ``eps_b = f(eps_out)`` and
    ``f(x) = sign(x) sqrt(|x|)``; ``y = mu_W x + mu_b`` in eval mode. The noise
    stays fixed until :meth:`reset_noise`. Initialisation as in RCD-KD's
    released code: ``mu ~ U(-1/sqrt(in), 1/sqrt(in))``, ``sigma_W =
    sigma_init / sqrt(in)`` and ``sigma_b = sigma_init / sqrt(out)``.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    sigma_init : float, default=0.4
        Initial noise scale ``sigma_0``.

    Examples
    --------
    >>> import torch
    >>> layer = NoisyLinear(3, 2)
    >>> x = torch.ones(1, 3)
    >>> torch.equal(layer(x), layer(x))  # same noise until reset_noise()
    True
    >>> torch.equal(layer.eval()(x), x @ layer.weight_mu.T + layer.bias_mu)
    True
    """

    def __init__(self, in_features, out_features, sigma_init=0.4):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.sigma_init = sigma_init
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.register_buffer("weight_epsilon", torch.zeros(out_features, in_features))
        self.register_buffer("bias_epsilon", torch.zeros(out_features))
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self):
        """Draw ``mu`` uniformly and set ``sigma`` to its initial scale."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight_mu.uniform_(-bound, bound)
            self.bias_mu.uniform_(-bound, bound)
            self.weight_sigma.fill_(self.sigma_init / math.sqrt(self.in_features))
            self.bias_sigma.fill_(self.sigma_init / math.sqrt(self.out_features))

    def reset_noise(self):
        """Draw new factorised noise (used until the next call)."""
        device = self.weight_mu.device
        eps_in = _scaled_noise(self.in_features, device)
        eps_out = _scaled_noise(self.out_features, device)
        self.weight_epsilon.copy_(torch.outer(eps_out, eps_in))
        self.bias_epsilon.copy_(eps_out)

    def forward(self, x):
        """Noisy affine map in training mode, the mean map in eval mode."""
        if self.training:
            weight = self.weight_mu + self.weight_sigma * self.weight_epsilon
            bias = self.bias_mu + self.bias_sigma * self.bias_epsilon
            return F.linear(x, weight, bias)
        return F.linear(x, self.weight_mu, self.bias_mu)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"sigma_init={self.sigma_init}"
        )


class DuelingQNetwork(nn.Module):
    """Dueling Q-network with noisy value and advantage streams.

    ``h = ReLU(Linear(n_features, hidden)(s))``; value ``V = NL(hidden, 1)(ReLU(
    NL(hidden, hidden)(h)))`` and advantage ``A = NL(hidden, n_actions)(ReLU(
    NL(hidden, hidden)(h)))`` with ``NL`` a :class:`NoisyLinear`;
    ``Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')``, the mean taken over the
    actions of each sample.

    Parameters
    ----------
    n_features : int
        Width of a state.
    n_actions : int, default=2
        Number of discrete actions.
    hidden : int, default=1024
        Width of the hidden layers.
    sigma_init : float, default=0.4
        Initial noise scale of the noisy layers.

    Examples
    --------
    >>> import torch
    >>> q = DuelingQNetwork(4, hidden=8)
    >>> q(torch.randn(5, 4)).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_features, n_actions=2, hidden=1024, sigma_init=0.4):
        super().__init__()
        self.n_features = n_features
        self.n_actions = n_actions
        self.hidden = hidden
        self.sigma_init = sigma_init
        self.input = nn.Linear(n_features, hidden)
        self.value = nn.Sequential(
            NoisyLinear(hidden, hidden, sigma_init),
            nn.ReLU(),
            NoisyLinear(hidden, 1, sigma_init),
        )
        self.advantage = nn.Sequential(
            NoisyLinear(hidden, hidden, sigma_init),
            nn.ReLU(),
            NoisyLinear(hidden, n_actions, sigma_init),
        )

    @staticmethod
    def aggregate(value, advantage):
        """``V + A - mean_a A``, the mean over actions per sample.

        Parameters
        ----------
        value : torch.Tensor of shape (batch, 1)
        advantage : torch.Tensor of shape (batch, n_actions)

        Returns
        -------
        torch.Tensor of shape (batch, n_actions)

        Examples
        --------
        >>> import torch
        >>> advantage = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
        >>> DuelingQNetwork.aggregate(torch.zeros(2, 1), advantage)
        tensor([[-1.,  1.],
                [ 0.,  0.]])
        """
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def forward(self, states):
        """Q-values ``(batch, n_actions)`` of states ``(batch, n_features)``."""
        h = F.relu(self.input(states))
        return self.aggregate(self.value(h), self.advantage(h))

    def reset_noise(self):
        """New noise in every noisy layer."""
        for module in self.modules():
            if isinstance(module, NoisyLinear):
                module.reset_noise()


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions ``(s, a, r, s', done)``, as tensors.

    Whole batches are pushed and sampled at once (no per-transition Python
    loop). Storage grows by doubling up to ``capacity``, so a short fit does not
    hold a full buffer; once full, the oldest transitions are overwritten.

    Parameters
    ----------
    capacity : int
        Largest number of transitions kept.
    n_features : int
        Width of a state.

    Examples
    --------
    >>> import torch
    >>> buf = ReplayBuffer(4, n_features=2)
    >>> s = torch.zeros(3, 2)
    >>> buf.push(s, torch.ones(3, dtype=torch.long), torch.ones(3), s, torch.zeros(3))
    >>> buf.push(s, torch.ones(3, dtype=torch.long), torch.ones(3), s, torch.zeros(3))
    >>> len(buf)
    4
    >>> buf.sample(2)[0].shape
    torch.Size([2, 2])
    """

    def __init__(self, capacity, n_features):
        self.capacity = int(capacity)
        self.n_features = int(n_features)
        self.position = 0
        self.size = 0
        self._allocate(min(self.capacity, 1024))

    def _allocate(self, rows):
        old = getattr(self, "storage", None)
        self.storage = {
            "states": torch.zeros(rows, self.n_features),
            "actions": torch.zeros(rows, dtype=torch.long),
            "rewards": torch.zeros(rows),
            "next_states": torch.zeros(rows, self.n_features),
            "dones": torch.zeros(rows),
        }
        if old is not None:
            for key, values in old.items():
                self.storage[key][: len(values)] = values

    def __len__(self):
        return self.size

    def push(self, states, actions, rewards, next_states, dones):
        """Append a batch of transitions (the oldest are overwritten when full)."""
        values = {
            "states": states,
            "actions": actions,
            "rewards": rewards,
            "next_states": next_states,
            "dones": dones,
        }
        if len(states) > self.capacity:  # only the newest ones would survive
            values = {k: v[-self.capacity :] for k, v in values.items()}
        n = len(values["states"])
        rows = len(self.storage["states"])
        while self.size + n > rows and rows < self.capacity:
            rows = min(self.capacity, 2 * rows)
            self._allocate(rows)
        index = (self.position + torch.arange(n)) % self.capacity
        for key, value in values.items():
            self.storage[key][index] = value.detach().to(self.storage[key].dtype)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.capacity, self.size + n)

    def sample(self, batch_size, generator=None):
        """``batch_size`` distinct transitions drawn uniformly (torch's RNG).

        Returns
        -------
        states, actions, rewards, next_states, dones : torch.Tensor
        """
        index = torch.randperm(self.size, generator=generator)[:batch_size]
        keys = ("states", "actions", "rewards", "next_states", "dones")
        return tuple(self.storage[key][index] for key in keys)
