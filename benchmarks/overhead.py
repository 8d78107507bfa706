"""``skkd bench overhead``: cost of skkd's engine against a plain PyTorch loop.

Target: a UNI-KD and a DANN epoch cost at most 1.05x a plain-PyTorch loop
doing the reference step (the same forward/backward work). Both sides train
the same modules on the same HAR data with the same batch pairing (source
batches of 32 via a ``DataLoader``, target batches drawn from a reshuffled
cycle); the plain loop computes the
losses with ``torch.nn.functional`` and steps the same Adam optimizers. An
epoch's time is the mean over epochs >= 2 (the first pays initialisation):
skorch's ``history[:, "dur"]`` for skkd, ``time.perf_counter`` around the
plain epoch. Runs are paired and alternate which side goes first; the report
gives the median ratio per method and every run. ``--methods`` picks the
methods (``unikd``, ``dann``, ``kd``).
"""

import copy
import math
import statistics
import sys
import time

from ._cli import output_folder, suite_parser
from ._report import environment, markdown_table, write_csv, write_report

__all__ = ["TARGET_RATIO", "main", "plain_epochs", "skkd_epochs"]

#: the target: skkd epoch time / plain PyTorch epoch time
TARGET_RATIO = 1.05
#: the estimator of each method
ESTIMATORS = {
    "unikd": "UniKDClassifier",
    "kd": "KDClassifier",
    "dann": "DANNClassifier",
}
#: the reference step of each method, as the report describes it
STEPS = {
    "unikd": "teacher forward on source and target batches, D_f step, one student "
    "forward per domain, every loss, one backward, three Adam steps",
    "kd": "teacher forward on source and target batches, one student forward per "
    "domain, CE + KD on both domains, one backward, one Adam step",
    "dann": "one forward per domain of the 64/128/128 CNN, the discriminator "
    "behind gradient reversal, one backward, two Adam steps (network, "
    "discriminator)",
}
TEACHER_WIDTHS = (64, 128, 128)
STUDENT_WIDTHS = (16, 32, 32)


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _estimator(method, teacher, epochs, seed):
    from sklearn.frozen import FrozenEstimator

    import skkd
    from skkd.nn import CNN1D

    cls = getattr(skkd, ESTIMATORS[method])
    if method == "dann":
        return cls(
            CNN1D, module__widths=TEACHER_WIDTHS, max_epochs=epochs, random_state=seed
        )
    return cls(
        FrozenEstimator(teacher),
        module=CNN1D,
        module__widths=STUDENT_WIDTHS,
        max_epochs=epochs,
        random_state=seed,
        # the same work as the reference step, which runs the teacher every
        # step: the engine's cost, not the cache's saving, is measured here
        cache_teacher=False,
    )


def skkd_epochs(method, teacher, data, epochs, seed=0):
    """Epoch durations (s) of a skkd fit, from skorch's history.

    Parameters
    ----------
    method : {"unikd", "kd"}
        The distiller.
    teacher : fitted estimator
        The teacher (wrapped in ``FrozenEstimator``).
    data : Bunch
        From :func:`skkd.datasets.load_har_scenario`.
    epochs : int
        ``max_epochs`` of the fit.
    seed : int, default=0
        ``random_state``.

    Returns
    -------
    durations : list of float
        ``history[:, "dur"]``, one per epoch.

    Examples
    --------
    >>> from skkd import DANNClassifier
    >>> from skkd.datasets import load_har_scenario
    >>> d = load_har_scenario("2->11")
    >>> t = DANNClassifier(max_epochs=1, random_state=0)
    >>> t = t.fit(d.X_src, d.y_src, d.X_tgt)  # doctest: +SKIP
    >>> len(skkd_epochs("kd", t, d, 2))  # doctest: +SKIP
    2
    """
    student = _estimator(method, teacher, epochs, seed)
    student.fit(data.X_src, data.y_src, data.X_tgt)
    return [float(d) for d in student.history[:, "dur"]]


def _kd(student_logits, teacher_logits, tau, weights=None):
    """``tau^2 * mean_i w_i KL(softmax(t_i/tau) || softmax(s_i/tau))``."""
    import torch.nn.functional as F

    kl = F.kl_div(
        F.log_softmax(student_logits / tau, dim=1),
        F.softmax(teacher_logits / tau, dim=1),
        reduction="none",
    ).sum(dim=1)
    if weights is not None:
        kl = kl * weights
    return tau**2 * kl.mean()


def plain_epochs(method, teacher, data, epochs, seed=0):
    """Epoch durations (s) of a hand-written PyTorch loop doing skkd's work.

    The same modules (a fresh student of the same widths, adapter and
    discriminators for UNI-KD), the same optimizers and settings as the skkd
    estimator's defaults, and the per-step order of the UNI-KD spec: teacher
    forward on the source and target batches (no grad), ``D_f`` step, one
    student forward per domain, the losses, one backward, the optimizer steps.

    Parameters
    ----------
    method : {"unikd", "kd"}
        Which method's step to reproduce.
    teacher : fitted estimator
        Its ``module_`` is deep-copied, frozen and put in eval mode.
    data : Bunch
        From :func:`skkd.datasets.load_har_scenario`.
    epochs : int
        Epochs to run.
    seed : int, default=0
        ``torch.manual_seed`` before building the modules.

    Returns
    -------
    durations : list of float
        Wall time of each epoch.

    Examples
    --------
    >>> from skkd import DANNClassifier
    >>> from skkd.datasets import load_har_scenario
    >>> d = load_har_scenario("2->11")
    >>> t = DANNClassifier(max_epochs=1, random_state=0)
    >>> t = t.fit(d.X_src, d.y_src, d.X_tgt)  # doctest: +SKIP
    >>> len(plain_epochs("kd", t, d, 2))  # doctest: +SKIP
    2
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from skkd.nn import CNN1D, DomainDiscriminator

    reference = _estimator(method, teacher, epochs, seed)  # for its settings only
    params = reference.get_params()
    torch.manual_seed(seed)
    teacher_net = copy.deepcopy(teacher.module_).eval()
    for p in teacher_net.parameters():
        p.requires_grad_(False)
    classes = np.unique(data.y_src)
    X_src = torch.as_tensor(np.asarray(data.X_src, dtype=np.float32))
    y_src = torch.as_tensor(np.searchsorted(classes, data.y_src), dtype=torch.long)
    X_tgt = torch.as_tensor(np.asarray(data.X_tgt, dtype=np.float32))
    widths = TEACHER_WIDTHS if method == "dann" else STUDENT_WIDTHS
    student = CNN1D(X_src.shape[1], len(classes), widths=widths)
    batch = params["batch_size"]
    loader = DataLoader(TensorDataset(X_src, y_src), batch_size=batch, shuffle=True)

    def adam(*modules):
        kwargs = {"lr": params["lr"]}
        for name in ("weight_decay", "betas"):
            if f"optimizer__{name}" in params:
                kwargs[name] = params[f"optimizer__{name}"]
        return torch.optim.Adam([p for m in modules for p in m.parameters()], **kwargs)

    def target_batches():
        while True:  # reshuffled on every pass, as skkd draws them
            order = torch.randperm(len(X_tgt))
            for i in range(0, len(X_tgt), batch):
                yield X_tgt[order[i : i + batch]]

    targets = target_batches()
    tau = params.get("temperature")
    ones = torch.ones
    if method == "dann":
        disc = DomainDiscriminator(student.n_features)
        opt, opt_disc = adam(student), adam(disc)
        trained = (student, disc)
    elif method == "unikd":
        n_t, n_s = teacher_net.n_features, student.n_features
        adapter = nn.Linear(n_s, n_t)
        disc = DomainDiscriminator(n_s)
        feat_disc = DomainDiscriminator(n_t, n_domains=1, grl=False)
        opt, opt_disc, opt_feat = adam(student, adapter), adam(disc), adam(feat_disc)
        trained = (student, adapter, disc, feat_disc)
    else:
        opt = adam(student)
        trained = (student,)
    alpha = params.get("alpha", 0.5)

    durations = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        for m in trained:
            m.train()
        beta = 0.1 * 9 ** (epoch / epochs)  # ln schedule from 0.1 to 0.9
        for xb, yb in loader:
            xt = next(targets)
            if method == "dann":  # the reference DANN step
                f_s, f_t = student.forward_features(xb), student.forward_features(xt)
                d_s, d_t = disc(f_s), disc(f_t)
                domain = F.cross_entropy(d_s, ones(len(d_s), dtype=torch.long))
                domain = domain + F.cross_entropy(
                    d_t, torch.zeros(len(d_t), dtype=torch.long)
                )
                ce = F.cross_entropy(student.head(f_s), yb)
                loss = ce + domain
                opt.zero_grad()
                opt_disc.zero_grad()
                loss.backward()
                opt.step()
                opt_disc.step()
                for value in (loss, ce, domain):  # the values a loop logs
                    value.item()
                continue
            with torch.no_grad():
                ft_s = teacher_net.forward_features(xb)
                ft_t = teacher_net.forward_features(xt)
                zt_s, zt_t = teacher_net.head(ft_s), teacher_net.head(ft_t)
            fs_s = student.forward_features(xb)
            fs_t = student.forward_features(xt)
            zs_s, zs_t = student.head(fs_s), student.head(fs_t)
            if method == "kd":
                opt.zero_grad()
                kd = _kd(zs_s, zt_s, tau) + _kd(zs_t, zt_t, tau)
                loss = (1 - alpha) * F.cross_entropy(zs_s, yb) + alpha * kd
                loss.backward()
                opt.step()
                loss.item()  # the value a training loop logs
                continue
            a_s, a_t = adapter(fs_s), adapter(fs_t)
            adapted = torch.cat([a_s, a_t])
            # D_f step: teacher features real, detached adapted student features fake
            opt_feat.zero_grad()
            real = feat_disc(torch.cat([ft_s, ft_t]))
            fake = feat_disc(adapted.detach())
            loss_f = F.binary_cross_entropy_with_logits(
                real, ones(real.shape)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros(fake.shape))
            loss_f.backward()
            opt_feat.step()
            # student step
            opt.zero_grad()
            opt_disc.zero_grad()
            adv = feat_disc(adapted.detach())
            ukd = F.binary_cross_entropy_with_logits(adv, ones(adv.shape))
            ukd = ukd + (a_s - ft_s).abs().mean() + (a_t - ft_t).abs().mean()
            d_s, d_t = disc(fs_s), disc(fs_t)
            dc = F.cross_entropy(d_s, ones(len(d_s), dtype=torch.long))
            dc = dc + F.cross_entropy(d_t, torch.zeros(len(d_t), dtype=torch.long))
            q_s, q_t = F.softmax(d_s, dim=1), F.softmax(d_t, dim=1)
            w_s = 1 - (q_s[:, 0] - q_s[:, 1]).abs()
            w_t = 1 - (q_t[:, 0] - q_t[:, 1]).abs()
            jkd = _kd(zs_s, zt_s, tau, w_s) + _kd(zs_t, zt_t, tau, w_t)
            ce = F.cross_entropy(zs_s, yb)
            loss = ce + (1 - beta) * dc + beta * jkd + ukd
            loss.backward()
            opt.step()
            opt_disc.step()
            # the values a training loop logs
            for value in (loss, loss_f, ce, dc, jkd, ukd):
                value.item()
        durations.append(time.perf_counter() - start)
    return durations


def _steady(durations):
    """Mean epoch time without the first epoch (initialisation)."""
    rest = durations[1:] or durations
    return sum(rest) / len(rest)


def _parser():
    p = suite_parser(
        "overhead",
        "Epoch time of a skkd distiller vs a plain PyTorch loop doing "
        "the same work; writes overhead.csv and overhead.md.",
        threads=1,
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(ESTIMATORS),
        default=["unikd", "dann"],
        help="methods to time (default: unikd dann)",
    )
    p.add_argument("--repeats", type=int, default=7, help="paired runs")
    p.add_argument(
        "--epochs",
        type=int,
        default=4,
        help="epochs per run; epochs >= 2 are timed (default 4)",
    )
    p.add_argument("--scenario", default="2->11")
    return p


def main(argv=None):
    """Run the overhead benchmark (``skkd bench overhead``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``skkd bench overhead`` (see ``--help``).

    Returns
    -------
    status : int
        0 (the report states whether the target ratio is met).

    Examples
    --------
    >>> main(["--methods", "kd", "--repeats", "2", "--epochs", "2"])  # doctest: +SKIP
    0
    """
    import torch

    from skkd import DANNClassifier
    from skkd.datasets import load_har_scenario
    from skkd.nn import CNN1D

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.epochs < 2:
        _parser().error("--epochs must be >= 2 (the first epoch is not timed)")
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    data = load_har_scenario(args.scenario, data_home=args.data_home)
    # the teacher's quality does not change the work per step: 1 epoch is enough
    teacher = DANNClassifier(
        CNN1D, module__widths=TEACHER_WIDTHS, max_epochs=1, random_state=0
    ).fit(data.X_src, data.y_src, data.X_tgt)

    rows = []
    for method in args.methods:
        for run in range(args.repeats):
            # alternate which side runs first so drift on a shared machine cancels
            order = ("plain", "skkd") if run % 2 == 0 else ("skkd", "plain")
            times = {}
            for side in order:
                timer = plain_epochs if side == "plain" else skkd_epochs
                times[side] = timer(method, teacher, data, args.epochs, seed=run)
            plain, ours = _steady(times["plain"]), _steady(times["skkd"])
            rows.append(
                {
                    "method": method,
                    "run": run,
                    "first": order[0],
                    "epochs": args.epochs,
                    "plain_epoch_s": plain,
                    "skkd_epoch_s": ours,
                    "ratio": ours / plain,
                }
            )
            _log(
                f"[{method} {run + 1}/{args.repeats}] plain {plain * 1000:.1f} ms, "
                f"skkd {ours * 1000:.1f} ms per epoch, ratio {ours / plain:.3f}"
            )

    out = output_folder(args, "overhead")
    write_csv(out / "overhead.csv", rows)
    sections, summaries = [], []
    for method in args.methods:
        ratios = [r["ratio"] for r in rows if r["method"] == method]
        median = statistics.median(ratios)
        verdict = "meets" if median <= TARGET_RATIO else "does NOT meet"
        summary = (
            f"{ESTIMATORS[method]}: median ratio over {len(ratios)} paired runs "
            f"**{median:.3f}** (min {min(ratios):.3f}, max {max(ratios):.3f}); "
            f"target <= {TARGET_RATIO}: skkd {verdict} the target."
        )
        summaries.append(summary)
        runs_table = markdown_table(
            [
                {
                    **r,
                    "plain_ms": 1000 * r["plain_epoch_s"],
                    "skkd_ms": 1000 * r["skkd_epoch_s"],
                }
                for r in rows
                if r["method"] == method
            ],
            ["run", "first", "plain_ms", "skkd_ms", "ratio"],
            ["run", "ran first", "plain epoch (ms)", "skkd epoch (ms)", "ratio"],
            floatfmt=".3f",
        )
        sections.append(
            (
                ESTIMATORS[method],
                f"Reference step: {STEPS[method]}.\n\n{summary}\n\n{runs_table}",
            )
        )
    steps = math.ceil(len(data.X_src) / 32)
    intro = (
        "Each estimator's `fit` against a hand-written PyTorch loop doing the "
        f"reference step on UCI-HAR {args.scenario} ({len(data.X_src)} source "
        f"windows, {steps} steps per epoch at batch 32), {args.threads} torch "
        f"thread(s). Each run fits {args.epochs} epochs on both sides; an epoch's "
        "time is the mean over epochs >= 2 (skorch's `dur` for skkd). Runs "
        "alternate which side goes first. The distillers run with "
        "`cache_teacher=False`, so both sides run the teacher every step (with "
        "the default cache a skkd UNI-KD epoch is cheaper than the reference "
        "step). Numbers from `overhead.csv`."
    )
    write_report(
        out / "overhead.md",
        "Engine overhead: skkd vs plain PyTorch",
        intro,
        [("Result", "\n\n".join(f"- {x}" for x in summaries)), *sections],
        environment(["overhead", *argv]),
        time.perf_counter() - start,
    )
    for summary in summaries:
        _log(f"overhead: {summary.replace('**', '')}")
    _log(f"overhead: wrote {out / 'overhead.csv'}, {out / 'overhead.md'}")
    return 0


if __name__ == "__main__":  # python -m benchmarks.overhead
    sys.exit(main())
