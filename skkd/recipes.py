"""Module-aware training defaults: the recipe a backbone recommends.

The engine's defaults (``lr=1e-2``, 10 epochs, no gradient clipping) are the
CNN recipe of UNI-KD/AdaTime. A recurrent network trained that way often
stays at chance on ordinary UCR/UEA data, so :class:`skkd.nn.LSTMClassifier`
and :class:`skkd.nn.GRUClassifier` declare their own recipe as the class
attribute ``training_recipe``. At every fit the engine resolves each setting
of the recipe: a value the user left at the estimator's default takes the
module's recommended value; any other value is kept. The parameters
themselves are never changed (``get_params`` returns what was passed); the
values used are the fitted attributes ``lr_``, ``max_epochs_`` and
``max_grad_norm_``.
"""

import inspect

__all__ = ["RECIPE_KEYS", "recommended_recipe", "resolve_recipe"]

#: estimator parameters a module's ``training_recipe`` may set
RECIPE_KEYS = ("lr", "max_epochs", "max_grad_norm")


def recommended_recipe(module, module_params=None):
    """The training recipe a module class (or instance) recommends.

    ``training_recipe`` is a dict, or a callable that takes the module's
    hyperparameters (the recurrent modules' recipe depends on their size).

    Parameters
    ----------
    module : type or torch.nn.Module
        The estimator's ``module``.
    module_params : dict, optional
        Routed ``module__*`` parameters, for a module class.

    Returns
    -------
    dict
        Subset of :data:`RECIPE_KEYS` to values; empty when the module
        declares none (the engine's defaults then apply unchanged).

    Examples
    --------
    >>> from skkd.nn import CNN1D, LSTMClassifier
    >>> recommended_recipe(CNN1D)
    {}
    >>> recommended_recipe(LSTMClassifier, {"hidden_size": 8})
    {'lr': 0.01, 'max_epochs': 200, 'max_grad_norm': 1.0}
    >>> recommended_recipe(LSTMClassifier(1, 2, num_layers=3))["lr"]
    0.001
    """
    recipe = getattr(module, "training_recipe", None) or {}
    if callable(recipe):
        recipe = recipe(**_hyperparameters(module, module_params))
    unknown = set(recipe) - set(RECIPE_KEYS)
    if unknown:
        raise ValueError(
            f"training_recipe of {getattr(module, '__name__', type(module).__name__)}"
            f" sets {sorted(unknown)}; a recipe may set only {list(RECIPE_KEYS)}."
        )
    return dict(recipe)


def _hyperparameters(module, module_params):
    if not isinstance(module, type):  # an instance keeps them as attributes
        return {k: v for k, v in vars(module).items() if not k.startswith("_")}
    try:
        signature = inspect.signature(module).parameters
    except (TypeError, ValueError):
        signature = {}
    defaults = {
        k: p.default
        for k, p in signature.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, **(module_params or {})}


def _signature_default(cls, name):
    # the first class in the MRO whose __init__ names the parameter defines
    # its default (MemKD's lr=5e-3, the engine's lr=1e-2 ...)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            param = inspect.signature(init).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return inspect.Parameter.empty


def resolve_recipe(estimator):
    """The values of :data:`RECIPE_KEYS` an estimator trains with.

    A parameter equal to the estimator's default takes the module's
    recommended value (:func:`recommended_recipe`); any other value is the
    user's choice and is kept.

    Parameters
    ----------
    estimator : skkd.base.BaseTimeSeriesClassifier
        Any skkd estimator.

    Returns
    -------
    dict
        Every key of :data:`RECIPE_KEYS` to the value used.

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.nn import LSTMClassifier
    >>> resolve_recipe(TimeSeriesClassifier())["lr"]
    0.01
    >>> resolve_recipe(TimeSeriesClassifier(LSTMClassifier, module__hidden_size=8))
    {'lr': 0.01, 'max_epochs': 200, 'max_grad_norm': 1.0}
    >>> resolve_recipe(TimeSeriesClassifier(LSTMClassifier, lr=3e-4))["lr"]
    0.0003
    """
    params = estimator.get_params_for("module")
    recipe = recommended_recipe(estimator.module, params)
    resolved = {}
    for key in RECIPE_KEYS:
        value = getattr(estimator, key)
        default = _signature_default(type(estimator), key)
        if key in recipe and _same(value, default):
            value = recipe[key]
        resolved[key] = value
    return resolved


def _same(value, default):
    if default is inspect.Parameter.empty:
        return False
    if value is None or default is None:
        return value is default
    try:
        return bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):
        return False
