"""Tests for nndl.gradient_check on functions with known derivatives."""

import random

import numpy as np
import pytest

from nndl import layer_utils, layers
from nndl.gradient_check import (
    check_all_gradients, eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error,
)


def test_numerical_gradient_of_a_quadratic_and_x_is_restored():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = eval_numerical_gradient(lambda z: float(np.sum(z ** 3)), x, verbose=False)
    np.testing.assert_allclose(grad, 3 * before ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_array_contracts_with_dout():
    x = np.array([1.0, 2.0, 3.0])
    df = np.array([1.0, -1.0, 2.0])
    grad = eval_numerical_gradient_array(lambda z: z * z, x, df)  # returns a new array
    np.testing.assert_allclose(grad, 2 * x * df, rtol=1e-8)
    grad = eval_numerical_gradient_array(lambda z: z, x, df)  # returns x itself (a view)
    np.testing.assert_allclose(grad, df, rtol=1e-8)


def test_grad_check_sparse_reports_small_errors_for_a_right_gradient(capsys):
    random.seed(0)
    x = np.random.default_rng(0).standard_normal((5, 4))
    errors = grad_check_sparse(lambda z: float(np.sum(np.sin(z))), x, np.cos(x), num_checks=6)
    assert len(errors) == 6 and max(errors) < 1e-8
    assert capsys.readouterr().out.count("relative error") == 6


def test_grad_check_sparse_flags_a_wrong_gradient():
    random.seed(0)
    x = np.random.default_rng(0).standard_normal((5, 4))
    errors = grad_check_sparse(lambda z: float(np.sum(np.sin(z))), x, 2 * np.cos(x), verbose=False)
    assert min(errors) > 0.3


@pytest.mark.parametrize("x, error, message", [
    (np.ones(3, dtype=int), TypeError, "x must be a float ndarray .* got int64 array"),
    ([1.0, 2.0], TypeError, "x must be a float ndarray .* got list"),
    (np.broadcast_to(np.ones(1), (3,)), ValueError, "x must be writeable"),
])
def test_a_point_that_cannot_be_perturbed_in_place_is_refused(x, error, message):
    for call in (lambda: eval_numerical_gradient(np.sum, x, verbose=False),
                 lambda: eval_numerical_gradient_array(np.square, x, np.ones(3)),
                 lambda: grad_check_sparse(np.sum, x, np.ones(3), verbose=False)):
        with pytest.raises(error, match=message):
            call()


def test_rel_error():
    assert rel_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert abs(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) - 0.2 / 4.2) < 1e-12
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0
    # The course's floor: below 1e-8 in size, differences are measured against 1e-8, so two
    # tiny gradients that disagree completely still count as close.
    assert abs(rel_error(np.array([1e-10]), np.array([-1e-10])) - 2e-10 / 1e-8) < 1e-15
    assert abs(rel_error(np.array([3e-9]), np.array([0.0])) - 0.3) < 1e-12


def test_check_all_gradients_covers_every_layer_and_model_and_passes():
    before = np.random.get_state()[1].copy()
    checks = check_all_gradients(seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global state untouched
    names = {c.name for c in checks}
    forwards = {n[: -len("_forward")] for n in layers.__all__ + layer_utils.__all__ if n.endswith("_forward")}
    # affine_bn_relu is the same function as affine_batchnorm_relu (CS231n's name for it).
    assert forwards - {"hidden_block", "affine_bn_relu"} <= names
    assert {"softmax_loss", "svm_loss", "LinearAutoencoder reg=0.1", "cs231n TwoLayerNet reg=0.05"} <= names
    assert any(n.startswith("FullyConnectedNet") for n in names)
    failed = [c for c in checks if not c.passed(1e-6)]
    assert failed == []


def test_check_all_gradients_catches_a_wrong_backward(monkeypatch):
    monkeypatch.setattr(layers, "relu_backward", lambda dout, cache: dout)  # ignores the mask
    failed = {(c.name, c.wrt) for c in check_all_gradients(seed=0) if not c.passed(1e-6)}
    assert ("relu", "x") in failed


def test_a_small_but_wrong_gradient_fails_and_only_zero_gradients_pass_on_noise():
    from nndl.gradient_check import GradientCheck

    # Off by a factor of 3 but small: the absolute difference is tiny, the gradient is wrong.
    wrong = GradientCheck("toy", "w", rel_error=0.5, abs_error=4e-9, scale=6e-9 * 1e3)
    assert not wrong.passed(1e-6)
    # Both gradients ~0 (a bias before batchnorm): the relative error compares round-off.
    zero = GradientCheck("toy", "b", rel_error=0.5, abs_error=4e-11, scale=5e-11)
    assert zero.passed(1e-6) and zero.near_zero()
    assert not GradientCheck("toy", "w", 0.5, 4e-11).passed(1e-6)  # no scale given: no fallback
    # Round-off in one entry far smaller than the rest: the elementwise error is large, the
    # difference is negligible next to the gradient's size.
    tiny_entry = GradientCheck("toy", "W2", rel_error=2.6e-6, abs_error=2.2e-11, scale=0.1)
    assert tiny_entry.passed(1e-6) and not tiny_entry.near_zero() and not tiny_entry.passed(1e-12)
    # verdict labels which rule passed a check, from the same rule as passed().
    assert tiny_entry.verdict(1e-6) == (True, "ok (abs. error 2.2e-11 = 2.2e-10 of the largest entry)")
    assert zero.verdict(1e-6) == (True, "ok (both gradients ~0: largest entry 5.0e-11)")
    assert wrong.verdict(1e-6) == (False, "FAILED")
    assert GradientCheck("toy", "w", 1e-9, 1e-9, 1.0).verdict(1e-6) == (True, "ok")


def test_a_nan_gradient_never_passes():
    from nndl.gradient_check import _compare

    check = _compare("toy", "b", np.full(3, 1e-12), np.full(3, np.nan))
    assert not check.passed(1e-6) and not check.near_zero()


@pytest.mark.parametrize("seed", [6, 8, 10, 16, 17])
def test_check_all_gradients_passes_for_seeds_that_once_hit_a_kink_or_round_off(seed):
    # Seeds 6, 8, 17 put a dropout model's pre-activation exactly on ReLU's kink (zero biases,
    # a sample with every hidden unit zeroed); 10 and 16 have round-off in a tiny entry.
    failed = [c for c in check_all_gradients(seed=seed) if not c.passed(1e-6)]
    assert failed == []


def test_a_tolerance_below_the_round_off_fails_the_check_of_a_large_gradient():
    checks = {(c.name, c.wrt): c for c in check_all_gradients(seed=0)}
    affine_x = checks[("affine", "x")]
    assert affine_x.scale > 1e-3  # a gradient of order one, not ~0
    assert affine_x.passed(1e-6) and not affine_x.passed(1e-14)


def test_x_is_restored_when_f_fails_midway():
    x = np.zeros(4)

    def f(z):
        if z[1] != 0:
            raise KeyboardInterrupt  # the user gives up during the second entry
        return float(np.sum(z))

    with pytest.raises(KeyboardInterrupt):
        eval_numerical_gradient(f, x, verbose=False)
    np.testing.assert_array_equal(x, 0)


def test_rel_error_and_sparse_check_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"rel_error needs x and y of one shape, got \(3,\) and \(3, 1\)"):
        rel_error(np.ones(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match="at least one value"):
        rel_error(np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match=r"analytic_grad must have the shape of x \(3,\), got \(2,\)"):
        grad_check_sparse(np.sum, np.ones(3), np.ones(2), verbose=False)


@pytest.mark.parametrize("seed", [-1, 1.5, True, np.random.default_rng(0)])
def test_check_all_gradients_names_a_bad_seed(seed):
    with pytest.raises(TypeError, match="seed must be a non-negative int, got"):
        check_all_gradients(seed=seed)


def test_grad_check_sparse_names_a_bad_num_checks():
    with pytest.raises(ValueError, match="num_checks must be a positive int, got 'a'"):
        grad_check_sparse(np.sum, np.ones(3), np.ones(3), num_checks="a", verbose=False)
