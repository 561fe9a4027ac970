"""Numeric gradients by centred differences, to check analytic backward passes.

Contract
--------
``eval_numerical_gradient(f, x)`` differentiates a scalar function ``f(x)``;
``eval_numerical_gradient_array(f, x, df)`` differentiates an array-valued ``f(x)`` contracted
with an upstream gradient ``df``. Both perturb ``x`` *in place* (so ``f`` may read ``x``
through a closure, e.g. ``model.params['W1']``) and restore every entry before returning.
``rel_error`` is the course's max relative error. Use float64 inputs: in float32 the
differences are dominated by round-off.

``check_all_gradients(seed)`` runs the numeric check of every layer, sandwich and model in
nndl on small float64 inputs and returns one ``GradientCheck`` per (function, input) pair;
``nndl gradcheck`` prints them as a table.
"""

import math
import numbers
import random
import re
from typing import NamedTuple

import numpy as np

from ._validation import check_float_ndarray, check_positive_int

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse",
           "rel_error", "check_all_gradients", "GradientCheck"]


def rel_error(x, y):
    """Largest elementwise relative error ``|x - y| / max(1e-8, |x| + |y|)``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        # Broadcasting (N,) against (N, 1) would compare every pair and report nonsense.
        raise ValueError(f"rel_error needs x and y of one shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("rel_error needs at least one value to compare, got empty arrays")
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _check_point(x):
    """``x`` must be a writeable float array: it is perturbed in place by ``h``."""
    check_float_ndarray("x", x, "it is perturbed in place by h; use float64")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is perturbed in place and restored")


def _centred_difference(f, x, index, h):
    """Return (f(x + h e_i), f(x - h e_i)) and leave x[index] as it was."""
    old = x[index]
    try:
        x[index] = old + h
        plus = f(x)
        x[index] = old - h
        minus = f(x)
    finally:  # also when f raises or the user interrupts: x is often a model's live weights
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
    _check_point(x)
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
    _check_point(x)
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
    _check_point(x)
    num_checks = check_positive_int("num_checks", num_checks)
    if getattr(analytic_grad, "shape", None) != x.shape:
        raise ValueError(f"analytic_grad must have the shape of x {x.shape}, "
                         f"got {getattr(analytic_grad, 'shape', type(analytic_grad).__name__)}")
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


class GradientCheck(NamedTuple):
    """One analytic gradient compared with its numeric estimate."""

    name: str
    """The layer, sandwich or model checked."""
    wrt: str
    """The input or parameter differentiated."""
    rel_error: float
    """``rel_error(numeric, analytic)``."""
    abs_error: float
    """Largest absolute difference between the two gradients."""
    scale: float = math.nan
    """Largest magnitude in either gradient (NaN if unknown: then only ``rel_error`` decides)."""

    def passed(self, tol, atol=1e-8):
        """True if the analytic gradient matches the numeric one to ``tol``.

        Any of: ``rel_error < tol`` (the elementwise test of the course); the largest absolute
        difference is below ``tol`` times the largest entry (``abs_error <= tol * scale``: an
        entry far smaller than the rest has a relative error that only compares round-off);
        both gradients are ~0, every entry below ``atol`` (a gradient that is zero in theory).
        A gradient that is wrong everywhere, however small, still fails: its difference is
        of the order of its largest entry.
        """
        if not (math.isfinite(self.abs_error) and math.isfinite(self.rel_error)):
            return False  # NaN or inf in either gradient is never a match
        return self.rel_error < tol or self.abs_error <= tol * self.scale or self.scale < atol

    def verdict(self, tol, atol=1e-8):
        """``passed(tol, atol)`` and a short label saying which rule decided it."""
        if not self.passed(tol, atol):
            return False, "FAILED"
        if self.rel_error < tol:
            return True, "ok"
        if self.near_zero(atol):
            return True, f"ok (both gradients ~0: largest entry {self.scale:.1e})"
        return True, f"ok (abs. error {self.abs_error:.1e} = {self.abs_error / self.scale:.1e} of the largest entry)"

    def near_zero(self, atol=1e-8):
        """True if every entry of both gradients is below ``atol`` in magnitude (and finite)."""
        return math.isfinite(self.abs_error) and self.scale < atol


def _compare(name, wrt, numeric, analytic):
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"{name}: gradient of {wrt} has shape {analytic.shape}, expected {numeric.shape}")
    # np.max, not Python's max, so that a NaN in either gradient makes the scale NaN too.
    scale = float(np.max([np.max(np.abs(numeric), initial=0.0), np.max(np.abs(analytic), initial=0.0)]))
    return GradientCheck(name, wrt, rel_error(numeric, analytic), float(np.max(np.abs(numeric - analytic))), scale)


def _check_layer(name, forward, backward, inputs, names, rng):
    """Check ``backward`` against the numeric gradient of ``sum(forward(*inputs) * dout)``."""
    out, cache = forward(*inputs)
    dout = rng.standard_normal(out.shape)
    analytic = backward(dout, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    results = []
    for i, wrt in enumerate(names):
        numeric = eval_numerical_gradient_array(lambda _: forward(*inputs)[0], inputs[i], dout)
        results.append(_compare(name, wrt, numeric, analytic[i]))
    return results


def _check_loss(name, loss, x, y):
    _, dx = loss(x, y)
    return [_compare(name, "x", eval_numerical_gradient(lambda _: loss(x, y)[0], x, verbose=False), dx)]


def _check_model(name, model, X, y, loss=None):
    """Check every entry of ``model.params`` against the numeric gradient of the loss."""
    loss = loss or (lambda: model.loss(X, y))
    _, grads = loss()
    return [_compare(name, key, eval_numerical_gradient(lambda _: loss()[0], model.params[key], verbose=False),
                     grads[key])
            for key in sorted(model.params)]


def check_all_gradients(seed=0):
    """Numeric gradient check of every layer, sandwich and model, in float64.

    Parameters
    ----------
    seed : int
        Seed of the random inputs, weights and dropout masks.

    Returns
    -------
    list of GradientCheck
        One per (function or model, input or parameter) pair, layers first.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        # An int, not a Generator: it also fixes the dropout masks, which a check needs.
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal
    x, w, b = normal((4, 2, 3)), normal((6, 5)), normal(5)
    h, gamma, beta = normal((6, 5)), 1 + 0.1 * normal(5), normal(5)
    drop = {"mode": "train", "p": 0.3, "seed": seed}
    # One rng, drawn from in this order (layers, sandwiches, models): the order fixes every input.
    results = _check_layers(rng, x, w, b, h, gamma, beta, drop)
    results += _check_sandwiches(rng, x, w, b, gamma, beta, drop)
    results += _check_models(rng, seed)
    return results


def _check_layers(rng, x, w, b, h, gamma, beta, drop):
    """The checks of every layer and loss in ``layers``, drawing further inputs from ``rng``."""
    # Imported here: the course notebooks import this module on its own, before the rest.
    from . import layers as L

    normal = rng.standard_normal
    results = []
    results += _check_layer("affine", L.affine_forward, L.affine_backward, (x, w, b), ("x", "w", "b"), rng)
    for act in ("relu", "leaky_relu", "swish"):
        forward, backward = getattr(L, f"{act}_forward"), getattr(L, f"{act}_backward")
        results += _check_layer(act, forward, backward, (normal((4, 5)),), ("x",), rng)
    results += _check_layer("batchnorm", lambda *a: L.batchnorm_forward(*a, {"mode": "train"}),
                            L.batchnorm_backward, (h, gamma, beta), ("x", "gamma", "beta"), rng)
    results += _check_layer("layernorm", L.layernorm_forward, L.layernorm_backward, (h, gamma, beta),
                            ("x", "gamma", "beta"), rng)
    results += _check_layer("dropout", lambda a: L.dropout_forward(a, drop), L.dropout_backward,
                            (normal((6, 5)),), ("x",), rng)
    labels = rng.integers(5, size=6)
    results += _check_loss("softmax_loss", L.softmax_loss, normal((6, 5)), labels)
    results += _check_loss("svm_loss", L.svm_loss, normal((6, 5)), labels)
    return results


def _check_sandwiches(rng, x, w, b, gamma, beta, drop):
    """The checks of every sandwich in ``layer_utils``, each on its own copies of the inputs."""
    from . import layer_utils as U

    def fresh_bn():
        return {"mode": "train"}

    sandwiches = [
        ("affine_relu", U.affine_relu_forward, U.affine_relu_backward, ()),
        ("affine_batchnorm_relu", lambda *a: U.affine_batchnorm_relu_forward(*a, fresh_bn()),
         U.affine_batchnorm_relu_backward, (gamma, beta)),
        ("affine_layernorm_relu", U.affine_layernorm_relu_forward, U.affine_layernorm_relu_backward, (gamma, beta)),
        ("affine_relu_dropout", lambda *a: U.affine_relu_dropout_forward(*a, drop),
         U.affine_relu_dropout_backward, ()),
        ("affine_batchnorm_relu_dropout",
         lambda *a: U.affine_batchnorm_relu_dropout_forward(*a, fresh_bn(), drop),
         U.affine_batchnorm_relu_dropout_backward, (gamma, beta)),
    ]
    results = []
    for name, forward, backward, extra in sandwiches:
        inputs = (x.copy(), w.copy(), b.copy()) + tuple(e.copy() for e in extra)
        results += _check_layer(name, forward, backward, inputs, ("x", "w", "b", "gamma", "beta")[:len(inputs)], rng)
    return results


def _check_models(rng, seed):
    """The checks of every model's parameters on one small batch drawn from ``rng``."""
    from .autoencoder import LinearAutoencoder
    from .fc_net import FullyConnectedNet, TwoLayerNet

    normal = rng.standard_normal
    X, y = normal((5, 6)), rng.integers(4, size=5)
    fc = dict(input_dim=6, num_classes=4, weight_scale=0.5, dtype=np.float64, seed=seed)
    models = [
        ("fc_net.TwoLayerNet reg=0.7", TwoLayerNet(hidden_dims=7, reg=0.7, **fc)),
        ("FullyConnectedNet reg=3.14", FullyConnectedNet([7, 5], reg=3.14, **fc)),
        ("FullyConnectedNet batchnorm", FullyConnectedNet([7, 5], normalization="batchnorm", **fc)),
        ("FullyConnectedNet layernorm", FullyConnectedNet([7, 5], normalization="layernorm", **fc)),
        ("FullyConnectedNet dropout=0.3", FullyConnectedNet([7, 5], dropout=0.3, **fc)),
        ("FullyConnectedNet leaky_relu", FullyConnectedNet([7, 5], activation="leaky_relu", **fc)),
        ("FullyConnectedNet swish", FullyConnectedNet([7, 5], activation="swish", **fc)),
    ]
    results = []
    for name, model in models:
        # Biases b1, b2, ... start at zero; with them, a sample whose hidden units are all
        # zeroed (ReLU and dropout) puts the next layer's pre-activation exactly on ReLU's
        # kink, where the numeric and analytic derivatives differ by design. Random biases
        # keep off it.
        for key in model.params:
            if re.fullmatch(r"b\d+", key):
                model.params[key] = 0.1 * normal(model.params[key].shape)
        results += _check_model(name, model, X, y)
    results += _check_standalone_models(seed, X, y)
    results += _check_model("LinearAutoencoder reg=0.1",
                            LinearAutoencoder(6, 3, weight_scale=0.5, reg=0.1, seed=seed), X, y)
    return results


def _check_standalone_models(seed, X, y):
    """The checks of the two stand-alone TwoLayerNets, leaving NumPy's global state as it was."""
    from .cs231n.classifiers.neural_net import TwoLayerNet as CS231nTwoLayerNet
    from .neural_net import TwoLayerNet as StandaloneTwoLayerNet

    results = []
    # The stand-alone nets draw their weights from NumPy's global state; keep it untouched.
    state = np.random.get_state()
    try:
        for name, cls in (("neural_net.TwoLayerNet reg=0.05", StandaloneTwoLayerNet),
                          ("cs231n TwoLayerNet reg=0.05", CS231nTwoLayerNet)):
            np.random.seed(seed)
            model = cls(6, 7, 4, std=0.5)
            results += _check_model(name, model, X, y, loss=lambda m=model: m.loss(X, y, reg=0.05))
    finally:
        np.random.set_state(state)
    return results
