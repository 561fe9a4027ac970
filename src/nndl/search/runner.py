"""Running a search: ``search(...)``, in this process or in worker processes.

Contract
--------
``search(...)`` runs (creates, joins or resumes) a study and writes its results to ``out``
(see ``results``). With ``jobs=1`` the trials run in this process; with more it starts that
many worker processes (``python -m nndl.search --worker-index I``), each with
``cores // jobs`` BLAS threads unless ``threads`` is given, which join the study through its
storage and share its budget; the parent waits for them and then writes the results. A worker
(``_worker_index`` set) runs trials and writes nothing.

The data is loaded, and its split sizes checked, before this run creates a study or a journal:
a bad dataset leaves nothing behind for the corrected command to trip over. Bad arguments raise
``SearchError`` before the storage is touched.
"""

import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

from .config import _check_settings, _StudyConfig
from .results import SearchResult, _check_out_is_ours, _print_summary, write_results
from .space import SearchError, _grid_points, make_space
from .storage import DEFAULT_OUT, JOURNAL_NAME, _storage_label, open_storage
from .study import CONFIG_ATTR, DEFAULT_STUDY, _open_study, _quiet_optuna, _reconcile, _run_trials, _study_exists
from .training import load_dataset


def search(space=None, *, trials=None, epochs=None, sampler=None, pruner=None, seed=None,
           dataset=None, num_validation=None, num_training=None, data_dir=None, data=None,
           jobs=1, storage=None, study_name=DEFAULT_STUDY, out=DEFAULT_OUT, timeout=None,
           heartbeat=10, threads=None, retrain=True, report_only=False, verbose=True,
           _worker_index=None):
    """Run (or join, or resume) a hyperparameter search and write its results.

    Parameters
    ----------
    space : dict, optional
        Overrides of ``DEFAULT_SPACE``: name -> ``Range``/``Choices``/``Fixed``, command-line
        text (``"1e-4:1e-1:log"``) or TOML-style value.
    trials, epochs, sampler, pruner, seed, dataset, num_validation, num_training
        Study settings (defaults 30, 10, 'tpe', 'median', 0, 'digits', loader's split). When
        the study already exists, ``None`` means "as stored"; other values must match it,
        except ``trials``, which resizes the budget.
    data_dir : str, optional
        CIFAR-10 directory (may differ between machines).
    data : dict, optional
        In-memory splits instead of a named dataset (only with ``jobs=1``).
    jobs : int
        Worker processes on this machine (1: run in this process).
    storage : str, optional
        Journal file path or database URL (see ``open_storage``).
    study_name, out : str
    timeout : float, optional
        Seconds after which no new trial starts (running ones finish).
    heartbeat : int
        Seconds between heartbeats with a database storage.
    threads : int, optional
        BLAS threads per worker. Default: ``cores // jobs`` for worker processes, and this
        process's setting when ``jobs=1``. Small networks often train fastest with 1.
    retrain : bool
        Retrain the best configuration and save it as ``out/best_model.npz``.
    report_only : bool
        Run no trials; only write the results of the stored study.
    verbose : bool

    Returns
    -------
    SearchResult
    """
    t0 = time.monotonic()
    _check_run_arguments(jobs, data, threads, timeout)
    given_settings = {k: v for k, v in dict(trials=trials, epochs=epochs, sampler=sampler, pruner=pruner,
                                            seed=seed, dataset=dataset, num_validation=num_validation,
                                            num_training=num_training).items() if v is not None}
    _check_settings(given_settings)
    requested = _StudyConfig(space=make_space(space), **given_settings)
    if requested.sampler == "grid":
        _grid_points(requested.space)  # reject a grid over ranges before touching storage
    given = list(given_settings) + (["space"] if space else [])

    with _quiet_optuna(), _blas_threads(threads):
        return _search(requested, given, given_settings, data=data, data_dir=data_dir, jobs=jobs,
                       storage=storage, study_name=study_name, out=out, timeout=timeout,
                       heartbeat=heartbeat, retrain=retrain, report_only=report_only,
                       verbose=verbose, worker_index=_worker_index, t0=t0, threads=threads)


def _check_run_arguments(jobs, data, threads, timeout):
    """Reject the arguments of ``search`` that are not study settings, before anything runs."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SearchError(f"jobs must be an int >= 1, got {jobs!r}")
    if data is not None and jobs > 1:
        raise SearchError("data= works with jobs=1 only; with several workers each loads the dataset by name")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise SearchError(f"threads must be an int >= 1, got {threads!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise SearchError(f"timeout must be a number of seconds > 0, got {timeout!r}")


def _search(requested, given, given_settings, *, data, data_dir, jobs, storage, study_name, out,
            timeout, heartbeat, retrain, report_only, verbose, worker_index, t0, threads):
    """``search`` once its arguments are checked: open the study, run its trials, write results."""
    label = _storage_label(storage, out)
    if worker_index is None:
        _check_out(out, storage, study_name, report_only)
    study, config, created, data = _open_with_data(
        requested, given, given_settings, data=data, data_dir=data_dir, jobs=jobs, storage=storage,
        study_name=study_name, out=out, heartbeat=heartbeat, report_only=report_only,
        worker_index=worker_index, label=label)
    if verbose and worker_index is None:
        _print_opened(study_name, config, created, label)

    deadline = None if timeout is None else t0 + timeout
    if not report_only:
        if jobs == 1 or worker_index is not None:
            tag = f"[w{worker_index}] " if worker_index is not None else ""
            _run_trials(study, config, data, deadline=deadline, tag=tag, verbose=verbose)
        else:
            # Loaded above only to check it (in-memory data= needs jobs=1): each worker loads
            # its own copy, and this one would sit in memory meanwhile. write_results loads
            # the data again if it retrains the best trial.
            data = None
            _run_worker_processes(storage, study_name, out, jobs, data_dir, deadline,
                                  heartbeat, verbose, threads)
    if worker_index is not None:
        return SearchResult(study_name=study_name, storage=label)

    result = write_results(study, config, out, data=data, retrain=retrain, data_dir=data_dir, label=label,
                           started=t0)
    if verbose:
        _print_summary(result)
    return result


def _check_out(out, storage, study_name, report_only):
    """Refuse an ``out`` that is not this study's, or a report on a study that is not there."""
    _check_out_is_ours(out, study_name)
    if report_only and storage is None and not os.path.isfile(os.path.join(out, JOURNAL_NAME)):
        # Checked before open_storage, which would create --out for a journal to report on.
        raise SearchError(f"--report-only: there is no study to report on in --out {out} "
                          f"(no {JOURNAL_NAME}); give the --out or --storage of a search")


def _load(config, data_dir):
    """The dataset of a study configuration, and the split it was loaded for."""
    split = (config.dataset, config.num_validation, config.num_training)
    return load_dataset(config.dataset, data_dir, config.num_validation, config.num_training), split


def _open_with_data(requested, given, given_settings, *, data, data_dir, jobs, storage, study_name, out,
                    heartbeat, report_only, worker_index, label):
    """Create, join or resume the study, and load the data its trials train on.

    Returns
    -------
    study : optuna.Study
    config : _StudyConfig
        The stored configuration (``requested`` when this run created the study).
    created : bool
    data : dict or None
        None only with ``report_only`` (and no ``data`` given).
    """
    create = worker_index is None and not report_only
    # The data is loaded (and its split sizes checked) before this run creates a study or a
    # journal, so that a bad dataset leaves nothing behind for the corrected command to trip
    # over; a joiner loads the stored study's split below. In-memory data= is used as given.
    loaded = None
    journal = os.path.join(out, JOURNAL_NAME) if storage is None else (
        None if "://" in storage else os.fspath(storage))
    if create and data is None and journal is not None and not os.path.lexists(journal):
        data, loaded = _load(requested, data_dir)
    store = open_storage(storage, out, heartbeat)
    if create and data is None and not _study_exists(store, study_name):
        data, loaded = _load(requested, data_dir)
    study, config, created = _open_study(store, study_name, requested if create else None,
                                         create and jobs == 1, label)
    if not created and worker_index is None:
        _reconcile(config, requested, given, study_name, label)
    stored_split = (config.dataset, config.num_validation, config.num_training)
    if not report_only and (data is None or (loaded is not None and loaded != stored_split)):
        # A joiner or worker (or this run, when another machine created the study first):
        # the stored split. The parent of workers loads it too, so that a bad dataset fails
        # once, before they start.
        data, loaded = _load(config, data_dir)
    if not created and worker_index is None and "trials" in given_settings \
            and given_settings["trials"] != config.trials:
        # Only once the data loaded: a joiner that fails leaves the study as it was.
        config.trials = given_settings["trials"]
        study.set_user_attr(CONFIG_ATTR, config.to_json())
    return study, config, created, data


def _print_opened(study_name, config, created, label):
    action = "created" if created else "joined"
    size = f"grid of {len(_grid_points(config.space))}" if config.sampler == "grid" else f"{config.trials} trials"
    print(f"study {study_name!r} {action} in {label}: {size}, {config.epochs} epochs each, "
          f"sampler {config.sampler}, pruner {config.pruner}, dataset {config.dataset}", flush=True)


def _run_worker_processes(storage, study_name, out, jobs, data_dir, deadline, heartbeat, verbose, threads):
    """Start ``jobs`` worker processes sharing the study; True if all exited cleanly."""
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    # Set before the worker imports NumPy: BLAS reads these once, at load time.
    env = _blas_env(threads)
    procs = []
    for i in range(jobs):
        remaining = None if deadline is None else deadline - time.monotonic()
        cmd = _worker_command(storage, study_name, out, i, data_dir, remaining, heartbeat, verbose)
        procs.append(subprocess.Popen(cmd, env=env))
    ok = True
    try:
        for i, p in enumerate(procs):
            code = p.wait()
            if code != 0:
                ok = False
                print(f"warning: worker {i} (pid {p.pid}) exited with code {code}; "
                      f"the other workers take over its trial", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    return ok


def _worker_command(storage_spec, study, out, index, data_dir, deadline_s, heartbeat, verbose):
    # The thread count travels in the environment (see _blas_env), not as --threads.
    cmd = [sys.executable, "-m", "nndl.search", "--study", study, "--out", out,
           "--worker-index", str(index), "--heartbeat", str(heartbeat)]
    if storage_spec is not None:
        cmd += ["--storage", storage_spec]
    if data_dir is not None:
        cmd += ["--data-dir", data_dir]
    if deadline_s is not None:
        cmd += ["--timeout", f"{max(deadline_s, 0.001):.3f}"]
    if not verbose:
        cmd.append("--quiet")
    return cmd


def _blas_env(threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    # nndl's own elementwise kernels stay on one thread (their default) in every worker, even
    # if this process was started with more.
    env["NNDL_NUM_THREADS"] = "1"
    return env


@contextmanager
def _blas_threads(threads):
    """Limit this process's BLAS threads while searching."""
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn("threads= needs threadpoolctl to limit the BLAS in this process "
                      "(pip install 'nndl[search]'); BLAS threads left as they are")
        yield
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield
