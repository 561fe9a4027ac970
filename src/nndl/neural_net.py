"""The stand-alone two-layer network of the course's first notebook, with its own SGD loop.

Contract
--------
``TwoLayerNet(input_size, hidden_size, output_size, std=1e-4)`` is
``input - affine - relu - affine - softmax`` written out by hand (no layer modules), with
``W1`` of shape (H, D) and ``W2`` of shape (C, H) as in the ECE C147 homework, and the L2
penalty ``0.5 * reg * (sum(W1**2) + sum(W2**2))``. ``loss(X)`` returns scores (N, C);
``loss(X, y, reg)`` returns ``(loss, grads)``. ``train`` runs minibatch SGD (batches sampled
with replacement from NumPy's global random state, as the course does) and returns the loss
and accuracy histories; ``predict`` returns labels. A loss that becomes NaN or inf stops
``train`` with ``FloatingPointError`` naming the iteration and the learning rate.

Weights are drawn from NumPy's global random state, so ``np.random.seed(0)`` before
construction reproduces the notebook's toy numbers. ``nndl.cs231n.classifiers.neural_net``
holds the CS231n variant of this class, which differs only in weight layout and L2 factor.
"""

import numpy as np

from ._validation import (
    check_features, check_labels, check_nonneg_float, check_positive_float, check_positive_int,
)

__all__ = ["TwoLayerNet"]


class TwoLayerNet:
    """Two-layer ReLU network with softmax loss and hand-written forward/backward passes.

    Parameters
    ----------
    input_size : int
        Input dimension D.
    hidden_size : int
        Hidden layer size H.
    output_size : int
        Number of classes C.
    std : float
        Standard deviation of the initial weights; biases start at zero.

    Attributes
    ----------
    params : dict
        ``W1`` (H, D), ``b1`` (H,), ``W2`` (C, H), ``b2`` (C,).
    """

    # The CS231n subclass flips these two: W stored as (in, out) and L2 without the 0.5.
    _weights_in_by_out = False
    _reg_factor = 0.5

    def __init__(self, input_size, hidden_size, output_size, std=1e-4):
        D = check_positive_int("input_size", input_size)
        H = check_positive_int("hidden_size", hidden_size)
        C = check_positive_int("output_size", output_size)
        std = check_positive_float("std", std)
        shape1, shape2 = ((D, H), (H, C)) if self._weights_in_by_out else ((H, D), (C, H))
        self.params = {}
        self.params["W1"] = std * np.random.randn(*shape1)
        self.params["b1"] = np.zeros(H)
        self.params["W2"] = std * np.random.randn(*shape2)
        self.params["b2"] = np.zeros(C)

    def _weights(self):
        """W1 as (D, H) and W2 as (H, C), whatever the stored layout."""
        W1, W2 = self.params["W1"], self.params["W2"]
        return (W1, W2) if self._weights_in_by_out else (W1.T, W2.T)

    def _input_size(self):
        return self._weights()[0].shape[0]

    def loss(self, X, y=None, reg=0.0):
        """Scores, or loss and gradients, for a batch.

        Parameters
        ----------
        X : ndarray, shape (N, D)
        y : ndarray of int, shape (N,), optional
            Labels in [0, C).
        reg : float
            L2 regularisation strength.

        Returns
        -------
        scores : ndarray, shape (N, C)
            If ``y`` is None.
        loss, grads : float, dict
            Otherwise; ``grads`` has the keys and shapes of ``params``.
        """
        W1, W2 = self._weights()
        b1, b2 = self.params["b1"], self.params["b2"]
        X = check_features("X", X, W1.shape[0])
        X = X.reshape(X.shape[0], -1)
        reg = check_nonneg_float("reg", reg)

        hidden = np.maximum(X @ W1 + b1, 0)
        scores = hidden @ W2 + b2
        if y is None:
            return scores
        y = check_labels("y", y, X.shape[0], W2.shape[1])

        N = X.shape[0]
        rows = np.arange(N)
        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        data_loss = np.mean(np.log(sums[:, 0]) - shifted[rows, y])
        reg_loss = self._reg_factor * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        loss = float(data_loss + reg_loss)

        dscores = exp / sums
        dscores[rows, y] -= 1
        dscores /= N
        dW2 = hidden.T @ dscores
        dhidden = (dscores @ W2.T) * (hidden > 0)
        dW1 = X.T @ dhidden
        # d/dW of factor * reg * sum(W**2) is 2 * factor * reg * W.
        dW1 += 2 * self._reg_factor * reg * W1
        dW2 += 2 * self._reg_factor * reg * W2
        if not self._weights_in_by_out:
            dW1, dW2 = dW1.T, dW2.T
        grads = {"W1": dW1, "b1": dhidden.sum(axis=0), "W2": dW2, "b2": dscores.sum(axis=0)}
        return loss, grads

    def train(self, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95,
              reg=1e-5, num_iters=100, batch_size=200, verbose=False):
        """Minibatch stochastic gradient descent.

        An epoch is ``max(num_train // batch_size, 1)`` iterations. At the first iteration
        and at every epoch boundary after it, the accuracy on the current batch and on the
        validation set is recorded and the learning rate is multiplied by
        ``learning_rate_decay`` (the course's schedule, which its reference numbers need).

        Parameters
        ----------
        X : ndarray, shape (N, D)
        y : ndarray of int, shape (N,)
        X_val : ndarray, shape (N_val, D)
        y_val : ndarray of int, shape (N_val,)
        learning_rate : float > 0
        learning_rate_decay : float in (0, 1]
        reg : float >= 0
        num_iters : int > 0
        batch_size : int > 0
            Batches are drawn with replacement, so it may exceed N.
        verbose : bool
            Print the loss every 100 iterations.

        Returns
        -------
        dict
            ``loss_history`` (one float per iteration), ``train_acc_history`` and
            ``val_acc_history`` (one float per epoch).

        Raises
        ------
        FloatingPointError
            When the loss becomes NaN or inf (the step diverged): training stops there, with
            the parameters of that step, instead of printing NaN for the remaining iterations.
        """
        D = self._input_size()
        X = check_features("X", X, D)
        y = check_labels("y", y, X.shape[0])
        X_val = check_features("X_val", X_val, D)
        y_val = check_labels("y_val", y_val, X_val.shape[0])
        learning_rate = check_positive_float("learning_rate", learning_rate)
        learning_rate_decay = check_positive_float("learning_rate_decay", learning_rate_decay)
        if learning_rate_decay > 1:
            raise ValueError(f"learning_rate_decay must be in (0, 1], got {learning_rate_decay!r}")
        reg = check_nonneg_float("reg", reg)
        num_iters = check_positive_int("num_iters", num_iters)
        batch_size = check_positive_int("batch_size", batch_size)
        return self._minibatch_sgd(X, y, X_val, y_val, learning_rate, learning_rate_decay, reg,
                                   num_iters, batch_size, verbose)

    def _minibatch_sgd(self, X, y, X_val, y_val, learning_rate, learning_rate_decay, reg,
                       num_iters, batch_size, verbose):
        """The SGD loop of ``train``, on arguments it has checked; returns its history dict."""
        num_train = X.shape[0]
        iterations_per_epoch = max(num_train // batch_size, 1)
        loss_history, train_acc_history, val_acc_history = [], [], []
        # A diverging run overflows in the forward pass, the step or the accuracy check; the
        # loss check reports it once, clearly, where NumPy's warnings would only bury it.
        with np.errstate(over="ignore", invalid="ignore"):
            for it in range(num_iters):
                idx = np.random.choice(num_train, batch_size)
                X_batch, y_batch = X[idx], y[idx]
                loss, grads = self.loss(X_batch, y_batch, reg=reg)
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss} at iteration {it}; training stopped. "
                        f"Try a smaller learning rate (was {learning_rate})")
                loss_history.append(loss)
                for name, grad in grads.items():
                    self.params[name] -= learning_rate * grad
                if verbose and it % 100 == 0:
                    print(f"iteration {it} / {num_iters}: loss {loss}")
                if it % iterations_per_epoch == 0:
                    train_acc_history.append(float(np.mean(self.predict(X_batch) == y_batch)))
                    val_acc_history.append(float(np.mean(self.predict(X_val) == y_val)))
                    learning_rate *= learning_rate_decay
        return {
            "loss_history": loss_history,
            "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history,
        }

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : ndarray, shape (N, D)

        Returns
        -------
        y_pred : ndarray of int, shape (N,)
        """
        return np.argmax(self.loss(X), axis=1)
