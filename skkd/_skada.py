"""What skkd needs to read a network trained with skada (an optional extra)."""

import copy

import numpy as np

#: skada's masked label of target rows in the packed form (classification)
MASKED_LABEL = -1


def is_skada_net(obj):
    """Whether ``obj`` is a skada (deep) estimator.

    Examples
    --------
    >>> is_skada_net(object())
    False
    """
    return type(obj).__module__.startswith("skada.")


def skada_teacher(obj, classes):
    """A clean copy of a fitted skada net's module, and its true classes.

    skada's ``DomainAwareModule`` keeps the last activations of a hooked layer
    (tensors inside the autograd graph, which cannot be deep-copied) and its
    ``classes_`` come from packed labels, so they include the target mask -1.
    The copy drops the stored activations and the recording hooks (skkd reads
    teacher features with its own hooks); the user's net is not modified.

    Parameters
    ----------
    obj : skada estimator
        Fitted skada net (``module_``).
    classes : array-like or None
        Its ``classes_``.

    Returns
    -------
    module : torch.nn.Module
    classes : ndarray or None

    Examples
    --------
    >>> from torch import nn
    >>> class Net:
    ...     module_ = nn.Linear(2, 2)
    >>> module, classes = skada_teacher(Net(), [-1, 0, 1])
    >>> classes.tolist()
    [0, 1]
    """
    module = obj.module_
    memo = {}
    stored = getattr(module, "intermediate_layers", None)
    if isinstance(stored, dict):
        memo[id(stored)] = {}
    module = copy.deepcopy(module, memo)
    for sub in module.modules():
        sub._forward_hooks.clear()
    if classes is not None:
        classes = np.asarray(classes)
        classes = classes[classes != MASKED_LABEL]
    return module, classes
