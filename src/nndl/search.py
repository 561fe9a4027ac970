"""Hyperparameter search for FullyConnectedNet classifiers, built on Optuna.

Contract
--------
A *search space* maps hyperparameter names (``HYPERPARAMETERS``: learning_rate, reg,
num_layers, hidden_size, dropout, use_batchnorm, batch_size, update_rule, lr_decay,
weight_scale) to a *spec*: a ``Range`` (low < high, optionally log-scaled), a ``Choices`` list
or a ``Fixed`` value. ``parse_spec(name, text)`` reads the command-line form
(``1e-4:1e-1:log``, ``64,128``, ``0.5``; ``LOW:HIGH[:log]:N`` is shorthand for N evenly or
geometrically spaced values), ``load_config(path)`` the TOML form. Unknown names, empty or
inverted ranges and values outside a hyperparameter's domain raise ``SearchError`` (a
``ValueError``) with one line that names the hyperparameter, the value and what was expected.

A *study* lives in an Optuna storage: by default a journal file ``<out>/study.journal``
(append-only, file-locked, safe for several processes on one machine; a search interrupted at
any point resumes where it stopped), or any SQLAlchemy URL (``postgresql://...``) that workers
on several machines share. The process that creates the study stores its whole configuration
(space, budget, epochs, sampler, pruner, seed, dataset split) in the study, so a worker that
joins needs only ``--study`` and ``--storage``; a joiner that asks for a *different*
configuration is refused, except for ``trials``, which resizes the budget.

Each trial builds a FullyConnectedNet (float32, every hidden layer ``hidden_size`` wide),
trains it with the Solver for ``epochs`` epochs, reports validation accuracy after every epoch
(``trial.report``; the pruner may stop it) and returns its best validation accuracy. The
model and batch order of trial number ``k`` are seeded from ``(seed, k)``, so a trial is
reproducible whichever worker runs it, and the best one can be retrained exactly.

The budget ``trials`` counts trials that did not fail: exactly that many complete or pruned
trials are run, however many workers share the study (a worker that loses the race for the
last slot closes its extra trial at once as failed and marks it ``nndl_surplus``; such
placeholders are left out of every result). With the grid sampler the budget is the grid,
enqueued once in nested-loop order when the study is created, each point run exactly once.

A crashed or killed worker leaves its trial RUNNING. Every worker, before each trial and
while it waits for others to finish, fails the RUNNING trials whose worker process is gone
(same machine: the recorded pid no longer runs) or whose heartbeat stopped (SQL storage:
Optuna's heartbeat) and enqueues their parameters once more, so the study neither stalls nor
loses a grid point, and other workers' results are untouched.

``search(...)`` runs a study (``jobs`` worker processes, each with ``cores // jobs`` BLAS
threads) and writes to ``out``: ``trials.csv``, ``best_value.png``, ``params.png``,
``summary.json`` and ``best_model.npz`` (the best configuration retrained, readable by
``nndl.checkpoint.load_model`` and ``nndl evaluate``). The command line is ``nndl search``;
``python -m nndl.search`` is the same command.
"""

import argparse
import csv
import io
import json
import math
import os
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from . import optim
from ._files import write_atomically
from ._validation import DOMAINS, NONNEGATIVE_INT, POSITIVE, POSITIVE_INT
from .data_utils import DIGITS_SPLIT_SEED  # the digits split of nndl train
from .recipes import TRAIN_DEFAULTS

# The command line's number types: the domains of nndl._validation, as nndl train's.
_nonneg_int = NONNEGATIVE_INT.argument_type()
_positive_float = POSITIVE.argument_type()
_positive_int = POSITIVE_INT.argument_type()

__all__ = [
    "HYPERPARAMETERS", "DEFAULT_SPACE", "Range", "Choices", "Fixed", "SearchError",
    "SearchResult", "DIGITS_NUM_TEST", "parse_spec", "load_config", "make_space", "load_dataset", "train_config",
    "open_storage", "search", "write_results", "add_search_arguments", "run_search_command",
    "main",
]

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
DATASETS = ("digits", "cifar10")
DEFAULT_STUDY = "nndl-search"
DEFAULT_OUT = "nndl-search"
JOURNAL_NAME = "study.journal"
CONFIG_ATTR = "nndl_config"
MAX_RETRIES = 1  # a trial whose worker died is run once more; twice means it kills workers


class SearchError(ValueError):
    """Bad search input: one line naming the argument, the value and what was expected."""


# --------------------------------------------------------------------------- search space

def _parse_bool(text):
    lowered = str(text).strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


@dataclass(frozen=True)
class _Hyperparameter:
    kind: type            # float, int, bool or str
    check: object         # value -> error text or None
    expected: str         # the domain, for error messages
    rangeable: bool       # may be given as a Range


def _check_rule(v):
    return None if v in optim.UPDATE_RULES else "not a known update rule"


def _in(name):
    """The check of a numeric hyperparameter: its domain in ``nndl._validation.DOMAINS``."""
    return lambda v: None if v in DOMAINS[name] else ""


HYPERPARAMETERS = {
    "learning_rate": _Hyperparameter(float, _in("learning_rate"), "a number " + DOMAINS["learning_rate"].interval, True),
    "reg": _Hyperparameter(float, _in("reg"), "a number " + DOMAINS["reg"].interval, True),
    "num_layers": _Hyperparameter(int, _in("num_layers"), "an int >= 1 (hidden layers)", True),
    "hidden_size": _Hyperparameter(int, _in("hidden_size"), "an int " + DOMAINS["hidden_size"].interval, True),
    "dropout": _Hyperparameter(float, _in("dropout"), "a number " + DOMAINS["dropout"].interval, True),
    "use_batchnorm": _Hyperparameter(bool, lambda v: None, "true or false", False),
    "batch_size": _Hyperparameter(int, _in("batch_size"), "an int " + DOMAINS["batch_size"].interval, True),
    "update_rule": _Hyperparameter(str, _check_rule, "one of " + ", ".join(optim.UPDATE_RULES), False),
    "lr_decay": _Hyperparameter(float, _in("lr_decay"), "a number " + DOMAINS["lr_decay"].interval, True),
    "weight_scale": _Hyperparameter(float, _in("weight_scale"), "a number " + DOMAINS["weight_scale"].interval, True),
}


def _known():
    return ", ".join(HYPERPARAMETERS)


def _hyper(name):
    if name not in HYPERPARAMETERS:
        raise SearchError(f"unknown hyperparameter {name!r}; known ones are {_known()}")
    return HYPERPARAMETERS[name]


def _coerce(name, value):
    """``value`` (text or a TOML/JSON scalar) as the type of ``name``, checked against its domain."""
    hp = _hyper(name)
    try:
        if hp.kind is bool:
            out = value if isinstance(value, bool) else _parse_bool(value)
        elif hp.kind is int:
            if isinstance(value, bool):
                raise ValueError
            number = float(value.strip()) if isinstance(value, str) else value
            if isinstance(number, float) and (not math.isfinite(number) or number != int(number)):
                raise ValueError
            out = int(number)
        elif hp.kind is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(value.strip()) if isinstance(value, str) else float(value)
            if not math.isfinite(out):
                raise ValueError
        else:
            if not isinstance(value, str):
                raise ValueError
            out = value.strip()
    except (TypeError, ValueError):
        raise SearchError(f"{name} must be {hp.expected}, got {value!r}") from None
    if hp.check(out) is not None:
        raise SearchError(f"{name} must be {hp.expected}, got {value!r}")
    return out


@dataclass(frozen=True)
class Range:
    """A continuous (float) or integer interval ``[low, high]``, uniform or log-uniform."""
    low: float
    high: float
    log: bool = False

    def describe(self):
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "")


@dataclass(frozen=True)
class Choices:
    """A list of values, searched as a categorical (and enumerated by the grid)."""
    values: tuple

    def describe(self):
        return ",".join(_fmt(v) for v in self.values)


@dataclass(frozen=True)
class Fixed:
    """One value, not searched."""
    value: object

    def describe(self):
        return _fmt(self.value)


def _fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _make_range(name, low, high, log=False, num=None):
    """A checked Range, or the Choices it expands to when ``num`` points are asked for."""
    hp = _hyper(name)
    if not hp.rangeable:
        raise SearchError(f"{name} takes a list of values, not a range (it must be {hp.expected})")
    low, high = _coerce(name, low), _coerce(name, high)
    if low > high:
        raise SearchError(f"{name} range {_fmt(low)}:{_fmt(high)} is inverted; write it as low:high")
    if low == high:
        raise SearchError(f"{name} range {_fmt(low)}:{_fmt(high)} is empty; give a single value "
                          f"to fix {name} at {_fmt(low)}")
    if log and low <= 0:
        raise SearchError(f"{name} log range must start above 0, got {_fmt(low)}:{_fmt(high)}")
    if num is None:
        return Range(low, high, bool(log))
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise SearchError(f"{name} range needs at least 2 points, got {num!r}")
    points = np.geomspace(low, high, num) if log else np.linspace(low, high, num)
    if hp.kind is int:
        values = sorted({int(round(p)) for p in points})
    else:
        values = [float(p) for p in points]
    return _make_choices(name, values)


def _make_choices(name, values):
    if len(values) == 0:
        raise SearchError(f"{name} list of values is empty; give at least one value")
    coerced = []
    for v in values:
        c = _coerce(name, v)
        if c not in coerced:
            coerced.append(c)
    return Fixed(coerced[0]) if len(coerced) == 1 else Choices(tuple(coerced))


def parse_spec(name, text):
    """Read the command-line form of one hyperparameter's spec.

    Parameters
    ----------
    name : str
        A key of ``HYPERPARAMETERS``.
    text : str
        ``LOW:HIGH`` (a range; add ``:log`` for log scale and ``:N`` to take N evenly or
        geometrically spaced values instead), ``A,B,C`` (a list) or ``V`` (a fixed value).

    Returns
    -------
    Range, Choices or Fixed
    """
    _hyper(name)
    text = str(text).strip()
    if text == "":
        raise SearchError(f"{name} has an empty value; give a range LOW:HIGH, a list A,B or a value")
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) < 2 or parts[0] == "" or parts[1] == "":
            raise SearchError(f"{name} range {text!r} needs both ends, as LOW:HIGH")
        log, num = False, None
        for extra in parts[2:]:
            if extra in ("log", "linear"):
                log = extra == "log"
            elif extra.isdigit():
                num = int(extra)
            else:
                raise SearchError(f"{name} range {text!r}: unknown modifier {extra!r} "
                                  f"(expected log, linear or a number of points)")
        return _make_range(name, parts[0], parts[1], log, num)
    if "," in text:
        return _make_choices(name, [p for p in (q.strip() for q in text.split(",")) if p != ""])
    return Fixed(_coerce(name, text))


def _spec_from_toml(name, value):
    """A spec from its TOML form: a table {low, high, log, num}, an array, or a scalar."""
    _hyper(name)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"low", "high", "log", "num"})
        if unknown or "low" not in value or "high" not in value:
            raise SearchError(f"{name} range table must have low and high (and optionally log, num), "
                              f"got keys {sorted(value)}")
        if not isinstance(value.get("log", False), bool):
            raise SearchError(f"{name}: log must be true or false, got {value['log']!r}")
        return _make_range(name, value["low"], value["high"], value.get("log", False), value.get("num"))
    if isinstance(value, list):
        return _make_choices(name, value)
    return Fixed(_coerce(name, value))


DEFAULT_SPACE = {
    "learning_rate": Range(1e-4, 1e-1, log=True),
    "reg": Range(1e-6, 1e-1, log=True),
    "num_layers": Range(1, 3),
    "hidden_size": Choices((64, 128, 256)),
    "dropout": Range(0.0, 0.5),
    "use_batchnorm": Choices((False, True)),
    "batch_size": Choices((32, 64, 128, 256)),
    "update_rule": Choices(("sgd_momentum", "rmsprop", "adam")),
    "lr_decay": Range(0.85, 1.0),
    "weight_scale": Range(1e-3, 1e-1, log=True),
}


def make_space(overrides=None):
    """``DEFAULT_SPACE`` with ``overrides`` (name -> spec, text or TOML value) applied."""
    space = dict(DEFAULT_SPACE)
    for name, spec in (overrides or {}).items():
        if isinstance(spec, (Range, Choices, Fixed)):
            _hyper(name)
            space[name] = spec
        elif isinstance(spec, str):
            space[name] = parse_spec(name, spec)
        else:
            space[name] = _spec_from_toml(name, spec)
    return space


def _space_to_json(space):
    out = {}
    for name, spec in space.items():
        if isinstance(spec, Range):
            out[name] = {"low": spec.low, "high": spec.high, "log": spec.log}
        elif isinstance(spec, Choices):
            out[name] = list(spec.values)
        else:
            out[name] = spec.value
    return out


def _space_from_json(obj):
    return {name: _spec_from_toml(name, value) for name, value in obj.items()}


def _suggest(trial, space):
    """Draw one configuration from ``space`` through an Optuna trial."""
    params = {}
    for name, spec in space.items():
        kind = HYPERPARAMETERS[name].kind
        if isinstance(spec, Fixed):
            params[name] = spec.value
        elif isinstance(spec, Choices):
            params[name] = trial.suggest_categorical(name, list(spec.values))
        elif kind is int:
            params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return params


def _grid_points(space):
    """Every combination of the space's lists, in nested-loop order (first name outermost)."""
    axes = []
    for name, spec in space.items():
        if isinstance(spec, Range):
            if HYPERPARAMETERS[name].kind is int and not spec.log and spec.high - spec.low <= 50:
                axes.append((name, list(range(int(spec.low), int(spec.high) + 1))))
                continue
            raise SearchError(
                f"the grid sampler needs a list of values for {name}, got the range {spec.describe()}; "
                f"give values such as {name}=A,B,C or LOW:HIGH:log:N")
        if isinstance(spec, Choices):
            axes.append((name, list(spec.values)))
    points = [{}]
    for name, values in axes:
        points = [{**p, name: v} for p in points for v in values]
    return points


# --------------------------------------------------------------------------- configuration

@dataclass
class _StudyConfig:
    """Everything that must be the same for every worker of a study (stored in the study)."""
    space: dict
    trials: int = 30
    epochs: int = 10
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    dataset: str = "digits"
    num_validation: object = None
    num_training: object = None

    def to_json(self):
        d = asdict(self)
        d["space"] = _space_to_json(self.space)
        return d

    @classmethod
    def from_json(cls, obj):
        obj = dict(obj)
        obj["space"] = _space_from_json(obj["space"])
        return cls(**obj)


_SETTINGS = ("trials", "epochs", "sampler", "pruner", "seed", "dataset", "num_validation", "num_training")


def _check_settings(settings):
    """Validate the study-level settings that are given (None means not given)."""
    for key in ("trials", "epochs"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"{key} must be an int >= 1, got {v!r}")
    for key in ("num_validation", "num_training"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"{key} must be an int >= 1, got {v!r}")
    seed = settings.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SearchError(f"seed must be an int >= 0, got {seed!r}")
    for key, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("dataset", DATASETS)):
        v = settings.get(key)
        if v is not None and v not in choices:
            raise SearchError(f"{key} must be one of {', '.join(choices)}; got {v!r}")


def load_config(path):
    """Read a TOML search file.

    The file may hold a ``[space]`` table (hyperparameter -> ``{low, high, log, num}``, an
    array of values, or one value) and a ``[search]`` table with any of ``trials``, ``epochs``,
    ``sampler``, ``pruner``, ``seed``, ``dataset``, ``num_validation``, ``num_training``.

    Returns
    -------
    space : dict of str -> spec
    settings : dict
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise SearchError("reading a TOML search file on Python 3.10 needs tomli "
                              "(pip install 'nndl[search]')") from None
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise SearchError(f"search file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SearchError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:  # a directory, no permission, ...
        raise SearchError(f"cannot read search file {path}: {exc.strerror or exc}") from None
    unknown = sorted(set(doc) - {"space", "search"})
    if unknown:
        raise SearchError(f"{path}: unknown table(s) {', '.join(unknown)}; expected [space] and [search]")
    space_doc, settings = doc.get("space", {}), dict(doc.get("search", {}))
    if not isinstance(space_doc, dict) or not isinstance(settings, dict):
        raise SearchError(f"{path}: [space] and [search] must be tables")
    bad = sorted(set(settings) - set(_SETTINGS))
    if bad:
        raise SearchError(f"{path}: unknown [search] key(s) {', '.join(bad)}; known ones are {', '.join(_SETTINGS)}")
    space = {}
    for name, value in space_doc.items():
        try:
            space[name] = _spec_from_toml(name, value)
        except SearchError as exc:
            raise SearchError(f"{path}: {exc}") from None
    try:
        _check_settings(settings)
    except SearchError as exc:
        raise SearchError(f"{path}: {exc}") from None
    return space, settings


# --------------------------------------------------------------------------- data and training

DIGITS_NUM_TEST = TRAIN_DEFAULTS["digits"]["num_test"]
"""Digits held out as the test split of a digits search: the same 360 as ``nndl train``'s."""


def load_dataset(name="digits", data_dir=None, num_validation=None, num_training=None):
    """Load a dataset by name as float32 splits; the one place the search reads data.

    Parameters
    ----------
    name : {'digits', 'cifar10'}
        'digits' is the built-in 8x8 handwritten digits; 'cifar10' reads the official
        python batches from ``data_dir``.
    data_dir : str, optional
        CIFAR-10 directory (default: ``nndl.data_utils``'s default location).
    num_validation, num_training : int, optional
        Split sizes (default: the loader's; for CIFAR-10, 1,000 validation images and every
        other training image). The validation and test splits do not depend on
        ``num_training``: a smaller training split is cut from the front of the full one.

    Returns
    -------
    dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test`` (possibly
        empty), ``mean_image``, ``class_names``, and ``source``: the JSON description of the
        split that is saved with the best model, so that ``nndl evaluate`` rebuilds it.
    """
    from . import data_utils

    if name == "digits":
        # The search keeps the loader's fixed test split; say so in terms of the two sizes a
        # search can set (the loader's own message would also name its num_test).
        available = data_utils.NUM_DIGITS - DIGITS_NUM_TEST
        if num_validation is not None and num_validation >= available:
            raise SearchError(f"num_validation must be less than {available} for digits (the {data_utils.NUM_DIGITS} "
                              f"digits less the {DIGITS_NUM_TEST} of the test split), got {num_validation}")
        validation = num_validation if num_validation is not None else TRAIN_DEFAULTS["digits"]["num_validation"]
        if num_training is not None and num_training + validation > available:
            raise SearchError(f"num_training + num_validation must be at most {available} for digits (the "
                              f"{data_utils.NUM_DIGITS} digits less the {DIGITS_NUM_TEST} of the test split), "
                              f"got {num_training} + {validation}")
        # The split nndl train uses (and nndl evaluate rebuilds from the saved source).
        data = data_utils.get_digits_data(num_validation=validation, num_test=DIGITS_NUM_TEST,
                                          num_training=num_training, seed=DIGITS_SPLIT_SEED, dtype=np.float32)
        source = {"name": "digits", "num_validation": len(data["y_val"]), "num_test": len(data["y_test"]),
                  "split_seed": DIGITS_SPLIT_SEED}
    elif name == "cifar10":
        num_validation = 1000 if num_validation is None else num_validation
        data = data_utils.get_CIFAR10_data(num_training=None, num_validation=num_validation,
                                           num_test=None, cifar10_dir=data_dir, dtype=np.float32)
        if num_training is not None:
            if num_training > len(data["y_train"]):
                raise SearchError(f"num_training must be at most the {len(data['y_train'])} CIFAR-10 training "
                                  f"images left after validation, got {num_training}")
            data["X_train"], data["y_train"] = data["X_train"][:num_training], data["y_train"][:num_training]
        directory = data_dir if data_dir is not None else os.path.join(
            data_utils.default_data_dir(), data_utils.CIFAR10_DIRNAME)
        source = {"name": "cifar10", "data_dir": os.path.abspath(directory), "num_validation": num_validation,
                  "num_test": None}
    else:
        raise SearchError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    data["source"] = source
    return data


def _num_classes(data):
    names = data.get("class_names")
    if names is not None:
        return len(names)
    return int(max(np.max(data["y_train"]), np.max(data["y_val"]))) + 1


def train_config(params, data, epochs, seed, epoch_callback=None):
    """Train one configuration; the trials and the final retraining both go through here.

    Parameters
    ----------
    params : dict
        A value for every name in ``HYPERPARAMETERS``.
    data : dict
        ``X_train`` (N, ...), ``y_train`` (N,), ``X_val`` (N_val, ...), ``y_val`` (N_val,).
    epochs : int
    seed : int
        Seeds the initial weights, dropout masks and batch order.
    epoch_callback : callable, optional
        Passed to the Solver (``epoch_callback(solver)`` after each accuracy check).

    Returns
    -------
    model : FullyConnectedNet
        With the parameters of its best validation epoch.
    solver : Solver
    """
    from .fc_net import FullyConnectedNet
    from .solver import Solver

    rng = np.random.default_rng(seed)
    input_dim = int(np.prod(data["X_train"].shape[1:]))
    model = FullyConnectedNet(
        [int(params["hidden_size"])] * int(params["num_layers"]), input_dim=input_dim,
        num_classes=_num_classes(data), dropout=params["dropout"],
        use_batchnorm=params["use_batchnorm"], reg=params["reg"],
        weight_scale=params["weight_scale"], dtype=np.float32, seed=rng)
    solver = Solver(
        model, data, update_rule=params["update_rule"],
        optim_config={"learning_rate": params["learning_rate"]}, lr_decay=params["lr_decay"],
        batch_size=int(params["batch_size"]), num_epochs=epochs, verbose=False,
        sampling="permutation", seed=rng, epoch_callback=epoch_callback)
    solver.train()
    return model, solver


def _trial_seed(study_seed, number):
    """A seed that depends only on the study's seed and the trial number."""
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


# --------------------------------------------------------------------------- storage

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
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise SearchError(f"heartbeat must be an int >= 1 (seconds), got {heartbeat!r}")
    shown = _redact(spec)
    url = _with_postgres_driver(spec)
    engine_kwargs = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # An unreachable host must fail within seconds, not after the OS's TCP timeout.
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    import inspect

    # Optuna 5 renamed failed_trial_callback (still accepted, with a warning) to this.
    callback = ("heartbeat_stale_trial_callback"
                if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                else "failed_trial_callback")
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


# --------------------------------------------------------------------------- liveness

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


# --------------------------------------------------------------------------- study

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


# --------------------------------------------------------------------------- results

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
    # Bare Figures, as nndl.vis_utils draws: a search run from a notebook leaves pyplot's
    # backend and state alone.
    from .vis_utils import _figure, _save

    try:
        import matplotlib  # noqa: F401 - only to know whether plots can be drawn
    except ImportError:
        return []
    from optuna.trial import TrialState

    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    done.sort(key=lambda t: t.number)
    paths = []
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
    paths.append(os.path.join(out, "best_value.png"))
    _save(fig, paths[-1])

    varied = [n for n, s in space.items() if not isinstance(s, Fixed)]
    if varied:
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
        paths.append(os.path.join(out, "params.png"))
        _save(fig, paths[-1])
    return paths


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

    from .checkpoint import save_model

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


# --------------------------------------------------------------------------- entry points

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


def _blas_env(threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    # nndl's own elementwise kernels stay on one thread (their default) in every worker, even
    # if this process was started with more.
    env["NNDL_NUM_THREADS"] = "1"
    return env


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
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SearchError(f"jobs must be an int >= 1, got {jobs!r}")
    if data is not None and jobs > 1:
        raise SearchError("data= works with jobs=1 only; with several workers each loads the dataset by name")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise SearchError(f"threads must be an int >= 1, got {threads!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise SearchError(f"timeout must be a number of seconds > 0, got {timeout!r}")
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


def _search(requested, given, given_settings, *, data, data_dir, jobs, storage, study_name, out,
            timeout, heartbeat, retrain, report_only, verbose, worker_index, t0, threads):
    label = _storage_label(storage, out)
    if worker_index is None:
        _check_out_is_ours(out, study_name)
        if report_only and storage is None and not os.path.isfile(os.path.join(out, JOURNAL_NAME)):
            # Checked before open_storage, which would create --out for a journal to report on.
            raise SearchError(f"--report-only: there is no study to report on in --out {out} "
                              f"(no {JOURNAL_NAME}); give the --out or --storage of a search")
    create = worker_index is None and not report_only

    def load(cfg):
        """The dataset of a study configuration, and the split it was loaded for."""
        split = (cfg.dataset, cfg.num_validation, cfg.num_training)
        return load_dataset(cfg.dataset, data_dir, cfg.num_validation, cfg.num_training), split

    # The data is loaded (and its split sizes checked) before this run creates a study or a
    # journal, so that a bad dataset leaves nothing behind for the corrected command to trip
    # over; a joiner loads the stored study's split below. In-memory data= is used as given.
    loaded = None
    journal = os.path.join(out, JOURNAL_NAME) if storage is None else (
        None if "://" in storage else os.fspath(storage))
    if create and data is None and journal is not None and not os.path.lexists(journal):
        data, loaded = load(requested)
    store = open_storage(storage, out, heartbeat)
    if create and data is None and not _study_exists(store, study_name):
        data, loaded = load(requested)
    study, config, created = _open_study(store, study_name, requested if create else None,
                                         create and jobs == 1, label)
    if not created and worker_index is None:
        _reconcile(config, requested, given, study_name, label)
    stored_split = (config.dataset, config.num_validation, config.num_training)
    if not report_only and (data is None or (loaded is not None and loaded != stored_split)):
        # A joiner or worker (or this run, when another machine created the study first):
        # the stored split. The parent of workers loads it too, so that a bad dataset fails
        # once, before they start.
        data, loaded = load(config)
    if not created and worker_index is None and "trials" in given_settings \
            and given_settings["trials"] != config.trials:
        # Only once the data loaded: a joiner that fails leaves the study as it was.
        config.trials = given_settings["trials"]
        study.set_user_attr(CONFIG_ATTR, config.to_json())
    if verbose and worker_index is None:
        action = "created" if created else "joined"
        size = f"grid of {len(_grid_points(config.space))}" if config.sampler == "grid" else f"{config.trials} trials"
        print(f"study {study_name!r} {action} in {label}: {size}, {config.epochs} epochs each, "
              f"sampler {config.sampler}, pruner {config.pruner}, dataset {config.dataset}", flush=True)

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


def _study_exists(storage, name):
    """True if ``storage`` holds a study called ``name`` (False if it cannot say: the open
    that follows then reports the storage's problem)."""
    try:
        return name in {s.study_name for s in _optuna().get_all_study_summaries(storage)}
    except Exception:  # noqa: BLE001 - storage errors are reported by _open_study
        return False


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


def _param_arg(text):
    """``--param NAME=SPEC`` parsed by argparse, so that a bad spec is a usage error (exit 2)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=SPEC (e.g. learning_rate=1e-4:1e-1:log), got {text!r}")
    name, spec = text.split("=", 1)
    name = name.strip()
    try:
        return name, parse_spec(name, spec)
    except SearchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_search_arguments(parser):
    """Add the ``nndl search`` options to an argparse parser."""
    parser.add_argument("--config", metavar="FILE", help="TOML file with [space] and [search] tables")
    parser.add_argument("--param", "-p", metavar="NAME=SPEC", action="append", type=_param_arg, default=[],
                        help="search NAME over SPEC: LOW:HIGH[:log][:N], A,B,C or a fixed value "
                             "(repeatable; see --list-params)")
    parser.add_argument("--list-params", action="store_true", help="list the hyperparameters and their defaults")
    parser.add_argument("--trials", type=_positive_int, help="trials that do not fail, in total over all workers (default 30)")
    parser.add_argument("--epochs", type=_positive_int, help="training epochs per trial (default 10)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="tpe (default), random or grid")
    parser.add_argument("--pruner", choices=PRUNERS, help="median (default), halving (successive halving) or none")
    parser.add_argument("--seed", type=_nonneg_int, help="study seed (default 0)")
    parser.add_argument("--dataset", choices=DATASETS, help="digits (built in, default) or cifar10")
    parser.add_argument("--data-dir", help="CIFAR-10 directory")
    parser.add_argument("--num-validation", type=_positive_int, help="validation examples (CIFAR-10 default 1000)")
    parser.add_argument("--num-training", type=_positive_int, help="training examples (default: all the rest)")
    parser.add_argument("--jobs", "-j", type=_positive_int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--storage", help=f"journal file or database URL (default OUT/{JOURNAL_NAME}); "
                                          "postgresql://... lets several machines join one study")
    parser.add_argument("--study", default=DEFAULT_STUDY, help=f"study name (default {DEFAULT_STUDY})")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--timeout", type=_positive_float, help="start no trial after this many seconds")
    parser.add_argument("--threads", type=_positive_int, help="BLAS threads per worker (default: cores // jobs)")
    parser.add_argument("--heartbeat", type=_positive_int, default=10, help="seconds between database heartbeats (default 10)")
    parser.add_argument("--no-retrain", action="store_true", help="do not retrain and save the best model")
    parser.add_argument("--report-only", action="store_true", help="run no trials; write the results of the stored study")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    return parser


def _list_params():
    lines = [f"{'hyperparameter':16s} {'default':28s} domain"]
    for name, spec in DEFAULT_SPACE.items():
        lines.append(f"{name:16s} {spec.describe():28s} {HYPERPARAMETERS[name].expected}")
    return "\n".join(lines)


def run_search_command(args):
    """Run ``nndl search`` from parsed arguments; returns the exit code.

    Raises
    ------
    SearchError
        On bad input or storage; the caller prints it as one line and exits nonzero.
    """
    if args.list_params:
        print(_list_params())
        return 0
    space, settings = ({}, {})
    if args.config:
        try:
            space, settings = load_config(args.config)
        except SearchError as exc:
            raise SearchError(f"--config: {exc}") from None
    for name, spec in args.param:
        space[name] = spec  # parsed by argparse (_param_arg)
    for key in _SETTINGS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    result = search(space, **settings, data_dir=args.data_dir, jobs=args.jobs, storage=args.storage,
                    study_name=args.study, out=args.out, timeout=args.timeout, heartbeat=args.heartbeat,
                    threads=args.threads,
                    retrain=not args.no_retrain, report_only=args.report_only,
                    verbose=not args.quiet, _worker_index=args.worker_index)
    if args.quiet and args.worker_index is None:
        _print_summary(result)
    if args.worker_index is None and not result.complete and not args.report_only and args.timeout is None:
        return 1
    return 0


def main(argv=None):
    """``python -m nndl.search``: the ``nndl search`` command on its own."""
    from .cli import _Parser

    # Exit statuses as the nndl command's: 2 for a usage error (one line), 1 for a user error.
    parser = _Parser(prog="nndl search", description="Hyperparameter search with Optuna.")
    add_search_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    try:
        return run_search_command(args)
    except (SearchError, ValueError, TypeError, OSError) as exc:
        print(f"nndl search: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nndl search: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
