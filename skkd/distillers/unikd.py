"""UNI-KD: universal and joint knowledge distillation across domains."""

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_switches
from ..losses import adversarial_bce, hint_l1, kd_kl_div
from ..nn import CNN1D, DomainDiscriminator
from ..schedules import grl_coefficient, progressive_beta
from ..stages import Stage
from .base import BaseDistiller

__all__ = ["UniKDClassifier", "domain_shared_weights"]


def domain_shared_weights(domain_logits):
    """UNI-KD's per-sample KD weight ``w(x) = 1 - |q_0(x) - q_1(x)|``.

    ``q = softmax(D_d(x))`` over the two domains (Xu et al., IJCAI 2023, eq. d):
    a sample the data-domain discriminator cannot place (``q_0 = q_1``) is
    domain-shared and gets weight 1; a confidently placed one gets weight near 0.

    Parameters
    ----------
    domain_logits : torch.Tensor of shape (batch, 2)
        Data-domain discriminator logits.

    Returns
    -------
    weights : torch.Tensor of shape (batch,)
        In [0, 1]; differentiable (detach it for the ``detach_weights`` variant).

    Examples
    --------
    >>> import torch
    >>> domain_shared_weights(torch.tensor([[0.3, 0.3], [10.0, -10.0]]))
    tensor([1., 0.])
    """
    if domain_logits.ndim != 2 or domain_logits.shape[1] != 2:
        raise ValueError(
            "domain_logits must have shape (batch, 2), got "
            f"{tuple(domain_logits.shape)}."
        )
    q = torch.softmax(domain_logits, dim=1)
    return 1.0 - (q[:, 0] - q[:, 1]).abs()


_SWITCHES = {
    "target_kd_on": ("target", "source_logits"),
    "beta_schedule": ("ln", "log10"),
    "grl_schedule": ("constant", "ramp"),
}


class UniKDClassifier(BaseDistiller):
    """UNI-KD: cross-domain distillation of universal and joint knowledge.

    Xu, Wu, Li, Mao, Chen, "Distilling Universal and Joint Knowledge for
    Cross-Domain Model Compression on Time Series Data", IJCAI 2023
    (arXiv:2307.03347). A frozen teacher (trained with UDA, e.g.
    :class:`~skkd.DANNClassifier`) is distilled into a small student using
    labelled source and unlabelled target series. Per step, with ``f = F(x)``
    features, ``z`` logits, ``A`` the adapter (student -> teacher feature space),
    ``D_f`` the feature-domain discriminator and ``D_d`` the data-domain
    discriminator behind a gradient reversal layer:

    1. ``D_f`` step: ``L_Df = BCE(D_f(f_T), 1) + BCE(D_f(sg[A(f_S)]), 0)`` over
       both domains (teacher features are "real").
    2. Student step, one backward for ``{F_S, C_S, A, D_d}``::

           L_UKD = BCE(D_f(A(f_S)), 1)
                   + |A(f_S(x_s)) - f_T(x_s)|_1 + |A(f_S(x_t)) - f_T(x_t)|_1
           L_DC  = CE(D_d(GRL(f_S(x_s))), 1) + CE(D_d(GRL(f_S(x_t))), 0)
           w(x)  = 1 - |q_0(x) - q_1(x)|,  q = softmax(D_d(GRL(f_S(x))))
           L_JKD = tau^2 [mean_s w KL(s(z_T/tau) || s(z_S/tau)) + mean_t w KL(...)]
           L     = lambda_cls CE(z_S(x_s), y_s) + (1 - beta_e) lambda_dc L_DC
                   + beta_e L_JKD + lambda_ukd L_UKD

       with ``beta_e = beta_0 exp(g e)``, ``g = ln(beta_E / beta_0) / E``.

    Source and target go through the student in separate forward passes (per
    domain BatchNorm statistics), once each per step. The released code differs
    from the paper in places; each difference has a switch (defaults chosen by
    the spec's measured ablation, see the user guide).

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The UDA-trained teacher, preferably ``FrozenEstimator(fitted_dann)``.
        Its feature width may differ from the student's: the adapter is sized
        from both.
    module : type or torch.nn.Module, default=CNN1D
        The student (e.g. ``module__widths=(16, 32, 32)``); needs
        ``forward_features`` and ``head``.
    temperature : float, default=4.0
        KD temperature tau.
    lambda_cls, lambda_dc, lambda_ukd : float, default=1.0
        Weights of the source cross-entropy, domain confusion and universal KD.
    beta_0, beta_end : float, default=0.1, 0.9
        Start and end of the progressive weight beta.
    adapter : type, default=torch.nn.Linear
        Student-to-teacher feature adapter, built as
        ``adapter(in_features, out_features)``; routed ``adapter__*``.
    discriminator : type, default=DomainDiscriminator
        Data-domain discriminator on student features (with its gradient
        reversal layer); routed ``discriminator__hidden`` (64); trained by
        ``optimizer_disc`` (``optimizer_disc__lr`` ...).
    feature_discriminator : type, default=DomainDiscriminator
        Feature-domain discriminator on teacher-width features, one logit;
        routed ``feature_discriminator__hidden`` (64); trained by
        ``optimizer_feat``.
    target_kd_on : {"target", "source_logits"}, default="target"
        ``"target"``: the target KD term uses target logits (the paper).
        ``"source_logits"``: as released, source logits with target weights
        (no KD on target samples ever happens).
    detach_adversarial : bool, default=True
        As released: the adversarial student term gets detached adapted
        features, so only the L1 hint trains ``F_S`` and ``A`` (undetaching
        measured worse).
    detach_weights : bool, default=False
        As released: ``w`` is not detached, so KD gradients also reach ``D_d``
        and, reversed, ``F_S`` (detaching measured worse).
    beta_schedule : {"ln", "log10"}, default="ln"
        The paper's natural log (0.1 -> 0.9), or the released code's log10
        (0.11 -> 0.26 over 10 epochs).
    grl_schedule : {"constant", "ramp"}, default="constant"
        Gradient reversal coefficient 1 throughout (as released), or DANN's ramp.
    **kwargs
        As :class:`skkd.base.BaseDistiller` (``lr=1e-2``, weight decay 1e-4,
        Adam betas (0.5, 0.99), ``max_epochs=10``, ``batch_size=32`` ...).

    Attributes
    ----------
    adapter_, discriminator_, feature_discriminator_ : torch.nn.Module
        Training-only modules.
    history_ : skorch.history.History
        Per-epoch terms: ``train_ce``, ``train_dc``, ``train_jkd``, ``train_ukd``,
        ``train_ukd_adv``, ``train_ukd_hint``, ``train_feat_disc``,
        ``train_weight`` (mean w), ``train_beta``.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import DANNClassifier, UniKDClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = DANNClassifier(module__widths=(16, 32), max_epochs=2, random_state=0)
    >>> teacher = teacher.fit(d.X_src, d.y_src, d.X_tgt)
    >>> student = UniKDClassifier(FrozenEstimator(teacher), module__widths=(4, 8),
    ...                           max_epochs=2, random_state=0)
    >>> student.fit(d.X_src, d.y_src, d.X_tgt).predict(d.X_tgt_test).shape
    (120,)
    >>> sorted(k for k in student.history_[-1] if k.startswith("train_"))[:3]
    ['train_batch_count', 'train_beta', 'train_ce']
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
        temperature=4.0,
        lambda_cls=1.0,
        lambda_dc=1.0,
        lambda_ukd=1.0,
        beta_0=0.1,
        beta_end=0.9,
        adapter=nn.Linear,
        discriminator=DomainDiscriminator,
        feature_discriminator=DomainDiscriminator,
        target_kd_on="target",
        detach_adversarial=True,
        detach_weights=False,
        beta_schedule="ln",
        grl_schedule="constant",
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.temperature = temperature
        self.lambda_cls = lambda_cls
        self.lambda_dc = lambda_dc
        self.lambda_ukd = lambda_ukd
        self.beta_0 = beta_0
        self.beta_end = beta_end
        self.adapter = adapter
        self.discriminator = discriminator
        self.feature_discriminator = feature_discriminator
        self.target_kd_on = target_kd_on
        self.detach_adversarial = detach_adversarial
        self.detach_weights = detach_weights
        self.beta_schedule = beta_schedule
        self.grl_schedule = grl_schedule

    def prepare_fit(self, X, y, X_tgt):
        check_switches(self, _SWITCHES)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not (self.beta_0 > 0 and self.beta_end > 0):
            raise ValueError("beta_0 and beta_end must be > 0.")
        super().prepare_fit(X, y, X_tgt)

    def initialize_module(self):
        """Build the student, the frozen teacher copy, adapter and discriminators."""
        super().initialize_module()
        self.adapter_ = self.initialize_adapter()
        self.discriminator_ = self.initialize_component(
            "discriminator", n_features=self.module_.n_features
        )
        self.feature_discriminator_ = self.initialize_feature_discriminator(
            "feature_discriminator"
        )
        return self

    def optimizer_groups(self):
        return {
            "optimizer": ["module", "adapter"],
            "optimizer_disc": ["discriminator"],
            "optimizer_feat": ["feature_discriminator"],
        }

    # ------------------------------------------------------------ the method
    def beta(self):
        """The progressive weight of the current epoch."""
        return progressive_beta(
            self.current_epoch,
            self._max_epochs(),
            self.beta_0,
            self.beta_end,
            self.beta_schedule,
        )

    def feature_discriminator_loss(self, teacher_features, adapted):
        """``L_Df``: teacher features are real (1), adapted student ones fake (0)."""
        return adversarial_bce(
            self.feature_discriminator_(teacher_features),
            self.feature_discriminator_(adapted.detach()),
        )

    def student_losses(self, student, teacher, y, beta):
        """Every term of the student step, from the step's forward passes.

        Parameters
        ----------
        student : dict
            ``f_src, f_tgt`` (features), ``z_src, z_tgt`` (logits), ``a_src,
            a_tgt`` (adapted features) of the student.
        teacher : dict
            ``f_src, f_tgt, z_src, z_tgt`` of the frozen teacher.
        y : torch.Tensor
            Encoded source labels.
        beta : float
            Progressive weight of this epoch.

        Returns
        -------
        terms : dict of str to torch.Tensor
            ``loss`` (the total) and every term.
        """
        adapted = torch.cat([student["a_src"], student["a_tgt"]])
        adv_in = adapted.detach() if self.detach_adversarial else adapted
        adv_logit = self.feature_discriminator_(adv_in)
        ukd_adv = F.binary_cross_entropy_with_logits(
            adv_logit, torch.ones_like(adv_logit)
        )
        ukd_hint = hint_l1(student["a_src"], teacher["f_src"]) + hint_l1(
            student["a_tgt"], teacher["f_tgt"]
        )
        ukd = ukd_adv + ukd_hint

        self.discriminator_.grl.alpha = grl_coefficient(
            self.progress, self.grl_schedule
        )
        d_src = self.discriminator_(student["f_src"])
        d_tgt = self.discriminator_(student["f_tgt"])
        # class 1 = source, class 0 = target
        dc = F.cross_entropy(d_src, torch.ones(len(d_src), dtype=torch.long)) + (
            F.cross_entropy(d_tgt, torch.zeros(len(d_tgt), dtype=torch.long))
        )

        w_src, w_tgt = domain_shared_weights(d_src), domain_shared_weights(d_tgt)
        if self.detach_weights:
            w_src, w_tgt = w_src.detach(), w_tgt.detach()
        tau = self.temperature
        jkd_src = kd_kl_div(student["z_src"], teacher["z_src"], tau, weights=w_src)
        if self.target_kd_on == "target":
            jkd_tgt = kd_kl_div(student["z_tgt"], teacher["z_tgt"], tau, weights=w_tgt)
        else:  # released code: source logits weighted by target weights
            n = min(len(w_tgt), len(student["z_src"]))
            jkd_tgt = kd_kl_div(
                student["z_src"][:n], teacher["z_src"][:n], tau, weights=w_tgt[:n]
            )
        jkd = jkd_src + jkd_tgt

        ce = F.cross_entropy(student["z_src"], y)
        loss = (
            self.lambda_cls * ce
            + (1.0 - beta) * self.lambda_dc * dc
            + beta * jkd
            + self.lambda_ukd * ukd
        )
        return {
            "loss": loss,
            "ce": ce,
            "dc": dc,
            "jkd": jkd,
            "ukd": ukd,
            "ukd_adv": ukd_adv,
            "ukd_hint": ukd_hint,
            "weight": torch.cat([w_src, w_tgt]).mean(),
        }

    def training_stages(self):
        """The ``D_f`` stage, then the student stage (``F_S, C_S, A, D_d``)."""
        return [
            Stage("feature_discriminator", "feature_stage", ("optimizer_feat",)),
            Stage("student", "student_stage", ("optimizer", "optimizer_disc")),
        ]

    def _forward(self, step):
        """Student and teacher outputs of the step, computed once for both stages."""

        def forward():
            # one forward per domain: BatchNorm keeps per-domain batch statistics
            f_src = self.module_.forward_features(step.X)
            f_tgt = self.module_.forward_features(step.X_tgt)
            student = {
                "f_src": f_src,
                "f_tgt": f_tgt,
                "z_src": self.module_.head(f_src),
                "z_tgt": self.module_.head(f_tgt),
                "a_src": self.adapter_(f_src),
                "a_tgt": self.adapter_(f_tgt),
            }
            f_src_t, z_src_t = self.teacher_outputs(step.X)
            f_tgt_t, z_tgt_t = self.teacher_outputs(step.X_tgt)
            teacher = {"f_src": f_src_t, "f_tgt": f_tgt_t, "z_src": z_src_t}
            return student, {**teacher, "z_tgt": z_tgt_t}

        return step.shared("forward", forward)

    def feature_stage(self, step):
        """``L_Df`` on both domains (the student's features detached)."""
        student, teacher = self._forward(step)
        feat_disc = self.feature_discriminator_loss(
            torch.cat([teacher["f_src"], teacher["f_tgt"]]),
            torch.cat([student["a_src"], student["a_tgt"]]),
        )
        return {"loss": feat_disc, "feat_disc": feat_disc}

    def student_stage(self, step):
        """Every student term against the just-updated ``D_f``."""
        student, teacher = self._forward(step)
        beta = self.beta()
        terms = self.student_losses(student, teacher, step.y, beta)
        return {**terms, "beta": beta, "y_pred": student["z_src"]}
