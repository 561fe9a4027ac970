"""Tests for nndl.autoencoder: gradient check and recovery of the principal subspace."""

import numpy as np
import pytest

from nndl.autoencoder import LinearAutoencoder
from nndl.gradient_check import eval_numerical_gradient, rel_error
from nndl.solver import Solver


@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_autoencoder_gradient_check(reg):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 6))
    model = LinearAutoencoder(6, 3, weight_scale=0.5, reg=reg, seed=1)
    loss, grads = model.loss(X, np.zeros(7, dtype=int))
    num = eval_numerical_gradient(lambda _: model.loss(X, 0)[0], model.params["W"], verbose=False)
    assert rel_error(num, grads["W"]) < 1e-8


def test_autoencoder_loss_hand_worked():
    model = LinearAutoencoder(2, 1, seed=0)
    model.params["W"] = np.array([[1.0, 0.0]])  # keeps the first coordinate, drops the second
    X = np.array([[3.0, 4.0], [1.0, -2.0]])
    np.testing.assert_allclose(model.loss(X), [[3.0, 0.0], [1.0, 0.0]])
    loss, _ = model.loss(X, y=0)
    assert loss == pytest.approx((16 + 4) / 2)


def test_autoencoder_recovers_the_top_principal_subspace():
    rng = np.random.default_rng(0)
    d, k, n = 8, 3, 2000
    # Centred data with a clear spectral gap: variances 25, 16, 9 in a random 3-D subspace.
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.array([5.0, 4.0, 3.0, 0.5, 0.4, 0.3, 0.2, 0.1])
    X = (rng.standard_normal((n, d)) * scales) @ basis.T
    X -= X.mean(axis=0)
    data = {"X_train": X[:1800], "y_train": np.zeros(1800, dtype=int),
            "X_val": X[1800:], "y_val": np.zeros(200, dtype=int)}
    model = LinearAutoencoder(d, k, weight_scale=0.1, seed=1)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=30, batch_size=100, verbose=False, seed=0)
    solver.train()

    W = model.params["W"]
    _, _, Vt = np.linalg.svd(data["X_train"], full_matrices=False)
    P_svd = Vt[:k].T @ Vt[:k]
    P_ae = W.T @ np.linalg.solve(W @ W.T, W)  # projector onto the row space of W
    assert np.linalg.norm(P_ae - P_svd, 2) < 0.05
    np.testing.assert_allclose(W @ W.T, np.eye(k), atol=0.05)  # the minimiser has orthonormal rows


def test_autoencoder_dtype_and_bad_input():
    model = LinearAutoencoder(4, 2, dtype=np.float32, seed=0)
    X = np.ones((3, 4))
    assert model.loss(X).dtype == np.float32
    assert model.loss(X, 0)[1]["W"].dtype == np.float32
    with pytest.raises(ValueError, match="X must have 4 features"):
        model.loss(np.ones((3, 5)))
    with pytest.raises(ValueError, match="code_dim must be a positive int"):
        LinearAutoencoder(4, 0)


def test_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        LinearAutoencoder(6, 2, dtype=int)


def test_encode_and_score_take_lists_and_check_the_width():
    model = LinearAutoencoder(3, 2, seed=0)
    X = [[1.0, 2.0, 3.0]]
    np.testing.assert_allclose(model.encode(X), np.asarray(X) @ model.params["W"].T)
    assert model.score(X) == model.score(np.asarray(X))
    with pytest.raises(ValueError, match="X must have 3 features per example"):
        model.encode(np.ones((2, 4)))
