"""Baseline distillers that every cross-domain KD table compares against.

FitNet (hint regression), MobileDA (target KD + CORAL), AAD (adversarial
feature distillation) and JKU (joint progressive KD and UDA), each an skkd
estimator on the shared engine (:class:`skkd.base.BaseDistiller`).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import adversarial_bce, coral, hint_mse, kd_kl_div, mmd
from ..nn import CNN1D, DomainDiscriminator
from ..schedules import progressive_beta
from ..stages import Stage
from .base import BaseDistiller

__all__ = [
    "AADClassifier",
    "FitNetClassifier",
    "JKUClassifier",
    "MobileDAClassifier",
]


def _check_non_negative(**weights):
    for name, value in weights.items():
        if not (
            isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
        ):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def _check_temperature(temperature):
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")


class FitNetClassifier(BaseDistiller):
    """FitNet hint distillation, trained jointly with the source cross-entropy.

    Romero, Ballas, Kahou, Chassang, Gatta, Bengio, "FitNets: Hints for Thin
    Deep Nets", ICLR 2015. An adapter ``A`` (the paper's regressor, a linear
    map from the student's to the teacher's feature width) regresses the
    student's pooled features onto the frozen teacher's features with a mean
    squared error; the student and adapter minimise::

        L = CE(z_S(x_s), y_s)
            + lambda_hint * MSE(A(f_S(x_s)), f_T(x_s))
            + lambda_hint * MSE(A(f_S(x_t)), f_T(x_t))     (when X_tgt is given)

    where ``MSE`` is :func:`skkd.losses.hint_mse` (mean over batch and feature
    elements), ``f`` the features before the classifier head and ``z`` the
    logits. The target hint is added only when ``fit`` receives ``X_tgt`` (it
    needs no labels). The paper trains in two stages (hints first, then KD);
    this is the joint single-stage variant used as a baseline in cross-domain
    KD tables, with the hint on the final (pooled) feature layer.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained teacher, preferably ``FrozenEstimator(fitted_net)``; never
        modified. It needs ``forward_features`` or ``teacher_feature_layer``.
    module : type or torch.nn.Module, default=CNN1D
        The student, with ``forward_features`` and ``head``.
    adapter : type, default=torch.nn.Linear
        Adapter class, built with ``in_features`` (student feature width) and
        ``out_features`` (teacher feature width); routed ``adapter__*``
        parameters (e.g. ``adapter__bias=False``). Trained by ``optimizer``
        together with the student.
    lambda_hint : float, default=1.0
        Weight of each hint term.
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Attributes
    ----------
    adapter_ : torch.nn.Module
        The trained adapter (training only; not used by ``predict``).
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_ce``, ``train_hint_src`` and, with
        ``X_tgt``, ``train_hint_tgt``.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd import FitNetClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = TimeSeriesClassifier(module__widths=(8, 16), max_epochs=2,
    ...                                random_state=0).fit(d.X_src, d.y_src)
    >>> student = FitNetClassifier(FrozenEstimator(teacher), module__widths=(4, 8),
    ...                            max_epochs=2, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (120,)
    >>> student.adapter_
    Linear(in_features=8, out_features=16, bias=True)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.teacher_outputs = ("logits", "features")
        return tags

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        adapter=nn.Linear,
        lambda_hint=1.0,
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.adapter = adapter
        self.lambda_hint = lambda_hint

    def prepare_fit(self, X, y, X_tgt):
        _check_non_negative(lambda_hint=self.lambda_hint)
        super().prepare_fit(X, y, X_tgt)

    def initialize_module(self):
        """Build the student, the frozen teacher copy and the adapter."""
        super().initialize_module()
        self.adapter_ = self.initialize_adapter()
        return self

    def optimizer_groups(self):
        return {"optimizer": ["module", "adapter"]}

    def compute_losses(self, X, y, X_tgt):
        features = self.module_.forward_features(X)
        logits = self.module_.head(features)
        ce = self.criterion_(logits, y)
        hint_src = hint_mse(self.adapter_(features), self.teacher_features(X))
        terms = {"ce": ce, "hint_src": hint_src, "y_pred": logits}
        hint = hint_src
        if X_tgt is not None:
            adapted_tgt = self.adapter_(self.module_.forward_features(X_tgt))
            hint_tgt = hint_mse(adapted_tgt, self.teacher_features(X_tgt))
            terms["hint_tgt"] = hint_tgt
            hint = hint + hint_tgt
        terms["loss"] = ce + self.lambda_hint * hint
        return terms


class MobileDAClassifier(BaseDistiller):
    """MobileDA: target-domain distillation with CORAL alignment.

    Yang, Zou, Cao, Chen, Xie, "MobileDA: Toward Edge-Domain Adaptation", IEEE
    Internet of Things Journal, 2020. The student minimises::

        L = CE(z_S(x_s), y_s)
            + lambda_kd * KL(sigma(z_T(x_t)/tau) || sigma(z_S(x_t)/tau))
            + lambda_coral * CORAL(f_S(x_s), f_S(x_t))

    with the KL averaged over the target mini-batch and *not* multiplied by
    ``tau^2`` (:func:`skkd.losses.kd_kl_div` with ``scale_t2=False``), and
    ``CORAL`` the Deep CORAL loss (:func:`skkd.losses.coral`) between the
    student's source and target features. Defaults (0.7, tau = 2, 0.3) are
    those of the UNI-KD baseline runs. The teacher is meant to be a
    *source-only* teacher (trained by plain source cross-entropy, e.g.
    :class:`skkd.TimeSeriesClassifier`); this is documented, not enforced.
    Requires unlabelled target data ``X_tgt``.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained (source-only) teacher; never modified.
    module : type or torch.nn.Module, default=CNN1D
        The student, with ``forward_features`` and ``head``.
    lambda_kd : float, default=0.7
        Weight of the target KD term.
    temperature : float, default=2.0
        Softmax temperature tau.
    lambda_coral : float, default=0.3
        Weight of the CORAL term.
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Attributes
    ----------
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_ce``, ``train_kd_tgt``,
        ``train_coral``.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd import MobileDAClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = TimeSeriesClassifier(module__widths=(8, 16), max_epochs=2,
    ...                                random_state=0).fit(d.X_src, d.y_src)
    >>> student = MobileDAClassifier(FrozenEstimator(teacher), module__widths=(4, 8),
    ...                              max_epochs=2, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (120,)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.target = "required"
        return tags

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        lambda_kd=0.7,
        temperature=2.0,
        lambda_coral=0.3,
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.lambda_kd = lambda_kd
        self.temperature = temperature
        self.lambda_coral = lambda_coral

    def prepare_fit(self, X, y, X_tgt):
        _check_temperature(self.temperature)
        _check_non_negative(lambda_kd=self.lambda_kd, lambda_coral=self.lambda_coral)
        super().prepare_fit(X, y, X_tgt)

    def compute_losses(self, X, y, X_tgt):
        # each domain in its own forward pass: per-domain BatchNorm statistics
        features = self.module_.forward_features(X)
        logits = self.module_.head(features)
        features_tgt = self.module_.forward_features(X_tgt)
        logits_tgt = self.module_.head(features_tgt)
        ce = self.criterion_(logits, y)
        kd_tgt = kd_kl_div(
            logits_tgt,
            self.teacher_logits(X_tgt),
            self.temperature,
            scale_t2=False,
        )
        coral_term = coral(features, features_tgt)
        loss = ce + self.lambda_kd * kd_tgt + self.lambda_coral * coral_term
        return {
            "loss": loss,
            "ce": ce,
            "kd_tgt": kd_tgt,
            "coral": coral_term,
            "y_pred": logits,
        }


class AADClassifier(BaseDistiller):
    """AAD: adversarial adaptation with distillation (source only).

    Ryu, Lee, "Knowledge Distillation for BERT Unsupervised Domain Adaptation",
    Knowledge and Information Systems, 2022 (arXiv 2010.11478): adversarial
    adaptation with distillation (AAD), here in the source-only form of the
    UNI-KD baselines (Xu et al., IJCAI 2023). A feature discriminator ``D``
    learns to tell the frozen (source-only) teacher's features ("real") from
    the adapted student's features ("fake") on *source* series; the student
    learns to fool it while distilling the teacher's logits. Each mini-batch takes two
    alternating steps, the discriminator first::

        L_D = BCE(D(f_T(x_s)), 1) + BCE(D(sg[A(f_S(x_s))]), 0)        (optimizer_disc)

        L   = lambda_ce * CE(z_S(x_s), y_s)
              + lambda_kd * tau^2 * KL(sigma(z_T(x_s)/tau) || sigma(z_S(x_s)/tau))
              + lambda_adv * BCE(D(A(f_S(x_s))), 1)                    (optimizer)

    with ``BCE`` the binary cross-entropy on logits, ``sg`` stop-gradient,
    ``A`` a linear adapter from the student's to the teacher's feature width
    and the KL averaged over the batch. The generator term is *not* detached
    (its gradient reaches ``A`` and the student; the discriminator is not
    stepped by it). ``optimizer`` trains the student and the adapter,
    ``optimizer_disc`` the discriminator. ``X_tgt`` is accepted for a uniform
    ``fit`` signature and not used: this AAD baseline uses source data only.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained (source-only) teacher; never modified. It needs
        ``forward_features`` or ``teacher_feature_layer``.
    module : type or torch.nn.Module, default=CNN1D
        The student, with ``forward_features`` and ``head``.
    adapter : type, default=torch.nn.Linear
        Adapter class, built with ``in_features``/``out_features``; routed
        ``adapter__*``.
    discriminator : type, default=DomainDiscriminator
        Feature discriminator class, built with ``n_features`` (teacher feature
        width), ``n_domains=1`` and ``grl=False`` (routed ``discriminator__*``
        parameters win, e.g. ``discriminator__hidden=100``; ``hidden`` defaults
        to 64). Trained by ``optimizer_disc`` (routed ``optimizer_disc__lr``
        ...).
    temperature : float, default=4.0
        Softmax temperature tau.
    lambda_ce : float, default=1.0
        Weight of the source cross-entropy.
    lambda_kd : float, default=1.0
        Weight of the (tau^2-scaled) KD term.
    lambda_adv : float, default=0.1
        Weight of the adversarial (generator) term.
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Attributes
    ----------
    adapter_, discriminator_ : torch.nn.Module
        Training-only modules.
    optimizer_disc_ : torch.optim.Optimizer
        The discriminator's optimizer.
    history_ : skorch.history.History
        Per-epoch ``train_loss`` (student total), ``train_ce``, ``train_kd_src``,
        ``train_adv`` and ``train_disc`` (``L_D``).

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import TimeSeriesClassifier
    >>> from skkd import AADClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = TimeSeriesClassifier(module__widths=(8, 16), max_epochs=2,
    ...                                random_state=0).fit(d.X_src, d.y_src)
    >>> student = AADClassifier(FrozenEstimator(teacher), module__widths=(4, 8),
    ...                         discriminator__hidden=8, max_epochs=2,
    ...                         random_state=0)
    >>> student.fit(d.X_src, d.y_src).predict(d.X_tgt_test).shape
    (120,)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.time_series.teacher_outputs = ("logits", "features")
        tags.time_series.target = "ignored"  # source only: no target batches
        return tags

    def __init__(
        self,
        teacher=None,
        module=CNN1D,
        *,
        adapter=nn.Linear,
        discriminator=DomainDiscriminator,
        temperature=4.0,
        lambda_ce=1.0,
        lambda_kd=1.0,
        lambda_adv=0.1,
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.adapter = adapter
        self.discriminator = discriminator
        self.temperature = temperature
        self.lambda_ce = lambda_ce
        self.lambda_kd = lambda_kd
        self.lambda_adv = lambda_adv

    def prepare_fit(self, X, y, X_tgt):
        _check_temperature(self.temperature)
        _check_non_negative(
            lambda_ce=self.lambda_ce,
            lambda_kd=self.lambda_kd,
            lambda_adv=self.lambda_adv,
        )
        super().prepare_fit(X, y, X_tgt)

    def initialize_module(self):
        """Build the student, the frozen teacher copy, adapter and discriminator."""
        super().initialize_module()
        self.adapter_ = self.initialize_adapter()
        self.discriminator_ = self.initialize_feature_discriminator("discriminator")
        return self

    def optimizer_groups(self):
        return {
            "optimizer": ["module", "adapter"],
            "optimizer_disc": ["discriminator"],
        }

    def training_stages(self):
        """The discriminator stage on ``L_D``, then the student stage on ``L``."""
        return [
            Stage("discriminator", "discriminator_stage", ("optimizer_disc",)),
            Stage("student", "student_stage", ("optimizer",)),
        ]

    def _student_forward(self, step):
        def forward():
            features = self.module_.forward_features(step.X)
            return self.module_.head(features), self.adapter_(features)

        return step.shared("student", forward)

    def discriminator_loss(self, teacher_features, adapted):
        """``L_D = BCE(D(f_T), 1) + BCE(D(sg[A(f_S)]), 0)`` (logits, batch means)."""
        return adversarial_bce(
            self.discriminator_(teacher_features),
            self.discriminator_(adapted.detach()),
        )

    def discriminator_stage(self, step):
        """``L_D``: teacher features real, detached adapted student fake."""
        _, adapted = self._student_forward(step)
        features_t, _ = step.shared("teacher", lambda: self.teacher_outputs(step.X))
        disc = self.discriminator_loss(features_t, adapted)
        return {"loss": disc, "disc": disc}

    def student_stage(self, step):
        """Student and adapter against the just-updated discriminator."""
        logits, adapted = self._student_forward(step)
        _, logits_t = step.shared("teacher", lambda: self.teacher_outputs(step.X))
        ce = self.criterion_(logits, step.y)
        kd_src = kd_kl_div(logits, logits_t, self.temperature)
        fooled = self.discriminator_(adapted)  # not detached: trains A and F_S
        adv = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        loss = self.lambda_ce * ce + self.lambda_kd * kd_src + self.lambda_adv * adv
        return {"loss": loss, "ce": ce, "kd_src": kd_src, "adv": adv, "y_pred": logits}


class JKUClassifier(BaseDistiller):
    """Joint progressive knowledge distillation and unsupervised domain adaptation.

    Nguyen-Meidine, Granger, Kiran, Dolz, Blais-Morin, "Joint Progressive
    Knowledge Distillation and Unsupervised Domain Adaptation", IJCNN 2020
    ("JKU" in the baselines of Xu et al., IJCAI 2023). The teacher is *not*
    frozen: a private deep copy of the given teacher (``teacher_module_``; the
    user's teacher is never modified) keeps adapting with MMD while the
    student distils it, both trained by one optimizer::

        L_T = lambda_mmd * MMD(f_T(x_s), f_T(x_t)) + lambda_ce * CE(z_T(x_s), y_s)
        L_S = KL(sigma(sg[z_T(x_s)]/tau) || sigma(z_S(x_s)/tau))
              + lambda_ce * CE(z_S(x_s), y_s)
              + KL(sigma(sg[z_T(x_t)]/tau) || sigma(z_S(x_t)/tau))
        L   = (1 - beta_e) * L_T + beta_e * L_S

    with tau = 20, no ``tau^2`` factor, each KL averaged over its batch,
    ``MMD`` the multi-kernel Gaussian MMD (:func:`skkd.losses.mmd`) and
    ``beta_e = progressive_beta(e, E, schedule=beta_schedule)`` (0.1 -> 0.9
    over the epochs ``e = 1..E``, clipped to at most 1 when training runs
    past ``max_epochs``). The teacher logits inside the KL terms are detached
    (``sg``): the KL terms train the student towards the teacher, not the
    teacher towards the student; the teacher learns only from ``L_T``. They
    are taken from the teacher's training forward pass (train mode, as the
    teacher is being trained). Its intended teacher is a DANN teacher
    (:class:`skkd.DANNClassifier`). Requires unlabelled target data ``X_tgt``.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The trained teacher; copied, the copy is trained, the original never
        modified. It needs ``forward_features`` and ``head``, or
        ``teacher_feature_layer``.
    module : type or torch.nn.Module, default=CNN1D
        The student, with ``forward_features`` and ``head``.
    temperature : float, default=20.0
        Softmax temperature tau.
    lambda_ce : float, default=0.8
        Weight of the source cross-entropy, for teacher and student alike.
    lambda_mmd : float, default=1.0
        Weight of the teacher's MMD term.
    beta_schedule : {"ln", "log10"}, default="ln"
        Progressive-weight schedule (see :func:`skkd.schedules.progressive_beta`).
    **kwargs
        As :class:`skkd.base.BaseDistiller`; ``optimizer__*`` settings apply
        to the one optimizer that trains student and teacher copy.

    Attributes
    ----------
    teacher_module_ : torch.nn.Module
        The private, jointly trained copy of the teacher.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_teacher_mmd``, ``train_teacher_ce``,
        ``train_teacher``, ``train_kd_src``, ``train_ce``, ``train_kd_tgt``,
        ``train_student`` and ``train_beta``.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import DANNClassifier
    >>> from skkd import JKUClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = DANNClassifier(module__widths=(8, 16), max_epochs=2,
    ...                          random_state=0).fit(d.X_src, d.y_src, d.X_tgt)
    >>> student = JKUClassifier(FrozenEstimator(teacher), module__widths=(4, 8),
    ...                         max_epochs=2, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (120,)
    """

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
        temperature=20.0,
        lambda_ce=0.8,
        lambda_mmd=1.0,
        beta_schedule="ln",
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.temperature = temperature
        self.lambda_ce = lambda_ce
        self.lambda_mmd = lambda_mmd
        self.beta_schedule = beta_schedule

    def prepare_fit(self, X, y, X_tgt):
        _check_temperature(self.temperature)
        _check_non_negative(lambda_ce=self.lambda_ce, lambda_mmd=self.lambda_mmd)
        progressive_beta(1, 1, schedule=self.beta_schedule)  # validates the name
        super().prepare_fit(X, y, X_tgt)

    def frozen_modules(self):
        return []  # the private teacher copy is trained

    def optimizer_groups(self):
        return {"optimizer": ["module", "teacher_module"]}

    def compute_losses(self, X, y, X_tgt):
        beta = progressive_beta(
            self.current_epoch, self._max_epochs(), schedule=self.beta_schedule
        )
        feat_t_src, logit_t_src = self.teacher_outputs(X, grad=True)
        feat_t_tgt, logit_t_tgt = self.teacher_outputs(X_tgt, grad=True)
        teacher_mmd = mmd(feat_t_src, feat_t_tgt)
        teacher_ce = self.criterion_(logit_t_src, y)
        teacher = self.lambda_mmd * teacher_mmd + self.lambda_ce * teacher_ce

        logits = self.module_(X)
        logits_tgt = self.module_(X_tgt)
        ce = self.criterion_(logits, y)
        # detached: the KL terms train the student, not the teacher
        kd_src = kd_kl_div(
            logits, logit_t_src.detach(), self.temperature, scale_t2=False
        )
        kd_tgt = kd_kl_div(
            logits_tgt, logit_t_tgt.detach(), self.temperature, scale_t2=False
        )
        student = kd_src + self.lambda_ce * ce + kd_tgt
        return {
            "loss": (1 - beta) * teacher + beta * student,
            "teacher_mmd": teacher_mmd,
            "teacher_ce": teacher_ce,
            "teacher": teacher,
            "kd_src": kd_src,
            "ce": ce,
            "kd_tgt": kd_tgt,
            "student": student,
            "beta": beta,
            "y_pred": logits,
        }
