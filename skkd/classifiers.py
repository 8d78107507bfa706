"""Teacher trainers and student baselines: supervised, DANN, VADA and DIRT-T."""

import math
import numbers

import torch
import torch.nn.functional as F

from .base import BaseTimeSeriesClassifier
from .distillers.base import BaseDistiller
from .losses import conditional_entropy, kd_kl_div, vat_loss
from .nn import CNN1D, DomainDiscriminator
from .schedules import grl_coefficient
from .teacher import frozen_copy

__all__ = [
    "ADATIME_HAR_DANN",
    "TimeSeriesClassifier",
    "DANNClassifier",
    "VADAClassifier",
    "DIRTTClassifier",
]

#: AdaTime's tuned DANN setting for UCI-HAR, as :class:`DANNClassifier`
#: parameters: the recommended recipe of a label-free HAR teacher. Use it as
#: ``DANNClassifier(**ADATIME_HAR_DANN, module__widths=(64, 128, 128))`` (the
#: CNN of AdaTime's HAR configuration; see :class:`DANNClassifier`, Examples).
#:
#: Values from Ragab et al., "AdaTime", TKDD 2023, code
#: ``emadeldeen24/AdaTime``, file ``configs/hparams.py``, class ``HAR``:
#: ``train_params`` gives ``num_epochs`` 40 (``max_epochs``), ``batch_size``
#: 32 and ``weight_decay`` 1e-4; ``alg_hparams["DANN"]`` gives
#: ``learning_rate`` 1e-3 (``lr``), ``src_cls_loss_wt`` 5.139 (``lambda_cls``)
#: and ``domain_loss_wt`` 2.944 (``lambda_domain``), rounded to four
#: significant digits. The betas come from ``algorithms/algorithms.py``,
#: class ``DANN``: the network's Adam keeps torch's default betas (0.9,
#: 0.999), the discriminator's Adam uses (0.5, 0.99); both use the learning
#: rate and weight decay above. AdaTime's gradient-reversal coefficient
#: ramps to 1 within about the first epoch (its ramp divides the step count
#: by the number of epochs): skkd's ``grl_schedule="constant"``.
#:
#: AdaTime also builds a step schedule, ``StepLR(step_size=50, gamma=0.5)``
#: stepped once per epoch: with 40 epochs it never fires, so the recipe has
#: no schedule. To reproduce it when training longer, pass skorch's callback:
#: ``callbacks=[LRScheduler(policy=torch.optim.lr_scheduler.StepLR,
#: step_size=50, gamma=0.5)]`` (``from skorch.callbacks import
#: LRScheduler``); like AdaTime's, it schedules the network's optimizer
#: only, not the discriminator's.
ADATIME_HAR_DANN = {
    "lr": 1e-3,
    "max_epochs": 40,
    "batch_size": 32,
    "lambda_cls": 5.139,
    "lambda_domain": 2.944,
    "grl_schedule": "constant",
    "optimizer__betas": (0.9, 0.999),
    "optimizer__weight_decay": 1e-4,
    "optimizer_disc__betas": (0.5, 0.99),
}


class TimeSeriesClassifier(BaseTimeSeriesClassifier):
    """Supervised training of any backbone on labelled series.

    The source-only teacher and the student-only baseline of every
    distillation table. ``X_tgt`` is accepted for a uniform ``fit`` signature and
    not used.

    Parameters
    ----------
    module : type or torch.nn.Module, default=CNN1D
        Network class (built with ``n_channels``/``n_classes`` from the data) or
        instance.
    **kwargs
        Training settings, as :class:`skkd.base.BaseTimeSeriesClassifier`
        (``lr=1e-2``, ``max_epochs=10``, ``batch_size=32``, ``random_state`` ...,
        and routed ``module__*``/``optimizer__*`` parameters).

    Attributes
    ----------
    module_ : torch.nn.Module
        Trained network.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    history_ : skorch.history.History
        Per-epoch losses (``train_loss``, ``train_ce``).

    Examples
    --------
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> clf = TimeSeriesClassifier(module__widths=(8, 16), max_epochs=2, random_state=0)
    >>> clf.fit(d.X_src, d.y_src).predict(d.X_tgt_test).shape
    (120,)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.target = "ignored"  # supervised: no target batches drawn
        return tags


class DANNClassifier(BaseTimeSeriesClassifier):
    """Domain-adversarial training (DANN) with a gradient reversal layer.

    Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand, Lempitsky,
    "Domain-Adversarial Training of Neural Networks", JMLR 2016. Trains the
    network on labelled source and unlabelled target series::

        L = lambda_cls * CE(C(F(x_s)), y_s)
            + lambda_domain * [CE(D(GRL(F(x_s))), 1) + CE(D(GRL(F(x_t))), 0)]

    as the reference implementations do it: per batch one forward pass per
    domain (source and target separately: per-domain BatchNorm statistics),
    one backward pass, then one step of each of the two Adam optimizers
    (network; discriminator), built with the same settings. Defaults follow
    the UNI-KD/AdaTime teacher pre-training on UCI-HAR (lr 1e-2, weight decay
    1e-4, betas (0.5, 0.99), 10 epochs, batch 32, lambda 1/1). Used to train
    the teacher of the cross-domain distillers, and as the DANN student
    baseline.

    Parameters
    ----------
    module : type or torch.nn.Module, default=CNN1D
        Network with ``forward_features`` and ``head``.
    discriminator : type, default=DomainDiscriminator
        Domain discriminator class, built with ``n_features`` of the network;
        routed parameters ``discriminator__hidden`` ...; trained by
        ``optimizer_disc`` (routed ``optimizer_disc__lr`` ...).
    lambda_cls : float, default=1.0
        Weight of the source cross-entropy.
    lambda_domain : float, default=1.0
        Weight of the domain-confusion loss.
    grl_schedule : {"constant", "ramp"}, default="constant"
        Gradient-reversal coefficient: 1 throughout (as the released AdaTime code
        effectively runs), or DANN's ``2 / (1 + exp(-10 p)) - 1`` ramp.
    **kwargs
        As :class:`skkd.base.BaseTimeSeriesClassifier`.

    Examples
    --------
    >>> from skkd import DANNClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> dann = DANNClassifier(module__widths=(8, 16), max_epochs=2, random_state=0)
    >>> dann.fit(d.X_src, d.y_src, d.X_tgt).score(d.X_tgt_test, d.y_tgt_test) >= 0
    True

    AdaTime's tuned HAR setting (:data:`ADATIME_HAR_DANN`), the recommended
    HAR teacher recipe, on AdaTime's HAR CNN:

    >>> from skkd.classifiers import ADATIME_HAR_DANN
    >>> teacher = DANNClassifier(**ADATIME_HAR_DANN, module__widths=(64, 128, 128))
    >>> teacher.lr, teacher.max_epochs, teacher.lambda_cls, teacher.lambda_domain
    (0.001, 40, 5.139, 2.944)
    >>> short = DANNClassifier(**{**ADATIME_HAR_DANN, "max_epochs": 1},
    ...                        module__widths=(8, 16), random_state=0)
    >>> short = short.fit(d.X_src, d.y_src, d.X_tgt)
    >>> short.optimizer_.defaults["betas"], short.optimizer_disc_.defaults["betas"]
    ((0.9, 0.999), (0.5, 0.99))
    """

    _default_kwargs = {
        **BaseTimeSeriesClassifier._default_kwargs,
        "optimizer__betas": (0.5, 0.99),
    }

    def __init__(
        self,
        module=CNN1D,
        *,
        discriminator=DomainDiscriminator,
        lambda_cls=1.0,
        lambda_domain=1.0,
        grl_schedule="constant",
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.discriminator = discriminator
        self.lambda_cls = lambda_cls
        self.lambda_domain = lambda_domain
        self.grl_schedule = grl_schedule

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.target = "required"
        return tags

    def prepare_fit(self, X, y, X_tgt):
        grl_coefficient(0.0, self.grl_schedule)  # validates the name

    def initialize_module(self):
        """Build the network and the domain discriminator."""
        super().initialize_module()
        self.discriminator_ = self.initialize_component(
            "discriminator", n_features=self.module_.n_features
        )
        return self

    def optimizer_groups(self):
        return {"optimizer": ["module"], "optimizer_disc": ["discriminator"]}

    def adversarial_terms(self, X, y, X_tgt):
        """DANN's forward passes and terms, shared by the methods built on it.

        One forward per domain (per-domain BatchNorm statistics).

        Returns
        -------
        terms : dict of str to torch.Tensor
            ``"ce"``, ``"domain"`` and ``"y_pred"`` (source logits).
        features_tgt : torch.Tensor of shape (batch, n_features)
            Target features, with their graph.
        """
        features_src = self.module_.forward_features(X)
        logits = self.module_.head(features_src)
        features_tgt = self.module_.forward_features(X_tgt)
        self.discriminator_.grl.alpha = grl_coefficient(
            self.progress, self.grl_schedule
        )
        domain_src = self.discriminator_(features_src)
        domain_tgt = self.discriminator_(features_tgt)
        # class 1 = source, class 0 = target (AdaTime convention)
        domain = F.cross_entropy(
            domain_src, torch.ones(len(X), dtype=torch.long)
        ) + F.cross_entropy(domain_tgt, torch.zeros(len(X_tgt), dtype=torch.long))
        ce = self.criterion_(logits, y)
        return {"ce": ce, "domain": domain, "y_pred": logits}, features_tgt

    def compute_losses(self, X, y, X_tgt):
        terms, _ = self.adversarial_terms(X, y, X_tgt)
        terms["loss"] = (
            self.lambda_cls * terms["ce"] + self.lambda_domain * terms["domain"]
        )
        return terms


# ------------------------------------------------------------- VADA and DIRT-T
def _check_weights(est, names):
    for name in names:
        value = getattr(est, name)
        if not (
            isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0
        ):
            raise ValueError(
                f"{name} is a loss weight and must be a finite number >= 0, got "
                f"{value!r}; use 0 to turn the term off."
            )


def _check_vat(est):
    for name, role in (
        ("vat_xi", "the power iteration's finite-difference step (1e-6)"),
        ("vat_eps", "the radius of the adversarial perturbation (3.5)"),
    ):
        value = getattr(est, name)
        if not (isinstance(value, numbers.Real) and value > 0 and math.isfinite(value)):
            raise ValueError(
                f"{name} is {role} and must be a finite number > 0, got {value!r}. "
                "To turn VAT off, set its weight to 0 instead."
            )
    n = est.vat_n_power
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(
            f"vat_n_power is the number of power iterations and must be an integer "
            f">= 1, got {n!r}."
        )


class VADAClassifier(DANNClassifier):
    """VADA: DANN plus conditional entropy and virtual adversarial training.

    Shu, Bui, Narui, Ermon, "A DIRT-T Approach to Unsupervised Domain
    Adaptation", ICLR 2018 (Virtual Adversarial Domain Adaptation). The
    network is trained on labelled source and unlabelled target series to
    minimise::

        L = lambda_cls * CE(h(x_s), y_s)
            + lambda_domain * L_d
            + lambda_ent * H(h(x_t))
            + lambda_vat_src * VAT(x_s) + lambda_vat_tgt * VAT(x_t)

    with ``L_d`` DANN's domain-confusion loss behind gradient reversal (see
    :class:`DANNClassifier`), ``H`` the mean conditional entropy of the target
    predictions (:func:`skkd.losses.conditional_entropy`) and ``VAT`` the
    virtual adversarial loss :func:`skkd.losses.vat_loss` (``KL(p(x) ||
    p(x + r_adv))``, ``||r_adv|| = vat_eps`` per series). The entropy term
    moves decision boundaries away from dense target regions; VAT makes the
    classifier locally Lipschitz, which the cluster assumption behind the
    entropy term needs.

    Per batch: one forward per domain (shared by every term), plus
    ``vat_n_power + 1`` forwards of perturbed series for each VAT term with a
    positive weight (6 forwards with the defaults), one backward pass and one
    step of each of the two optimizers (network; discriminator). A term with
    weight 0 is not computed and not logged.

    Defaults are AdaTime's tuned HAR setting of this method (Ragab et al.,
    TKDD 2023, ``configs/hparams.py``, rounded to three digits): lr 5e-3,
    weight decay 1e-4, Adam's default betas, batch 32, ``lambda_cls`` 9.68,
    ``lambda_domain`` 1.90, ``lambda_ent`` 1.21, one VAT weight 7.71 for both
    domains, ``vat_eps`` 3.5, ``vat_xi`` 1e-6, one power iteration. AdaTime
    trains 40 epochs; skkd's default is 10. The paper's own setting is
    ``lambda_domain=1e-2``, ``lambda_vat_src=1``, ``lambda_ent =
    lambda_vat_tgt = 1e-2``, lr 1e-3 and Adam betas (0.5, 0.999).

    Differences from the reference codes, on purpose: the domain term is
    DANN's gradient reversal, the minimax of the paper's ``L_d`` in one
    backward pass (the paper's code and AdaTime alternate a discriminator
    update with a network update on flipped domain labels); source and target
    VAT have their own weights (AdaTime uses one); no moving average of the
    weights (AdaTime registers one, but its update shares storage with the
    parameters after the first step and has no effect).

    Parameters
    ----------
    module : type or torch.nn.Module, default=CNN1D
        Network with ``forward_features`` and ``head``.
    discriminator : type, default=DomainDiscriminator
        Domain discriminator (see :class:`DANNClassifier`).
    lambda_cls : float, default=9.68
        Weight of the source cross-entropy.
    lambda_domain : float, default=1.90
        Weight of the domain-confusion loss.
    lambda_ent : float, default=1.21
        Weight of the conditional entropy on target series.
    lambda_vat_src, lambda_vat_tgt : float, default=7.71
        Weights of VAT on source and on target series.
    vat_eps : float, default=3.5
        Radius of the adversarial perturbation (L2 norm per series, over
        channels and time). Scale it with the inputs: the HAR series are
        standardised per channel.
    vat_xi : float, default=1e-6
        Finite-difference step of the power iteration.
    vat_n_power : int, default=1
        Power iterations per VAT term.
    grl_schedule : {"constant", "ramp"}, default="constant"
        Gradient-reversal coefficient (see :class:`DANNClassifier`).
    lr : float, default=5e-3
        Learning rate of both optimizers.
    **kwargs
        As :class:`skkd.base.BaseTimeSeriesClassifier`.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    discriminator_ : torch.nn.Module
        The domain discriminator.
    history_ : skorch.history.History
        Per epoch ``train_ce``, ``train_domain``, ``train_ent``,
        ``train_vat_src`` and ``train_vat_tgt``.

    See Also
    --------
    DANNClassifier : the same without entropy and VAT.
    DIRTTClassifier : refines a fitted VADA network on the target domain.

    Examples
    --------
    >>> from skkd import VADAClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> vada = VADAClassifier(module__widths=(8, 16), max_epochs=1, random_state=0)
    >>> vada = vada.fit(d.X_src, d.y_src, d.X_tgt)
    >>> [f"train_{t}" in vada.history_[-1] for t in ("ent", "vat_src", "vat_tgt")]
    [True, True, True]
    """

    _default_kwargs = dict(BaseTimeSeriesClassifier._default_kwargs)

    def __init__(
        self,
        module=CNN1D,
        *,
        discriminator=DomainDiscriminator,
        lambda_cls=9.68,
        lambda_domain=1.90,
        lambda_ent=1.21,
        lambda_vat_src=7.71,
        lambda_vat_tgt=7.71,
        vat_eps=3.5,
        vat_xi=1e-6,
        vat_n_power=1,
        grl_schedule="constant",
        lr=5e-3,
        **kwargs,
    ):
        super().__init__(
            module,
            discriminator=discriminator,
            lambda_cls=lambda_cls,
            lambda_domain=lambda_domain,
            grl_schedule=grl_schedule,
            lr=lr,
            **kwargs,
        )
        self.lambda_ent = lambda_ent
        self.lambda_vat_src = lambda_vat_src
        self.lambda_vat_tgt = lambda_vat_tgt
        self.vat_eps = vat_eps
        self.vat_xi = vat_xi
        self.vat_n_power = vat_n_power

    def prepare_fit(self, X, y, X_tgt):
        _check_weights(
            self,
            (
                "lambda_cls",
                "lambda_domain",
                "lambda_ent",
                "lambda_vat_src",
                "lambda_vat_tgt",
            ),
        )
        _check_vat(self)
        super().prepare_fit(X, y, X_tgt)

    def vat(self, X, logits):
        """:func:`skkd.losses.vat_loss` of the network at ``X``."""
        return vat_loss(
            self.module_,
            X,
            logits,
            xi=self.vat_xi,
            eps=self.vat_eps,
            n_power=self.vat_n_power,
        )

    def compute_losses(self, X, y, X_tgt):
        terms, features_tgt = self.adversarial_terms(X, y, X_tgt)
        logits_tgt = self.module_.head(features_tgt)
        terms["ent"] = conditional_entropy(logits_tgt)
        loss = (
            self.lambda_cls * terms["ce"]
            + self.lambda_domain * terms["domain"]
            + self.lambda_ent * terms["ent"]
        )
        if self.lambda_vat_src > 0:
            terms["vat_src"] = self.vat(X, terms["y_pred"])
            loss = loss + self.lambda_vat_src * terms["vat_src"]
        if self.lambda_vat_tgt > 0:
            terms["vat_tgt"] = self.vat(X_tgt, logits_tgt)
            loss = loss + self.lambda_vat_tgt * terms["vat_tgt"]
        terms["loss"] = loss
        return terms


class DIRTTClassifier(BaseDistiller):
    """DIRT-T: refine a fitted domain-adapted network on the target domain.

    Shu, Bui, Narui, Ermon, "A DIRT-T Approach to Unsupervised Domain
    Adaptation", ICLR 2018 (Decision-boundary Iterative Refinement Training
    with a Teacher). Starting from a copy of the fitted network ``theta_0``
    (a :class:`VADAClassifier`, or any label-free teacher), DIRT-T drops the
    source data and follows the cluster assumption on the target domain
    alone: a sequence of natural-gradient-like proximal steps::

        theta_n = argmin_theta  lambda_ent * H(h_theta(x_t))
                                + lambda_vat * VAT_theta(x_t)
                                + beta * KL(h_{theta_(n-1)}(x_t) || h_theta(x_t))

    each approximately solved by ``refresh_every`` optimizer steps, after
    which the frozen previous network ``theta_(n-1)`` is replaced by the
    current one. The KL term keeps each step close to the previous network in
    output space, so the decision boundary moves a little at a time away from
    the dense target regions. ``H`` is :func:`skkd.losses.conditional_entropy`,
    ``VAT`` :func:`skkd.losses.vat_loss`.

    Per batch: one forward of the target batch, ``vat_n_power + 1`` forwards
    of perturbed target series for VAT, one forward of the previous network
    (in eval mode, without gradient), one backward pass, one optimizer step.
    The source batch is not used (an epoch is still as many steps as source
    batches, the engine's convention); ``y`` only fixes the label set, which
    must be the teacher's.

    The paper's setting is ``lambda_t = beta = 1e-2`` (``lambda_t`` weights
    entropy and VAT alike), lr 1e-3, Adam betas (0.5, 0.999) and a refresh
    every 5000 of 80000 steps (from an exponential moving average of the
    weights). skkd's defaults keep the paper's ratios at scale 1 (Adam is
    invariant to the loss scale, and the coupled weight decay then keeps its
    usual relative strength), lr 1e-3, betas (0.5, 0.99), and refresh once
    per epoch: 10 refreshes in 10 epochs. The previous network is the plain
    current one (no moving average). AdaTime has no refinement stage: its
    ``DIRT`` algorithm is VADA (see :class:`VADAClassifier`).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The network to refine, e.g. ``FrozenEstimator(fitted_vada)``; never
        modified (DIRT-T trains a copy).
    module : None, default=None
        Must be None: the refined network is a copy of the teacher's.
    beta : float, default=1.0
        Weight of ``KL(previous || current)`` on target series.
    lambda_ent : float, default=1.0
        Weight of the conditional entropy on target series.
    lambda_vat : float, default=1.0
        Weight of VAT on target series.
    refresh_every : int or None, default=None
        Optimizer steps between refreshes of the previous network; None
        refreshes once per epoch.
    vat_eps, vat_xi, vat_n_power : float, float, int, default=3.5, 1e-6, 1
        VAT's perturbation radius, finite-difference step and power
        iterations (see :class:`VADAClassifier`).
    lr : float, default=1e-3
        Learning rate (the paper's).
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Attributes
    ----------
    module_ : torch.nn.Module
        The refined network.
    teacher_module_ : torch.nn.Module
        The frozen previous network ``theta_(n-1)`` after the last refresh
        (before the first, a copy of the teacher).
    n_refreshes_ : int
        Refreshes of the previous network since the modules were built.
    history_ : skorch.history.History
        Per epoch ``train_ent``, ``train_vat_tgt`` and ``train_kl``.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import DIRTTClassifier, VADAClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> vada = VADAClassifier(module__widths=(8, 16), max_epochs=1, random_state=0)
    >>> vada = vada.fit(d.X_src, d.y_src, d.X_tgt)
    >>> dirtt = DIRTTClassifier(FrozenEstimator(vada), max_epochs=2, random_state=0)
    >>> dirtt = dirtt.fit(d.X_src, d.y_src, d.X_tgt)
    >>> dirtt.n_refreshes_, dirtt.predict(d.X_tgt_test).shape
    (2, (120,))
    """

    def __init__(
        self,
        teacher=None,
        module=None,
        *,
        beta=1.0,
        lambda_ent=1.0,
        lambda_vat=1.0,
        refresh_every=None,
        vat_eps=3.5,
        vat_xi=1e-6,
        vat_n_power=1,
        lr=1e-3,
        **kwargs,
    ):
        super().__init__(teacher, module, lr=lr, **kwargs)
        self.beta = beta
        self.lambda_ent = lambda_ent
        self.lambda_vat = lambda_vat
        self.refresh_every = refresh_every
        self.vat_eps = vat_eps
        self.vat_xi = vat_xi
        self.vat_n_power = vat_n_power

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.target = "required"
        return tags

    def prepare_fit(self, X, y, X_tgt):
        if self.module is not None:
            raise ValueError(
                "DIRTTClassifier refines the teacher's own network: leave module=None "
                f"(got {self.module!r}); to change the network, train another "
                "teacher (e.g. VADAClassifier(module=...))."
            )
        _check_weights(self, ("beta", "lambda_ent", "lambda_vat"))
        _check_vat(self)
        every = self.refresh_every
        if every is not None and (
            not isinstance(every, numbers.Integral)
            or isinstance(every, bool)
            or every < 1
        ):
            raise ValueError(
                f"refresh_every is a number of optimizer steps and must be an integer "
                f">= 1 or None (once per epoch), got {every!r}."
            )
        super().prepare_fit(X, y, X_tgt)

    def initialize_module(self):
        """The trainable copy of the teacher and the previous network."""
        module, _ = self._resolve_teacher()
        self.teacher_module_ = frozen_copy(module, self.device)
        self.module_ = frozen_copy(module, self.device, trainable=True)
        self.n_refreshes_ = 0
        return self

    def frozen_modules(self):
        # the previous network is in no optimizer and has no gradient, but it
        # changes at every refresh: checkpoints and epoch rollback keep it, and
        # no teacher cache is built from it
        return []

    def previous_logits(self, X):
        """Logits of the previous network ``theta_(n-1)`` (eval mode, no gradient)."""
        previous = self.teacher_module_
        was_training = previous.training
        previous.eval()
        try:
            return self.teacher_logits(X)
        finally:
            previous.train(was_training)

    def compute_losses(self, X, y, X_tgt):
        logits = self.module_(X_tgt)
        ent = conditional_entropy(logits)
        kl = kd_kl_div(logits, self.previous_logits(X_tgt), 1.0, scale_t2=False)
        terms = {"ent": ent, "kl": kl}
        loss = self.lambda_ent * ent + self.beta * kl
        if self.lambda_vat > 0:
            terms["vat_tgt"] = vat_loss(
                self.module_,
                X_tgt,
                logits,
                xi=self.vat_xi,
                eps=self.vat_eps,
                n_power=self.vat_n_power,
            )
            loss = loss + self.lambda_vat * terms["vat_tgt"]
        terms["loss"] = loss
        return terms

    def refresh(self):
        """Make the current network the new previous one (``theta_(n-1)``)."""
        self.teacher_module_.load_state_dict(self.module_.state_dict())
        self.n_refreshes_ += 1

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Refresh the previous network every ``refresh_every`` steps."""
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if not training:
            return
        # steps so far, from the history: a resumed fit keeps the schedule
        steps = sum(len(row["batches"]) for row in self.history)
        if steps % (self.refresh_every or self.steps_per_epoch_) == 0:
            self.refresh()
