"""Tests for nndl.optim: hand-checked updates, state handling, dtype, registry."""

import re

import numpy as np
import pytest

from nndl.optim import UPDATE_RULES, adam, get_update_rule, rmsprop, sgd, sgd_momentum, sgd_nesterov_momentum


def test_sgd_hand_checked():
    w, _ = sgd(np.array([1.0, -2.0]), np.array([0.5, 1.0]), {"learning_rate": 0.1})
    np.testing.assert_allclose(w, [0.95, -2.1])


def test_sgd_momentum_hand_checked_two_steps():
    config = {"learning_rate": 0.1, "momentum": 0.9}
    w, config = sgd_momentum(np.array([1.0]), np.array([1.0]), config)
    np.testing.assert_allclose(config["velocity"], [-0.1])
    np.testing.assert_allclose(w, [0.9])
    w, config = sgd_momentum(w, np.array([1.0]), config)
    np.testing.assert_allclose(config["velocity"], [-0.19])  # 0.9 * -0.1 - 0.1
    np.testing.assert_allclose(w, [0.71])


def test_nesterov_hand_checked_two_steps():
    config = {"learning_rate": 0.1, "momentum": 0.9}
    w, config = sgd_nesterov_momentum(np.array([1.0]), np.array([1.0]), config)
    # v = -0.1; w += (1 + 0.9) * v - 0.9 * 0 = -0.19
    np.testing.assert_allclose(w, [0.81])
    w, config = sgd_nesterov_momentum(w, np.array([1.0]), config)
    # v_new = 0.9 * -0.1 - 0.1 = -0.19; w += 1.9 * -0.19 - 0.9 * -0.1 = -0.271
    np.testing.assert_allclose(w, [0.81 - 0.271])


def test_rmsprop_hand_checked():
    config = {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 0.0}
    w, config = rmsprop(np.array([1.0]), np.array([2.0]), config)
    np.testing.assert_allclose(config["cache"], [0.4])  # 0.1 * 2**2
    np.testing.assert_allclose(w, [1.0 - 0.01 * 2.0 / np.sqrt(0.4)])


def test_adam_first_step_moves_each_weight_by_the_learning_rate():
    # After bias correction with t = 1, m_hat = dw and v_hat = dw**2: a step of lr * sign(dw).
    w, config = adam(np.array([1.0, 1.0]), np.array([3.0, -0.02]), {"learning_rate": 0.1, "epsilon": 0.0})
    np.testing.assert_allclose(w, [0.9, 1.1])
    assert config["t"] == 1
    np.testing.assert_allclose(config["m"], [0.3, -0.002])
    np.testing.assert_allclose(config["v"], [0.009, 0.0000004])


def test_adam_second_step_hand_checked():
    config = {"learning_rate": 0.1, "epsilon": 0.0}
    w, config = adam(np.array([0.0]), np.array([1.0]), config)
    w, config = adam(w, np.array([3.0]), config)
    m = 0.9 * 0.1 + 0.1 * 3.0
    v = 0.999 * 0.001 + 0.001 * 9.0
    step = 0.1 * (m / (1 - 0.9 ** 2)) / np.sqrt(v / (1 - 0.999 ** 2))
    np.testing.assert_allclose(w, [-0.1 - step])
    assert config["t"] == 2


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_rules_keep_float32_and_create_state_once(name):
    rule = get_update_rule(name)
    w = np.ones((3, 2), dtype=np.float32)
    dw = np.full((3, 2), 0.5, dtype=np.float32)
    w, config = rule(w, dw, None)
    states = {k: v for k, v in config.items() if isinstance(v, np.ndarray)}
    assert w.dtype == np.float32 and all(v.dtype == np.float32 for v in states.values())
    w, config2 = rule(w, dw, config)
    assert all(config2[k] is v for k, v in states.items())  # updated in place, not reallocated
    assert w.dtype == np.float32


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_rules_minimise_a_quadratic(name):
    w = np.array([3.0, -2.0])
    config = {"learning_rate": 0.05}
    rule = get_update_rule(name)
    for _ in range(500):
        w, config = rule(w, 2 * w, config)
    assert np.abs(w).max() < 0.05


def test_registry_error_lists_valid_names():
    with pytest.raises(ValueError, match="update_rule must be one of adam, adamw, rmsprop, sgd, "
                                         "sgd_momentum, sgd_nesterov_momentum, sgdw; got 'sqd'"):
        get_update_rule("sqd")


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_weight_decay_equals_adding_the_l2_gradient_first(name):
    rng = np.random.default_rng(1)
    rule = get_update_rule(name)
    w0 = rng.standard_normal((7, 5))
    dws = [rng.standard_normal(w0.shape) for _ in range(4)]
    wd = 0.3
    w_ref, c_ref = w0.copy(), {"learning_rate": 0.05}
    w_dec, c_dec = w0.copy(), {"learning_rate": 0.05, "weight_decay": wd}
    for dw in dws:
        w_ref, c_ref = rule(w_ref, dw + wd * w_ref, c_ref)
        dw_before = dw.copy()
        w_dec, c_dec = rule(w_dec, dw, c_dec)
        np.testing.assert_array_equal(dw, dw_before)  # the gradient is not consumed
    np.testing.assert_allclose(w_dec, w_ref, rtol=1e-12, atol=1e-15)
    assert not np.allclose(w_dec, w0)


def test_weight_decay_defaults_to_zero():
    _, config = sgd(np.ones(2), np.ones(2))
    assert config["weight_decay"] == 0.0


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_mismatched_or_unusable_arrays_are_refused_before_any_update(name):
    rule = UPDATE_RULES[name]
    w = np.arange(20, dtype=float).reshape(4, 5)
    before = w.copy()
    with pytest.raises(ValueError, match=r"dw must have the shape of w \(4, 5\), got \(5, 4\)"):
        rule(w, np.ones((5, 4)))  # a forgotten transpose: same size, wrong shape
    with pytest.raises(ValueError, match=r"dw must have the shape of w \(4, 5\), got \(20,\)"):
        rule(w, np.ones(20))
    with pytest.raises(TypeError, match="w must be a float ndarray .* got int64 array"):
        rule(np.ones((2, 2), dtype=np.int64), np.ones((2, 2)))
    with pytest.raises(TypeError, match="w must be a float ndarray .* got list"):
        rule([1.0, 2.0], np.ones(2))
    np.testing.assert_array_equal(w, before)


def test_state_of_the_wrong_shape_is_refused():
    w = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"elementwise arrays must share one shape, got \(2, 3\), \(2, 3\), \(6,\)"):
        sgd_momentum(w, np.ones((2, 3)), {"velocity": np.zeros(6)})


@pytest.mark.parametrize("rule, config, error, message", [
    (sgd, {"learning_rate": -1.0}, ValueError, "config['learning_rate'] must be a finite number >= 0, got -1.0"),
    (sgd, {"learning_rate": "a"}, TypeError, "config['learning_rate'] must be a number >= 0, got 'a'"),
    (sgd, {"weight_decay": float("nan")}, ValueError, "config['weight_decay'] must be a finite number >= 0, got nan"),
    (sgd_momentum, {"momentum": 1.0}, ValueError, "config['momentum'] must be in [0, 1), got 1.0"),
    (rmsprop, {"decay_rate": -0.5}, ValueError, "config['decay_rate'] must be in [0, 1), got -0.5"),
    (rmsprop, {"epsilon": -1e-8}, ValueError, "config['epsilon'] must be a finite number >= 0, got -1e-08"),
    (adam, {"beta1": 2}, ValueError, "config['beta1'] must be in [0, 1), got 2"),
    (adam, {"beta2": None}, TypeError, "config['beta2'] must be a number in [0, 1), got None"),
    (adam, [1], TypeError, "config must be a dict or None, got list"),
])
def test_rules_name_a_bad_hyperparameter(rule, config, error, message):
    w, dw = np.ones(3), np.ones(3)
    with pytest.raises(error, match=re.escape(message)):
        rule(w, dw, config)
    np.testing.assert_array_equal(w, np.ones(3))  # refused before any change


def test_numpy_scalars_and_ints_in_range_are_accepted():
    w = np.ones(3, dtype=np.float32)
    config = {"learning_rate": np.float64(0.1), "beta1": np.float32(0.9), "beta2": 0, "epsilon": 1}
    adam(w, np.ones(3, dtype=np.float32), config)
    assert w.dtype == np.float32 and np.all(w < 1)


def test_a_refused_config_is_left_as_it_was():
    config = {"beta2": 2.0}
    with pytest.raises(ValueError, match=re.escape("config['beta2'] must be in [0, 1), got 2.0")):
        adam(np.ones(3), np.ones(3), config)
    assert config == {"beta2": 2.0}


def test_zero_dimensional_arrays_work_as_hyperparameters():
    w = np.ones(3)
    sgd_momentum(w, np.ones(3), {"learning_rate": np.array(0.5), "momentum": np.array(0.0)})
    np.testing.assert_allclose(w, 0.5)


# ---------------------------------------------------------------- decoupled weight decay


def _adamw_reference(w, grads, lr, b1, b2, eps, wd):
    """AdamW written out from its definition (Loshchilov & Hutter; torch.optim.AdamW's docs)."""
    w = w.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w *= 1 - lr * wd
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return w


@pytest.mark.parametrize("size", [7, 70_000])  # one block, and several blocks of nndl._parallel
def test_adamw_follows_its_definition(size):
    from nndl.optim import adamw

    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(size)
    grads = [rng.standard_normal(size) for _ in range(4)]
    config = {"learning_rate": 0.01, "decoupled_weight_decay": 0.1, "epsilon": 1e-8}
    w = w0.copy()
    for g in grads:
        w, config = adamw(w, g, config)
    expected = _adamw_reference(w0, grads, 0.01, 0.9, 0.999, 1e-8, 0.1)
    np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-14)
    assert config["t"] == 4


def test_adamw_without_decay_is_adam():
    from nndl.optim import adamw

    rng = np.random.default_rng(4)
    w0, g = rng.standard_normal(10), rng.standard_normal(10)
    a, _ = adam(w0.copy(), g, {"learning_rate": 0.01})
    b, _ = adamw(w0.copy(), g, {"learning_rate": 0.01, "decoupled_weight_decay": 0.0})
    np.testing.assert_array_equal(a, b)


def test_adamw_equals_torch_adamw_in_float64():
    torch = pytest.importorskip("torch")
    from nndl.optim import adamw

    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((30, 20))
    grads = [rng.standard_normal((30, 20)) for _ in range(6)]
    param = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([param], lr=3e-3, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.05)
    config = {"learning_rate": 3e-3, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7,
              "decoupled_weight_decay": 0.05}
    w = w0.copy()
    for g in grads:
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        w, config = adamw(w, g, config)
    np.testing.assert_allclose(w, param.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_sgdw_hand_checked_two_steps():
    from nndl.optim import sgdw

    config = {"learning_rate": 0.1, "momentum": 0.9, "decoupled_weight_decay": 0.5}
    w, config = sgdw(np.array([2.0]), np.array([1.0]), config)
    # v = -0.1; w = (1 - 0.1 * 0.5) * 2 + v = 1.9 - 0.1
    np.testing.assert_allclose(w, [1.8])
    w, config = sgdw(w, np.array([1.0]), config)
    # v = 0.9 * -0.1 - 0.1 = -0.19; w = 0.95 * 1.8 - 0.19
    np.testing.assert_allclose(w, [0.95 * 1.8 - 0.19])


def test_sgdw_equals_torch_sgd_momentum_plus_decoupled_shrink():
    torch = pytest.importorskip("torch")
    from nndl.optim import sgdw

    # torch has no SGDW; its SGD with momentum (dampening 0) keeps v = mu v + g and steps
    # w -= lr v, which is nndl's velocity divided by -lr at a constant learning rate; the
    # decoupled shrink is applied by hand before each step, as AdamW does.
    rng = np.random.default_rng(6)
    w0 = rng.standard_normal(50)
    grads = [rng.standard_normal(50) for _ in range(5)]
    param = torch.tensor(w0, dtype=torch.float64)
    opt = torch.optim.SGD([param], lr=0.05, momentum=0.9)
    config = {"learning_rate": 0.05, "momentum": 0.9, "decoupled_weight_decay": 0.2}
    w = w0.copy()
    for g in grads:
        with torch.no_grad():
            param.mul_(1 - 0.05 * 0.2)
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        w, config = sgdw(w, g, config)
    np.testing.assert_allclose(w, param.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rule", ["adamw", "sgdw"])
def test_decoupled_decay_is_checked_by_name(rule):
    with pytest.raises(ValueError, match=r"config\['decoupled_weight_decay'\] must be"):
        get_update_rule(rule)(np.ones(3), np.ones(3), {"decoupled_weight_decay": -0.1})


def test_momentum_keeps_the_rate_inside_the_velocity_unlike_torch():
    torch = pytest.importorskip("torch")
    # Constant rate: the same steps as torch.optim.SGD(momentum). After the rate halves, nndl's
    # velocity still carries the old rate's steps (documented in sgd_momentum's docstring).
    g = np.array([1.0])
    param = torch.tensor([0.0], dtype=torch.float64)
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    config, w = {"learning_rate": 0.1, "momentum": 0.9}, np.array([0.0])
    for lr in (0.1, 0.1, 0.05):
        config["learning_rate"] = lr
        opt.param_groups[0]["lr"] = lr
        param.grad = torch.tensor(g)
        opt.step()
        w, config = sgd_momentum(w, g, config)
        if lr == 0.1:
            np.testing.assert_allclose(w, param.numpy(), rtol=1e-15)
    # torch: v = 1.9 + 1 = 2.71, step 0.05 * 2.71; nndl: v = 0.9 * -0.19 - 0.05.
    assert w[0] == pytest.approx(-0.1 - 0.19 - 0.221) and param.item() == pytest.approx(-0.1 - 0.19 - 0.1355)
