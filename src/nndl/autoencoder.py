"""Tied-weight linear autoencoder ``x -> W.T @ W @ x`` of the homework's written part.

Contract
--------
``LinearAutoencoder(input_dim, code_dim)`` holds one weight matrix ``params['W']`` of shape
(k, d): the encoder is ``W`` and the decoder is its transpose. ``loss(X)`` returns the
reconstructions (N, d); ``loss(X, y)`` ignores ``y`` (so the Solver can pass its labels) and
returns ``(loss, grads)`` with the squared reconstruction error averaged over the batch,
``mean_n ||W.T W x_n - x_n||^2``, plus ``0.5 * reg * sum(W**2)``. Because W appears twice,
its gradient is the sum of the encoder path and the decoder path. ``score(X, y)`` is the
negative mean squared error, which the Solver maximises in place of accuracy. The Solver
still checks its data as a classifier's, so give it placeholder integer labels:
``y_train=np.zeros(N, dtype=int)`` (and likewise ``y_val``).

With ``k < d`` the minimisers span the top-k principal subspace of the data's second-moment
matrix (for centred data, PCA's subspace), with ``W @ W.T = I``.
"""

import numpy as np

from ._validation import (check_features, check_model_dtype, check_nonneg_float, check_positive_float,
                          check_positive_int, check_seed)

__all__ = ["LinearAutoencoder"]


class LinearAutoencoder:
    """Linear autoencoder with tied weights.

    Parameters
    ----------
    input_dim : int
        Data dimension d.
    code_dim : int
        Code dimension k (k < d compresses).
    weight_scale : float
        Standard deviation of the initial weights.
    reg : float
        L2 strength.
    dtype : float32 or float64
    seed : None, int or numpy.random.Generator
        None draws from NumPy's global random state.
    """

    def __init__(self, input_dim, code_dim, weight_scale=1e-2, reg=0.0, dtype=np.float64, seed=None):
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.code_dim = check_positive_int("code_dim", code_dim)
        weight_scale = check_positive_float("weight_scale", weight_scale)
        self.reg = check_nonneg_float("reg", reg)
        self.dtype = check_model_dtype(dtype)  # integer weights would round 0.01 * randn to zeros
        shape = (self.code_dim, self.input_dim)
        seed = check_seed(seed)
        if seed is None:
            draw = np.random.randn(*shape)
        else:
            rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
            draw = rng.standard_normal(shape)
        self.params = {"W": (weight_scale * draw).astype(self.dtype)}

    def encode(self, X):
        """Codes ``X @ W.T``. X: (N, d) -> (N, k)."""
        X = check_features("X", X, self.input_dim)
        return X.reshape(X.shape[0], -1) @ self.params["W"].T

    def loss(self, X, y=None):
        """Reconstructions, or loss and gradient.

        Parameters
        ----------
        X : ndarray, shape (N, d)
        y : ignored, optional
            Any value switches to training mode (the Solver passes labels).

        Returns
        -------
        recon : ndarray, shape (N, d)
            If ``y`` is None.
        loss, grads : float, dict
            Otherwise; ``grads['W']`` has shape (k, d).
        """
        X = check_features("X", X, self.input_dim)
        X = np.asarray(X.reshape(X.shape[0], -1), dtype=self.dtype)
        W = self.params["W"]
        codes = X @ W.T
        recon = codes @ W
        if y is None:
            return recon
        N = X.shape[0]
        err = recon - X
        loss = float(np.sum(err * err) / N)
        drecon = (2.0 / N) * err
        # Decoder path (recon = codes @ W) plus encoder path (codes = X @ W.T).
        dcodes = drecon @ W.T
        dW = codes.T @ drecon + dcodes.T @ X
        if self.reg:
            loss += 0.5 * self.reg * float(np.sum(W * W))
            dW += self.reg * W
        return loss, {"W": dW}

    def score(self, X, y=None):
        """Negative mean squared reconstruction error (higher is better). X: (N, d)."""
        X = np.asarray(X)
        err = self.loss(X) - np.asarray(X, dtype=self.dtype).reshape(X.shape[0], -1)
        return -float(np.mean(np.sum(err * err, axis=1)))
