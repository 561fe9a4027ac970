"""Studies: creating or joining one, its budget, and the worker loop that runs its trials.

Contract
--------
The process that creates a study (``_open_study``) stores its whole configuration in it
(``CONFIG_ATTR``), so a worker that joins needs only the study's name and storage; a joiner
that asks for a *different* configuration is refused (``_reconcile``), except for ``trials``,
which resizes the budget. With the grid sampler the grid is enqueued once, in nested-loop
order, when the study is created, before the configuration is stored.

Each trial (``_Objective``) draws a configuration, trains it with ``train_config`` for
``epochs`` epochs, reports validation accuracy after every epoch (``trial.report``; the pruner
may stop it; a diverging trial is pruned) and returns its best validation accuracy. The model
and batch order of trial number ``k`` are seeded from ``(seed, k)``, so a trial is
reproducible whichever worker runs it, and the best one can be retrained exactly.

The budget ``trials`` counts trials that did not fail: exactly that many complete or pruned
trials are run, however many workers share the study (a worker that loses the race for the
last slot closes its extra trial at once as failed and marks it ``nndl_surplus``; such
placeholders are left out of every result). With the grid sampler the budget is the grid,
each point run exactly once. ``_run_trials`` is a worker: before each trial, and while it waits
for others' trials to finish, it fails the trials of dead workers (``storage``).
"""

import time
import warnings
from contextlib import contextmanager

import numpy as np

from .config import _StudyConfig
from .space import SearchError, _fmt, _grid_points, _suggest
from .storage import _fail_dead_trials, _identity, _optuna
from .training import _trial_seed, train_config


DEFAULT_STUDY = "nndl-search"
CONFIG_ATTR = "nndl_config"


class _SurplusTrial(Exception):
    """The budget was already taken when this trial was created."""


def _make_sampler(config, seeded):
    optuna = _optuna()
    # Only a study run by one process is reproducible; parallel workers must not share a seed,
    # or TPE would propose the same point to all of them, so they draw fresh entropy.
    seed = config.seed if seeded else None
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, config.trials // 4)),
                                          constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)  # random, and grid (whose points are enqueued)


def _make_pruner(config):
    optuna = _optuna()
    if config.pruner == "median":
        # Epoch 1 is too noisy to judge; compare from epoch 2 once 3 trials have finished.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if config.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _open_study(storage, name, config, seeded, label):
    """Create the study (storing ``config``) or load it; returns (study, stored config, created)."""
    optuna = _optuna()
    created = False
    if config is not None:
        try:
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                        sampler=_make_sampler(config, seeded),
                                        pruner=_make_pruner(config))
            created = True
            if config.sampler == "grid":
                for point in _grid_points(config.space):
                    study.enqueue_trial(point, user_attrs={"nndl_grid": True})
            # Written last: a joiner that sees the configuration also sees the whole grid.
            study.set_user_attr(CONFIG_ATTR, config.to_json())
            return study, config, created
        except optuna.exceptions.DuplicatedStudyError:
            pass
    try:
        summaries = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    except Exception as exc:  # noqa: BLE001
        raise SearchError(f"cannot read storage {label}: {exc}") from None
    if name not in summaries:
        raise SearchError(f"no study named {name!r} in storage {label}")
    deadline = time.monotonic() + 60
    while True:
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        if CONFIG_ATTR in attrs:
            break
        if time.monotonic() > deadline:
            raise SearchError(f"study {name!r} in {label} was not made by nndl search (no configuration)")
        time.sleep(0.5)  # its creator is still enqueueing the grid
    stored = _StudyConfig.from_json(attrs[CONFIG_ATTR])
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=_make_sampler(stored, False), pruner=_make_pruner(stored))
    return study, stored, created


def _reconcile(stored, requested, given, name, label):
    """Check a joiner's explicit options against the stored configuration."""
    differ = []
    for key in given:
        if key == "trials":
            continue
        want = requested.space if key == "space" else getattr(requested, key)
        have = stored.space if key == "space" else getattr(stored, key)
        if key == "space":
            diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
            if diff:
                differ.append(f"space ({', '.join(diff)})")
        elif want != have:
            differ.append(f"{key}={have!r}, not {want!r}")
    if differ:
        raise SearchError(f"study {name!r} in {label} already exists with {'; '.join(differ)}; "
                          f"drop those options to join it, or choose another --study")


def _budget_state(study, config):
    """'run' if a trial may start, 'wait' if only others' running trials remain, else 'done'."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("nndl_surplus")]
    states = [t.state for t in trials]
    if TrialState.WAITING in states:
        return "run"
    live = sum(s != TrialState.FAIL for s in states)
    if config.sampler != "grid" and live < config.trials:
        return "run"
    return "wait" if TrialState.RUNNING in states else "done"


class _Objective:
    """Trains one trial; see the module docstring for the budget and seeding rules."""

    def __init__(self, study, config, data, me):
        self.study, self.config, self.data, self.me = study, config, data, me

    def _is_surplus(self, trial):
        from optuna.trial import TrialState

        if self.config.sampler == "grid":
            return not trial.user_attrs.get("nndl_grid")
        ahead = sum(1 for t in self.study.get_trials(deepcopy=False)
                    if t.number < trial.number and t.state != TrialState.FAIL)
        return ahead >= self.config.trials

    def __call__(self, trial):
        optuna = _optuna()
        trial.set_user_attr("nndl_worker", self.me)
        if self._is_surplus(trial):
            trial.set_user_attr("nndl_surplus", True)
            raise _SurplusTrial(f"trial {trial.number} is beyond the budget of {self.config.trials}")
        params = _suggest(trial, self.config.space)
        seed = _trial_seed(self.config.seed, trial.number)
        trial.set_user_attr("nndl_seed", seed)
        reported = set()

        def report(solver):
            if solver.epoch < 1 or solver.epoch in reported:
                return
            reported.add(solver.epoch)
            acc = float(solver.val_acc_history[-1])
            trial.report(acc, solver.epoch)
            if trial.should_prune():
                trial.set_user_attr("best_val_acc", float(solver.best_val_acc))
                raise optuna.TrialPruned(f"val acc {acc:.4f} at epoch {solver.epoch}")

        try:
            # Overflow warnings are expected from diverging trials, which are pruned below.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                _, solver = train_config(params, self.data, self.config.epochs, seed, report)
        except FloatingPointError as exc:
            trial.set_user_attr("nndl_note", f"diverged: {str(exc).split(';')[0]}")
            raise optuna.TrialPruned("diverged") from None
        trial.set_user_attr("best_val_acc", float(solver.best_val_acc))
        trial.set_user_attr("train_acc", float(solver.train_acc_history[-1]))
        return float(solver.best_val_acc)


@contextmanager
def _quiet_optuna():
    """Keep Optuna's per-trial log lines out of the output (nndl prints its own)."""
    optuna = _optuna()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def _trial_line(trial, tag):
    state = trial.state.name.lower()
    value = trial.value if trial.value is not None else trial.user_attrs.get("best_val_acc")
    shown = f"{value:.4f}" if value is not None else "-"
    params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    secs = trial.duration.total_seconds() if trial.duration else 0.0
    note = trial.user_attrs.get("nndl_note")
    return (f"{tag}trial {trial.number:3d} {state:8s} val_acc={shown} ({secs:.1f}s) {params}"
            + (f" [{note}]" if note else ""))


def _run_trials(study, config, data, *, deadline=None, tag="", verbose=True, poll=1.0):
    """The worker loop: take trials until the budget is spent or ``deadline`` (monotonic) passes."""
    me = _identity()
    objective = _Objective(study, config, data, me)

    def log_trial(_study, frozen):
        if verbose and not frozen.user_attrs.get("nndl_surplus"):
            print(_trial_line(frozen, tag), flush=True)

    while True:
        _fail_dead_trials(study, me)
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout"
        state = _budget_state(study, config)
        if state == "done":
            return "done"
        if state == "wait":
            time.sleep(poll)
            continue
        study.optimize(objective, n_trials=1, catch=(_SurplusTrial,), callbacks=[log_trial])


def _study_exists(storage, name):
    """True if ``storage`` holds a study called ``name`` (False if it cannot say: the open
    that follows then reports the storage's problem)."""
    try:
        return name in {s.study_name for s in _optuna().get_all_study_summaries(storage)}
    except Exception:  # noqa: BLE001 - storage errors are reported by _open_study
        return False
