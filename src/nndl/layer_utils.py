"""Sandwich layers: common chains of the pairs in ``layers``, as forward/backward pairs.

Contract
--------
Same as ``layers``: ``*_forward`` returns ``(out, cache)`` and ``*_backward(dout, cache)``
returns the gradients of every forward input, in the order the forward takes them.

``hidden_block_forward`` with ReLU and no dropout returns the array its cache holds (a copy
saved per layer and step, for FullyConnectedNet): treat that ``out`` as read-only until the
backward pass is done. The named sandwiches return an array of their own, as the course's do,
so a caller may change their ``out`` freely.

``hidden_block_forward`` is the one general block a FullyConnectedNet hidden layer is made of,
``affine - [batchnorm | layernorm] - activation - [dropout]``; the named sandwiches of the
course (``affine_relu``, ``affine_batchnorm_relu``, ...) are thin spellings of it.
"""

import numpy as np

from . import layers as L
from ._validation import check_choice

__all__ = [
    "NORMALIZATIONS",
    "hidden_block_forward", "hidden_block_backward",
    "affine_relu_forward", "affine_relu_backward",
    "affine_batchnorm_relu_forward", "affine_batchnorm_relu_backward",
    "affine_bn_relu_forward", "affine_bn_relu_backward",
    "affine_layernorm_relu_forward", "affine_layernorm_relu_backward",
    "affine_relu_dropout_forward", "affine_relu_dropout_backward",
    "affine_batchnorm_relu_dropout_forward", "affine_batchnorm_relu_dropout_backward",
]

NORMALIZATIONS = {
    "batchnorm": (L.batchnorm_forward, L.batchnorm_backward),
    "layernorm": (L.layernorm_forward, L.layernorm_backward),
}
"""Normalisation layers by name: ``name -> (forward, backward)``."""


def hidden_block_forward(x, w, b, gamma=None, beta=None, norm=None, norm_param=None,
                         activation="relu", dropout_param=None):
    """``affine - [norm] - activation - [dropout]``.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)
    gamma, beta : ndarray, shape (M,), optional
        Scale and shift of the normalisation; needed when ``norm`` is given.
    norm : {None, 'batchnorm', 'layernorm'}
    norm_param : dict, optional
        ``bn_param`` / ``ln_param`` of the normalisation layer.
    activation : {'relu', 'leaky_relu', 'swish'}
    dropout_param : dict, optional
        Passed to ``dropout_forward`` (which checks it); no dropout when None, without a
        ``p`` key, or with ``p == 0``.

    Returns
    -------
    out : ndarray, shape (N, M)
        With ReLU and no dropout, this array is also part of ``cache`` (ReLU's backward reads
        where it is positive; sharing it saves a copy per layer): change a copy of ``out``,
        not ``out`` itself, before calling the backward pass.
    cache : tuple
    """
    act_forward, _ = L.ACTIVATIONS[check_choice("activation", activation, tuple(L.ACTIVATIONS))]
    out, affine_cache = L.affine_forward(x, w, b)
    norm_cache = None
    if norm is not None:
        norm_forward, _ = NORMALIZATIONS[check_choice("norm", norm, tuple(NORMALIZATIONS))]
        out, norm_cache = norm_forward(out, gamma, beta, norm_param)
    if activation == "relu":
        # In place on the fresh affine/norm output: ReLU's backward needs only where out > 0,
        # which the rectified output shows as well as the input does.
        act_cache = np.maximum(out, 0, out=out)
    else:
        out, act_cache = act_forward(out)
    drop_cache = None
    if dropout_param and "p" in dropout_param:
        # dropout_forward checks p and mode even when it has nothing to do (p = 0, test mode),
        # so a typo in dropout_param fails here too. A dict without p (a model without
        # dropout keeps only its mode there) means no dropout.
        out, drop_cache = L.dropout_forward(out, dropout_param)
    return out, (affine_cache, norm, norm_cache, activation, act_cache, drop_cache)


def hidden_block_backward(dout, cache, need_dx=True, w_step=None):
    """Gradients of ``hidden_block_forward``.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple from ``hidden_block_forward``
    need_dx : bool
        When False, skip the input gradient (``dx`` is None): a network's first layer has no
        use for it and it costs as much as the weight gradient.
    w_step : (float, float), optional
        ``(learning_rate, weight_decay)``: take the SGD step on ``w`` in place instead of
        returning ``dw`` (then None); see ``layers.affine_backward``.

    Returns
    -------
    dx : ndarray, shape (N, d_1, ..., d_k), or None
    dw : ndarray, shape (D, M), or None
    db : ndarray, shape (M,)
    dgamma, dbeta : ndarray, shape (M,), or None without normalisation
    """
    affine_cache, norm, norm_cache, activation, act_cache, drop_cache = cache
    if drop_cache is not None:
        dout = L.dropout_backward(dout, drop_cache)
    dout = L.ACTIVATIONS[activation][1](dout, act_cache)
    dgamma = dbeta = None
    if norm is not None:
        dout, dgamma, dbeta = NORMALIZATIONS[norm][1](dout, norm_cache)
    dx, dw, db = L.affine_backward(dout, affine_cache, need_dx=need_dx, w_step=w_step)
    return dx, dw, db, dgamma, dbeta


def _own_output(out, cache):
    """``(out, cache)`` with ``out`` copied when it is the array the cache keeps for ReLU."""
    if out is cache[4]:  # act_cache, in hidden_block_forward's cache tuple
        out = out.copy()
    return out, cache


def affine_relu_forward(x, w, b):
    """``affine - relu``. x: (N, d_1, ..., d_k), w: (D, M), b: (M,) -> out (N, M), cache."""
    return _own_output(*hidden_block_forward(x, w, b))


def affine_relu_backward(dout, cache):
    """Gradients of ``affine_relu_forward`` -> (dx, dw, db)."""
    return hidden_block_backward(dout, cache)[:3]


def affine_batchnorm_relu_forward(x, w, b, gamma, beta, bn_param):
    """``affine - batchnorm - relu``. gamma, beta: (M,) -> out (N, M), cache."""
    return _own_output(*hidden_block_forward(x, w, b, gamma, beta, "batchnorm", bn_param))


def affine_batchnorm_relu_backward(dout, cache):
    """Gradients of ``affine_batchnorm_relu_forward`` -> (dx, dw, db, dgamma, dbeta)."""
    return hidden_block_backward(dout, cache)


# CS231n's spelling of the batchnorm sandwich, so that code written for its layer_utils runs.
affine_bn_relu_forward = affine_batchnorm_relu_forward
affine_bn_relu_backward = affine_batchnorm_relu_backward


def affine_layernorm_relu_forward(x, w, b, gamma, beta, ln_param=None):
    """``affine - layernorm - relu``. gamma, beta: (M,) -> out (N, M), cache."""
    return _own_output(*hidden_block_forward(x, w, b, gamma, beta, "layernorm", ln_param or {}))


def affine_layernorm_relu_backward(dout, cache):
    """Gradients of ``affine_layernorm_relu_forward`` -> (dx, dw, db, dgamma, dbeta)."""
    return hidden_block_backward(dout, cache)


def affine_relu_dropout_forward(x, w, b, dropout_param):
    """``affine - relu - dropout`` -> out (N, M), cache."""
    return _own_output(*hidden_block_forward(x, w, b, dropout_param=dropout_param))


def affine_relu_dropout_backward(dout, cache):
    """Gradients of ``affine_relu_dropout_forward`` -> (dx, dw, db)."""
    return hidden_block_backward(dout, cache)[:3]


def affine_batchnorm_relu_dropout_forward(x, w, b, gamma, beta, bn_param, dropout_param):
    """``affine - batchnorm - relu - dropout`` -> out (N, M), cache."""
    return _own_output(*hidden_block_forward(x, w, b, gamma, beta, "batchnorm", bn_param,
                                             dropout_param=dropout_param))


def affine_batchnorm_relu_dropout_backward(dout, cache):
    """Gradients of ``affine_batchnorm_relu_dropout_forward`` -> (dx, dw, db, dgamma, dbeta)."""
    return hidden_block_backward(dout, cache)
