"""Tests for nndl.layer_utils: every sandwich is gradient-checked in float64."""

import numpy as np
import pytest

from nndl import layer_utils as LU
from nndl.gradient_check import eval_numerical_gradient_array, rel_error


def _check_sandwich(forward, backward, inputs, extra, dout, tol=1e-7):
    """Gradient-check every array input of a sandwich pair."""
    grads = backward(dout, forward(*inputs, *extra)[1])
    for i, value in enumerate(inputs):
        def f(v, i=i):
            args = list(inputs)
            args[i] = v
            return forward(*args, *extra)[0]
        num = eval_numerical_gradient_array(f, value, dout)
        assert grads[i].shape == value.shape
        if np.abs(num - grads[i]).max() < 1e-9:
            continue  # e.g. the bias before batchnorm, whose gradient is exactly zero
        assert rel_error(num, grads[i]) < tol, (forward.__name__, i, rel_error(num, grads[i]))


def test_affine_relu_gradient_check_matches_course_tolerance():
    np.random.seed(231)
    x, w, b = np.random.randn(2, 3, 4), np.random.randn(12, 10), np.random.randn(10)
    dout = np.random.randn(2, 10)
    _check_sandwich(LU.affine_relu_forward, LU.affine_relu_backward, (x, w, b), (), dout, 1e-8)


@pytest.mark.parametrize("name", ["affine_batchnorm_relu", "affine_layernorm_relu"])
def test_normalised_sandwiches_gradient_check(name):
    np.random.seed(231)
    x, w, b = np.random.randn(6, 4), np.random.randn(4, 5), np.random.randn(5)
    gamma, beta = np.random.randn(5) + 1, np.random.randn(5)
    dout = np.random.randn(6, 5)
    param = {"mode": "train"} if "batch" in name else {}
    forward, backward = getattr(LU, name + "_forward"), getattr(LU, name + "_backward")
    _check_sandwich(forward, backward, (x, w, b, gamma, beta), (param,), dout, 1e-6)
    if "batch" in name:  # batchnorm cancels any shift, so the bias gradient is exactly zero
        assert np.abs(backward(dout, forward(x, w, b, gamma, beta, param)[1])[2]).max() < 1e-12


def test_dropout_sandwiches_gradient_check():
    np.random.seed(231)
    x, w, b = np.random.randn(6, 4), np.random.randn(4, 5), np.random.randn(5)
    gamma, beta = np.random.randn(5) + 1, np.random.randn(5)
    dout = np.random.randn(6, 5)
    drop = {"mode": "train", "p": 0.3, "seed": 7}
    _check_sandwich(LU.affine_relu_dropout_forward, LU.affine_relu_dropout_backward,
                    (x, w, b), (drop,), dout)
    _check_sandwich(LU.affine_batchnorm_relu_dropout_forward, LU.affine_batchnorm_relu_dropout_backward,
                    (x, w, b, gamma, beta), ({"mode": "train"}, drop), dout, 1e-6)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "swish"])
def test_hidden_block_with_each_activation(activation):
    np.random.seed(3)
    x, w, b = np.random.randn(5, 4), np.random.randn(4, 6), np.random.randn(6)
    dout = np.random.randn(5, 6)
    forward = lambda x, w, b: LU.hidden_block_forward(x, w, b, activation=activation)
    backward = lambda d, c: LU.hidden_block_backward(d, c)[:3]
    _check_sandwich(forward, backward, (x, w, b), (), dout)


def test_hidden_block_can_skip_the_input_gradient():
    np.random.seed(0)
    x, w, b = np.random.randn(5, 4), np.random.randn(4, 6), np.random.randn(6)
    out, cache = LU.hidden_block_forward(x, w, b)
    full = LU.hidden_block_backward(np.ones_like(out), cache)
    partial = LU.hidden_block_backward(np.ones_like(out), cache, need_dx=False)
    assert partial[0] is None
    np.testing.assert_allclose(partial[1], full[1])
    np.testing.assert_allclose(partial[2], full[2])


def test_hidden_block_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of .*'relu'.*got 'tanh'"):
        LU.hidden_block_forward(np.ones((1, 2)), np.ones((2, 2)), np.zeros(2), activation="tanh")


@pytest.mark.parametrize("forward, backward, extra", [
    (LU.affine_relu_forward, LU.affine_relu_backward, ()),
    (LU.affine_batchnorm_relu_forward, LU.affine_batchnorm_relu_backward,
     (np.ones(6), np.zeros(6), {"mode": "train"})),
    (LU.affine_layernorm_relu_forward, LU.affine_layernorm_relu_backward, (np.ones(6), np.zeros(6))),
    (LU.affine_relu_dropout_forward, LU.affine_relu_dropout_backward, ({"p": 0.5, "mode": "test"},)),
    (LU.affine_batchnorm_relu_dropout_forward, LU.affine_batchnorm_relu_dropout_backward,
     (np.ones(6), np.zeros(6), {"mode": "train"}, {"p": 0.0, "mode": "train"})),
])
def test_named_sandwiches_return_an_output_the_caller_may_change(forward, backward, extra):
    # The general block shares ReLU's output with its cache (FullyConnectedNet saves a copy);
    # the course's named sandwiches must not: changing out would silently change the gradients.
    rng = np.random.default_rng(0)
    x, w, b, dout = rng.standard_normal((4, 5)), rng.standard_normal((5, 6)), rng.standard_normal(6), \
        rng.standard_normal((4, 6))
    expected = backward(dout, forward(x, w, b, *extra)[1])
    out, cache = forward(x, w, b, *extra)
    out -= 10.0
    for got, want in zip(backward(dout, cache), expected):
        np.testing.assert_array_equal(got, want)


def test_the_general_block_shares_relus_output_with_its_cache():
    # Documented, and what saves a copy per layer and step in FullyConnectedNet.
    rng = np.random.default_rng(0)
    out, cache = LU.hidden_block_forward(rng.standard_normal((4, 5)), rng.standard_normal((5, 6)), np.zeros(6))
    assert np.shares_memory(out, cache[4])


def test_cs231n_spelling_of_the_batchnorm_sandwich():
    assert LU.affine_bn_relu_forward is LU.affine_batchnorm_relu_forward
    assert LU.affine_bn_relu_backward is LU.affine_batchnorm_relu_backward
    assert {"affine_bn_relu_forward", "affine_bn_relu_backward"} <= set(LU.__all__)
