"""First-order update rules and a registry to find them by name.

Contract
--------
Every rule is ``rule(w, dw, config=None) -> (next_w, config)``. ``config`` holds both the
hyperparameters and the rule's state, under the course's keys:

================  ===========================================================
rule              config keys (defaults)
================  ===========================================================
sgd               learning_rate (1e-2)
sgd_momentum      learning_rate (1e-2), momentum (0.9), velocity
sgd_nesterov_...  learning_rate (1e-2), momentum (0.9), velocity
rmsprop           learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache
adam              learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
                  m, v, t (t is incremented before the bias correction)
adamw             adam's keys and decoupled_weight_decay (1e-2)
sgdw              learning_rate (1e-2), momentum (0.9), decoupled_weight_decay (1e-2),
                  velocity
================  ===========================================================

``adamw`` and ``sgdw`` decay the weights apart from the gradient (Loshchilov & Hutter,
"Decoupled Weight Decay Regularization"): before the gradient step, ``w *= 1 - learning_rate *
decoupled_weight_decay``. ``adamw`` equals ``torch.optim.AdamW(lr, betas, eps,
weight_decay=decoupled_weight_decay)``; ``sgdw`` is SGD with momentum whose velocity sees
only the gradient. The decay then shrinks every weight by the same factor whatever its
gradient's history, where the coupled L2 term of ``adam`` is divided by Adam's per-weight
scale and barely acts on weights with large gradients.

Every rule also takes ``weight_decay`` (default 0): the rule then follows the gradient
``dw + weight_decay * w`` of an added ``0.5 * weight_decay * sum(w**2)`` (coupled L2, as
PyTorch's ``weight_decay``). It gives the same update as adding the term to ``dw`` first, to
float round-off, in fewer passes over memory; the Solver uses it for a model's L2 penalty.

State arrays are created once, in ``w``'s dtype, on the first call. Rules update ``w`` and
their state in place, block by block (see ``nndl._parallel``), and return ``w`` itself as
``next_w``; ``dw`` is left unchanged and nothing is upcast, so float32 stays float32.
Callers must therefore not rely on the old ``w`` after an update (the Solver does not).
``get_update_rule(name)`` returns a rule or raises ``ValueError`` listing the valid names.

Hyperparameters are checked at every call, by name (``config['beta1'] must be in [0, 1), got
2``): learning_rate, weight_decay and epsilon >= 0 (0 for hand-worked checks; the Solver asks for
epsilon > 0), momentum, decay_rate, beta1 and beta2 in [0, 1). A Python or NumPy float64 in
range passes at the cost of a type test and a comparison.
"""

import numpy as np

from ._parallel import elementwise
from ._validation import NONNEGATIVE, PROBABILITY, check_float_ndarray, check_nonneg_float, check_probability

__all__ = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam", "adamw", "sgdw",
           "UPDATE_RULES", "CONFIG_KEYS", "SGD_LEARNING_RATE", "DEFAULT_LEARNING_RATES", "get_update_rule"]


def _state(config, key, w):
    """The state array ``config[key]``, created as zeros like ``w`` on first use."""
    value = config.get(key)
    if value is None:
        value = config[key] = np.zeros_like(w)
    return value


def _gradient(w, dw, wd, out):
    """``dw + wd * w`` written into ``out``, or ``dw`` itself (untouched) when ``wd`` is 0."""
    if not wd:
        return dw
    np.multiply(w, wd, out=out)
    out += dw
    return out


def _average_square(avg, g, decay, t):
    """``avg = decay * avg + (1 - decay) * g**2`` in place (``t``: scratch)."""
    np.multiply(g, g, out=t)
    t *= 1 - decay
    avg *= decay
    avg += t


def _scaled_step(w, num, avg, eps, step, t):
    """``w -= step * num / (sqrt(avg) + eps)`` in place (``t``: scratch)."""
    np.sqrt(avg, out=t)
    t += eps
    np.divide(num, t, out=t)
    t *= step
    w -= t


def _common(config, spec, w, dw):
    """Check ``w``, ``dw`` and the hyperparameters ``spec`` names, then fill in their defaults;
    return the config. Nothing in ``config`` changes when a check fails."""
    check_float_ndarray("w", w, "it is updated in place")
    if getattr(dw, "shape", None) != w.shape:
        raise ValueError(f"dw must have the shape of w {w.shape}, got {getattr(dw, 'shape', type(dw).__name__)}")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    for key, default, upper in spec:
        value = config.get(key, default)
        # This runs for every parameter at every step: a float in range (a Python or NumPy
        # float64 one, what the Solver and the notebooks pass) costs one type test and one
        # comparison; anything else gets the full check, which names the key.
        if isinstance(value, float) and 0.0 <= value < upper:
            continue
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]  # a 0-d array works as a scalar in the kernels
        if upper == 1.0:
            check_probability(f"config['{key}']", value)
        else:
            check_nonneg_float(f"config['{key}']", value)
    for key, default, _ in spec:
        config.setdefault(key, default)
    return config


SGD_LEARNING_RATE = 1e-2
"""``sgd``'s default learning rate."""


# Each rule's hyperparameters: (key, default, exclusive upper bound). The bounds are those of
# the shared domains of nndl._validation (an update rule takes 0 for a rate, for hand-worked
# checks: NONNEGATIVE; the averaging factors are in [0, 1): PROBABILITY), so that they cannot
# drift from the Solver's and the command line's.
_RULE_DOMAINS = {"learning_rate": NONNEGATIVE, "weight_decay": NONNEGATIVE, "decoupled_weight_decay": NONNEGATIVE,
                 "epsilon": NONNEGATIVE, "momentum": PROBABILITY, "decay_rate": PROBABILITY,
                 "beta1": PROBABILITY, "beta2": PROBABILITY}


def _spec(*defaults):
    """``((key, default, upper), ...)`` for ``(key, default)`` pairs, the bound from ``_RULE_DOMAINS``."""
    return tuple((key, default, _RULE_DOMAINS[key].high) for key, default in defaults)


_SGD_SPEC = _spec(("learning_rate", SGD_LEARNING_RATE), ("weight_decay", 0.0))
_MOMENTUM_SPEC = _SGD_SPEC + _spec(("momentum", 0.9))
_RMSPROP_SPEC = _SGD_SPEC + _spec(("decay_rate", 0.99), ("epsilon", 1e-8))
_ADAM_SPEC = _spec(("learning_rate", 1e-3), ("weight_decay", 0.0), ("beta1", 0.9), ("beta2", 0.999),
                   ("epsilon", 1e-8))
_DECOUPLED = _spec(("decoupled_weight_decay", 1e-2))
_ADAMW_SPEC = _ADAM_SPEC + _DECOUPLED
_SGDW_SPEC = _MOMENTUM_SPEC + _DECOUPLED


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w -= learning_rate * (dw + weight_decay * w)``.

    Parameters
    ----------
    w, dw : ndarray, same shape
    config : dict, optional

    Returns
    -------
    next_w : ndarray, shape of w
    config : dict
    """
    config = _common(config, _SGD_SPEC, w, dw)
    elementwise(_sgd_kernel, w, dw, lr=config["learning_rate"], wd=config["weight_decay"])
    return w, config


def _sgd_kernel(w, dw, *, tmp, lr, wd):
    t1 = tmp[0]
    if wd:
        # w - lr * (dw + wd * w) == (1 - lr * wd) * w - lr * dw: two passes over w, not three.
        np.multiply(dw, -lr, out=t1)
        w *= 1 - lr * wd
        w += t1
    else:
        np.multiply(dw, lr, out=t1)
        w -= t1


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v = momentum * v - lr * g; w += v`` with ``g = dw + weight_decay * w``.

    The learning rate sits inside the velocity (the course's form). ``torch.optim.SGD`` keeps
    ``v = momentum * v + g`` and steps ``w -= lr * v``: the same while the learning rate is
    constant, but when it changes (``lr_decay``, a schedule) nndl's velocity still carries
    steps taken at the old rate, and PyTorch's rescales them at once to the new one.

    w, dw: ndarrays of one shape (w is updated in place); config: dict or None -> (w, config).
    """
    config = _common(config, _MOMENTUM_SPEC, w, dw)
    v = _state(config, "velocity", w)
    elementwise(_momentum_kernel, w, dw, v, lr=config["learning_rate"], mu=config["momentum"],
                wd=config["weight_decay"])
    return w, config


def _momentum_kernel(w, dw, v, *, tmp, lr, mu, wd, shrink=1.0):
    g = _gradient(w, dw, wd, tmp[0])
    if shrink != 1.0:  # sgdw's decoupled decay, after g has read the current weights
        w *= shrink
    v *= mu
    np.multiply(g, lr, out=tmp[1])
    v -= tmp[1]
    w += v


def sgd_nesterov_momentum(w, dw, config=None):
    """Nesterov momentum in the look-ahead-free form.

    ``v_new = momentum * v - lr * g`` and ``w += v_new + momentum * (v_new - v)``, i.e.
    ``w += (1 + momentum) * v_new - momentum * v``, with ``g = dw + weight_decay * w``.
    The learning rate sits inside the velocity, as in ``sgd_momentum`` (see there how that
    differs from PyTorch when the rate changes).

    w, dw: ndarrays of one shape (w is updated in place); config: dict or None -> (w, config).
    """
    config = _common(config, _MOMENTUM_SPEC, w, dw)
    v = _state(config, "velocity", w)
    elementwise(_nesterov_kernel, w, dw, v, lr=config["learning_rate"], mu=config["momentum"],
                wd=config["weight_decay"])
    return w, config


def _nesterov_kernel(w, dw, v, *, tmp, lr, mu, wd):
    g = _gradient(w, dw, wd, tmp[0])  # before w changes: the decay uses the current weights
    t2 = tmp[1]
    np.multiply(v, mu, out=t2)
    w -= t2
    v *= mu
    np.multiply(g, lr, out=t2)
    v -= t2
    np.multiply(v, 1 + mu, out=t2)
    w += t2


def rmsprop(w, dw, config=None):
    """RMSProp: a decaying average of squared gradients scales each step.

    ``cache = decay * cache + (1 - decay) * g**2; w -= lr * g / (sqrt(cache) + eps)`` with
    ``g = dw + weight_decay * w``.

    w, dw: ndarrays of one shape (w is updated in place); config: dict or None -> (w, config).
    """
    config = _common(config, _RMSPROP_SPEC, w, dw)
    cache = _state(config, "cache", w)
    elementwise(_rmsprop_kernel, w, dw, cache, lr=config["learning_rate"],
                decay=config["decay_rate"], eps=config["epsilon"], wd=config["weight_decay"])
    return w, config


def _rmsprop_kernel(w, dw, cache, *, tmp, lr, decay, eps, wd):
    g = _gradient(w, dw, wd, tmp[0])
    _average_square(cache, g, decay, tmp[1])
    _scaled_step(w, g, cache, eps, lr, tmp[1])


def adam(w, dw, config=None):
    """Adam with bias correction; ``t`` is incremented before it is used.

    With ``g = dw + weight_decay * w``: ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g**2``;
    ``t += 1``; ``w -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.

    w, dw: ndarrays of one shape (w is updated in place); config: dict or None -> (w, config).
    """
    return _adam(w, dw, config, _ADAM_SPEC)


def adamw(w, dw, config=None):
    """Adam with decoupled weight decay (``torch.optim.AdamW``).

    ``w *= 1 - lr * decoupled_weight_decay``, then ``adam``'s step (whose coupled
    ``weight_decay``, default 0, still reads the weights before the decay).

    w, dw: ndarrays of one shape (w is updated in place); config: dict or None -> (w, config).
    """
    return _adam(w, dw, config, _ADAMW_SPEC)


def sgdw(w, dw, config=None):
    """SGD with momentum and decoupled weight decay.

    ``v = momentum * v - lr * g; w = (1 - lr * decoupled_weight_decay) * w + v`` with
    ``g = dw + weight_decay * w`` (``weight_decay``, the coupled L2, defaults to 0).

    w, dw: ndarrays of one shape (w is updated in place); config: dict or None -> (w, config).
    """
    config = _common(config, _SGDW_SPEC, w, dw)
    v = _state(config, "velocity", w)
    lr = config["learning_rate"]
    elementwise(_momentum_kernel, w, dw, v, lr=lr, mu=config["momentum"], wd=config["weight_decay"],
                shrink=1.0 - lr * config["decoupled_weight_decay"])
    return w, config


def _adam(w, dw, config, spec):
    """``adam`` (spec without a decoupled decay) or ``adamw``."""
    config = _common(config, spec, w, dw)
    config.setdefault("t", 0)
    b1, b2 = config["beta1"], config["beta2"]
    m = _state(config, "m", w)
    v = _state(config, "v", w)
    config["t"] += 1
    t = config["t"]
    # The bias corrections are scalars, so fold them into the step size and epsilon instead of
    # forming m_hat and v_hat: lr * m_hat / (sqrt(v_hat) + eps) equals
    # (lr * sqrt(c2) / c1) * m / (sqrt(v) + eps * sqrt(c2)) with c1 = 1 - b1**t, c2 = 1 - b2**t.
    sqrt_c2 = (1 - b2 ** t) ** 0.5
    lr = config["learning_rate"]
    elementwise(_adam_kernel, w, dw, m, v, b1=b1, b2=b2, eps=config["epsilon"] * sqrt_c2,
                step=lr * sqrt_c2 / (1 - b1 ** t), wd=config["weight_decay"],
                shrink=1.0 - lr * config.get("decoupled_weight_decay", 0.0))
    return w, config


def _adam_kernel(w, dw, m, v, *, tmp, b1, b2, eps, step, wd, shrink=1.0):
    g = _gradient(w, dw, wd, tmp[0])
    if shrink != 1.0:  # adamw's decoupled decay, after g has read the current weights
        w *= shrink
    t2 = tmp[1]
    _average_square(v, g, b2, t2)
    np.multiply(g, 1 - b1, out=t2)
    m *= b1
    m += t2
    _scaled_step(w, m, v, eps, step, t2)


CONFIG_KEYS = {
    "sgd": ("learning_rate", "weight_decay"),
    "sgd_momentum": ("learning_rate", "weight_decay", "momentum", "velocity"),
    "sgd_nesterov_momentum": ("learning_rate", "weight_decay", "momentum", "velocity"),
    "rmsprop": ("learning_rate", "weight_decay", "decay_rate", "epsilon", "cache"),
    "adam": ("learning_rate", "weight_decay", "beta1", "beta2", "epsilon", "m", "v", "t"),
    "adamw": ("learning_rate", "weight_decay", "beta1", "beta2", "epsilon", "m", "v", "t",
              "decoupled_weight_decay"),
    "sgdw": ("learning_rate", "weight_decay", "momentum", "velocity", "decoupled_weight_decay"),
}
"""The ``config`` keys each rule reads (hyperparameters and state), by rule name; the Solver
rejects others, so that a misspelt hyperparameter is not silently left at its default."""

UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "sgd_nesterov_momentum": sgd_nesterov_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "sgdw": sgdw,
}
"""Update rules by name."""

DEFAULT_LEARNING_RATES = {"sgd": SGD_LEARNING_RATE, "sgd_momentum": SGD_LEARNING_RATE,
                          "sgd_nesterov_momentum": SGD_LEARNING_RATE, "rmsprop": SGD_LEARNING_RATE,
                          "adam": 1e-3, "adamw": 1e-3, "sgdw": SGD_LEARNING_RATE}
"""The learning rate each rule uses when its config gives none (a schedule multiplies it)."""


def get_update_rule(name):
    """Return the update rule called ``name`` (a callable is returned as it is), or raise
    ``ValueError`` listing the valid names."""
    if callable(name):
        return name
    try:
        return UPDATE_RULES[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(UPDATE_RULES))
        raise ValueError(f"update_rule must be one of {valid}; got {name!r}") from None
