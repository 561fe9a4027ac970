"""Input checks shared by nndl's public functions and classes.

Every check raises ``ValueError`` or ``TypeError`` with a one-line message that names the
argument, quotes the value received and says what was expected. Checks run at the public
boundary (constructors, ``loss``, ``Solver``, the public layer blocks); the few that run at
every step (labels in the losses, the activation name of a hidden block) are O(1) or one pass
over a batch's labels, never over the activations.
"""

import argparse
import math
import numbers
from dataclasses import dataclass

import numpy as np


def _short(value, limit=60):
    """A short printable form of ``value`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_positive_int(name, value):
    """Return ``value`` as int if it is a positive integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {_short(value)}")
    return int(value)


def check_hidden_dims(name, value):
    """Return ``value`` as a list of positive ints (an int counts as a one-element list)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value]
    try:
        dims = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a non-empty list of positive ints, got {_short(value)}") from None
    ok = dims and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in dims
    )
    if not ok:
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {_short(value)}")
    return [int(d) for d in dims]


def check_nonneg_float(name, value):
    """Return ``value`` as float if it is a finite number >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {_short(value)}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {_short(value)}")
    return float(value)


def check_positive_float(name, value):
    """Return ``value`` as float if it is a finite number > 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number > 0, got {_short(value)}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {_short(value)}")
    return float(value)


def check_probability(name, value):
    """Return ``value`` as float if it lies in [0, 1), else raise (used for dropout)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {_short(value)}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {valid}; got {_short(value)}")
    return value


def check_array(name, value, ndim_min=1, finite=True):
    """Return ``value`` as an ndarray of real numbers (with no NaN/inf if ``finite``), else raise."""
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception:  # noqa: BLE001 - anything NumPy cannot convert is a type error
            raise TypeError(f"{name} must be a numeric array, got {_short(value)}") from None
    if value.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {value.dtype}")
    if value.ndim < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} dimension(s), got shape {value.shape}")
    # The sum is NaN/inf whenever an element is, and costs far less than an elementwise
    # isfinite over a large dataset; only if the sum overflows is the exact test needed.
    if finite:
        check_finite(name, value)
    return value


def check_float_ndarray(name, value, why):
    """Raise ``TypeError`` unless ``value`` is an ndarray of a float dtype (``why``: the reason
    it must be one, for the message)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        kind = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name} must be a float ndarray ({why}), got {kind}")


def check_finite(name, value):
    """Raise ``ValueError`` if the float array ``value`` holds NaN or inf."""
    if value.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            total = value.sum()
        if not np.isfinite(total) and not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf values; clean or impute the data first")


def check_features(name, X, num_features, finite=True):
    """Check that ``X`` is (N, d_1, ..., d_k) with d_1 * ... * d_k == num_features."""
    X = check_array(name, X, ndim_min=2, finite=finite)
    got = math.prod(X.shape[1:])  # not np.prod: this runs on every batch, and is 25x faster
    if got != num_features:
        raise ValueError(
            f"{name} must have {num_features} features per example (the model's input_dim), "
            f"got shape {X.shape} with {got}"
        )
    return X


def check_labels(name, y, num_examples, num_classes=None):
    """Check that ``y`` is a 1-D integer array of length ``num_examples`` with values in [0, C)."""
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and y.size and np.isfinite(y).all() and (y == np.round(y)).all():
            # Whole-valued floats (e.g. labels read from a CSV) are accepted and converted.
            y = y.astype(np.intp)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != num_examples:
        raise ValueError(f"{name} must have shape ({num_examples},) to match the inputs, got {y.shape}")
    if num_classes is not None and y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} must lie in [0, {num_classes}), got label {bad}")
    return y


MODEL_DTYPES = ("float32", "float64")


def parse_dtype(dtype):
    """``np.dtype(dtype)``, or None when ``dtype`` is None or names no dtype (the callers then
    raise their own error). None is not read as float64, as ``np.dtype(None)`` would: refuse
    it rather than guess."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        return None


def check_model_dtype(dtype):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``TypeError``.

    Narrower floats fail in training (float16 rounds Adam's epsilon to 0 and overflows the
    softmax), and wider ones have no BLAS: matrix products would crawl.
    """
    value = parse_dtype(dtype)
    # Compared as dtypes, not names: a big-endian float32 is named float32 too, but BLAS
    # cannot multiply it at speed.
    if value is None:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    if value not in (np.dtype(np.float32), np.dtype(np.float64)):
        shown = f"{value.str} ({value.name} in the other byte order)" if value.name in MODEL_DTYPES else value.name
        raise TypeError(f"dtype must be float32 or float64, got {shown}")
    return value


def check_seed(seed):
    """Return ``seed`` if it is None, a non-negative int (as int) or a numpy Generator, else raise
    ``TypeError``: the seeds models, the Solver and ``load_model`` take."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise TypeError(f"seed must be None, a non-negative int or a numpy Generator, got {_short(seed)}")


# --------------------------------------------------------------------------- parameter domains
#
# The domain of every numeric setting a user can give, declared once: the Solver, the update
# rules, the command line's argparse types and the search space all check against this table,
# so a domain cannot drift between them. Each caller words its own message ("must be",
# "expected"), and the interval text comes from here.

@dataclass(frozen=True)
class Domain:
    """Numbers of ``kind`` (int or float) between ``low`` and ``high``; an end is included
    unless it is open. Infinite ends mean no bound; NaN and inf are never inside."""

    kind: type
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.kind is int and value != int(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    @property
    def interval(self):
        """'> 0', '>= 1', 'in (0, 1]', ...: the domain for a message."""
        if math.isinf(self.high):
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}")

    @property
    def expected(self):
        """'a number in [0, 1)', 'a positive integer', 'an integer >= 0': the command line's words."""
        if self.kind is int:
            return "a positive integer" if (self.low, self.low_open) == (1, False) else f"an integer {self.interval}"
        return f"a number {self.interval}"

    def argument_type(self):
        """An argparse ``type`` that parses text of this domain (errors: 'expected ..., got ...')."""
        def parse(text):
            try:
                value = self.kind(text)
            except ValueError:
                value = None
            if value is None or value not in self:
                raise argparse.ArgumentTypeError(f"expected {self.expected}, got {text!r}")
            return value

        return parse


POSITIVE_INT = Domain(int, 1)
NONNEGATIVE_INT = Domain(int, 0)
POSITIVE = Domain(float, 0, low_open=True)
NONNEGATIVE = Domain(float, 0)
PROBABILITY = Domain(float, 0, 1, high_open=True)
DECAY = Domain(float, 0, 1, low_open=True)

DOMAINS = {
    "learning_rate": POSITIVE,
    "reg": NONNEGATIVE,
    "weight_decay": NONNEGATIVE,
    "weight_scale": POSITIVE,
    "dropout": PROBABILITY,
    "label_smoothing": PROBABILITY,
    "lr_decay": DECAY,
    "warmup_epochs": NONNEGATIVE,
    "hidden_size": POSITIVE_INT,
    "num_layers": POSITIVE_INT,
    "batch_size": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "patience": POSITIVE_INT,
    "num_train_samples": POSITIVE_INT,
    "num_validation": POSITIVE_INT,
    "num_test": NONNEGATIVE_INT,
    "crop_padding": NONNEGATIVE_INT,
    "seed": NONNEGATIVE_INT,
}
"""The domain of each named setting (the names of ``nndl.recipes.SETTINGS`` and the search space)."""


def check_domain(name, value, domain=None):
    """Return ``value`` (as ``domain.kind``) if it lies in ``domain`` (default: ``DOMAINS[name]``),
    else raise ``ValueError`` ('<name> must be a number in (0, 1], got 1.5')."""
    domain = DOMAINS[name] if domain is None else domain
    if value not in domain:
        raise ValueError(f"{name} must be {'an int' if domain.kind is int else 'a number'} {domain.interval}, "
                         f"got {_short(value)}")
    return domain.kind(value)
