"""Persistence of skkd estimators: fit state, checkpoints, pickling.

:class:`PersistenceMixin` gives every estimator ``save_params(f_fit_state=...)``
/ ``load_params(f_fit_state=...)`` (a fresh estimator can load a fitted one;
a checkpointed fit resumes exactly) and pickles that hold parameters and
fitted attributes only, stamped with the skkd version.
"""

import warnings

import torch
from sklearn.exceptions import NotFittedError
from skorch.history import History

__all__ = ["InconsistentSkkdVersionWarning", "PersistenceMixin"]

#: skorch bookkeeping that is not data-derived fit state
_SKORCH_ATTRIBUTES = (
    "history_",
    "callbacks_",
    "initialized_",
    "virtual_params_",
    "prefixes_",
    "cuda_dependent_attributes_",
    "init_context_",
    "classes_inferred_",
)


class InconsistentSkkdVersionWarning(UserWarning):
    """An estimator pickled by another skkd version was unpickled.

    Examples
    --------
    >>> issubclass(InconsistentSkkdVersionWarning, UserWarning)
    True
    """


class PersistenceMixin:
    """Fit state, checkpoints and pickling for skorch-based skkd estimators.

    Fit-time state lives on one object, ``self._session`` (target sampler,
    teacher cache, epoch snapshot, a method's own scratch state), which fit
    drops when it ends and pickling never includes.
    """

    def fit_state(self):
        """What ``save_params(f_fit_state=...)`` stores besides the modules.

        Returns
        -------
        dict
            ``skkd_version``, the fitted ``attributes`` (data-derived, ending
            in ``_``), the torch ``rng`` state and the target sampler's state.
        """
        from . import __version__

        skip = set(_SKORCH_ATTRIBUTES)
        for name in self._modules + self._criteria + self._optimizers:
            skip.add(name + "_")
        attributes = {
            k: v
            for k, v in vars(self).items()
            if k.endswith("_") and not k.startswith("_") and k not in skip
        }
        session = getattr(self, "_session", None)
        sampler = getattr(session, "target", None)
        return {
            "skkd_version": __version__,
            "attributes": attributes,
            "rng": torch.get_rng_state(),
            **({} if sampler is None else sampler.state_dict()),
        }

    def restore_structure(self, attributes):
        """Hook: reshape the modules to the saved fit state before loading.

        Methods whose networks change shape while training (ITMC prunes its
        student) override it; ``attributes`` are the saved fitted attributes.

        Parameters
        ----------
        attributes : dict
            The saved fitted attributes.
        """

    def save_params(
        self,
        f_params=None,
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        use_safetensors=False,
        *,
        f_fit_state=None,
        **kwargs,
    ):
        """skorch's ``save_params``, plus ``f_fit_state``.

        ``f_fit_state`` stores what the modules are sized from (channels,
        length, classes ...) and the random-number state, so that
        ``load_params(f_params=..., f_fit_state=...)`` works on a fresh,
        unfitted estimator, and a checkpointed fit resumes exactly. Extra
        modules and optimizers are saved with ``f_<name>`` (``f_discriminator``,
        ``f_optimizer_disc`` ...).

        Examples
        --------
        >>> import os, tempfile
        >>> from skkd import TimeSeriesClassifier
        >>> from skkd.datasets import make_domain_shift
        >>> d = make_domain_shift(n_samples=24, random_state=0)
        >>> clf = TimeSeriesClassifier(module__widths=(4,), max_epochs=1,
        ...                            random_state=0).fit(d.X_src, d.y_src)
        >>> tmp = tempfile.mkdtemp()
        >>> files = dict(f_params=os.path.join(tmp, "p.pt"),
        ...              f_fit_state=os.path.join(tmp, "s.pt"))
        >>> clf.save_params(**files)
        >>> new = TimeSeriesClassifier(module__widths=(4,))
        >>> new.load_params(**files)
        >>> bool((new.predict(d.X_src) == clf.predict(d.X_src)).all())
        True
        """
        if f_fit_state is not None:
            self.check_is_fitted()
            torch.save(self.fit_state(), f_fit_state)
        return super().save_params(
            f_params, f_optimizer, f_criterion, f_history, use_safetensors, **kwargs
        )

    def load_params(
        self,
        f_params=None,
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        checkpoint=None,
        use_safetensors=False,
        *,
        f_fit_state=None,
        **kwargs,
    ):
        """skorch's ``load_params``, plus ``f_fit_state`` (see :meth:`save_params`).

        An unfitted estimator needs ``f_fit_state``: its modules are sized from
        the data it was fitted on.
        """
        if checkpoint is not None:
            # read the checkpoint's files here: skorch does not know f_fit_state;
            # the history comes first, file names are formatted from it
            if f_history is None and checkpoint.f_history is not None:
                f_history = checkpoint.f_history_
                self.history = History.from_file(f_history)
            files = checkpoint.get_formatted_files(self)
            state_file = files.pop("f_fit_state", None)
            f_fit_state = f_fit_state if f_fit_state is not None else state_file
            files.pop("f_history", None)
            kwargs = {**files, **kwargs}
            explicit = dict(
                f_params=f_params, f_optimizer=f_optimizer, f_criterion=f_criterion
            )
            kwargs.update({k: v for k, v in explicit.items() if v is not None})
            f_params = kwargs.pop("f_params", None)
            f_optimizer = kwargs.pop("f_optimizer", None)
            f_criterion = kwargs.pop("f_criterion", None)
            kwargs.pop("f_pickle", None)
        if f_fit_state is not None:
            state = torch.load(f_fit_state, weights_only=False)
            for key, value in state["attributes"].items():
                setattr(self, key, value)
            if not self.initialized_:
                self.initialize()
            self.restore_structure(state["attributes"])
            session = getattr(self, "_session", None)
            if session is not None:  # during fit (LoadInitState): resume there
                session.resume = state
        elif not self.initialized_:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted, and its modules are sized"
                " from the data it is fitted on. Save with save_params(f_params=...,"
                " f_fit_state=...) and load both: load_params(f_params=...,"
                " f_fit_state=...)."
            )
        return super().load_params(
            f_params,
            f_optimizer,
            f_criterion,
            f_history,
            use_safetensors=use_safetensors,
            **kwargs,
        )

    def __getstate__(self):
        from . import __version__

        state = super().__getstate__()
        state.pop("_session", None)  # fit-time state never outlives fit
        state["_skkd_version"] = __version__
        return state

    def __setstate__(self, state):
        from . import __version__

        version = state.pop("_skkd_version", None)
        if version != __version__:
            warnings.warn(
                f"Unpickling a {type(self).__name__} saved with skkd "
                f"{version or 'unknown (older than 0.1)'} into skkd {__version__}; "
                "it may not work or give different results. Refit it, or load it "
                "with the skkd version that saved it.",
                InconsistentSkkdVersionWarning,
                stacklevel=2,
            )
        super().__setstate__(state)
