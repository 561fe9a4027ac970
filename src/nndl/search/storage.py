"""Storage of studies, and the recovery of trials whose worker died.

Contract
--------
A study lives in an Optuna storage that ``open_storage`` opens: by default a journal file
``<out>/study.journal`` (``JOURNAL_NAME``; append-only, file-locked, safe for several
processes on one machine), a journal file at a given path, or any SQLAlchemy URL
(``postgresql://...``) that workers on several machines share, with Optuna's heartbeat. A path
that exists and is not an Optuna journal is refused before Optuna appends to it; a storage that
cannot be opened raises ``SearchError`` with one line (passwords hidden).

A crashed or killed worker leaves its trial RUNNING. ``_fail_dead_trials`` fails the RUNNING
trials whose worker process is gone (same machine: the pid recorded by ``_identity`` no longer
runs, or runs another process) or whose heartbeat stopped (SQL storage), and ``_requeue``
enqueues their parameters once more (at most ``MAX_RETRIES`` times), so the study neither
stalls nor loses a grid point, and other workers' results are untouched.

Optuna is imported only when a storage is opened (``_optuna``), so that the ``nndl`` command
starts without it.
"""

import json
import os
import socket
import time
import warnings

from .space import SearchError


DEFAULT_OUT = "nndl-search"
JOURNAL_NAME = "study.journal"
MAX_RETRIES = 1  # a trial whose worker died is run once more; twice means it kills workers


def _optuna():
    try:
        import optuna
    except ImportError:
        raise SearchError("hyperparameter search needs Optuna: pip install 'nndl[search]'") from None
    return optuna


def _redact(url):
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages; an unparsable URL is shown as given
        return url


def _storage_label(spec, out):
    if spec is None:
        return os.path.join(out, JOURNAL_NAME)
    return _redact(spec) if "://" in spec else spec


def _with_postgres_driver(url):
    """``postgresql://`` with the driver that is installed named explicitly.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, while the search extra installs
    psycopg2; ``postgres://`` (a common alias) is not understood by SQLAlchemy at all.
    """
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    import importlib.util

    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}{sep}{rest}"
    return f"postgresql{sep}{rest}"


def _is_journal_or_new(path):
    """True when ``path`` does not exist, is empty, or starts with an Optuna journal record."""
    limit = 1 << 20
    try:
        with open(path, "rb") as f:
            first = f.readline(limit)
    except OSError:
        return True  # missing (a new journal) or unreadable (the open below says why)
    if not first.strip():
        return True
    try:
        record = json.loads(first)
    except ValueError:
        # A record longer than the limit was cut short; judge it by its key.
        return len(first) == limit and b'"op_code"' in first
    return isinstance(record, dict) and "op_code" in record


def open_storage(spec=None, out=DEFAULT_OUT, heartbeat=10):
    """Open the Optuna storage a study lives in.

    Parameters
    ----------
    spec : str or None
        None: the journal file ``<out>/study.journal``. A path without ``://``: a journal file
        there. Otherwise a SQLAlchemy URL (``postgresql://user:pw@host:5432/db``,
        ``sqlite:///file.db``) with Optuna's heartbeat every ``heartbeat`` seconds, so the
        trials of a worker that died on any machine are failed after ``4 * heartbeat`` s.
    out : str
    heartbeat : int

    Returns
    -------
    optuna.storages.BaseStorage
    """
    optuna = _optuna()
    if spec is None or "://" not in spec:
        path = os.path.join(out, JOURNAL_NAME) if spec is None else os.fspath(spec)
        return _open_journal(optuna, path)
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise SearchError(f"heartbeat must be an int >= 1 (seconds), got {heartbeat!r}")
    return _open_database(optuna, spec, heartbeat)


def _open_journal(optuna, path):
    """A JournalStorage on the file ``path`` (created with its directory if missing)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise SearchError(f"cannot create the storage directory {directory}: {exc.strerror}") from None
    if os.path.isdir(path):
        raise SearchError(f"storage {path} is a directory; give a journal file path or a database URL")
    if not _is_journal_or_new(path):
        # Optuna would append its log to any file it is given: refuse before it does.
        raise SearchError(f"storage {path} exists and is not an Optuna journal; give a new path, "
                          f"an existing study's journal or a database URL")
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    except OSError as exc:
        raise SearchError(f"cannot open storage {path}: {exc.strerror or exc}") from None


def _open_database(optuna, spec, heartbeat):
    """An RDBStorage on the SQLAlchemy URL ``spec``, whose stale trials ``_requeue`` enqueues again."""
    shown = _redact(spec)
    url = _with_postgres_driver(spec)
    engine_kwargs = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # An unreachable host must fail within seconds, not after the OS's TCP timeout.
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    callback = _stale_trial_callback_name(optuna)
    last = None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                    grace_period=4 * heartbeat, **{callback: _requeue})
        except ImportError as exc:
            raise SearchError(f"storage {shown} needs a database driver that is not "
                              f"installed ({exc.name or exc}); pip install 'nndl[search]'") from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver errors vary by backend
            last = exc
            text = str(exc).lower()
            # Workers of a fresh database may race to create Optuna's tables; try again.
            if "already exists" in text or "duplicate" in text or "unique" in text:
                time.sleep(0.5 + attempt)
                continue
            break
    first = str(getattr(last, "orig", None) or last).strip().splitlines()
    reason = first[0] if first else type(last).__name__
    raise SearchError(f"cannot open storage {shown}: {reason}")


def _stale_trial_callback_name(optuna):
    """The RDBStorage argument that takes the callback for trials whose heartbeat stopped."""
    import inspect

    # Optuna 5 renamed failed_trial_callback (still accepted, with a warning) to this.
    if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters:
        return "heartbeat_stale_trial_callback"
    return "failed_trial_callback"


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot), '' if unknown, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] in ("Z", "X"):  # a zombie has exited; it only waits to be reaped
        return None
    return fields[19] if len(fields) > 19 else ""


def _identity():
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _process_start(pid)}


def _owner_dead(trial, me, grace):
    """True if ``trial`` (RUNNING) belongs to a worker that no longer runs on this machine."""
    owner = trial.user_attrs.get("nndl_worker")
    if not isinstance(owner, dict):
        # Killed between taking the trial and recording who took it: judge by age.
        started = trial.datetime_start
        return started is not None and (time.time() - started.timestamp()) > grace
    if owner.get("host") != me["host"] or owner.get("boot") != me["boot"]:
        return False  # another machine's worker: only a heartbeat (SQL storage) can tell
    start = _process_start(int(owner.get("pid", -1)))
    if start is None:
        return True
    return bool(owner.get("start")) and bool(start) and start != owner["start"]


def _requeue(study, trial):
    """Enqueue a failed trial's parameters again (once), keeping the grid complete."""
    attrs = trial.user_attrs
    if attrs.get("nndl_surplus") or attrs.get("nndl_retries", 0) >= MAX_RETRIES:
        return
    params = trial.system_attrs.get("fixed_params") or trial.params
    if not params:
        return
    user_attrs = {"nndl_retries": attrs.get("nndl_retries", 0) + 1, "nndl_retry_of": trial.number}
    if attrs.get("nndl_grid"):
        user_attrs["nndl_grid"] = True
    study.enqueue_trial(dict(params), user_attrs=user_attrs)


def _fail_dead_trials(study, me, grace=60.0):
    """Fail RUNNING trials whose worker died and requeue them; return how many."""
    optuna = _optuna()
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # SQL storage: heartbeats (calls _requeue)
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _owner_dead(trial, me, grace):
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "nndl_note", "worker died")
            if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError, KeyError):
            continue  # another worker failed it first, and requeues it
        _requeue(study, trial)
        failed += 1
    return failed
