"""RCD-KD: reinforced cross-domain knowledge distillation."""

import copy
import inspect
import math
import warnings
from contextlib import contextmanager
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_switches
from ..compression import _is_wrapper
from ..losses import kd_kl_div, rcdkd_rewards, rcdkd_signals
from ..nn import CNN1D, DomainDiscriminator, grad_reverse
from ..nn.rl import DuelingQNetwork, ReplayBuffer
from ..stages import Stage
from ..teacher import teacher_logits
from .base import BaseDistiller

__all__ = ["RCDKDClassifier", "dropout_only_train", "mc_dropout_proba"]

_SWITCHES = {
    "kd_reduction": ("sum", "mean"),
    "dc_mode": ("cooperative", "adversarial"),
    "mc_resample": ("episode", "step"),
    "select": ("agent", "all"),
}
#: rows per teacher forward in Monte Carlo dropout (passes are batched)
_MC_ROWS = 1024


def _dropout_modules(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


@contextmanager
def dropout_only_train(module):
    """Switch only the ``Dropout`` modules of ``module`` to training mode.

    BatchNorm and every other module keep their mode (a frozen teacher stays
    in eval mode, so its normalisation statistics are not touched); every
    mode is restored on exit.

    Parameters
    ----------
    module : torch.nn.Module

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.BatchNorm1d(2), nn.Dropout(0.5)).eval()
    >>> with dropout_only_train(net):
    ...     [m.training for m in net]
    [False, True]
    >>> [m.training for m in net]
    [False, False]
    """
    modes = [(m, m.training) for m in _dropout_modules(module)]
    try:
        for m, _ in modes:
            m.train()
        yield module
    finally:
        for m, mode in modes:
            m.train(mode)


def mc_dropout_proba(module, X, n_passes=10):
    """Mean class probabilities over Monte Carlo dropout passes.

    ``p = (1 / P) sum_p softmax(f_p(X))`` with only the Dropout modules of
    ``module`` in training mode (Gal & Ghahramani, ICML 2016). The passes are
    batched into few forwards (each row draws its own dropout mask), without
    gradient.

    Parameters
    ----------
    module : torch.nn.Module
        Network returning logits (or a tuple whose first item is the logits).
    X : torch.Tensor of shape (batch, ...)
        Inputs.
    n_passes : int, default=10
        Stochastic passes.

    Returns
    -------
    torch.Tensor of shape (batch, n_classes)

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 2)).eval()
    >>> proba = mc_dropout_proba(net, torch.ones(4, 3), n_passes=5)
    >>> proba.shape, torch.allclose(proba.sum(dim=1), torch.ones(4))
    (torch.Size([4, 2]), True)
    """
    n = len(X)
    per_forward = max(1, _MC_ROWS // max(n, 1))
    chunks = []
    with torch.no_grad(), dropout_only_train(module):
        for start in range(0, n_passes, per_forward):
            passes = min(per_forward, n_passes - start)
            repeated = X.repeat(passes, *([1] * (X.ndim - 1)))
            proba = torch.softmax(teacher_logits(module, repeated), dim=1)
            chunks.append(proba.reshape(passes, n, -1).sum(dim=0))
    return torch.stack(chunks).sum(dim=0) / n_passes


def _unwrap(teacher):
    while _is_wrapper(teacher):
        teacher = teacher.estimator
    return teacher


class RCDKDClassifier(BaseDistiller):
    """RCD-KD: cross-domain distillation on target samples chosen by an RL agent.

    Xu, Wu, Li, Mao, Chen, "Reinforced Cross-Domain Knowledge Distillation on
    Time Series Data", NeurIPS 2024 (code: xuqing88/Reinforced-Cross-Domain-
    Knowledge-Distillation-on-Time-Series-Data). A frozen teacher pre-trained
    with DANN (:class:`~skkd.DANNClassifier`) is distilled into a small
    student on unlabelled target series only; a dueling double DQN agent with
    noisy layers decides, per target sample, whether to distil it (action 1)
    or not (0), from the student's feature of the sample (its state).

    Each training step runs ``n_episodes`` episodes on the same (source,
    target) batch pair. In episode ``k`` (``tau`` the temperature, ``a_i``
    the agent's actions, ``D`` the domain discriminator initialised from the
    teacher's DANN discriminator, ``A`` the adapter)::

        L_RKD = tau^2 sum_i a_i KL(s(z_T(x_t,i)/tau) || s(z_S(x_t,i)/tau))
        L_DC  = CE(D(f_T(x_s)), 1) + CE(D(A(f_S(x_t))), 0)
        L     = lambda_dc L_DC + lambda_kd L_RKD

    one update of ``{F_S, C_S, A, D}``; the agent's reward of each sample
    (:func:`skkd.losses.rcdkd_rewards`) compares the student's
    (pre-update) and the teacher's uncertainty with the batch average (the
    teacher's from ``mc_passes`` Monte Carlo dropout passes) and rewards
    distilling samples whose student-teacher divergence is below average.
    Transitions ``(s^k, a^k, r^k, s^(k+1), done)`` (``done`` when ``a = 0`` or in
    the last episode) go to a replay buffer; once it holds more than
    ``replay_warmup`` transitions, each episode makes one double-DQN update
    (target ``r + gamma Q'(s', argmax_a Q(s', a)) (1 - done)``, smooth L1),
    then a soft update of the target network and new noise.

    Stages: per episode ``k``, ``agent_k`` (the DQN update; states, actions,
    teacher Monte Carlo dropout, rewards and transitions are computed once
    per episode and shared) then ``student_k``. Everything is vectorised over
    the batch.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The DANN-trained teacher, preferably ``FrozenEstimator(fitted_dann)``.
        It needs Dropout (e.g. ``CNN1D`` with ``module__dropout=0.5``; the
        paper's teacher has it after every block: ``module__dropout_blocks=
        "all"``); its ``discriminator_`` initialises ``D`` (a deep copy; a
        teacher without one gets a fresh ``discriminator`` and a warning).
    module : type or torch.nn.Module, default=CNN1D
        The student (e.g. ``module__widths=(16, 32, 32)``); needs
        ``forward_features`` and ``head``.
    temperature : float, default=2.0
        KD temperature tau (HAR, FD: 2; HHAR, SSC: 1).
    lambda_kd : float, default=10.0
        Weight of the reinforced KD term (HAR: 10; others: 1).
    lambda_dc : float, default=1.0
        Weight of the domain term (FD: 10).
    kd_reduction : {"sum", "mean"}, default="sum"
        Sum the selected samples' KD terms over the batch (released code) or
        divide the sum by the batch size.
    dc_mode : {"cooperative", "adversarial"}, default="cooperative"
        As released, the student and ``D`` both minimise ``L_DC`` (no gradient
        reversal); ``"adversarial"`` reverses the gradient reaching the
        student (as the paper describes it).
    src_ce : bool, default=False
        Add the source cross-entropy ``lambda_cls CE(z_S(x_s), y_s)`` (not in
        the released code).
    lambda_cls : float, default=1.0
        Its weight, when ``src_ce``.
    n_episodes : int, default=5
        Episodes (student updates and agent decisions) per training step.
    mc_passes : int, default=10
        Teacher Monte Carlo dropout passes per episode.
    mc_resample : {"episode", "step"}, default="episode"
        Draw the teacher's Monte Carlo passes anew in every episode (released
        code), or once per step for all its episodes (the teacher and the
        target batch do not change within a step: the same estimate, from
        fewer draws; ``n_episodes`` times fewer teacher passes).
    select : {"agent", "all"}, default="agent"
        Distil on the target samples the agent selects (the method), or on
        every target sample while the agent still learns from its rewards
        (an ablation of the selection: the same losses without it).
    reward_weights : tuple of float, default=(0.2, 1.8)
        Weights of the uncertainty and transferability rewards.
    gamma : float, default=0.9
        Discount factor of the DQN target.
    target_update : float, default=0.001
        Soft-update rate of the target Q-network.
    replay_capacity : int, default=100_000
        Transitions kept in the replay buffer.
    replay_warmup : int, default=100
        The agent learns once the buffer holds more transitions than this.
    dqn_batch_size : int, default=32
        Transitions per DQN update.
    adapter : type, default=torch.nn.Linear
        Student-to-teacher feature adapter (routed ``adapter__*``).
    discriminator : type, default=DomainDiscriminator
        Domain discriminator built (on teacher-width features, without
        gradient reversal) only for a teacher without ``discriminator_``;
        routed ``discriminator__hidden`` (64).
    q_network : type, default=DuelingQNetwork
        The agent, built as ``q_network(n_features=student width)``; routed
        ``q_network__hidden`` (1024), ``q_network__sigma_init`` (0.4). Trained
        by ``optimizer_q`` (Adam, lr 1e-4, betas (0.9, 0.999), no weight
        decay, as released; routed ``optimizer_q__*``).
    **kwargs
        As :class:`skkd.base.BaseDistiller` (``lr=1e-2``, weight decay 1e-4,
        Adam betas (0.5, 0.99) for the student, adapter and ``D``;
        ``max_epochs=10``, ``batch_size=32`` ...).

    Attributes
    ----------
    adapter_, discriminator_ : torch.nn.Module
        Training-only modules (``discriminator_`` fine-tuned from the
        teacher's).
    q_network_, q_target_ : DuelingQNetwork
        The agent and its soft-updated target network.
    replay_ : skkd.nn.rl.ReplayBuffer
        The agent's transitions (kept for ``partial_fit``).
    history_ : skorch.history.History
        Per-epoch means: ``train_kd``, ``train_dc`` (``train_ce`` with
        ``src_ce``), ``train_dqn`` (once the agent learns),
        ``train_selection_rate`` (fraction of target samples distilled) and
        ``train_agent_reward`` (mean reward).

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import DANNClassifier, RCDKDClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = DANNClassifier(module__widths=(16, 32), max_epochs=2, random_state=0)
    >>> teacher = teacher.fit(d.X_src, d.y_src, d.X_tgt)
    >>> student = RCDKDClassifier(FrozenEstimator(teacher), module__widths=(4, 8),
    ...                           n_episodes=2, q_network__hidden=32,
    ...                           max_epochs=2, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (120,)
    >>> 0 <= student.history_[-1, "train_selection_rate"] <= 1
    True
    """

    _default_kwargs = {
        **BaseDistiller._default_kwargs,
        # the released code's DQN optimizer: Adam(Qnet.parameters(), lr=1e-4)
        "optimizer_q__lr": 1e-4,
        "optimizer_q__betas": (0.9, 0.999),
        "optimizer_q__weight_decay": 0.0,
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.target = "required"
        tags.time_series.teacher_outputs = ("logits", "features")
        return tags

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        temperature=2.0,
        lambda_kd=10.0,
        lambda_dc=1.0,
        kd_reduction="sum",
        dc_mode="cooperative",
        src_ce=False,
        lambda_cls=1.0,
        n_episodes=5,
        mc_passes=10,
        mc_resample="episode",
        select="agent",
        reward_weights=(0.2, 1.8),
        gamma=0.9,
        target_update=0.001,
        replay_capacity=100_000,
        replay_warmup=100,
        dqn_batch_size=32,
        adapter=nn.Linear,
        discriminator=DomainDiscriminator,
        q_network=DuelingQNetwork,
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.temperature = temperature
        self.lambda_kd = lambda_kd
        self.lambda_dc = lambda_dc
        self.kd_reduction = kd_reduction
        self.dc_mode = dc_mode
        self.src_ce = src_ce
        self.lambda_cls = lambda_cls
        self.n_episodes = n_episodes
        self.mc_passes = mc_passes
        self.mc_resample = mc_resample
        self.select = select
        self.reward_weights = reward_weights
        self.gamma = gamma
        self.target_update = target_update
        self.replay_capacity = replay_capacity
        self.replay_warmup = replay_warmup
        self.dqn_batch_size = dqn_batch_size
        self.adapter = adapter
        self.discriminator = discriminator
        self.q_network = q_network

    # ------------------------------------------------------------ validation
    def prepare_fit(self, X, y, X_tgt):
        check_switches(self, _SWITCHES)
        for name in ("n_episodes", "mc_passes", "dqn_batch_size", "replay_capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if self.replay_capacity < self.dqn_batch_size:
            raise ValueError(
                f"replay_capacity ({self.replay_capacity}) must hold at least one "
                f"DQN batch (dqn_batch_size={self.dqn_batch_size})."
            )
        if not self.replay_warmup >= 0:
            raise ValueError(f"replay_warmup must be >= 0, got {self.replay_warmup}.")
        weights = tuple(self.reward_weights)
        if len(weights) != 2 or not all(math.isfinite(float(w)) for w in weights):
            raise ValueError(
                "reward_weights must be two finite numbers (uncertainty, "
                f"transferability), got {self.reward_weights!r}."
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}.")
        if not 0 < self.target_update <= 1:
            raise ValueError(
                f"target_update must be in (0, 1], got {self.target_update}."
            )
        module, _ = self._resolve_teacher()
        if not any(m.p > 0 for m in _dropout_modules(module)):
            raise ValueError(
                "RCDKDClassifier estimates the teacher's uncertainty with Monte Carlo "
                "dropout, but the teacher has no Dropout layer with p > 0. Train a "
                "teacher with dropout, e.g. DANNClassifier(module=CNN1D, "
                "module__dropout=0.5) (add module__dropout_blocks='all' for dropout "
                "after every block, as in the paper)."
            )
        super().prepare_fit(X, y, X_tgt)

    # ---------------------------------------------------------------- modules
    def _teacher_discriminator(self):
        found = getattr(_unwrap(self.teacher), "discriminator_", None)
        return found if isinstance(found, nn.Module) else None

    def initialize_module(self):
        """Build the student, teacher copy, adapter, ``D`` and the agent."""
        super().initialize_module()
        self.adapter_ = self.initialize_adapter()
        found = self._teacher_discriminator()
        if found is None:
            warnings.warn(
                "RCDKDClassifier: the teacher has no domain discriminator "
                "(discriminator_, as a fitted DANNClassifier has); a fresh one is "
                "trained from scratch. RCD-KD reuses the teacher's DANN "
                "discriminator: pass FrozenEstimator(fitted DANNClassifier).",
                UserWarning,
                stacklevel=2,
            )
            discriminator = self.initialize_component(
                "discriminator", n_features=self.teacher_n_features_, grl=False
            )
        else:
            discriminator = copy.deepcopy(found)  # the teacher's stays untouched
            if isinstance(getattr(discriminator, "grl", None), nn.Module):
                discriminator.grl = None  # the reversal, if any, is dc_mode's
        self.discriminator_ = discriminator.to(self.device).train()
        for p in self.discriminator_.parameters():
            p.requires_grad_(True)
        n_features = self.module_.n_features
        self.q_network_ = self.initialize_component("q_network", n_features=n_features)
        self.q_target_ = copy.deepcopy(self.q_network_).requires_grad_(False)
        self.replay_ = ReplayBuffer(self.replay_capacity, n_features)
        return self

    def optimizer_groups(self):
        return {
            "optimizer": ["module", "adapter"],
            "optimizer_disc": ["discriminator"],
            "optimizer_q": ["q_network"],
        }

    def get_params_for_optimizer(self, prefix, named_parameters):
        """As the engine's, plus: the agent's Adam uses torch's fused kernel.

        The same update as the loop implementation, about ten times faster on
        the 1024-wide Q-network on a CPU; unless ``optimizer_q__fused`` or
        ``optimizer_q__foreach`` is routed or the optimizer has no fused
        kernel.
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        routed = self.get_params_for(prefix)
        if (
            prefix == "optimizer_q"
            and not {"fused", "foreach"} & set(routed)
            and "fused" in inspect.signature(self.optimizer).parameters
        ):
            kwargs["fused"] = True
        return args, kwargs

    # ------------------------------------------------------------ the method
    def training_stages(self):
        """Per episode ``k``: ``agent_k`` (DQN update) then ``student_k``."""
        stages = []
        for k in range(int(self.n_episodes)):
            stages += [
                Stage(f"agent_{k}", "agent_stage", ("optimizer_q",), "sync_agent"),
                Stage(f"student_{k}", "student_stage", ("optimizer", "optimizer_disc")),
            ]
        return stages

    def _context(self, step):
        """What the episodes of one step share (teacher outputs, the pending
        transition, the running means of the logged terms)."""

        def new():
            features_src, _ = self.teacher_outputs(step.X)
            return SimpleNamespace(
                episode=0,
                pending=None,
                updated=False,
                teacher_src_features=features_src,
                teacher_tgt_logits=self.teacher_logits(step.X_tgt),
                teacher_proba=None,
                sums={},
            )

        return step.shared("rcdkd", new)

    def teacher_proba(self, X):
        """Teacher probabilities of the reward: the Monte Carlo dropout mean."""
        return mc_dropout_proba(self.teacher_module_, X, int(self.mc_passes))

    def _episode(self, step):
        """States, actions, rewards and transitions of the current episode."""
        ctx = self._context(step)
        k = ctx.episode

        def compute():
            features = self.module_.forward_features(step.X_tgt)
            logits = self.module_.head(features)
            states = features.detach()
            with torch.no_grad():
                actions = self.q_network_(states).argmax(dim=1)
            if ctx.pending is not None:  # last episode's transition ends here
                self.replay_.push(*ctx.pending[:3], states, ctx.pending[3])
            if self.mc_resample == "episode" or ctx.teacher_proba is None:
                ctx.teacher_proba = self.teacher_proba(step.X_tgt)
            signals = rcdkd_signals(
                torch.softmax(logits.detach(), dim=1), ctx.teacher_proba
            )
            rewards = rcdkd_rewards(actions, *signals, tuple(self.reward_weights))
            last = k == int(self.n_episodes) - 1
            dones = ((actions == 0) | last).float()
            if last:  # terminal: the next state is never used
                self.replay_.push(states, actions, rewards, states, dones)
                ctx.pending = None
            else:
                ctx.pending = (states, actions, rewards, dones)
            if self.select == "all":  # the ablation: distil on every sample
                actions = torch.ones_like(actions)
            return SimpleNamespace(
                features=features, logits=logits, actions=actions, rewards=rewards
            )

        return step.shared(f"episode_{k}", compute)

    def _running_means(self, ctx, terms):
        # a term logged K times per batch keeps the last value: log the mean
        # over the step's episodes so far instead
        means = {}
        for name, value in terms.items():
            total, count = ctx.sums.get(name, (0.0, 0))
            total, count = total + value.detach(), count + 1
            ctx.sums[name] = (total, count)
            means[name] = total / count
        return means

    def dqn_loss(self, states, actions, rewards, next_states, dones):
        """Double-DQN smooth L1 loss of a batch of transitions.

        ``y = r + gamma Q'(s', argmax_a Q(s', a)) (1 - done)``, without
        gradient; the loss is ``SmoothL1(Q(s, a), y)``.
        """
        q = self.q_network_(states).gather(1, actions[:, None]).squeeze(1)
        with torch.no_grad():
            best = self.q_network_(next_states).argmax(dim=1, keepdim=True)
            q_next = self.q_target_(next_states).gather(1, best).squeeze(1)
            target = rewards + self.gamma * q_next * (1.0 - dones)
        return F.smooth_l1_loss(q, target)

    def agent_stage(self, step):
        """One DQN update from the replay buffer, once it is warm."""
        ctx = self._context(step)
        episode = self._episode(step)
        terms = self._running_means(
            ctx,
            {
                "selection_rate": episode.actions.float().mean(),
                "agent_reward": episode.rewards.mean(),
            },
        )
        size = len(self.replay_)
        if size <= self.replay_warmup or size < self.dqn_batch_size:
            # nothing to learn yet: a loss without graph leaves no gradient, so
            # the optimizer step is a no-op (Adam skips parameters without one)
            ctx.updated = False
            return {"loss": torch.zeros((), requires_grad=True), **terms}
        dqn = self.dqn_loss(*self.replay_.sample(int(self.dqn_batch_size)))
        ctx.updated = True
        return {"loss": dqn, **terms, **self._running_means(ctx, {"dqn": dqn})}

    def sync_agent(self, step):
        """After a DQN update: soft-update the target network, then new noise."""
        ctx = self._context(step)
        if not ctx.updated:
            return
        ctx.updated = False
        with torch.no_grad():
            torch._foreach_lerp_(
                list(self.q_target_.parameters()),
                list(self.q_network_.parameters()),
                self.target_update,
            )
        for net in (self.q_network_, self.q_target_):
            if hasattr(net, "reset_noise"):
                net.reset_noise()

    def student_stage(self, step):
        """Reinforced KD on the selected target samples plus the domain term."""
        ctx = self._context(step)
        episode = self._episode(step)
        kd = kd_kl_div(
            episode.logits,
            ctx.teacher_tgt_logits,
            self.temperature,
            weights=episode.actions.to(episode.logits.dtype),
            reduction=self.kd_reduction,
        )
        adapted = self.adapter_(episode.features)
        if self.dc_mode == "adversarial":
            adapted = grad_reverse(adapted)
        d_src = self.discriminator_(ctx.teacher_src_features)
        d_tgt = self.discriminator_(adapted)
        # class 1 = source, class 0 = target, as the DANN teacher learnt them
        dc = F.cross_entropy(d_src, torch.ones(len(d_src), dtype=torch.long)) + (
            F.cross_entropy(d_tgt, torch.zeros(len(d_tgt), dtype=torch.long))
        )
        loss = self.lambda_dc * dc + self.lambda_kd * kd
        logged = {"kd": kd, "dc": dc}
        y_pred = None
        if self.src_ce:  # the student changed since the last episode: forward again
            y_pred = self.module_(step.X)
            ce = F.cross_entropy(y_pred, step.y)
            loss = loss + self.lambda_cls * ce
            logged["ce"] = ce
        ctx.episode += 1
        return {"loss": loss, **self._running_means(ctx, logged), "y_pred": y_pred}
