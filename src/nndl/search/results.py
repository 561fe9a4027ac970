"""Results of a study: the files a search writes to its ``out`` directory.

Contract
--------
``write_results(study, config, out)`` writes, from the trials of the study (less the
``nndl_surplus`` placeholders): ``trials.csv`` (one row per trial, written atomically),
``best_value.png`` and ``params.png`` (when matplotlib is installed; drawn on bare Figures, so
pyplot and its backend are left alone), ``summary.json`` and, if ``retrain``,
``best_model.npz``: the best configuration retrained with its trial's seed, readable by
``nndl.checkpoint.load_model`` and ``nndl evaluate``. It returns a ``SearchResult``.

``summary.json`` names the study before anything else is written, so that an ``out`` left by
an interrupted run is recognisably this study's; ``_check_out_is_ours`` refuses an ``out``
that holds another study's results, or files of these names that no search left there.
"""

import csv
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .._files import write_atomically
from .space import Choices, Fixed, SearchError, _fmt
from .storage import JOURNAL_NAME
from .study import _budget_state
from .training import _trial_seed, load_dataset, train_config


def _live_trials(study):
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("nndl_surplus")]


def _trial_value(t):
    if t.value is not None:
        return float(t.value)
    v = t.user_attrs.get("best_val_acc")
    if v is None and t.intermediate_values:
        v = max(t.intermediate_values.values())
    return None if v is None else float(v)


def _write_csv(trials, space, path):
    """trials.csv: one row per trial, built in memory and written atomically (a reader never
    sees half a table, and a failed write leaves the previous one)."""
    names = list(space)
    buffer = io.StringIO(newline="")
    w = csv.writer(buffer)
    w.writerow(["number", "state", "val_acc", "epochs", "seconds"] + names + ["worker", "note"])
    for t in trials:
        worker = t.user_attrs.get("nndl_worker") or {}
        params = {n: (space[n].value if isinstance(space[n], Fixed) else t.params.get(n, "")) for n in names}
        value = _trial_value(t)
        w.writerow([t.number, t.state.name, "" if value is None else repr(value),
                    max(t.intermediate_values) if t.intermediate_values else 0,
                    f"{t.duration.total_seconds():.2f}" if t.duration else ""]
                   + [_fmt(params[n]) if params[n] != "" else "" for n in names]
                   + [f"{worker.get('host', '')}:{worker.get('pid', '')}" if worker else "",
                      t.user_attrs.get("nndl_note", "")])
    write_atomically(path, lambda f: f.write(buffer.getvalue().encode("utf-8")), suffix=".csv.tmp")


def _plot(trials, space, out):
    """best_value.png and params.png; returns their paths (empty if matplotlib is missing)."""
    try:
        import matplotlib  # noqa: F401 - only to know whether plots can be drawn
    except ImportError:
        return []
    from optuna.trial import TrialState

    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    done.sort(key=lambda t: t.number)
    # Bare Figures, as nndl.vis_utils draws: a search run from a notebook leaves pyplot's
    # backend and state alone.
    paths = [os.path.join(out, "best_value.png")]
    _plot_progress(done, paths[-1])
    varied = [n for n, s in space.items() if not isinstance(s, Fixed)]
    if varied:
        paths.append(os.path.join(out, "params.png"))
        _plot_params(done, space, varied, paths[-1])
    return paths


def _plot_progress(done, path):
    """Validation accuracy of each finished trial (``done``, by number) and the best so far."""
    from optuna.trial import TrialState

    from ..vis_utils import _figure, _save

    fig = _figure((7, 4))
    ax = fig.subplots()
    for state, marker, color in ((TrialState.COMPLETE, "o", "tab:blue"), (TrialState.PRUNED, "x", "tab:gray")):
        xs = [t.number for t in done if t.state == state]
        ys = [_trial_value(t) for t in done if t.state == state]
        ax.scatter(xs, ys, marker=marker, color=color, label=f"{state.name.lower()} ({len(xs)})")
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    if complete:
        best, xs, ys = -np.inf, [], []
        for t in complete:
            best = max(best, t.value)
            xs.append(t.number)
            ys.append(best)
        last = max(t.number for t in done)
        ax.step(xs + [last], ys + [ys[-1]], where="post", color="tab:red", label="best so far")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Search progress")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    _save(fig, path)


def _plot_params(done, space, varied, path):
    """Validation accuracy against each hyperparameter in ``varied``, one panel each."""
    from optuna.trial import TrialState

    from ..vis_utils import _figure, _save

    cols = min(3, len(varied))
    rows = math.ceil(len(varied) / cols)
    fig = _figure((4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    rng = np.random.default_rng(0)  # jitter for categorical axes, fixed so plots are stable
    for ax, name in zip(axes.flat, varied):
        spec = space[name]
        for state, marker, color in ((TrialState.COMPLETE, "o", "tab:blue"), (TrialState.PRUNED, "x", "tab:gray")):
            pts = [(t.params[name], _trial_value(t)) for t in done if t.state == state and name in t.params]
            if not pts:
                continue
            xs, ys = zip(*pts)
            if isinstance(spec, Choices):
                labels = [_fmt(v) for v in spec.values]
                pos = [labels.index(_fmt(x)) + rng.uniform(-0.15, 0.15) for x in xs]
                ax.scatter(pos, ys, marker=marker, color=color, s=18)
                ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 5 else 0)
            else:
                ax.scatter(xs, ys, marker=marker, color=color, s=18)
                if spec.log:
                    ax.set_xscale("log")
        ax.set_title(name)
        ax.set_ylabel("val acc")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(varied):]:
        ax.axis("off")
    fig.suptitle("Validation accuracy against each hyperparameter (o complete, x pruned)")
    _save(fig, path)


@dataclass
class SearchResult:
    """What a search produced (paths are None when not written)."""
    study_name: str
    storage: str
    best_params: dict = None
    best_value: float = None
    best_trial: int = None
    counts: dict = field(default_factory=dict)
    csv_path: str = None
    plots: list = field(default_factory=list)
    model_path: str = None
    retrained_val_acc: float = None
    test_acc: float = None
    seconds: float = None
    complete: bool = False


def write_results(study, config, out, data=None, retrain=True, data_dir=None, label="", started=None):
    """Write the CSV, plots, summary and (if ``retrain``) the retrained best model to ``out``.

    ``started`` is the ``time.monotonic()`` of the search's start: ``seconds`` in the result
    and in summary.json count from it (None without it).
    """
    from optuna.trial import TrialState

    from ..checkpoint import save_model

    os.makedirs(out, exist_ok=True)
    summary_path = os.path.join(out, "summary.json")
    if not os.path.exists(summary_path):
        # Name the study before writing anything else: a run stopped below leaves an --out
        # that is recognisably this study's, so the same command resumes it (see
        # _check_out_is_ours); the full summary replaces this one at the end.
        write_atomically(summary_path, lambda f: json.dump({"study_name": study.study_name, "complete": False}, f),
                         suffix=".json.tmp", text=True)
    trials = sorted(_live_trials(study), key=lambda t: t.number)
    result = SearchResult(study_name=study.study_name, storage=label)
    result.counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    result.csv_path = os.path.join(out, "trials.csv")
    _write_csv(trials, config.space, result.csv_path)
    result.plots = _plot(trials, config.space, out)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = max(complete, key=lambda t: (t.value, -t.number))
        result.best_trial, result.best_value = best.number, float(best.value)
        result.best_params = _suggest_fixed(best, config.space)
        if retrain:
            if data is None:
                data = load_dataset(config.dataset, data_dir, config.num_validation, config.num_training)
            seed = best.user_attrs.get("nndl_seed", _trial_seed(config.seed, best.number))
            model, _ = train_config(result.best_params, data, config.epochs, seed)
            # Scored afresh (not taken from the Solver's history): this is the saved model.
            result.retrained_val_acc = float(np.mean(model.predict(data["X_val"]) == data["y_val"]))
            if len(data.get("y_test", [])):
                result.test_acc = float(np.mean(model.predict(data["X_test"]) == data["y_test"]))
            result.model_path = os.path.join(out, "best_model.npz")
            pre = {"mean_image": data["mean_image"]} if data.get("mean_image") is not None else None
            # In-memory data (search(data=...)) has no "source": the model then names no dataset.
            search_meta = {"study": study.study_name, "trial": best.number, "params": result.best_params,
                           "val_acc": result.retrained_val_acc}
            save_model(result.model_path, model, preprocessing=pre, class_names=data.get("class_names"),
                       dataset=data.get("source"), search=search_meta)
    result.complete = _budget_state(study, config) == "done"
    if started is not None:
        result.seconds = time.monotonic() - started
    summary = {k: v for k, v in asdict(result).items() if k != "plots"}
    summary["config"] = config.to_json()
    write_atomically(summary_path, lambda f: json.dump(summary, f, indent=2), suffix=".json.tmp", text=True)
    return result


def _suggest_fixed(trial, space):
    """The full configuration of a finished trial (searched values plus fixed ones)."""
    return {n: (s.value if isinstance(s, Fixed) else trial.params[n]) for n, s in space.items()}


RESULT_FILES = ("trials.csv", "best_value.png", "params.png", "summary.json", "best_model.npz")
"""What ``write_results`` writes into ``out`` (besides the default storage, ``JOURNAL_NAME``)."""


def _check_out_is_ours(out, study_name):
    """Refuse an ``out`` whose results would be replaced by ours: those of another study
    (its summary.json names it), or files of the same names that no search left there (no
    summary.json, no journal: the user's own, or another tool's)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise SearchError(f"--out {out} exists and is not a directory")
    path = os.path.join(out, "summary.json")
    try:
        with open(path) as f:
            previous = json.load(f).get("study_name")
    except (OSError, ValueError, AttributeError):
        if not os.path.exists(path) and not os.path.exists(os.path.join(out, JOURNAL_NAME)):
            existing = [name for name in RESULT_FILES if os.path.exists(os.path.join(out, name))]
            if existing:
                raise SearchError(f"--out {out} already holds {', '.join(existing)}, which no search left "
                                  f"there (no summary.json or {JOURNAL_NAME}); move them away or give "
                                  f"another --out")
        return  # no results there yet (or none of ours to protect)
    if previous is not None and previous != study_name:
        raise SearchError(f"--out {out} already holds the results of study {previous!r} ({path}); "
                          f"give study {study_name!r} another --out")


def _print_summary(result):
    c = result.counts
    print(f"{c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, {c.get('fail', 0)} failed, "
          f"{c.get('running', 0)} running trials; {result.seconds / 60:.2f} min", flush=True)
    if result.best_params is None:
        print("no trial has completed yet", flush=True)
        return
    params = " ".join(f"{k}={_fmt(v)}" for k, v in result.best_params.items())
    print(f"best val acc {result.best_value:.4f} (trial {result.best_trial}): {params}", flush=True)
    if result.model_path:
        extra = f", test acc {result.test_acc:.4f}" if result.test_acc is not None else ""
        print(f"best model retrained: val acc {result.retrained_val_acc:.4f}{extra} -> {result.model_path}",
              flush=True)
    print(f"trials table: {result.csv_path}; plots: {', '.join(result.plots) or 'none (no matplotlib)'}",
          flush=True)
    if not result.complete:
        print("the study is not finished; run the same command again to resume it", flush=True)
