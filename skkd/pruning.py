"""Structured channel pruning: importance, schedules and physical removal.

The networks skkd prunes are chains of layers (the order in which they are
registered is the order data flows through them): ``Conv1d`` (+ ``BatchNorm1d``),
``Linear`` and unidirectional ``LSTM``/``GRU`` layers, with parameter-free
modules (ReLU, pooling, dropout, flatten) in between. Every layer except the
last one produces *channels* (conv filters, linear units, recurrent hidden
units); a :class:`ChannelGroup` ties the tensor slices a channel owns (its
producer rows, its BatchNorm entries) to the slices that read it (the next
layer's input columns, the recurrent columns). Removing a channel deletes all
of them, so the pruned network computes exactly what the network with that
channel's readers zeroed (the "masked" network) computes. The classifier
outputs are never pruned and a layer always keeps at least one channel.

Importance follows the first-order Taylor expansion of the loss (Molchanov et
al., ICLR 2017; CVPR 2019), computed without hooks: a channel's gate gradient
``dL/dg_k = sum_t a_k(t) dL/da_k(t)`` equals ``sum(w * dL/dw)`` over the weights
that read the channel, because those weights multiply ``a_k`` linearly.
Magnitude (L1 of the filter) and BatchNorm-scale (``|gamma|``, Liu et al.,
ICCV 2017) importances are the alternatives. Schedules follow Zhu & Gupta
(2017)'s cubic "automated gradual pruning".
"""

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ChannelGroup",
    "IMPORTANCES",
    "SCHEDULES",
    "accumulate_taylor",
    "channel_groups",
    "channel_importance",
    "check_prunable",
    "mask_channels",
    "parameters_after",
    "prune_channels",
    "prune_to",
    "pruning_schedule",
    "schedule_counts",
    "select_channels",
    "channel_fraction_for",
    "taylor_importance",
]

#: importance kinds: Taylor (activation form, Molchanov 2017), Taylor gate/weight
#: form (Molchanov 2019), L1 filter magnitude, BatchNorm scale
IMPORTANCES = ("taylor", "taylor_weight", "magnitude", "bn_scale")
#: pruning schedules: cubic AGP, linear, all at the end of the window
SCHEDULES = ("cubic", "linear", "one_shot")

_RNN_GATES = {nn.LSTM: 4, nn.GRU: 3}
_SUPPORTED = (nn.Conv1d, nn.BatchNorm1d, nn.Linear, nn.LSTM, nn.GRU)


@dataclass
class _Slot:
    """One tensor dimension whose entries belong to a group's channels.

    Index of channel ``k`` along ``dim``: ``o * (size * inner) + k * inner + i``
    for ``o < outer`` (recurrent gates) and ``i < inner`` (flattened time).
    """

    module: nn.Module
    name: str
    dim: int
    outer: int = 1
    inner: int = 1

    def tensor(self):
        return getattr(self.module, self.name)

    def indices(self, size, keep):
        block = size * self.inner
        return torch.tensor(
            [
                o * block + k * self.inner + i
                for o in range(self.outer)
                for k in keep
                for i in range(self.inner)
            ],
            dtype=torch.long,
        )

    def per_channel(self, values, size):
        """Sum a full-length vector along this slot to one value per channel."""
        return values.view(self.outer, size, self.inner).sum(dim=(0, 2))


@dataclass
class ChannelGroup:
    """The channels one layer produces and every tensor slice tied to them.

    Attributes
    ----------
    name : str
        Producer layer name (``named_modules``), ``"<rnn>.l<k>"`` for layer ``k``
        of a recurrent module.
    size : int
        Live channels.
    producers : list
        Slices owned by the channels (rows of the producer, BatchNorm entries).
    consumers : list
        Slices that read the channels (input columns of the next layers).
    coupling : str or None
        Recurrent layers of one multi-layer ``LSTM``/``GRU`` share one hidden
        size in PyTorch, so they lose channels in lockstep (same key).
    bn : torch.nn.BatchNorm1d or None
        The BatchNorm following the producer, if any.
    """

    name: str
    size: int
    producers: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    coupling: str = None
    bn: nn.Module = None


def _leaf_layers(module):
    layers = []
    for name, mod in module.named_modules():
        if isinstance(mod, _SUPPORTED):
            layers.append((name, mod))
        elif not list(mod.children()) and any(True for _ in mod.parameters(False)):
            raise ValueError(
                f"Layer {name!r} ({type(mod).__name__}) has parameters skkd cannot "
                "prune; prunable students are chains of Conv1d, BatchNorm1d, "
                "Linear, LSTM and GRU layers."
            )
    return layers


def channel_groups(module, *, allow_empty=False):
    """Find the prunable channel groups of a chain network.

    Parameters
    ----------
    module : torch.nn.Module
        A chain of ``Conv1d``/``BatchNorm1d``/``Linear``/``LSTM``/``GRU`` layers
        in registration order (e.g. :class:`skkd.nn.CNN1D`,
        :class:`skkd.nn.LSTMClassifier`).
    allow_empty : bool, default=False
        Return the groups even when none has a channel left to remove (a
        fully pruned network) instead of raising.

    Returns
    -------
    groups : list of ChannelGroup
        In forward order; the last layer's outputs (the classes) are excluded.

    Raises
    ------
    ValueError
        A layer that cannot be pruned (grouped conv, bidirectional RNN, an
        unsupported parametric layer, shapes that do not chain), or no
        prunable channel at all.

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> [(g.name, g.size) for g in channel_groups(CNN1D(3, 2, widths=(8, 16)))]
    [('features.0.0', 8), ('features.1.0', 16)]
    """
    groups, pending = [], None

    def attach(consumer_slot, n_inputs, where):
        if pending is None:
            return
        if n_inputs == pending.size:
            pending.consumers.append(consumer_slot)
        elif n_inputs % pending.size == 0 and isinstance(
            consumer_slot.module, nn.Linear
        ):
            consumer_slot.inner = n_inputs // pending.size  # flattened (C, T)
            pending.consumers.append(consumer_slot)
        else:
            raise ValueError(
                f"{where} reads {n_inputs} inputs but the layer before it "
                f"({pending.name}) produces {pending.size} channels: the layers do "
                "not form a chain skkd can prune."
            )

    for name, mod in _leaf_layers(module):
        if isinstance(mod, nn.BatchNorm1d):
            if (
                pending is None
                or pending.bn is not None
                or mod.num_features != pending.size
            ):
                raise ValueError(
                    f"BatchNorm1d {name!r} does not follow a layer with "
                    f"{mod.num_features} output channels."
                )
            pending.bn = mod
            for attr in ("weight", "bias", "running_mean", "running_var"):
                if getattr(mod, attr, None) is not None:
                    pending.producers.append(_Slot(mod, attr, 0))
        elif isinstance(mod, nn.Conv1d | nn.Linear):
            if isinstance(mod, nn.Conv1d) and mod.groups != 1:
                raise ValueError(
                    f"Conv1d {name!r} has groups={mod.groups}; not prunable."
                )
            n_in, n_out = mod.weight.shape[1], mod.weight.shape[0]
            attach(_Slot(mod, "weight", 1), n_in, f"{type(mod).__name__} {name!r}")
            pending = ChannelGroup(name, n_out, [_Slot(mod, "weight", 0)])
            if mod.bias is not None:
                pending.producers.append(_Slot(mod, "bias", 0))
            groups.append(pending)
        else:  # LSTM / GRU
            if mod.bidirectional or getattr(mod, "proj_size", 0):
                raise ValueError(
                    f"{type(mod).__name__} {name!r} is bidirectional or projected; "
                    "skkd prunes unidirectional recurrent layers only."
                )
            gates = _RNN_GATES[type(mod)]
            attach(_Slot(mod, "weight_ih_l0", 1), mod.input_size, repr(name))
            coupling = name if mod.num_layers > 1 else None
            for layer in range(mod.num_layers):
                group = ChannelGroup(
                    f"{name}.l{layer}", mod.hidden_size, coupling=coupling
                )
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    if hasattr(mod, f"{kind}_l{layer}"):
                        group.producers.append(_Slot(mod, f"{kind}_l{layer}", 0, gates))
                group.consumers.append(_Slot(mod, f"weight_hh_l{layer}", 1))
                if layer > 0:
                    pending.consumers.append(_Slot(mod, f"weight_ih_l{layer}", 1))
                groups.append(group)
                pending = group
    # the last producer is the classifier: its outputs are never pruned
    groups = [g for g in groups if g is not pending]
    if not allow_empty and not any(g.size > 1 for g in groups):
        raise ValueError(
            f"{type(module).__name__} has no prunable channels: every layer before "
            "the classifier already has a single channel (or there is none)."
        )
    return groups


def _params_of(module):
    return {id(p): p for p in module.parameters()}


def parameters_after(module, groups, removed):
    """Parameter count of ``module`` once ``removed[name]`` channels go per group.

    Parameters
    ----------
    module : torch.nn.Module
        The network the groups were found in.
    groups : list of ChannelGroup
        From :func:`channel_groups`.
    removed : dict of str to int
        Channels to remove per group name (missing: none).

    Returns
    -------
    n_params : int

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(3, 2, widths=(8, 16))
    >>> parameters_after(net, channel_groups(net), {}) == sum(
    ...     p.numel() for p in net.parameters())
    True
    """
    factors = {}
    params = _params_of(module)
    for g in groups:
        keep = (g.size - removed.get(g.name, 0)) / g.size
        for slot in g.producers + g.consumers:
            t = slot.tensor()
            if id(t) in params:
                factors[id(t)] = factors.get(id(t), 1.0) * keep
    return int(round(sum(p.numel() * factors.get(i, 1.0) for i, p in params.items())))


def _keep(group, drop):
    drop = set(int(i) for i in drop)
    return [k for k in range(group.size) if k not in drop]


def _sync_attributes(module):
    """Make module attributes (sizes) agree with the new tensor shapes."""
    for mod in module.modules():
        if isinstance(mod, nn.Conv1d):
            mod.out_channels, mod.in_channels = mod.weight.shape[0], mod.weight.shape[1]
        elif isinstance(mod, nn.Linear):
            mod.out_features, mod.in_features = mod.weight.shape
        elif isinstance(mod, nn.BatchNorm1d):
            mod.num_features = (
                mod.running_mean.shape[0]
                if mod.running_mean is not None
                else mod.weight.shape[0]
            )
        elif isinstance(mod, nn.LSTM | nn.GRU):
            mod.hidden_size = mod.weight_hh_l0.shape[1]
            mod.input_size = mod.weight_ih_l0.shape[1]
            mod._init_flat_weights()
    # skkd backbones describe their widths; keep those descriptions true
    head = getattr(module, "head", None)
    if isinstance(head, nn.Linear) and hasattr(module, "n_features"):
        module.n_features = head.in_features
    if hasattr(module, "widths") and hasattr(module, "features"):
        module.widths = tuple(
            m.out_channels
            for m in module.features.modules()
            if isinstance(m, nn.Conv1d)
        )
    if hasattr(module, "hidden_size") and isinstance(
        getattr(module, "rnn", None), nn.RNNBase
    ):
        module.hidden_size = module.rnn.hidden_size


def _check_removal(groups, removal):
    by_name = {g.name: g for g in groups}
    for name, drop in removal.items():
        if name not in by_name:
            raise KeyError(
                f"no prunable channel group {name!r}; groups: {list(by_name)}"
            )
        g = by_name[name]
        drop = set(int(i) for i in drop)
        if any(i < 0 or i >= g.size for i in drop):
            raise IndexError(
                f"channel index out of range for {name!r} (size {g.size})."
            )
        if len(drop) >= g.size:
            raise ValueError(
                f"cannot remove all {g.size} channels of {name!r}: a layer keeps one."
            )
    couplings = {}
    for g in groups:
        if g.coupling is not None:
            couplings.setdefault(g.coupling, set()).add(
                len(set(removal.get(g.name, ())))
            )
    for key, counts in couplings.items():
        if len(counts) > 1:
            raise ValueError(
                f"the layers of {key!r} share one hidden size: remove the same number "
                "of units from each."
            )


def prune_channels(module, removal):
    """Physically remove channels, in place.

    Parameters
    ----------
    module : torch.nn.Module
        A chain network (see :func:`channel_groups`).
    removal : dict of str to sequence of int
        Channel indices to remove, per group name.

    Returns
    -------
    module : torch.nn.Module
        The same object, with smaller tensors; parameters are *new* tensors,
        so optimizers holding the old ones must be rebuilt.

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> net = prune_channels(CNN1D(3, 2, widths=(8, 16)), {"features.1.0": [0, 5]})
    >>> net.widths, net.head.in_features
    ((8, 14), 14)
    """
    groups = channel_groups(module, allow_empty=True)
    _check_removal(groups, removal)
    for g in groups:
        drop = removal.get(g.name, ())
        if not len(drop):
            continue
        keep = _keep(g, drop)
        for slot in g.producers + g.consumers:
            old = slot.tensor()
            idx = slot.indices(g.size, keep)
            new = old.detach().index_select(slot.dim, idx).clone()
            if isinstance(old, nn.Parameter):
                setattr(slot.module, slot.name, nn.Parameter(new, old.requires_grad))
            else:
                setattr(slot.module, slot.name, new)
    _sync_attributes(module)
    return module


def mask_channels(module, removal):
    """Zero the readers of channels instead of removing them, in place.

    The masked network is the reference a pruned one must reproduce: every
    weight that reads a masked channel is zeroed, so the channel no longer
    influences anything downstream.

    Parameters
    ----------
    module : torch.nn.Module
        A chain network.
    removal : dict of str to sequence of int
        Channel indices to mask, per group name.

    Returns
    -------
    module : torch.nn.Module

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> net = mask_channels(CNN1D(3, 2, widths=(8, 16)), {"features.1.0": [0]})
    >>> float(net.head.weight[:, 0].detach().abs().sum())
    0.0
    """
    groups = channel_groups(module, allow_empty=True)
    _check_removal(groups, removal)
    with torch.no_grad():
        for g in groups:
            drop = sorted(set(int(i) for i in removal.get(g.name, ())))
            if not drop:
                continue
            for slot in g.consumers:
                slot.tensor().index_fill_(slot.dim, slot.indices(g.size, drop), 0.0)
    return module


# ------------------------------------------------------------------ importance


def _normalise(scores):
    return {k: v / (v.norm() + 1e-12) for k, v in scores.items()}


def channel_importance(module, kind="magnitude", groups=None):
    """Data-free channel importance: filter L1 magnitude or BatchNorm scale.

    Parameters
    ----------
    module : torch.nn.Module
        A chain network.
    kind : {"magnitude", "bn_scale"}, default="magnitude"
        ``"magnitude"``: L1 norm of each channel's producer weights (all gates
        of a recurrent unit). ``"bn_scale"``: ``|gamma|`` of the BatchNorm after
        the producer (Liu et al., "Learning efficient convolutional networks
        through network slimming", ICCV 2017).
    groups : list of ChannelGroup, optional
        Precomputed :func:`channel_groups`.

    Returns
    -------
    scores : dict of str to torch.Tensor
        One non-negative score per channel, per group.

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> s = channel_importance(CNN1D(3, 2, widths=(8, 16)), "bn_scale")
    >>> {k: tuple(v.shape) for k, v in s.items()}
    {'features.0.0': (8,), 'features.1.0': (16,)}
    """
    groups = channel_groups(module) if groups is None else groups
    scores = {}
    with torch.no_grad():
        for g in groups:
            if kind == "bn_scale":
                if g.bn is None or g.bn.weight is None:
                    raise ValueError(
                        f"bn_scale importance needs an affine BatchNorm1d after every "
                        f"prunable layer; {g.name!r} has none. Use 'magnitude' or "
                        "'taylor'."
                    )
                scores[g.name] = g.bn.weight.detach().abs().clone()
            elif kind == "magnitude":
                total = torch.zeros(g.size)
                for slot in g.producers:
                    if slot.module is g.bn or not slot.name.startswith("weight"):
                        continue
                    t = slot.tensor().detach().abs().transpose(0, slot.dim)
                    total += slot.per_channel(t.reshape(t.shape[0], -1).sum(1), g.size)
                scores[g.name] = total
            else:
                raise ValueError(
                    f"channel_importance computes 'magnitude' or 'bn_scale', got "
                    f"{kind!r}; Taylor importance needs gradients (taylor_importance)."
                )
    return scores


def _gate_gradients(groups):
    """``dL/dg_k`` of every channel from the readers' ``w * dL/dw``."""
    out = {}
    for g in groups:
        total = torch.zeros(g.size)
        for slot in g.consumers:
            w = slot.tensor()
            if w.grad is None:
                continue
            prod = (w.detach() * w.grad.detach()).transpose(0, slot.dim)
            total += slot.per_channel(prod.reshape(prod.shape[0], -1).sum(1), g.size)
        out[g.name] = total
    return out


def accumulate_taylor(groups, scores, kind="taylor"):
    """Add this backward pass's Taylor scores to ``scores``, in place.

    Call after ``loss.backward()`` and before the optimizer step. A channel
    whose activation is identically zero gets exactly 0.

    Parameters
    ----------
    groups : list of ChannelGroup
        Groups of the network whose gradients are populated.
    scores : dict of str to torch.Tensor
        Running sums (created on first use).
    kind : {"taylor", "taylor_weight"}, default="taylor"
        ``"taylor"``: ``|dL/dg_k|`` with ``dL/dg_k = sum_{batch, time} a_k dL/da_k``
        (Molchanov et al., "Pruning convolutional neural networks for resource
        efficient inference", ICLR 2017). ``"taylor_weight"``: ``(dL/dg_k)^2``
        (Molchanov et al., "Importance estimation for neural network pruning",
        CVPR 2019).

    Returns
    -------
    scores : dict of str to torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(3, 2, widths=(4, 6))
    >>> net(torch.randn(5, 3, 20)).sum().backward()
    >>> s = accumulate_taylor(channel_groups(net), {})
    >>> sorted(s), s["features.1.0"].shape
    (['features.0.0', 'features.1.0'], torch.Size([6]))
    """
    if kind not in ("taylor", "taylor_weight"):
        raise ValueError(f"kind must be 'taylor' or 'taylor_weight', got {kind!r}.")
    for name, grad in _gate_gradients(groups).items():
        value = grad.abs() if kind == "taylor" else grad.pow(2)
        scores[name] = scores[name] + value if name in scores else value
    return scores


def taylor_importance(module, batches, loss_fn=None, kind="taylor"):
    """Taylor channel importance of a network on labelled batches.

    Parameters
    ----------
    module : torch.nn.Module
        A chain network returning logits; left in its current mode, gradients
        are cleared afterwards.
    batches : iterable of (X, y)
        Mini-batches (tensors).
    loss_fn : callable, optional
        ``loss_fn(logits, y)``; cross-entropy by default.
    kind : {"taylor", "taylor_weight"}, default="taylor"
        See :func:`accumulate_taylor`.

    Returns
    -------
    scores : dict of str to torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(3, 2, widths=(4, 6))
    >>> batch = (torch.randn(8, 3, 20), torch.randint(0, 2, (8,)))
    >>> sorted(taylor_importance(net, [batch]))
    ['features.0.0', 'features.1.0']
    """
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    groups = channel_groups(module)
    scores = {}
    for X, y in batches:
        module.zero_grad()
        out = module(X)
        out = out[0] if isinstance(out, tuple) else out
        loss_fn(out, y).backward()
        accumulate_taylor(groups, scores, kind)
    module.zero_grad()
    return scores


# ------------------------------------------------------------------- selection


def select_channels(module, scores, n_channels=None, target_params=None, groups=None):
    """Pick the least important channels, ranked globally across layers.

    Scores are normalised per layer by their L2 norm. Channels are removed in
    increasing order of score until ``n_channels`` are chosen or the network
    would have at most ``target_params`` parameters, whichever comes first;
    never the last channel of a layer. Recurrent layers of one module lose
    units in lockstep (one unit per layer per step, score = their mean).

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    scores : dict of str to torch.Tensor
        Importance per channel, per group.
    n_channels : int, optional
        Channels to remove (a coupled step counts each layer's unit).
    target_params : int, optional
        Stop once the parameter count is at most this.
    groups : list of ChannelGroup, optional
        Precomputed groups.

    Returns
    -------
    removal : dict of str to list of int

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(3, 2, widths=(4, 6))
    >>> s = {"features.0.0": torch.tensor([4., 3, 2, 1]), "features.1.0": torch.ones(6)}
    >>> select_channels(net, s, n_channels=2)
    {'features.0.0': [3, 2]}
    """
    groups = channel_groups(module) if groups is None else groups
    if n_channels is None and target_params is None:
        raise ValueError("give n_channels or target_params.")
    norm = _normalise({g.name: scores[g.name].detach().float() for g in groups})
    tickets = []  # (score, tie-breaker, [(group, channel), ...])
    coupled = {}
    for g in groups:
        if g.coupling is None:
            for k in range(g.size):
                tickets.append((float(norm[g.name][k]), len(tickets), [(g, k)]))
        else:
            coupled.setdefault(g.coupling, []).append(g)
    for members in coupled.values():
        orders = [torch.argsort(norm[g.name], stable=True).tolist() for g in members]
        for j in range(members[0].size):
            value = sum(
                float(norm[g.name][o[j]]) for g, o in zip(members, orders, strict=True)
            )
            pairs = [(g, o[j]) for g, o in zip(members, orders, strict=True)]
            tickets.append((value / len(members), len(tickets), pairs))
    tickets.sort(key=lambda t: (t[0], t[1]))

    removal, counts, done = {}, {}, 0
    for _, _, pairs in tickets:
        if n_channels is not None and done >= n_channels:
            break
        if (
            target_params is not None
            and parameters_after(module, groups, counts) <= target_params
        ):
            break
        if any(g.size - counts.get(g.name, 0) <= 1 for g, _ in pairs):
            continue  # a layer keeps its last channel
        for g, k in pairs:
            removal.setdefault(g.name, []).append(int(k))
            counts[g.name] = counts.get(g.name, 0) + 1
        done += len(pairs)
    return removal


def _uniform_counts(groups, fraction):
    counts = {}
    for g in groups:
        counts[g.name] = min(g.size - 1, int(round(fraction * g.size)))
    return counts


def channel_fraction_for(module, target_params, groups=None):
    """Fraction of channels to remove (uniformly per layer) to meet a budget.

    Removing a fraction ``q`` of the channels of consecutive layers removes
    about ``1 - (1 - q)^2`` of their weights; this solves for ``q`` exactly on
    the network by bisection.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    target_params : int
        Parameter budget.
    groups : list of ChannelGroup, optional

    Returns
    -------
    fraction : float
        In [0, 1).

    Raises
    ------
    ValueError
        If the budget is larger than the network or smaller than the network
        keeping one channel per layer.

    Examples
    --------
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(9, 6, widths=(64, 128, 128))
    >>> round(channel_fraction_for(net, 13366), 2)
    0.75
    """
    groups = channel_groups(module) if groups is None else groups
    full = parameters_after(module, groups, {})
    if target_params > full:
        raise ValueError(
            f"target_params={target_params} is larger than the starting model "
            f"({full} parameters): nothing to prune."
        )
    smallest = parameters_after(module, groups, {g.name: g.size - 1 for g in groups})
    if target_params < smallest:
        raise ValueError(
            f"target_params={target_params} is below {smallest}, the size of this "
            "model with a single channel per layer."
        )
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if (
            parameters_after(module, groups, _uniform_counts(groups, mid))
            <= target_params
        ):
            hi = mid
        else:
            lo = mid
    return min(hi, 1.0 - 1e-9)


# ------------------------------------------------------------------ schedules


def pruning_schedule(epoch, start, end, final, kind="cubic"):
    """Target cumulative fraction of pruned channels after ``epoch``.

    Cubic schedule (Zhu & Gupta, "To prune, or not to prune", 2017)::

        r(e) = r_f [1 - (1 - (e - e_0) / (e_1 - e_0))^3]   for e_0 <= e <= e_1

    0 before ``e_0`` and ``r_f`` from ``e_1`` on. ``"linear"`` grows linearly;
    ``"one_shot"`` prunes everything at ``e_1``.

    Parameters
    ----------
    epoch : int
        Epochs trained so far.
    start, end : int
        ``e_0`` (end of warm-up) and ``e_1`` (end of pruning).
    final : float
        ``r_f``, the final fraction.
    kind : {"cubic", "linear", "one_shot"}, default="cubic"

    Returns
    -------
    fraction : float

    Examples
    --------
    >>> [round(pruning_schedule(e, 2, 6, 0.8), 3) for e in range(8)]
    [0.0, 0.0, 0.0, 0.463, 0.7, 0.788, 0.8, 0.8]
    """
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}.")
    if epoch >= end:
        return float(final)
    if epoch <= start or kind == "one_shot":
        return 0.0
    t = (epoch - start) / (end - start)
    if kind == "linear":
        return float(final * t)
    return float(final * (1.0 - (1.0 - t) ** 3))


def schedule_counts(total, start, end, final, kind="cubic"):
    """Channels removed after each epoch ``1..end``; they sum to the target.

    ``n(e) = round(r(e) C) - round(r(e - 1) C)``: rounding the cumulative target
    rather than each step makes the counts add up to ``round(r_f C)`` exactly.

    Parameters
    ----------
    total : int
        ``C``, prunable channels at the start.
    start, end : int
        Warm-up and pruning-end epochs.
    final : float
        Final fraction ``r_f``.
    kind : str, default="cubic"
        See :func:`pruning_schedule`.

    Returns
    -------
    counts : list of int
        ``counts[e - 1]`` channels after epoch ``e``.

    Examples
    --------
    >>> schedule_counts(100, 2, 6, 0.8)
    [0, 0, 46, 24, 9, 1]
    """
    cumulative = [
        round(pruning_schedule(e, start, end, final, kind) * total)
        for e in range(end + 1)
    ]
    return [cumulative[e] - cumulative[e - 1] for e in range(1, end + 1)]


# --------------------------------------------------------------------- public


def check_prunable(module, input_shape, groups=None):
    """Raise a clear error unless pruning ``module`` matches masking it.

    One channel of every layer is removed from a copy and the copy is
    compared with the masked network on random input: a network whose layers
    do not form a chain (residual sums, concatenations) fails here.

    Parameters
    ----------
    module : torch.nn.Module
        The network (not modified).
    input_shape : tuple of int
        ``(n_channels, n_timepoints)`` of one sample.
    groups : list of ChannelGroup, optional

    Returns
    -------
    groups : list of ChannelGroup

    Examples
    --------
    >>> from skkd.nn import GRUClassifier
    >>> len(check_prunable(GRUClassifier(3, 2, hidden_size=4, num_layers=2), (3, 9)))
    2
    """
    groups = channel_groups(module) if groups is None else groups
    # coupled recurrent layers share one size: all or none lose a unit
    removal = {g.name: [g.size // 2] for g in groups if g.size > 1}
    x = torch.randn(2, *input_shape)
    try:
        with torch.no_grad():
            pruned = prune_channels(copy.deepcopy(module), removal).eval()(x)
            masked = mask_channels(copy.deepcopy(module), removal).eval()(x)
        pruned = pruned[0] if isinstance(pruned, tuple) else pruned
        masked = masked[0] if isinstance(masked, tuple) else masked
        same = pruned.shape == masked.shape and torch.allclose(
            pruned, masked, atol=1e-4
        )
    except RuntimeError as exc:
        raise ValueError(
            f"{type(module).__name__} cannot be pruned channel by channel ({exc}); "
            "skkd prunes chains of Conv1d/BatchNorm1d/Linear/LSTM/GRU layers."
        ) from exc
    if not same:
        raise ValueError(
            f"Removing channels from {type(module).__name__} changes its outputs "
            "beyond masking them: its layers are not a chain skkd can prune."
        )
    return groups


def prune_to(module, ratio=None, *, target_params=None, importance="magnitude"):
    """A physically pruned copy of ``module`` at a parameter budget.

    Channels are ranked globally (per-layer normalised scores) and removed
    until the copy has at most ``ratio`` times the parameters (or
    ``target_params``); the result is within one channel's worth of the
    budget. The classifier outputs are kept and so is one channel per layer.

    Parameters
    ----------
    module : torch.nn.Module
        A chain network (see :func:`channel_groups`); not modified.
    ratio : float, optional
        Fraction of parameters kept, in (0, 1].
    target_params : int, optional
        Absolute budget (instead of ``ratio``).
    importance : {"magnitude", "bn_scale"} or dict, default="magnitude"
        Data-free importance, or precomputed scores per group (e.g. from
        :func:`taylor_importance`).

    Returns
    -------
    pruned : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> from skkd.compression import count_parameters
    >>> _ = torch.manual_seed(0)
    >>> net = CNN1D(9, 6, widths=(64, 128, 128))
    >>> small = prune_to(net, 0.1)
    >>> count_parameters(small) <= 0.1 * count_parameters(net), small.widths
    (True, (64, 25, 20))
    """
    if (ratio is None) == (target_params is None):
        raise ValueError("give exactly one of ratio and target_params.")
    groups = channel_groups(module)
    full = parameters_after(module, groups, {})
    if ratio is not None:
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}.")
        target_params = int(math.floor(ratio * full))
    channel_fraction_for(module, target_params, groups)  # validates the budget
    scores = (
        channel_importance(module, importance, groups)
        if isinstance(importance, str)
        else importance
    )
    pruned = copy.deepcopy(module)
    groups = channel_groups(pruned)
    removal = select_channels(
        pruned, scores, target_params=target_params, groups=groups
    )
    return prune_channels(pruned, removal)
