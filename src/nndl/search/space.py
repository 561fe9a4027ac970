"""Search spaces: the hyperparameters a search tunes and the specs they are drawn from.

Contract
--------
``HYPERPARAMETERS`` names the hyperparameters of a FullyConnectedNet classifier that a search
tunes (learning_rate, reg, num_layers, hidden_size, dropout, use_batchnorm, batch_size,
update_rule, lr_decay, weight_scale), each with its type and domain (the numeric domains are
those of ``nndl._validation.DOMAINS``). A *spec* is a ``Range`` (low < high, optionally
log-scaled), a ``Choices`` list or a ``Fixed`` value; a *space* maps names to specs, and
``make_space`` fills in ``DEFAULT_SPACE`` for the names not given.

``parse_spec(name, text)`` reads the command-line form (``1e-4:1e-1:log``, ``64,128``,
``0.5``; ``LOW:HIGH[:log]:N`` is shorthand for N evenly or geometrically spaced values), and
``_spec_from_toml`` the TOML form (a table ``{low, high, log, num}``, an array or a scalar),
which is also how a space is stored in a study (``_space_to_json``). Unknown names, empty or
inverted ranges and values outside a hyperparameter's domain raise ``SearchError`` (a
``ValueError``) with one line that names the hyperparameter, the value and what was expected.

``_grid_points`` enumerates a space for the grid sampler, in nested-loop order (first name
outermost); ``_suggest`` draws one configuration through an Optuna trial. This module does not
import Optuna.
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import optim
from .._validation import DOMAINS


class SearchError(ValueError):
    """Bad search input: one line naming the argument, the value and what was expected."""


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
