"""ITMC: iterative transfer knowledge distillation with adaptive channel pruning."""

import copy

import torch
import torch.nn.functional as F

from .. import pruning
from .._validation import check_switches
from ..base import SEEDED_FIT_LOCK
from ..losses import kd_kl_div, mmd
from ..nn import DomainDiscriminator
from ..schedules import grl_coefficient, progressive_beta
from ..stages import Stage
from .base import BaseDistiller

__all__ = ["ITMCClassifier"]

_TEACHER_UPDATES = ("mmd", "dann", "frozen")
_STUDENT_INITS = ("auto", "teacher", "random")


def _reset_parameters(module):
    for mod in module.modules():
        if hasattr(mod, "reset_parameters"):
            mod.reset_parameters()


class ITMCClassifier(BaseDistiller):
    """ITMC: transfer KD from a real-time updated teacher + adaptive channel pruning.

    Wang, Shi, Mei, Zhao, Wang, Li, "Iterative knowledge distillation and
    pruning for model compression in unsupervised domain adaptation", Pattern
    Recognition 164 (2025) 111512. The paper's two modules alternate every
    epoch: *transfer knowledge distillation* (TKD), where a teacher that keeps
    adapting to the target domain guides the student, and *adaptive channel
    pruning* (ACP), which removes the student's least important channels on
    an epoch-based schedule, ranked by the TKD student loss. The paper's
    formulas are not public; this is skkd's reconstruction (see the user
    guide), after JPKD (Nguyen-Meidine et al., 2020), TCP (Yu et al., 2019),
    Molchanov et al. (2017, 2019) and AGP (Zhu & Gupta, 2017).

    Per mini-batch, with ``beta_e = beta_0 exp(g e)`` (``beta_0 -> beta_end``
    over the epochs), ``lambda(p) = 2 / (1 + exp(-10 p)) - 1`` and ``D`` the
    multi-kernel MMD on penultimate features:

    1. teacher step on a private copy of the teacher (the user's teacher is
       never modified)::

           L_T = (1 - beta_e) [CE(T(x_s), y_s) + lambda(p) D(f_T(x_s), f_T(x_t))]

    2. student step against the freshly updated teacher (eval mode, no
       gradient)::

           L_S = beta_e [alpha CE(S(x_s), y_s)
                         + (1 - alpha) tau^2 KL(s(z_T(x_s)/tau) || s(z_S(x_s)/tau))
                         + tau^2 KL(s(z_T(x_t)/tau) || s(z_S(x_t)/tau))]
                 + gamma lambda(p) D(f_S(x_s), f_S(x_t))

    After each epoch ``e`` in ``(e_0, e_1]`` an ACP step ranks the student's
    channels (first-order Taylor estimate of ``L_S``, accumulated over the
    epoch's source and target batches, normalised per layer) and physically
    removes ``round(r(e) C) - round(r(e-1) C)`` of them, ``r`` the cubic
    schedule towards ``r_f``, the channel fraction that meets the parameter
    budget; the last step removes channels until the budget is met. Epochs
    after ``e_1`` are recovery (TKD only). The student optimizer is rebuilt
    after every pruning step.

    Parameters
    ----------
    teacher : torch.nn.Module or fitted estimator
        The (UDA-)trained teacher, e.g. ``FrozenEstimator(fitted_dann)``; skkd
        trains a private copy. Needs ``forward_features`` (or
        ``teacher_feature_layer``) for the MMD/DANN terms.
    module : None, type or torch.nn.Module, default=None
        The student before pruning. None: a copy of the teacher's network.
        A class is built from the data shapes with routed ``module__*``.
        It must be a chain of Conv1d/BatchNorm1d/Linear/LSTM/GRU layers
        (see :mod:`skkd.pruning`).
    target_ratio : float, optional
        Fraction of the starting student's parameters kept, in (0, 1].
        0.5 when neither ``target_ratio`` nor ``target_params`` is given.
    target_params : int, optional
        Absolute parameter budget of the final student (instead of
        ``target_ratio``); met within one channel's worth.
    temperature : float, default=20.0
        KD temperature tau (JPKD's value; 4 is the usual alternative).
    alpha : float, default=0.3
        Weight of the source cross-entropy against the source KD term.
    gamma : float, default=0.0
        Weight of the student's own MMD term (off by default).
    beta_0, beta_end : float, default=0.1, 0.9
        Start and end of the progressive weight (UNI-KD's schedule).
    teacher_update : {"mmd", "dann", "frozen"}, default="mmd"
        UDA objective of the real-time teacher; ``"frozen"`` keeps the teacher
        fixed (the ablation "ACP only").
    importance : {"taylor", "taylor_weight", "magnitude", "bn_scale"}, default="taylor"
        Channel ranking (see :mod:`skkd.pruning`).
    schedule : {"cubic", "linear", "one_shot"}, default="cubic"
        Cumulative pruned-channel fraction by epoch.
    warmup_epochs : int, optional
        ``e_0``, TKD-only epochs before pruning; default ``round(0.2 E)``.
    pruning_epochs : int, optional
        ``e_1 - e_0``; default so that ``e_1 = max(e_0 + 1, round(0.7 E))``.
        The remaining ``E - e_1`` epochs are recovery.
    student_init : {"auto", "teacher", "random"}, default="auto"
        ``"teacher"`` starts the student from the teacher's weights (needs the
        same architecture); ``"auto"`` does so when ``module`` is None.
    discriminator : type, default=DomainDiscriminator
        Domain discriminator of ``teacher_update="dann"`` (behind gradient
        reversal with coefficient ``lambda(p)``); routed
        ``discriminator__*``; trained with the teacher by
        ``optimizer_teacher``.
    teacher_lr : float, default=1e-3
        Learning rate of ``optimizer_teacher`` (the teacher copy and the
        discriminator), lower than the student's: the teacher is already
        trained. Other ``optimizer_teacher__*`` settings are routed.
    **kwargs
        As :class:`skkd.base.BaseDistiller`.

    Attributes
    ----------
    module_ : torch.nn.Module
        The physically pruned student.
    teacher_module_ : torch.nn.Module
        The adapted private copy of the teacher.
    start_params_ : int
        Student parameters before pruning.
    target_params_ : int
        The parameter budget.
    prune_fraction_ : float
        ``r_f``, the final fraction of pruned channels planned.
    prune_epochs_ : tuple of int
        ``(e_0, e_1)``.
    student_channels_ : dict of str to int
        Channels of each prunable layer group of the student after the last
        epoch (saved with ``save_params(f_fit_state=...)``, so a checkpoint of
        a pruned student loads into a fresh estimator).
    history_ : skorch.history.History
        Per-epoch ``train_ce``, ``train_kd_src``, ``train_kd_tgt``,
        ``train_teacher_ce``, ``train_teacher_da``, ``train_beta``,
        ``n_params`` and ``n_channels`` (after that epoch's ACP step).

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skkd import DANNClassifier, ITMCClassifier
    >>> from skkd.datasets import make_domain_shift
    >>> d = make_domain_shift(random_state=0)
    >>> teacher = DANNClassifier(module__widths=(16, 32), max_epochs=2, random_state=0)
    >>> teacher = teacher.fit(d.X_src, d.y_src, d.X_tgt)
    >>> student = ITMCClassifier(FrozenEstimator(teacher), target_ratio=0.3,
    ...                          max_epochs=3, random_state=0)
    >>> student = student.fit(d.X_src, d.y_src, d.X_tgt)
    >>> student.history_[:, "n_params"][-1] <= 0.3 * student.start_params_
    True
    >>> student.predict(d.X_tgt_test).shape
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
        module=None,
        *,
        target_ratio=None,
        target_params=None,
        temperature=20.0,
        alpha=0.3,
        gamma=0.0,
        beta_0=0.1,
        beta_end=0.9,
        teacher_update="mmd",
        importance="taylor",
        schedule="cubic",
        warmup_epochs=None,
        pruning_epochs=None,
        student_init="auto",
        teacher_lr=1e-3,
        discriminator=DomainDiscriminator,
        **kwargs,
    ):
        super().__init__(teacher, module, **kwargs)
        self.target_ratio = target_ratio
        self.target_params = target_params
        self.temperature = temperature
        self.alpha = alpha
        self.gamma = gamma
        self.beta_0 = beta_0
        self.beta_end = beta_end
        self.teacher_update = teacher_update
        self.importance = importance
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.pruning_epochs = pruning_epochs
        self.student_init = student_init
        self.teacher_lr = teacher_lr
        self.discriminator = discriminator

    # -------------------------------------------------------------- checks
    def _check_params(self):
        check_switches(
            self,
            {
                "teacher_update": _TEACHER_UPDATES,
                "importance": pruning.IMPORTANCES,
                "schedule": pruning.SCHEDULES,
                "student_init": _STUDENT_INITS,
            },
        )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}.")
        if not (self.beta_0 > 0 and self.beta_end > 0):
            raise ValueError("beta_0 and beta_end must be > 0.")
        if self.target_ratio is not None and self.target_params is not None:
            raise ValueError("give target_ratio or target_params, not both.")
        if self.target_ratio is not None and not 0 < self.target_ratio <= 1:
            raise ValueError(
                f"target_ratio is the kept fraction of parameters and must be in "
                f"(0, 1], got {self.target_ratio}."
            )
        if self.target_params is not None and not self.target_params >= 1:
            raise ValueError(f"target_params must be >= 1, got {self.target_params}.")
        epochs = self._max_epochs()
        e0 = round(0.2 * epochs) if self.warmup_epochs is None else self.warmup_epochs
        if self.pruning_epochs is None:
            e1 = max(e0 + 1, round(0.7 * epochs))
        else:
            e1 = e0 + self.pruning_epochs
        if e0 < 0 or e1 <= e0 or e1 > epochs:
            raise ValueError(
                f"warm-up ({e0}) and pruning ({e1 - e0}) epochs must be >= 0 and >= "
                f"1 and fit in max_epochs={epochs}."
            )
        return e0, e1

    def _start_student(self, teacher):
        """The unpruned student (a copy of the teacher or the given module)."""
        if self.module is None:
            student = copy.deepcopy(teacher)
            if self.student_init == "random":
                _reset_parameters(student)
        else:
            if isinstance(self.module, torch.nn.Module):
                student = copy.deepcopy(self.module)
            else:
                kwargs = self._module_kwargs(self.module)
                student = self.module(**kwargs, **self.get_params_for("module"))
            if self.student_init == "teacher":
                try:
                    student.load_state_dict(teacher.state_dict())
                except RuntimeError as exc:
                    raise ValueError(
                        "student_init='teacher' needs a student with the teacher's "
                        f"architecture: {exc}"
                    ) from exc
        for param in student.parameters():
            param.requires_grad_(True)
        return student

    def prepare_fit(self, X, y, X_tgt):
        self.prune_epochs_ = self._check_params()
        super().prepare_fit(X, y, X_tgt)
        teacher, _ = self._resolve_teacher()
        # a probe student, built without touching the global RNG, so that bad
        # budgets and unprunable students fail before any training
        # ... under the seeded-fit lock: forking the global RNG in one thread
        # must not rewind another thread's seeded fit
        with SEEDED_FIT_LOCK, torch.random.fork_rng(devices=[]):
            probe = self._start_student(teacher)
            groups = pruning.check_prunable(probe, (X.shape[1], X.shape[2]))
        self.start_params_ = pruning.parameters_after(probe, groups, {})
        if self.target_params is not None:
            target = int(self.target_params)
        else:
            ratio = 0.5 if self.target_ratio is None else self.target_ratio
            target = int(ratio * self.start_params_)
        self.prune_fraction_ = (
            0.0
            if target == self.start_params_
            else pruning.channel_fraction_for(probe, target, groups)
        )
        self.target_params_ = target
        self.start_channels_ = sum(g.size for g in groups)
        self.prune_counts_ = pruning.schedule_counts(
            self.start_channels_,
            *self.prune_epochs_,
            self.prune_fraction_,
            self.schedule,
        )

    # ------------------------------------------------------------- modules
    def initialize_module(self):
        """Build the trainable teacher copy, the student and the discriminator."""
        module, _ = self._resolve_teacher()
        teacher = copy.deepcopy(module)
        train_teacher = self.teacher_update != "frozen"
        for param in teacher.parameters():
            param.requires_grad_(train_teacher)
        self.teacher_module_ = teacher if train_teacher else teacher.eval()
        self.module_ = self._start_student(module)
        if self.teacher_update == "dann":
            self.discriminator_ = self.initialize_component(
                "discriminator", n_features=self.teacher_n_features_
            )
        return self

    def restore_structure(self, attributes):
        # a checkpoint of a pruned student: drop channels until the freshly
        # built student has the saved widths (the weights are loaded next)
        saved = attributes.get("student_channels_")
        if saved is None:
            return
        groups = pruning.channel_groups(self.module_, allow_empty=True)
        removal = {
            g.name: list(range(saved[g.name], g.size))
            for g in groups
            if saved.get(g.name, g.size) < g.size
        }
        if removal:
            pruning.prune_channels(self.module_, removal)
            self.rebuild_student_optimizer()
        self.student_channels_ = dict(saved)

    def frozen_modules(self):
        return ["teacher_module"] if self.teacher_update == "frozen" else []

    def optimizer_groups(self):
        groups = {"optimizer": ["module"]}
        if self.teacher_update != "frozen":
            groups["optimizer_teacher"] = ["teacher_module"]
            if self.teacher_update == "dann":
                groups["optimizer_teacher"].append("discriminator")
        return groups

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix == "optimizer_teacher" and "lr" not in self.get_params_for(prefix):
            kwargs["lr"] = self.teacher_lr
        return args, kwargs

    def rebuild_student_optimizer(self):
        """Point ``optimizer_`` at the (pruned) student's live parameters.

        Pruning replaces parameter tensors, so the optimizer would otherwise
        update dead tensors. The parameter groups are rebuilt the skorch way
        (routed ``optimizer__*``) and their moment estimates restart; the
        optimizer object itself is kept when its groups match, so callbacks
        holding it (``LRScheduler``) and its current learning rates carry on.
        """
        args, kwargs = self.get_params_for_optimizer(
            "optimizer", self.module_.named_parameters()
        )
        new = self.optimizer(*args, **kwargs)
        old = getattr(self, "optimizer_", None)
        if old is None or len(old.param_groups) != len(new.param_groups):
            self.optimizer_ = new
            return new
        for group_old, group_new in zip(
            old.param_groups, new.param_groups, strict=True
        ):
            group_old["params"] = group_new["params"]
        old.state.clear()
        return old

    # ----------------------------------------------------------- the method
    def beta(self):
        """The progressive weight ``beta_e`` of the current epoch."""
        return progressive_beta(
            self.current_epoch, self._max_epochs(), self.beta_0, self.beta_end
        )

    def teacher_loss(self, X, y, X_tgt, lam):
        """``CE + lambda(p) D`` of the teacher copy (before the ``1 - beta`` factor).

        Returns
        -------
        ce, da : torch.Tensor
            Source cross-entropy and the domain term (MMD, or the domain
            classifier's loss behind gradient reversal for ``"dann"``).
        """
        f_src, z_src = self.teacher_outputs(X, grad=True)
        f_tgt = self._features(self.teacher_module_, X_tgt)
        ce = F.cross_entropy(z_src, y)
        if self.teacher_update == "mmd":
            return ce, lam * mmd(f_src, f_tgt)
        self.discriminator_.grl.alpha = lam
        logits = self.discriminator_(torch.cat([f_src, f_tgt]))
        domains = torch.cat([torch.ones(len(f_src)), torch.zeros(len(f_tgt))]).long()
        return ce, F.cross_entropy(logits, domains)

    def student_losses(self, X, y, X_tgt, beta, lam):
        """Every term of ``L_S`` for one step (teacher outputs without gradient)."""
        was_training = self.teacher_module_.training
        self.teacher_module_.eval()
        z_t_src, z_t_tgt = self.teacher_logits(X), self.teacher_logits(X_tgt)
        self.teacher_module_.train(was_training)
        student = self.module_
        use_features = self.gamma > 0
        if use_features:
            f_src = student.forward_features(X)
            f_tgt = student.forward_features(X_tgt)
            z_src, z_tgt = student.head(f_src), student.head(f_tgt)
        else:  # one forward per domain: per-domain BatchNorm statistics
            z_src, z_tgt = student(X), student(X_tgt)
        tau = self.temperature
        ce = F.cross_entropy(z_src, y)
        kd_src = kd_kl_div(z_src, z_t_src, tau)
        kd_tgt = kd_kl_div(z_tgt, z_t_tgt, tau)
        loss = beta * (self.alpha * ce + (1 - self.alpha) * kd_src + kd_tgt)
        terms = {"ce": ce, "kd_src": kd_src, "kd_tgt": kd_tgt, "y_pred": z_src}
        if use_features:
            terms["student_da"] = mmd(f_src, f_tgt)
            loss = loss + self.gamma * lam * terms["student_da"]
        terms["loss"] = loss
        return terms

    def _pruning_epoch(self):
        """Whether an ACP step follows the current epoch."""
        e0, e1 = self.prune_epochs_
        return e0 < self.current_epoch <= e1

    def training_stages(self):
        """The teacher copy's UDA stage (unless frozen), then the student's."""
        stages = [Stage("student", "student_stage", ("optimizer",))]
        if self.teacher_update != "frozen":
            stages.insert(0, Stage("teacher", "teacher_stage", ("optimizer_teacher",)))
        return stages

    def _schedule(self):
        return self.beta(), grl_coefficient(self.progress, "ramp")

    def teacher_stage(self, step):
        """``(1 - beta) (CE + lambda D)`` of the teacher copy."""
        beta, lam = self._schedule()
        ce_t, da_t = self.teacher_loss(step.X, step.y, step.X_tgt, lam)
        return {
            "loss": (1 - beta) * (ce_t + da_t),
            "teacher_ce": ce_t,
            "teacher_da": da_t,
        }

    def student_stage(self, step):
        """``L_S`` of the student against the (just-updated) teacher copy."""
        beta, lam = self._schedule()
        terms = self.student_losses(step.X, step.y, step.X_tgt, beta, lam)
        return {**terms, "beta": beta}

    def on_grad_computed(self, net, named_parameters, stage=None, **kwargs):
        """Accumulate Taylor importance from the student's gradients."""
        if (
            stage == "student"
            and self._pruning_epoch()
            and self.importance.startswith("taylor")
        ):
            groups = pruning.channel_groups(self.module_, allow_empty=True)
            importance = self._session.__dict__.setdefault("importance", {})
            pruning.accumulate_taylor(groups, importance, self.importance)

    def prune_step(self):
        """The ACP step after the current epoch; returns the removed channels."""
        e0, e1 = self.prune_epochs_
        epoch = self.current_epoch
        groups = pruning.channel_groups(self.module_, allow_empty=True)
        if self.importance.startswith("taylor"):
            scores = self._session.__dict__.pop("importance", None) or {
                g.name: torch.zeros(g.size) for g in groups
            }
        else:
            scores = pruning.channel_importance(self.module_, self.importance, groups)
        n = self.prune_counts_[epoch - 1]
        final = epoch == e1
        removal = {}
        if final or n > 0:
            removal = pruning.select_channels(
                self.module_,
                scores,
                n_channels=None if final else n,
                target_params=self.target_params_,
                groups=groups,
            )
        if removal:
            pruning.prune_channels(self.module_, removal)
            self.rebuild_student_optimizer()
        return removal

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Average the logged terms, then run the epoch's ACP step."""
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        if self._pruning_epoch():
            self.prune_step()
        groups = pruning.channel_groups(self.module_, allow_empty=True)
        self.student_channels_ = {g.name: g.size for g in groups}
        self.history.record("n_channels", sum(g.size for g in groups))
        self.history.record(
            "n_params", sum(p.numel() for p in self.module_.parameters())
        )
