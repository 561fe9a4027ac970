"""Layer forward/backward pairs and classification losses.

Contract
--------
Every layer is a pair of functions. ``<name>_forward(inputs..., param)`` returns
``(out, cache)``; ``<name>_backward(dout, cache)`` returns the gradients with respect to each
forward input, shaped exactly like those inputs. The cache is opaque to callers. State that
outlives one call (batchnorm's running averages) lives in the ``bn_param`` dict the caller
passes in, as in the course notebooks. Layers keep the dtype they are given: float32 in,
float32 out.

The losses ``softmax_loss`` and ``svm_loss`` take scores ``x`` of shape (N, C) and integer
labels ``y`` of shape (N,) and return ``(loss, dx)``, with the loss averaged over the batch.
"""

import numbers

import numpy as np

from ._blas import gemm_tn_update
from ._validation import check_labels, check_probability

__all__ = [
    "softmax",
    "affine_forward", "affine_backward",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "swish_forward", "swish_backward",
    "batchnorm_forward", "batchnorm_backward",
    "layernorm_forward", "layernorm_backward",
    "dropout_forward", "dropout_backward",
    "softmax_loss", "svm_loss",
    "ACTIVATIONS",
]


# --------------------------------------------------------------------------- affine

def affine_forward(x, w, b):
    """Fully-connected layer ``out = x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Inputs; each example is flattened to D = d_1 * ... * d_k features.
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple (x, w, b)
    """
    if getattr(w, "ndim", None) != 2 or getattr(b, "shape", None) != w.shape[1:]:
        raise ValueError(f"affine_forward needs w of shape (D, M) and b of shape (M,), "
                         f"got w {_shape(w)} and b {_shape(b)}")
    try:
        rows = x.reshape(x.shape[0], w.shape[0])  # D spelt out, not -1: N may be 0
    except (AttributeError, IndexError, ValueError):
        raise ValueError(f"affine_forward needs x of shape (N, d_1, ..., d_k) with d_1 * ... * d_k = "
                         f"{w.shape[0]} (the rows of w), got x {_shape(x)}") from None
    out = rows @ w
    out += b
    return out, (x, w, b)


def _shape(value):
    """``value``'s shape for an error message, or its type if it has none."""
    shape = getattr(value, "shape", None)
    return f"of shape {shape}" if shape is not None else f"of type {type(value).__name__}"


def _check_norm_inputs(name, x, gamma, beta):
    """A normalisation layer's x must be (N, D), gamma and beta (D,): checked by name."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"{name} needs x of shape (N, D), got x {_shape(x)}")
    expected = x.shape[1:]
    if getattr(gamma, "shape", None) != expected or getattr(beta, "shape", None) != expected:
        raise ValueError(f"{name} needs gamma and beta of shape {expected}, "
                         f"got gamma {_shape(gamma)} and beta {_shape(beta)}")


def affine_backward(dout, cache, need_dx=True, w_step=None):
    """Gradients of the affine layer.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple from ``affine_forward``
    need_dx : bool
        When False, skip the input gradient (``dx`` is None): a network's first layer has no
        use for it and it costs as much as the weight gradient.
    w_step : (float, float), optional
        ``(learning_rate, weight_decay)``: instead of returning ``dw``, take the SGD step
        ``w = (1 - learning_rate * weight_decay) * w - learning_rate * dw`` in place on the
        forward's ``w`` (``dw`` is then None). It runs after ``dx`` is formed, in the product
        that forms ``dw`` (see ``nndl._blas``), so ``dw`` is never stored.

    Returns
    -------
    dx : ndarray, shape (N, d_1, ..., d_k), or None
    dw : ndarray, shape (D, M), or None
    db : ndarray, shape (M,)
    """
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape) if need_dx else None
    x2d = x.reshape(x.shape[0], w.shape[0])
    if w_step is None:
        dw = x2d.T @ dout
    else:
        learning_rate, weight_decay = w_step
        gemm_tn_update(x2d, dout, w, -learning_rate, 1 - learning_rate * weight_decay)
        dw = None
    db = dout.sum(axis=0)
    return dx, dw, db


# --------------------------------------------------------------------------- activations

def relu_forward(x):
    """Rectified linear unit ``max(0, x)``. x: any shape -> out of that shape; cache is x."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Gradient of ReLU. dout, cache: arrays of the same shape -> dx of that shape."""
    x = cache
    return dout * (x > 0)


def leaky_relu_forward(x, alpha=0.01):
    """Leaky ReLU ``x if x > 0 else alpha * x``. x: any shape -> out of that shape."""
    # A Python float keeps x's dtype (NumPy 2 promotion rules), so float32 stays float32.
    out = np.where(x > 0, x, x * float(alpha))
    return out, (x, float(alpha))


def leaky_relu_backward(dout, cache):
    """Gradient of leaky ReLU: ``dout`` where x > 0, ``alpha * dout`` elsewhere.

    dout: ndarray, the shape of x; cache: from ``leaky_relu_forward`` -> dx, the shape of x.
    """
    x, alpha = cache
    return np.where(x > 0, dout, dout * alpha)


def _sigmoid(x):
    # exp(-|x|) never overflows, and for x < 0 the value e / (1 + e) keeps its relative
    # precision (1 + tanh(x / 2) cancels to 0 in float32 below x = -17). Keeps x's dtype.
    with np.errstate(under="ignore"):  # exp(-|x|) rounding to 0 is the right answer
        e = np.exp(-np.abs(x))
        s = 1.0 / (1.0 + e)
        return np.where(x >= 0, s, e * s)


def swish_forward(x):
    """Swish (SiLU) ``x * sigmoid(x)``. x: any shape -> out of that shape."""
    s = _sigmoid(x)
    out = x * s
    return out, (s, out)


def swish_backward(dout, cache):
    """Gradient of swish.

    With ``h = x s(x)``, ``dh/dx = s + x s (1 - s) = h + s (1 - h)``, the form derived in the
    written part of the homework, which reuses the forward output instead of recomputing x s.
    dout: ndarray, the shape of x; cache: from ``swish_forward`` -> dx, the shape of x.
    """
    s, out = cache
    return dout * (out + s * (1.0 - out))


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "swish": (swish_forward, swish_backward),
}
"""Hidden-layer activations by name: ``name -> (forward, backward)``."""


# --------------------------------------------------------------------------- normalisation

def _normalize(x, axis, eps):
    """Return (x_hat, inv_std, mean, var) for zero-mean unit-variance normalisation along ``axis``."""
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    return xc * inv_std, inv_std, mu, var


def _normalize_backward(dxhat, xhat, inv_std, axis):
    """Gradient through x -> x_hat for normalisation along ``axis`` (compact form)."""
    return inv_std * (
        dxhat
        - dxhat.mean(axis=axis, keepdims=True)
        - xhat * np.mean(dxhat * xhat, axis=axis, keepdims=True)
    )


def _running_averages(bn_param, D, dtype, convention):
    """``bn_param``'s running mean and variance, shape (D,), created on first use as ``convention`` says."""
    running_mean = bn_param.get("running_mean")
    if running_mean is None:
        running_mean = bn_param["running_mean"] = np.zeros(D, dtype=dtype)
    running_var = bn_param.get("running_var")
    if running_var is None:
        start = np.ones if convention == "torch" else np.zeros
        running_var = bn_param["running_var"] = start(D, dtype=dtype)
    return running_mean, running_var


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation over the batch axis.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
        Scale and shift.
    bn_param : dict
        ``mode`` ('train' or 'test', required), ``eps`` (default 1e-5), ``momentum``
        (default 0.9), and ``running_mean`` / ``running_var`` of shape (D,), created on first
        use and updated in training as ``momentum * running + (1 - momentum) * batch``.
        ``convention`` chooses how (it matters only for the running variance):

        - ``'course'`` (default, the course's): the batch variance is the biased one (divided
          by N, as the normalisation itself uses) and both running averages start at 0;
        - ``'torch'`` (``torch.nn.BatchNorm1d``): the running variance takes the unbiased batch
          variance (divided by N - 1) and starts at 1. PyTorch's ``momentum`` weighs the new
          batch, so its 0.1 is nndl's ``momentum`` 0.9.

        Training-mode outputs and gradients are the same under both; test-mode outputs differ.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
    """
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        # Before the running averages are created: a typo leaves bn_param as it was.
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    _check_norm_inputs("batchnorm_forward", x, gamma, beta)
    # Python floats: a NumPy float64 eps (np.logspace, a search) would upcast float32 layers.
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.9))
    convention = bn_param.get("convention", "course")
    if convention not in ("course", "torch"):
        raise ValueError(f"bn_param['convention'] must be 'course' or 'torch', got {convention!r}")
    running_mean, running_var = _running_averages(bn_param, x.shape[1], x.dtype, convention)

    if mode == "train":
        xhat, inv_std, mu, var = _normalize(x, 0, eps)
        batch_var = var[0]
        if convention == "torch" and x.shape[0] > 1:
            batch_var = batch_var * (x.shape[0] / (x.shape[0] - 1))  # unbiased, as torch keeps it
        # In place, so every holder of bn_param (the model, a checkpoint) sees the update.
        running_mean *= momentum
        running_mean += (1 - momentum) * mu[0]
        running_var *= momentum
        running_var += (1 - momentum) * batch_var
        out = xhat * gamma + beta
        return out, (xhat, gamma, inv_std)
    xhat = (x - running_mean) / np.sqrt(running_var + eps)
    return xhat * gamma + beta, None


def batchnorm_backward(dout, cache):
    """Gradients of batch normalisation (training mode).

    Parameters
    ----------
    dout : ndarray, shape (N, D)
    cache : tuple from ``batchnorm_forward`` in 'train' mode

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    if cache is None:
        raise ValueError("batchnorm_backward needs the cache of a forward pass in 'train' mode")
    xhat, gamma, inv_std = cache
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = dout.sum(axis=0)
    dx = _normalize_backward(dout * gamma, xhat, inv_std, 0)
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param=None):
    """Layer normalisation: each example normalised over its features.

    Behaves the same in training and test, so it needs no running averages.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    ln_param : dict, optional
        ``eps`` (default 1e-5). Other keys (``mode``) are ignored.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
    """
    _check_norm_inputs("layernorm_forward", x, gamma, beta)
    eps = float((ln_param or {}).get("eps", 1e-5))  # a NumPy float64 would upcast float32 x
    xhat, inv_std, _, _ = _normalize(x, 1, eps)
    return xhat * gamma + beta, (xhat, gamma, inv_std)


def layernorm_backward(dout, cache):
    """Gradients of layer normalisation. dout: (N, D), cache: from ``layernorm_forward``
    -> (dx (N, D), dgamma (D,), dbeta (D,))."""
    xhat, gamma, inv_std = cache
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = dout.sum(axis=0)
    dx = _normalize_backward(dout * gamma, xhat, inv_std, 1)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- dropout

def dropout_forward(x, dropout_param):
    """Inverted dropout.

    Parameters
    ----------
    x : ndarray, any shape
    dropout_param : dict
        ``p``: probability of *dropping* each unit, in [0, 1). ``mode``: 'train' or 'test'.
        Optional ``seed``: draw the mask from a fresh ``default_rng(seed)`` so that every
        call gives the same mask (what a gradient check needs). Optional ``rng``: a
        ``np.random.Generator`` to draw masks from. With neither, NumPy's global random
        state is used, so ``np.random.seed`` reproduces a run.

    Returns
    -------
    out : ndarray, same shape as x
        In training, kept units are scaled by ``1 / (1 - p)`` so that test time needs no
        rescaling; in test mode ``out`` is ``x``.
    cache : tuple (dropout_param, mask)
    """
    p = dropout_param.get("p")
    mode = dropout_param.get("mode", "train")
    # Checked before the shortcuts below, so that a typo fails in test mode and with p=0 too.
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test', got {mode!r}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise ValueError(f"dropout_param['p'] must be a number in [0, 1), got {p!r}")
    if mode == "test" or p == 0:
        return x, (dropout_param, None)
    if dropout_param.get("seed") is not None:
        u = np.random.default_rng(dropout_param["seed"]).random(x.shape, dtype=np.float64)
    elif dropout_param.get("rng") is not None:
        u = dropout_param["rng"].random(x.shape)
    else:
        u = np.random.rand(*x.shape)
    mask = (u >= p).astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask, (dropout_param, mask)


def dropout_backward(dout, cache):
    """Gradient of inverted dropout: ``dout * mask`` in training, ``dout`` in test.

    dout: ndarray, the shape of x; cache: from ``dropout_forward`` -> dx, the shape of x.
    """
    _, mask = cache
    return dout if mask is None else dout * mask


# --------------------------------------------------------------------------- losses

def _check_scores_labels(x, y):
    """``(x, y)`` checked; integer scores become float64 (the gradient is fractional)."""
    x = np.asarray(x)  # a nested list of scores works as the course's losses did
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be scores of shape (N, C) with N >= 1, got shape {x.shape}")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return x, check_labels("y", y, x.shape[0], x.shape[1])


def softmax(scores):
    """Class probabilities of ``scores`` (N, C), row by row, computed stably in float64."""
    shifted = np.asarray(scores, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)  # exp() cannot overflow
    p = np.exp(shifted)
    return p / p.sum(axis=1, keepdims=True)


def softmax_loss(x, y, smoothing=0.0):
    """Softmax (cross-entropy) loss, averaged over the batch, computed stably.

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Class scores.
    y : ndarray of int, shape (N,)
        Labels in [0, C).
    smoothing : float in [0, 1)
        Label smoothing: the target puts ``1 - smoothing`` on the label and spreads
        ``smoothing`` evenly over all C classes (``torch.nn.functional.cross_entropy``'s
        ``label_smoothing``). 0, the default, is the course's loss.

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C), dtype of x (float64 for integer scores)
    """
    x, y = _check_scores_labels(x, y)
    if smoothing:
        smoothing = check_probability("smoothing", smoothing)
    N, C = x.shape
    rows = np.arange(N)
    # Shifting by the row maximum keeps exp() from overflowing; log-sum-exp gives the loss
    # without taking log of a probability that underflowed to 0.
    shifted = x - x.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    log_sums = np.log(sums[:, 0])
    loss = float((log_sums - shifted[rows, y]).sum() / N)
    if smoothing:
        # -sum_c q_c log p_c with q = (1 - s) onehot + s / C: the smoothed part is the mean
        # over classes of -log p_c = log_sums - shifted_c.
        uniform = float((log_sums - shifted.mean(axis=1)).sum() / N)
        loss = (1 - smoothing) * loss + smoothing * uniform
    # dx = (softmax - target) / N, with the two divisions as one multiplication by (N, 1).
    dx = exp
    dx *= 1 / (N * sums)
    dx[rows, y] -= (1 - smoothing) / N
    if smoothing:
        dx -= smoothing / (C * N)
    return loss, dx


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss with margin 1, averaged over the batch.

    Parameters
    ----------
    x : ndarray, shape (N, C)
    y : ndarray of int, shape (N,)

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C), dtype of x (float64 for integer scores)
    """
    x, y = _check_scores_labels(x, y)
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = float(margins.sum() / N)
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] -= dx.sum(axis=1)
    dx /= N
    return loss, dx
