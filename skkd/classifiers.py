"""Teacher trainers and student baselines: supervised and DANN training."""

import torch
import torch.nn.functional as F

from .base import BaseTimeSeriesClassifier
from .nn import CNN1D, DomainDiscriminator
from .schedules import grl_coefficient

__all__ = ["TimeSeriesClassifier", "DANNClassifier"]


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

    def compute_losses(self, X, y, X_tgt):
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
        loss = self.lambda_cls * ce + self.lambda_domain * domain
        return {"loss": loss, "ce": ce, "domain": domain, "y_pred": logits}
