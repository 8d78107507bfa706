"""What one training step does, counted for every estimator.

The engine owns the step (``train_step``): per batch each declared stage
(:class:`skkd.stages.Stage`) zeroes its optimizers, computes its terms, checks
them, runs one backward pass, notifies ``on_grad_computed`` once with its
parameters and steps each of its optimizers once. These tests count forward
passes, target draws, optimizer steps and gradient notifications per batch,
as the methods' reference code does them (DANN: one forward per domain, one
backward, one step of each optimizer).
"""

import collections
import inspect

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skkd import BaseTimeSeriesClassifier, DANNClassifier
from skkd.callbacks import NonFiniteLossError
from skkd.stages import Stage

from ._estimators import ALL_ESTIMATORS, fit_args, ids, make, target_use, tiny_data

#: batches per epoch in these tests (12 series, batch 4)
BATCH = {"batch_size": 4, "max_epochs": 1}
N_BATCHES = 3


def _uses_target(cls):
    return target_use(cls) in ("required", "optional")


class StepCounter(Callback):
    """Per training batch: student forward passes, target draws, optimizer
    steps and ``on_grad_computed`` calls by stage."""

    def on_train_begin(self, net, **kwargs):
        self.batches = []
        # every pass through the student, whatever its entry point
        first = next(
            m
            for m in net.module_.modules()
            if not list(m.children()) and list(m.parameters(recurse=False))
        )
        self.handles = [first.register_forward_hook(self._forward)]
        for name in net._optimizers:
            optimizer = getattr(net, name + "_")
            self.handles.append(optimizer.register_step_post_hook(self._stepper(name)))

    def _forward(self, module, inputs, output):
        self.current["forward"] += 1

    def _stepper(self, name):
        def hook(optimizer, args, kwargs):
            self.current["steps"][name] += 1

        return hook

    def _draws(self, net):
        sampler = net._session.target
        return 0 if sampler is None else sampler.n_draws

    def on_batch_begin(self, net, training=False, **kwargs):
        self.current = {
            "forward": 0,
            "steps": collections.Counter(),
            "grads": collections.Counter(),
            "draws": -self._draws(net),
        }

    def on_grad_computed(self, net, named_parameters, stage=None, **kwargs):
        self.current["grads"][stage] += 1

    def on_batch_end(self, net, training=False, **kwargs):
        self.current["draws"] += self._draws(net)
        self.batches.append(self.current)

    def on_train_end(self, net, **kwargs):
        for handle in self.handles:
            handle.remove()


def _fit_counting(cls, **params):
    X, y, X_tgt = tiny_data()
    counter = StepCounter()
    est = make(cls, callbacks=[("count", counter)], **BATCH, **params)
    est.fit(*fit_args(cls, X, y, X_tgt))
    return est, counter.batches


#: student forwards per batch beyond one per domain, where the method itself
#: needs them. VAT (one power iteration, the default) forwards two perturbed
#: copies of each batch it smooths: VADA smooths source and target (2 + 2 + 2),
#: DIRT-T the target only, and never forwards the source batch (1 + 2 = 2 + 1).
#: RCD-KD forwards the target batch once per episode (5 by default, as the
#: student changes after each) and never the source batch: 5 = 2 + 3.
EXTRA_FORWARDS = {"VADAClassifier": 4, "DIRTTClassifier": 1, "RCDKDClassifier": 3}


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=ids)
def test_each_batch_runs_every_stage_once(cls):
    est, batches = _fit_counting(cls)
    assert len(batches) == N_BATCHES
    stages = est.training_stages()
    domains = 2 if _uses_target(cls) else 1
    forwards = domains + EXTRA_FORWARDS.get(cls.__name__, 0)
    for batch in batches:
        # one student forward per domain, shared by every stage
        assert batch["forward"] == forwards, cls.__name__
        # one target batch per source batch, and only for methods that use it
        assert batch["draws"] == domains - 1
        # each optimizer steps once per stage that declares it: once per batch
        # for every method but RCD-KD, whose episodes each step theirs
        declared = collections.Counter(
            name for stage in stages for name in (stage.optimizers or est._optimizers)
        )
        assert batch["steps"] == declared
        # one on_grad_computed per stage
        assert batch["grads"] == {stage.name: 1 for stage in stages}


def test_dann_steps_as_the_reference_does():
    est, batches = _fit_counting(DANNClassifier)
    assert [stage.optimizers for stage in est.training_stages()] == [None]
    for batch in batches:
        assert batch == {
            "forward": 2,
            "steps": {"optimizer": 1, "optimizer_disc": 1},
            "grads": {"main": 1},
            "draws": 1,
        }


def test_no_method_owns_the_training_step():
    for cls in ALL_ESTIMATORS:
        for klass in inspect.getmro(cls):
            if klass is BaseTimeSeriesClassifier:
                break
            assert "train_step" not in vars(klass), klass.__name__
            assert "train_step_single" not in vars(klass), klass.__name__


# ------------------------------------------------------------ optimizer settings
MULTI_OPTIMIZER = [
    cls for cls in ALL_ESTIMATORS if len(make(cls, teacher=None).optimizer_groups()) > 1
]
SETTINGS = ("lr", "betas", "weight_decay", "eps", "amsgrad")


def _fit(cls, **params):
    X, y, X_tgt = tiny_data()
    return make(cls, **params).fit(*fit_args(cls, X, y, X_tgt))


@pytest.mark.parametrize("cls", MULTI_OPTIMIZER, ids=ids)
def test_extra_optimizers_inherit_the_main_settings(cls):
    est = _fit(cls, optimizer__weight_decay=0.25, optimizer__betas=(0.6, 0.9))
    main = est.optimizer_.defaults
    assert (main["weight_decay"], main["betas"]) == (0.25, (0.6, 0.9))
    for name in est._optimizers:
        settings = dict(SETTINGS and getattr(est, name + "_").defaults)
        expected = {k: main[k] for k in SETTINGS}
        if name == "optimizer_teacher":  # ITMC: the spec's own teacher_lr
            expected["lr"] = est.teacher_lr
        if name == "optimizer_q":  # RCD-KD's DQN: the released code's own Adam
            expected.update(lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0)
        assert {k: settings[k] for k in SETTINGS} == expected, name


@pytest.mark.parametrize("cls", MULTI_OPTIMIZER, ids=ids)
def test_routed_settings_of_an_extra_optimizer_win(cls):
    extra = [name for name in make(cls, teacher=None).optimizer_groups()][1]
    est = _fit(cls, **{f"{extra}__lr": 0.123, f"{extra}__weight_decay": 0.5})
    assert getattr(est, extra + "_").defaults["lr"] == 0.123
    assert getattr(est, extra + "_").defaults["weight_decay"] == 0.5
    assert est.optimizer_.defaults["lr"] == est.lr
    assert est.optimizer_.defaults["weight_decay"] != 0.5


# ------------------------------------------------- every stage clipped and checked
class GradNorms(Callback):
    """Largest gradient norm of each stage, seen after the guard clipped it."""

    def on_train_begin(self, net, **kwargs):
        self.norms = collections.defaultdict(float)

    def on_grad_computed(self, net, named_parameters, stage=None, **kwargs):
        grads = [p.grad for _, p in named_parameters if p.grad is not None]
        # a stage may leave no gradient (RCD-KD's agent before it can learn)
        norms = [g.norm() for g in grads] or [torch.zeros(())]
        norm = torch.linalg.vector_norm(torch.stack(norms))
        self.norms[stage] = max(self.norms[stage], float(norm))


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=ids)
def test_max_grad_norm_bounds_every_stage(cls):
    norms = GradNorms()
    est = _fit(cls, max_grad_norm=1e-4, callbacks=[("norms", norms)], **BATCH)
    assert set(norms.norms) == {stage.name for stage in est.training_stages()}
    for stage, norm in norms.norms.items():
        assert norm <= 1e-4 * (1 + 1e-3), stage


def _poisoned(cls, stage):
    """``cls`` whose ``stage`` has a NaN term on the first batch of epoch 1."""

    def losses(self, step):
        terms = getattr(super(klass, self), stage.losses)(step)
        if len(self.history) == 1 and len(self.history[-1]["batches"]) == 1:
            poison = torch.tensor(float("nan"))
            terms = {**terms, "poison": poison, "loss": terms["loss"] + poison}
        return terms

    klass = type(f"Poisoned{cls.__name__}", (cls,), {stage.losses: losses})
    return klass


STAGES = [
    (cls, stage)
    for cls in ALL_ESTIMATORS
    for stage in make(cls, teacher=None).training_stages()
]


def _stage_id(case):
    cls, stage = case
    return f"{cls.__name__}-{stage.name}"


@pytest.mark.parametrize("case", STAGES, ids=[_stage_id(c) for c in STAGES])
def test_a_nan_in_any_stage_raises_naming_the_term(case):
    cls, stage = case
    with pytest.raises(NonFiniteLossError, match="'poison'.*epoch 1, batch 1"):
        _fit(_poisoned(cls, stage), **BATCH)


@pytest.mark.parametrize("case", STAGES, ids=[_stage_id(c) for c in STAGES])
def test_a_nan_in_any_stage_is_skipped_without_stepping(case):
    cls, stage = case
    X, y, X_tgt = tiny_data()
    counter = StepCounter()
    est = make(
        _poisoned(cls, stage),
        on_nonfinite="skip",
        callbacks=[("count", counter)],
        **BATCH,
    )
    est.fit(*fit_args(cls, X, y, X_tgt))
    assert est.history_[-1, "train_skipped_batches"] == 1
    first = counter.batches[0]["steps"]
    names = est._optimizers if stage.optimizers is None else stage.optimizers
    for name in names:  # the poisoned stage's optimizers never stepped on it
        assert first[name] == 0
    assert np.isfinite(est.history_[-1, "train_loss"])


# ------------------------------------------------------------------ fit state
#: skorch's own private bookkeeping, and the version stamp
PICKLED_PRIVATE = {
    "_modules",
    "_criteria",
    "_optimizers",
    "_skkd_version",
    "_params_to_validate",
}


@pytest.mark.parametrize("cls", ALL_ESTIMATORS, ids=ids)
def test_pickle_holds_only_parameters_and_fitted_attributes(cls):
    est = _fit(cls)
    state = est.__getstate__()
    params = set(est.get_params(deep=False))
    others = {k for k in state if k not in params and not k.endswith("_")}
    assert others <= PICKLED_PRIVATE, others


class _AfterStep(DANNClassifier):
    """DANN whose stage counts the calls of its ``after_step`` method."""

    def training_stages(self):
        return [Stage("main", "step_losses", None, "count_after_step")]

    def count_after_step(self, step):
        assert step.X_tgt is not None
        self.history.record_batch("after_steps", 1)


def test_after_step_runs_once_the_stage_stepped():
    X, y, X_tgt = tiny_data()
    est = make(_AfterStep, **BATCH).fit(X, y, X_tgt)
    assert [b.get("after_steps") for b in est.history_[-1]["batches"]] == [1] * 3
    poisoned = make(_poisoned(_AfterStep, Stage("main", "step_losses")), **BATCH)
    poisoned.set_params(on_nonfinite="skip").fit(X, y, X_tgt)
    batches = poisoned.history_[-1]["batches"]
    assert len(batches) == 2  # the skipped batch never reached after_step
    assert all(b.get("after_steps") == 1 for b in batches)


def test_stages_default_to_every_optimizer():
    assert make(DANNClassifier).training_stages() == [Stage("main", "step_losses")]
