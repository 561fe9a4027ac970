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
================  ===========================================================

State arrays are created once, in ``w``'s dtype, on the first call. Rules update ``w`` and
their state in place (large arrays in parallel chunks, see ``nndl._parallel``) and return ``w`` itself as ``next_w``; nothing is upcast, so float32
stays float32. Callers must therefore not rely on the old ``w`` after an update (the
Solver does not). ``get_update_rule(name)`` returns a rule or raises ``ValueError``
listing the valid names.
"""

import numpy as np

from ._parallel import elementwise

__all__ = ["sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam",
           "UPDATE_RULES", "get_update_rule"]


def _state(config, key, w):
    """The state array ``config[key]``, created as zeros like ``w`` on first use."""
    value = config.get(key)
    if value is None:
        value = config[key] = np.zeros_like(w)
    return value


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw``.

    Parameters
    ----------
    w, dw : ndarray, same shape
    config : dict, optional

    Returns
    -------
    next_w : ndarray, shape of w
    config : dict
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    elementwise(_sgd_kernel, w, dw, lr=config["learning_rate"])
    return w, config


def _sgd_kernel(w, dw, lr):
    w -= lr * dw


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v = momentum * v - lr * dw; w += v``."""
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = _state(config, "velocity", w)
    elementwise(_momentum_kernel, w, dw, v, lr=config["learning_rate"], mu=config["momentum"])
    return w, config


def _momentum_kernel(w, dw, v, lr, mu):
    v *= mu
    v -= lr * dw
    w += v


def sgd_nesterov_momentum(w, dw, config=None):
    """Nesterov momentum in the look-ahead-free form.

    ``v_new = momentum * v - lr * dw`` and ``w += v_new + momentum * (v_new - v)``, i.e.
    ``w += (1 + momentum) * v_new - momentum * v``.
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = _state(config, "velocity", w)
    elementwise(_nesterov_kernel, w, dw, v, lr=config["learning_rate"], mu=config["momentum"])
    return w, config


def _nesterov_kernel(w, dw, v, lr, mu):
    w -= mu * v
    v *= mu
    v -= lr * dw
    w += (1 + mu) * v


def rmsprop(w, dw, config=None):
    """RMSProp: a decaying average of squared gradients scales each step.

    ``cache = decay * cache + (1 - decay) * dw**2; w -= lr * dw / (sqrt(cache) + eps)``.
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = _state(config, "cache", w)
    elementwise(_rmsprop_kernel, w, dw, cache, lr=config["learning_rate"],
                decay=config["decay_rate"], eps=config["epsilon"])
    return w, config


def _rmsprop_kernel(w, dw, cache, lr, decay, eps):
    # One scratch array and in-place operations: every avoided pass over a weight-sized
    # array is time saved.
    tmp = np.multiply(dw, dw)
    tmp *= 1 - decay
    cache *= decay
    cache += tmp
    np.sqrt(cache, out=tmp)
    tmp += eps
    np.divide(dw, tmp, out=tmp)
    tmp *= lr
    w -= tmp


def adam(w, dw, config=None):
    """Adam with bias correction; ``t`` is incremented before it is used.

    ``m = b1 m + (1 - b1) dw``; ``v = b2 v + (1 - b2) dw**2``; ``t += 1``;
    ``w -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
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
    elementwise(_adam_kernel, w, dw, m, v, b1=b1, b2=b2, eps=config["epsilon"] * sqrt_c2,
                step=config["learning_rate"] * sqrt_c2 / (1 - b1 ** t))
    return w, config


def _adam_kernel(w, dw, m, v, b1, b2, eps, step):
    tmp = np.multiply(dw, 1 - b1)
    m *= b1
    m += tmp
    np.multiply(dw, dw, out=tmp)
    tmp *= 1 - b2
    v *= b2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= step
    w -= tmp


UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "sgd_nesterov_momentum": sgd_nesterov_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}
"""Update rules by name."""


def get_update_rule(name):
    """Return the update rule called ``name``, or raise ``ValueError`` listing the valid names."""
    if callable(name):
        return name
    try:
        return UPDATE_RULES[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(UPDATE_RULES))
        raise ValueError(f"update_rule must be one of {valid}; got {name!r}") from None
