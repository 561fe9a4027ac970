"""Tests for nndl.layers: reference values, hand-worked cases, gradient checks, dtype contract."""

import re

import numpy as np
import pytest

from nndl.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from nndl.layers import (
    affine_backward, affine_forward, batchnorm_backward, batchnorm_forward, dropout_backward,
    dropout_forward, layernorm_backward, layernorm_forward, leaky_relu_backward,
    leaky_relu_forward, relu_backward, relu_forward, softmax_loss, svm_loss, swish_backward,
    swish_forward,
)


# ----------------------------------------------------------------- reference values of the seeds

def test_affine_forward_matches_course_reference():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297],
                            [3.25553199, 3.5141327, 3.77273342]])
    assert rel_error(out, correct_out) < 1e-8


def test_relu_forward_matches_course_reference():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    correct_out = np.array([[0., 0., 0., 0.],
                            [0., 0., 0.04545455, 0.13636364],
                            [0.22727273, 0.31818182, 0.40909091, 0.5]])
    # The notebook reports a difference of 5e-08 (its reference is rounded to 8 digits).
    assert rel_error(out, correct_out) < 1e-7


def test_softmax_loss_of_small_random_scores_is_log_C():
    np.random.seed(0)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    loss, dx = softmax_loss(x, y)
    assert abs(loss - np.log(10)) < 0.01  # the notebook: "Loss should be 2.3"
    dx_num = eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False)
    assert rel_error(dx_num, dx) < 1e-7


def test_svm_loss_of_small_random_scores_is_C_minus_1():
    np.random.seed(1)
    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50)
    loss, dx = svm_loss(x, y)
    assert abs(loss - 9.0) < 0.02
    dx_num = eval_numerical_gradient(lambda x: svm_loss(x, y)[0], x, verbose=False)
    assert rel_error(dx_num, dx) < 1e-7


# ----------------------------------------------------------------- hand-worked cases

def test_affine_hand_worked():
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 1.0]])
    b = np.array([0.0, 1.0, 2.0])
    out, cache = affine_forward(x, w, b)
    np.testing.assert_allclose(out, [[2.0, 5.0, 3.0]])
    dx, dw, db = affine_backward(np.array([[1.0, 0.0, 1.0]]), cache)
    np.testing.assert_allclose(dx, [[0.0, 1.5]])
    np.testing.assert_allclose(dw, [[1.0, 0.0, 1.0], [2.0, 0.0, 2.0]])
    np.testing.assert_allclose(db, [1.0, 0.0, 1.0])


def test_activations_hand_worked():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(relu_forward(x)[0], [0.0, 0.0, 3.0])
    np.testing.assert_allclose(leaky_relu_forward(x, 0.1)[0], [-0.2, 0.0, 3.0])
    out, cache = swish_forward(np.array([0.0]))
    assert out[0] == 0.0
    # d/dx x*sigmoid(x) at 0 is sigmoid(0) = 0.5.
    assert swish_backward(np.array([1.0]), cache)[0] == pytest.approx(0.5)


def test_softmax_loss_hand_worked_and_stable():
    x = np.array([[0.0, 0.0], [1000.0, 0.0]])  # the second row overflows a naive exp
    loss, dx = softmax_loss(x, np.array([0, 1]))
    assert loss == pytest.approx((np.log(2) + 1000.0) / 2)
    np.testing.assert_allclose(dx, [[-0.25, 0.25], [0.5, -0.5]])
    assert np.isfinite(dx).all()


def test_svm_loss_hand_worked():
    x = np.array([[3.0, 1.0, 2.5]])
    loss, dx = svm_loss(x, np.array([0]))
    # margins: class 1 -> max(0, 1 - 3 + 1) = 0, class 2 -> max(0, 2.5 - 3 + 1) = 0.5
    assert loss == pytest.approx(0.5)
    np.testing.assert_allclose(dx, [[-1.0, 0.0, 1.0]])


# ----------------------------------------------------------------- gradient checks (float64)

def test_affine_backward_gradient_check():
    np.random.seed(231)
    x, w, b = np.random.randn(10, 2, 3), np.random.randn(6, 5), np.random.randn(5)
    dout = np.random.randn(10, 5)
    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9
    assert db.shape == (5,)


@pytest.mark.parametrize("need_dx", [True, False])
def test_affine_backward_w_step_takes_the_sgd_step_in_place(need_dx):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((10, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    w_before = w.copy()
    dx_s, dw_s, db_s = affine_backward(dout, cache, need_dx=need_dx, w_step=(0.1, 0.5))
    assert dw_s is None
    np.testing.assert_allclose(w, (1 - 0.1 * 0.5) * w_before - 0.1 * dw, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(db_s, db)
    if need_dx:  # formed from the weights before the step
        np.testing.assert_array_equal(dx_s, dx)
    else:
        assert dx_s is None


# Limits: the notebook says ReLU's dx error "should be around 1e-12" (its run: 3.28e-12), so
# the piecewise-linear activations get 1e-10; swish is curved, so central differences with
# h = 1e-5 leave an O(h**2) error (5e-10 here) and it gets 1e-8.
@pytest.mark.parametrize("forward, backward, limit", [
    (relu_forward, relu_backward, 1e-10),
    (leaky_relu_forward, leaky_relu_backward, 1e-10),
    (swish_forward, swish_backward, 1e-8),
])
def test_activation_gradient_check(forward, backward, limit):
    np.random.seed(231)
    x = np.random.randn(10, 10)
    x[np.abs(x) < 1e-3] = 0.1  # keep away from ReLU's kink, where differences are undefined
    dout = np.random.randn(*x.shape)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x)[0], x, dout)
    dx = backward(dout, forward(x)[1])
    assert rel_error(dx_num, dx) < limit


def test_batchnorm_forward_train_normalises_and_updates_running_averages():
    np.random.seed(231)
    x = 50 + 3 * np.random.randn(200, 4)
    gamma, beta = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, -1.0, 5.0, 2.0])
    bn_param = {"mode": "train"}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-4)
    # Running averages start at zero and move by (1 - momentum) of the batch statistics.
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=0))


def test_batchnorm_test_mode_uses_running_averages():
    np.random.seed(231)
    gamma, beta = np.ones(3), np.zeros(3)
    bn_param = {"mode": "train", "momentum": 0.5}
    for _ in range(60):
        batchnorm_forward(2 + 3 * np.random.randn(100, 3), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    x = 2 + 3 * np.random.randn(5000, 3)
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    assert np.abs(out.mean(axis=0)).max() < 0.1
    assert np.abs(out.std(axis=0) - 1).max() < 0.1


def test_batchnorm_rejects_unknown_mode():
    with pytest.raises(ValueError, match="bn_param\\['mode'\\]"):
        batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2), {"mode": "training"})


@pytest.mark.parametrize("forward, backward, param", [
    (batchnorm_forward, batchnorm_backward, {"mode": "train"}),
    (layernorm_forward, layernorm_backward, {}),
])
def test_normalisation_gradient_check(forward, backward, param):
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma, beta = np.random.randn(D), np.random.randn(D)
    dout = np.random.randn(N, D)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, gamma, beta, dict(param))[0], x, dout)
    dg_num = eval_numerical_gradient_array(lambda g: forward(x, g, beta, dict(param))[0], gamma, dout)
    db_num = eval_numerical_gradient_array(lambda b: forward(x, gamma, b, dict(param))[0], beta, dout)
    dx, dgamma, dbeta = backward(dout, forward(x, gamma, beta, dict(param))[1])
    assert rel_error(dx_num, dx) < 1e-7
    assert rel_error(dg_num, dgamma) < 1e-9
    assert rel_error(db_num, dbeta) < 1e-9


def test_layernorm_normalises_each_example():
    np.random.seed(0)
    x = 10 + 4 * np.random.randn(6, 50)
    out, _ = layernorm_forward(x, np.ones(50), np.zeros(50))
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=1), 1, rtol=1e-4)


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_drops_a_fraction_p_and_keeps_the_mean(p):
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    out, _ = dropout_forward(x, {"mode": "train", "p": p})
    assert abs((out == 0).mean() - p) < 0.01  # p is the probability of dropping a unit
    assert abs(out.mean() - x.mean()) < 0.05  # inverted dropout: no rescaling at test time
    out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
    assert out_test is x


def test_dropout_seed_gives_the_same_mask_every_call_and_leaves_global_state():
    x = np.ones((20, 20))
    state = np.random.get_state()[1].copy()
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_dropout_gradient_check():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    param = {"mode": "train", "p": 0.2, "seed": 123}
    dx_num = eval_numerical_gradient_array(lambda x: dropout_forward(x, param)[0], x, dout)
    dx = dropout_backward(dout, dropout_forward(x, param)[1])
    assert rel_error(dx_num, dx) < 1e-10


# ----------------------------------------------------------------- dtype/shape contract

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_keeps_dtype_and_shapes(dtype):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(4, 3, 2), (6, 5), (5,)])
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(np.ones_like(out), cache)
    assert out.dtype == dtype and (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert dx.dtype == dw.dtype == db.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "swish", "batchnorm", "layernorm", "dropout"])
def test_elementwise_layers_keep_dtype_and_shape(name, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(dtype)
    gamma, beta = np.ones(5, dtype=dtype), np.zeros(5, dtype=dtype)
    pairs = {
        "relu": (relu_forward, relu_backward, ()),
        "leaky_relu": (leaky_relu_forward, leaky_relu_backward, ()),
        "swish": (swish_forward, swish_backward, ()),
        "batchnorm": (batchnorm_forward, batchnorm_backward, (gamma, beta, {"mode": "train"})),
        "layernorm": (layernorm_forward, layernorm_backward, (gamma, beta, {})),
        "dropout": (dropout_forward, dropout_backward, ({"mode": "train", "p": 0.5},)),
    }
    forward, backward, args = pairs[name]
    out, cache = forward(x, *args)
    grads = backward(np.ones_like(out), cache)
    dx = grads[0] if isinstance(grads, tuple) else grads
    assert out.dtype == dtype and out.shape == x.shape
    assert dx.dtype == dtype and dx.shape == x.shape
    if isinstance(grads, tuple):
        assert all(g.dtype == dtype and g.shape == (5,) for g in grads[1:])


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_keep_dtype(loss_fn):
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    loss, dx = loss_fn(x, np.array([0, 1, 2, 3, 0, 1]))
    assert isinstance(loss, float) and dx.dtype == np.float32 and dx.shape == x.shape


# ----------------------------------------------------------------- bad input

@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
@pytest.mark.parametrize("y, error, message", [
    (np.array([0, 3]), ValueError, r"y must lie in \[0, 3\), got label 3"),
    (np.array([0, -1]), ValueError, r"got label -1"),
    (np.array([0.5, 1.0]), TypeError, "integer class labels"),
    (np.array([0, 1, 2]), ValueError, r"shape \(2,\)"),
])
def test_losses_reject_bad_labels(loss_fn, y, error, message):
    with pytest.raises(error, match=message):
        loss_fn(np.zeros((2, 3)), y)


def test_losses_reject_scores_of_wrong_rank():
    with pytest.raises(ValueError, match="shape \\(N, C\\)"):
        softmax_loss(np.zeros(3), np.array([0]))


# ----------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=50, deadline=None)
@given(scores=arrays(np.float64, (4, 3), elements=st.floats(-50, 50)),
       shift=arrays(np.float64, (4, 1), elements=st.floats(-1e3, 1e3)),
       y=arrays(np.int64, (4,), elements=st.integers(0, 2)))
def test_softmax_loss_is_shift_invariant_and_its_gradient_rows_sum_to_zero(scores, shift, y):
    loss, dx = softmax_loss(scores, y)
    shifted_loss, shifted_dx = softmax_loss(scores + shift, y)
    assert loss >= 0 and abs(loss - shifted_loss) < 1e-9 * max(1.0, loss)
    np.testing.assert_allclose(dx, shifted_dx, atol=1e-9)
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(x=arrays(np.float64, (5, 4), elements=st.floats(-1e3, 1e3)))
def test_swish_is_finite_and_between_relu_and_identity_bounds(x):
    out, _ = swish_forward(x)
    assert np.isfinite(out).all()
    assert (out >= np.minimum(x, 0) - 1e-12).all() and (out <= np.maximum(x, 0) + 1e-12).all()


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_losses_refuse_an_empty_batch(loss):
    with pytest.raises(ValueError, match=r"x must be scores of shape \(N, C\) with N >= 1, got shape \(0, 3\)"):
        loss(np.ones((0, 3)), np.zeros(0, dtype=int))


@pytest.mark.parametrize("param, message", [
    ({"mode": "train"}, r"dropout_param\['p'\] must be a number in \[0, 1\), got None"),
    ({"mode": "train", "p": "0.5"}, r"dropout_param\['p'\] must be a number in \[0, 1\), got '0.5'"),
    ({"mode": "test", "p": 1.5}, r"dropout_param\['p'\] must be a number in \[0, 1\), got 1.5"),
    ({"mode": "tset", "p": 0}, r"dropout_param\['mode'\] must be 'train' or 'test', got 'tset'"),
])
def test_dropout_refuses_bad_params_in_every_mode(param, message):
    with pytest.raises(ValueError, match=message):
        dropout_forward(np.ones((2, 3)), param)


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_losses_of_integer_scores_equal_those_of_the_same_floats(loss):
    x, y = np.array([[1, 2, 3], [3, 2, 1]]), np.array([0, 1])
    value, dx = loss(x, y)
    value_f, dx_f = loss(x.astype(np.float64), y)
    assert value == value_f and dx.dtype == np.float64
    np.testing.assert_array_equal(dx, dx_f)


def test_numpy_float64_hyperparameters_keep_float32_normalisation_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)
    bn_param = {"mode": "train", "eps": np.float64(1e-5), "momentum": np.float64(0.9)}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == np.float32 and bn_param["running_var"].dtype == np.float32
    assert all(g.dtype == np.float32 for g in batchnorm_backward(out, cache))
    out, cache = layernorm_forward(x, gamma, beta, {"eps": np.float64(1e-5)})
    assert out.dtype == np.float32 and layernorm_backward(out, cache)[0].dtype == np.float32


def test_batchnorm_mode_typo_leaves_bn_param_untouched():
    bn_param = {"mode": "tset"}
    with pytest.raises(ValueError, match="bn_param\\['mode'\\] must be 'train' or 'test', got 'tset'"):
        batchnorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3), bn_param)
    assert bn_param == {"mode": "tset"}


def test_swish_keeps_its_precision_for_negative_inputs():
    x64 = np.array([-30.0, -20.0, -10.0, -1.0, 0.0, 1.0, 10.0, 30.0])
    ref = x64 / (1.0 + np.exp(-x64))  # fine in float64 over this range
    out32, cache32 = swish_forward(x64.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=1e-6, atol=0)  # -20 gives -4.1e-8, not 0
    dout = np.ones_like(x64)
    ref_grad = np.array([eval_numerical_gradient_array(lambda z: swish_forward(z)[0], np.array([v]), np.ones(1))[0]
                         for v in x64])
    np.testing.assert_allclose(swish_backward(dout.astype(np.float32), cache32), ref_grad, rtol=1e-4, atol=1e-12)
    x = 30 * np.random.default_rng(0).standard_normal((5, 4))
    out, cache = swish_forward(x)
    dout = np.random.default_rng(1).standard_normal(x.shape)
    num = eval_numerical_gradient_array(lambda z: swish_forward(z)[0], x, dout)
    assert rel_error(num, swish_backward(dout, cache)) < 1e-7


def test_swish_of_very_negative_inputs_raises_nothing_under_strict_error_settings():
    with np.errstate(all="raise"):
        out, cache = swish_forward(np.array([-90.0, -1e4, 1e4], dtype=np.float32))
        swish_backward(np.ones(3, np.float32), cache)
    np.testing.assert_allclose(out, [-90.0 / (1.0 + np.exp(90.0)), 0.0, 1e4], rtol=1e-5)  # -7.4e-38: still exact


@pytest.mark.parametrize("dropout_param, message", [
    ({"mode": "train", "p": -0.5}, r"dropout_param\['p'\] must be a number in \[0, 1\), got -0.5"),
    ({"mode": "train", "p": "0.5"}, r"dropout_param\['p'\] must be a number in \[0, 1\), got '0.5'"),
    ({"mode": "tset", "p": 0}, r"dropout_param\['mode'\] must be 'train' or 'test', got 'tset'"),
])
def test_hidden_block_checks_its_dropout_param_even_with_nothing_to_drop(dropout_param, message):
    from nndl.layer_utils import hidden_block_forward

    with pytest.raises(ValueError, match=message):
        hidden_block_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4), dropout_param=dropout_param)


# ----------------------------------------------------------------- small hand-worked cases

def test_batchnorm_by_hand():
    # x = 2, 2, 6, 6: mean 4, variance 4 (std 2), so x_hat = -1, -1, 1, 1 (eps 0). With gamma 2
    # and dout = (1, 0, 0, 0): dx_hat = (2, 0, 0, 0), and dx = (N dx_hat - sum(dx_hat)
    # - x_hat * sum(dx_hat * x_hat)) / (N std) = ((8, 0, 0, 0) - 2 - 2 x_hat) / 8 = (0.5, -0.5, 0, 0).
    x, gamma, beta = np.array([[2.0], [2.0], [6.0], [6.0]]), np.array([2.0]), np.array([1.0])
    bn_param = {"mode": "train", "eps": 0.0, "momentum": 0.9}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, [[-1.0], [-1.0], [3.0], [3.0]])
    np.testing.assert_allclose(bn_param["running_mean"], [0.4])  # 0.9 * 0 + 0.1 * 4
    np.testing.assert_allclose(bn_param["running_var"], [0.4])  # 0.9 * 0 + 0.1 * 4
    dx, dgamma, dbeta = batchnorm_backward(np.array([[1.0], [0.0], [0.0], [0.0]]), cache)
    np.testing.assert_allclose(dx, [[0.5], [-0.5], [0.0], [0.0]], atol=1e-15)
    np.testing.assert_allclose(dgamma, [-1.0])  # sum(dout * x_hat)
    np.testing.assert_allclose(dbeta, [1.0])
    # Test mode uses the running averages: (4 - 2) / sqrt(4) * 2 + 1 = 3.
    test_param = {"mode": "test", "eps": 0.0, "running_mean": np.array([2.0]), "running_var": np.array([4.0])}
    np.testing.assert_allclose(batchnorm_forward(np.array([[4.0]]), gamma, beta, test_param)[0], [[3.0]])


def test_layernorm_by_hand():
    # The same numbers as the batchnorm case, over one example's features instead of the batch.
    out, cache = layernorm_forward(np.array([[2.0, 2.0, 6.0, 6.0]]), np.full(4, 2.0), np.zeros(4), {"eps": 0.0})
    np.testing.assert_allclose(out, [[-2.0, -2.0, 2.0, 2.0]])
    dx, dgamma, dbeta = layernorm_backward(np.array([[1.0, 0.0, 0.0, 0.0]]), cache)
    np.testing.assert_allclose(dx, [[0.5, -0.5, 0.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(dgamma, [-1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(dbeta, [1.0, 0.0, 0.0, 0.0])


class _Draws:
    """A stand-in Generator whose uniform draws are fixed, so the mask can be worked out by hand."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def random(self, shape):
        return self.values.reshape(shape)


def test_dropout_by_hand():
    # p = 0.5 drops the units whose draw is below 0.5 (a draw of exactly 0.5 is kept) and
    # doubles the others.
    x = np.array([1.0, 2.0, 3.0, 4.0])
    param = {"p": 0.5, "mode": "train", "rng": _Draws([0.1, 0.5, 0.4, 0.9])}
    out, cache = dropout_forward(x, param)
    np.testing.assert_array_equal(out, [0.0, 4.0, 0.0, 8.0])
    np.testing.assert_array_equal(dropout_backward(np.ones(4), cache), [0.0, 2.0, 0.0, 2.0])
    param["mode"] = "test"
    np.testing.assert_array_equal(dropout_forward(x, param)[0], x)


@pytest.mark.parametrize("call, message", [
    (lambda: affine_forward(np.ones((4, 5)), np.ones((6, 3)), np.ones(3)),
     "affine_forward needs x of shape (N, d_1, ..., d_k) with d_1 * ... * d_k = 6 (the rows of w), "
     "got x of shape (4, 5)"),
    (lambda: affine_forward(np.ones((4, 6)), np.ones((6, 3)), np.ones(4)),
     "affine_forward needs w of shape (D, M) and b of shape (M,), got w of shape (6, 3) and b of shape (4,)"),
    (lambda: affine_forward(np.ones((4, 6)), np.ones(6), np.ones(1)),
     "affine_forward needs w of shape (D, M) and b of shape (M,), got w of shape (6,) and b of shape (1,)"),
    (lambda: batchnorm_forward(np.ones(4), np.ones(4), np.zeros(4), {"mode": "train"}),
     "batchnorm_forward needs x of shape (N, D), got x of shape (4,)"),
    (lambda: batchnorm_forward(np.ones((2, 4)), np.ones(3), np.zeros(4), {"mode": "train"}),
     "batchnorm_forward needs gamma and beta of shape (4,), got gamma of shape (3,) and beta of shape (4,)"),
    (lambda: layernorm_forward(np.ones((2, 4)), None, np.zeros(4)),
     "layernorm_forward needs gamma and beta of shape (4,), got gamma of type NoneType and beta of shape (4,)"),
])
def test_layers_name_misshapen_inputs(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_softmax_loss_takes_nested_lists():
    loss, dx = softmax_loss([[1.0, 2.0]], [0])
    assert abs(loss - np.log(1 + np.e)) < 1e-12 and dx.shape == (1, 2)


# ---------------------------------------------------------------- label smoothing


def test_label_smoothing_hand_worked():
    # Two classes, equal scores: p = (0.5, 0.5); target (0.95, 0.05) for label 0 at s = 0.1.
    loss, dx = softmax_loss(np.zeros((1, 2)), np.array([0]), smoothing=0.1)
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(dx, [[0.5 - 0.95, 0.5 - 0.05]])


def test_label_smoothing_gradient_check():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    _, dx = softmax_loss(x, y, smoothing=0.2)
    num = eval_numerical_gradient(lambda z: softmax_loss(z, y, smoothing=0.2)[0], x.copy(), verbose=False)
    assert rel_error(num, dx) < 1e-7


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_label_smoothing_equals_torch_in_float64(smoothing):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x, y = 3 * rng.standard_normal((20, 10)), rng.integers(0, 10, 20)
    loss, dx = softmax_loss(x, y, smoothing=smoothing)
    t = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(t, torch.tensor(y), label_smoothing=smoothing)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-14, abs=1e-15)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("smoothing", [-0.1, 1.0, 1.5])
def test_label_smoothing_outside_unit_interval_is_refused(smoothing):
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        softmax_loss(np.zeros((2, 3)), np.array([0, 1]), smoothing=smoothing)


def test_label_smoothing_keeps_float32():
    x = np.ones((3, 4), dtype=np.float32)
    _, dx = softmax_loss(x, np.array([0, 1, 2]), smoothing=0.1)
    assert dx.dtype == np.float32


# ---------------------------------------------------------------- batchnorm conventions


@pytest.mark.parametrize("convention", ["course", "torch"])
def test_batchnorm_running_averages_follow_their_convention(convention):
    x = np.array([[1.0], [3.0]])  # batch mean 2, biased variance 1, unbiased 2
    bn_param = {"mode": "train", "momentum": 0.9, "convention": convention}
    batchnorm_forward(x, np.ones(1), np.zeros(1), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], [0.2])
    expected = [0.1 * 1.0] if convention == "course" else [0.9 * 1.0 + 0.1 * 2.0]
    np.testing.assert_allclose(bn_param["running_var"], expected)


def test_batchnorm_torch_convention_equals_torch_in_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    batches = [3 + 2 * rng.standard_normal((16, 5)) for _ in range(4)]
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    bn = torch.nn.BatchNorm1d(5, momentum=0.1, eps=1e-5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    bn_param = {"mode": "train", "momentum": 0.9, "convention": "torch"}
    for x in batches:
        out, _ = batchnorm_forward(x, gamma, beta, bn_param)
        ref = bn.train()(torch.tensor(x))
        np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn_param["running_mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], bn.running_var.numpy(), rtol=1e-12)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(batches[0], gamma, beta, bn_param)
    np.testing.assert_allclose(out, bn.eval()(torch.tensor(batches[0])).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batchnorm_unknown_convention_is_named():
    with pytest.raises(ValueError, match="bn_param\\['convention'\\] must be 'course' or 'torch', got 'keras'"):
        batchnorm_forward(np.ones((2, 1)), np.ones(1), np.zeros(1), {"mode": "train", "convention": "keras"})


def test_softmax_is_a_stable_row_wise_probability():
    from nndl.layers import softmax

    scores = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]], dtype=np.float32)
    p = softmax(scores)
    assert p.dtype == np.float64 and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum())
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0], atol=1e-12)
