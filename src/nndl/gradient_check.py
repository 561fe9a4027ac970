"""Numeric gradients by centred differences, to check analytic backward passes.

Contract
--------
``eval_numerical_gradient(f, x)`` differentiates a scalar function ``f(x)``;
``eval_numerical_gradient_array(f, x, df)`` differentiates an array-valued ``f(x)`` contracted
with an upstream gradient ``df``. Both perturb ``x`` *in place* (so ``f`` may read ``x``
through a closure, e.g. ``model.params['W1']``) and restore every entry before returning.
``rel_error`` is the course's max relative error. Use float64 inputs: in float32 the
differences are dominated by round-off.
"""

import random

import numpy as np

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse",
           "rel_error"]


def rel_error(x, y):
    """Largest elementwise relative error ``|x - y| / max(1e-8, |x| + |y|)``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _centred_difference(f, x, index, h):
    """Return (f(x + h e_i), f(x - h e_i)) and leave x[index] as it was."""
    old = x[index]
    x[index] = old + h
    plus = f(x)
    x[index] = old - h
    minus = f(x)
    x[index] = old
    return plus, minus


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Numeric gradient of a scalar function.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : ndarray, any shape, float
        Point at which to differentiate; modified during the call and restored.
    verbose : bool
        Print each index and its partial derivative.
    h : float
        Step size.

    Returns
    -------
    grad : ndarray, shape of x
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        plus, minus = _centred_difference(f, x, index, h)
        grad[index] = (plus - minus) / (2 * h)
        if verbose:
            print(index, grad[index])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numeric gradient of ``sum(f(x) * df)`` for an array-valued ``f``.

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray`` of the shape of ``df``.
    x : ndarray, any shape, float
        Modified during the call and restored.
    df : ndarray
        Upstream gradient.
    h : float

    Returns
    -------
    grad : ndarray, shape of x
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        # Copies: f may return a view of x, which the next perturbation would change.
        plus, minus = _centred_difference(lambda z: np.array(f(z), copy=True), x, index, h)
        grad[index] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, verbose=True):
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random entries.

    Entries are chosen with Python's ``random`` module, as in the course.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : ndarray
    analytic_grad : ndarray, shape of x
    num_checks : int
    h : float
    verbose : bool
        Print one line per checked entry.

    Returns
    -------
    list of float
        The relative error at each checked entry.
    """
    errors = []
    for _ in range(num_checks):
        index = tuple(random.randrange(n) for n in x.shape)
        plus, minus = _centred_difference(f, x, index, h)
        numeric = (plus - minus) / (2 * h)
        analytic = float(analytic_grad[index])
        error = abs(numeric - analytic) / max(1e-12, abs(numeric) + abs(analytic))
        errors.append(error)
        if verbose:
            print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {error:e}")
    return errors
