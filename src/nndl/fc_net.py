"""Fully-connected classifiers built from the layer pairs: TwoLayerNet and FullyConnectedNet.

Contract
--------
A model has a flat ``params`` dict (``W1``, ``b1``, ..., ``gamma1``, ``beta1``, ...) and
``loss(X, y=None)``: without labels it returns class scores of shape (N, C); with labels it
returns ``(loss, grads)`` where ``grads`` has exactly the keys of ``params`` (less the
weights named in ``sgd_steps``, below). The loss is the
softmax loss plus the L2 penalty ``0.5 * reg * sum(W**2)`` over weight matrices only (not
biases, gamma or beta). ``reg`` is read at every call, so ``model.reg = 1.0`` takes effect at
once. Any object with ``params`` and ``loss`` can be trained by ``nndl.solver.Solver``.

Optionally (the Solver's fast path): ``penalized_params`` names the parameters the L2 penalty
covers, and ``loss(X, y, penalty_grads=False)`` returns the same loss but leaves ``reg * W``
out of their gradients, for an update rule to add with ``weight_decay=reg`` in the same pass
over memory as the update itself (see ``nndl.optim``). ``loss(X, y, sgd_steps={"W1": (lr,
wd), ...})`` goes further for plain SGD: those weight matrices take their step during
backpropagation, inside the matrix product that forms their gradient (``nndl._blas``), and
are left out of ``grads``.

The architecture for L layers is::

    {affine - [batchnorm | layernorm] - activation - [dropout]} x (L - 1) - affine - softmax

The model owns its dtype: parameters are created in it and inputs are cast to it (once, not
per layer). Randomness: with ``seed=None`` initialisation and dropout masks come from NumPy's
global random state, so ``np.random.seed(0)`` before construction reproduces the course's
numbers; an int ``seed`` initialises from ``np.random.default_rng(seed)`` and fixes the dropout
mask (as the course's gradient checks need); a ``np.random.Generator`` is used for both
initialisation and fresh dropout masks, touching nothing global.
"""

import math
import numbers
import warnings

import numpy as np

from . import layer_utils
from . import layers as L
from ._parallel import add_scaled
from ._validation import (
    check_choice, check_features, check_finite, check_hidden_dims, check_model_dtype, check_nonneg_float,
    check_positive_float, check_positive_int, check_probability, check_seed,
)
from .layer_utils import *  # noqa: F401,F403 - the course notebooks get the layers from here
from .layer_utils import NORMALIZATIONS, hidden_block_backward, hidden_block_forward
from .layers import *  # noqa: F401,F403

# `from nndl.fc_net import *` must also bring the layer functions, as the course notebooks use it.
__all__ = ["FullyConnectedNet", "TwoLayerNet"] + L.__all__ + layer_utils.__all__

INITS = (None, "he", "xavier")
"""Valid ``init`` names: None keeps ``weight_scale`` (the course's initialisation)."""


class FullyConnectedNet:
    """A fully-connected classifier with any number of hidden layers.

    Parameters
    ----------
    hidden_dims : list of int
        Size of each hidden layer (an int means one hidden layer).
    input_dim : int
        Number of input features D (inputs of shape (N, d_1, ..., d_k) are flattened).
    num_classes : int
        Number of classes C.
    dropout : float in [0, 1)
        Probability of dropping each hidden unit; 0 disables dropout.
    use_batchnorm : bool
        Batch normalisation after each hidden affine layer (same as
        ``normalization='batchnorm'``).
    reg : float >= 0
        L2 strength; the penalty is ``0.5 * reg * sum(W**2)``.
    weight_scale : float > 0
        Standard deviation of the normally distributed initial weights; biases start at 0,
        gamma at 1 and beta at 0.
    dtype : float32 or float64
        float32 (fast) or float64 (for numeric gradient checks).
    seed : None, int or numpy.random.Generator
        Source of randomness; see the module docstring.
    activation : {'relu', 'leaky_relu', 'swish'}
        Hidden-layer nonlinearity.
    normalization : {None, 'batchnorm', 'layernorm'}
        Normalisation after each hidden affine layer.
    init : {None, 'he', 'xavier'}
        How the initial weights are scaled: None uses ``weight_scale`` for every layer (the
        course's way); 'he' draws layer i's weights with std ``sqrt(2 / fan_in)`` (suited to
        ReLU), 'xavier' with std ``sqrt(2 / (fan_in + fan_out))``; both ignore
        ``weight_scale``. The draws are the same standard normals either way.
    label_smoothing : float in [0, 1)
        Label smoothing of the softmax loss (see ``nndl.layers.softmax_loss``); 0 is the
        course's loss.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout=0,
                 use_batchnorm=False, reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None,
                 activation="relu", normalization=None, init=None, label_smoothing=0.0):
        self.hidden_dims = check_hidden_dims("hidden_dims", hidden_dims)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.num_classes = check_positive_int("num_classes", num_classes)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2 (a classifier needs two classes), got {num_classes!r}")
        self.dropout = check_probability("dropout", dropout)
        self.reg = check_nonneg_float("reg", reg)
        self.weight_scale = check_positive_float("weight_scale", weight_scale)
        self.activation = check_choice("activation", activation, tuple(L.ACTIVATIONS))
        if use_batchnorm and normalization not in (None, "batchnorm"):
            raise ValueError(f"use_batchnorm=True conflicts with normalization={normalization!r}")
        normalization = "batchnorm" if use_batchnorm else normalization
        self.normalization = check_choice("normalization", normalization,
                                          (None,) + tuple(NORMALIZATIONS))
        self.dtype = check_model_dtype(dtype)
        self.init = check_choice("init", init, INITS)
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        seed = check_seed(seed)

        self.use_batchnorm = self.normalization == "batchnorm"
        self.use_dropout = self.dropout > 0
        self.num_layers = 1 + len(self.hidden_dims)
        self._weight_names = tuple(f"W{i}" for i in range(1, self.num_layers + 1))

        dims = [self.input_dim] + self.hidden_dims + [self.num_classes]
        rng = np.random.default_rng(seed) if isinstance(seed, int) else seed
        self.params = {}
        for i in range(1, self.num_layers + 1):
            shape = (dims[i - 1], dims[i])
            draw = np.random.randn(*shape) if rng is None else rng.standard_normal(shape)
            self.params[f"W{i}"] = (self._init_std(*shape) * draw).astype(self.dtype)
            self.params[f"b{i}"] = np.zeros(dims[i], dtype=self.dtype)
            if self.normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(dims[i], dtype=self.dtype)
                self.params[f"beta{i}"] = np.zeros(dims[i], dtype=self.dtype)

        # One dropout_param shared by every dropout layer; one bn_param per normalised layer,
        # holding batchnorm's running averages between calls.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": self.dropout}
            if isinstance(seed, int):
                self.dropout_param["seed"] = seed
            elif seed is not None:
                self.dropout_param["rng"] = seed
        self.bn_params = []
        if self.normalization is not None:
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]

    def _init_std(self, fan_in, fan_out):
        """Standard deviation of a weight matrix's initial draws (see ``init``)."""
        if self.init == "he":
            return math.sqrt(2.0 / fan_in)
        if self.init == "xavier":
            return math.sqrt(2.0 / (fan_in + fan_out))
        return self.weight_scale

    # ------------------------------------------------------------------ description

    def config(self):
        """The constructor arguments that rebuild this architecture (JSON-serialisable).

        ``init`` and ``label_smoothing`` appear only when set, so the configuration (and the
        files) of a course model read as they did before those options existed.
        """
        config = {
            "hidden_dims": list(self.hidden_dims), "input_dim": self.input_dim,
            "num_classes": self.num_classes, "dropout": self.dropout, "reg": self.reg,
            "weight_scale": self.weight_scale, "dtype": self.dtype.name,
            "activation": self.activation, "normalization": self.normalization,
        }
        if self.init is not None:
            config["init"] = self.init
        if self.label_smoothing:
            config["label_smoothing"] = self.label_smoothing
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ forward/backward

    @property
    def penalized_params(self):
        """Names of the parameters the L2 penalty covers: the weight matrices."""
        return self._weight_names  # built once in __init__: the Solver reads it every step

    def loss(self, X, y=None, penalty_grads=True, sgd_steps=None):
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, shape (N, d_1, ..., d_k)
            Inputs with d_1 * ... * d_k == input_dim.
        y : ndarray of int, shape (N,), optional
            Labels in [0, num_classes).
        penalty_grads : bool
            False leaves the L2 term ``reg * W`` out of the weight gradients (the returned
            loss still includes the penalty); the caller's update rule must add it.
        sgd_steps : dict, optional
            ``{"W<i>": (learning_rate, weight_decay)}``: take an SGD step on these weight
            matrices during backpropagation, ``W -= learning_rate * (dW + weight_decay * W)``
            with ``dW`` the gradient this call would otherwise return for ``W`` (so it holds
            ``reg * W`` unless ``penalty_grads=False``), instead of returning it. The step
            runs inside the product that forms ``dW``, so ``dW`` is never stored; the Solver
            uses it for ``update_rule='sgd'``. Needs ``y``; the loss returned is that of the
            weights before the step.

        Returns
        -------
        scores : ndarray, shape (N, C)
            If ``y`` is None (test mode: dropout off, batchnorm uses running averages).
        loss, grads : float, dict
            If ``y`` is given: the loss and the gradient of every entry of ``params``, except
            the weights named in ``sgd_steps``.
        """
        return self._loss(X, y, penalty_grads, sgd_steps)

    def _loss(self, X, y, penalty_grads, sgd_steps):
        """``loss`` itself; ``predict`` calls it directly, so that the overflow warning below
        points at the caller's line in both cases (one frame deeper for both)."""
        reg = self.reg
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not 0 <= reg < math.inf:
            # reg is read at every call (model.reg = 1.0 takes effect at once), so it is checked here.
            check_nonneg_float("reg", reg)  # raises, naming it
        sgd_steps = self._check_sgd_steps(sgd_steps, y, penalty_grads)
        # NaN/inf in X always reaches the scores, so the finite check runs on the (N, C) scores
        # below instead of on every input value: prediction on a large set stays one pass.
        X = check_features("X", X, self.input_dim, finite=False)
        if y is not None and X.shape[0] == 0:
            raise ValueError(f"X must hold at least one example to compute a loss, got shape {X.shape}")
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        # NaN/inf in X or overflowing parameters reach the scores, where they are reported
        # once, clearly (below); NumPy's own warnings from inside every layer would bury that.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._forward_backward(X, y, penalty_grads, sgd_steps)

    def _forward_backward(self, X, y, penalty_grads, sgd_steps):
        """``loss``'s work on checked inputs: what ``loss`` returns."""
        p = self.params
        h, caches = X, []
        for i in range(1, self.num_layers):
            norm_args = ()
            if self.normalization is not None:
                norm_args = (p[f"gamma{i}"], p[f"beta{i}"], self.normalization, self.bn_params[i - 1])
            h, cache = hidden_block_forward(h, p[f"W{i}"], p[f"b{i}"], *norm_args,
                                            activation=self.activation,
                                            dropout_param=self.dropout_param)
            caches.append(cache)
        last = self.num_layers
        scores, last_cache = L.affine_forward(h, p[f"W{last}"], p[f"b{last}"])
        if not np.isfinite(scores).all():
            check_finite("X", X)  # names bad input
            if y is None:
                # With labels the non-finite loss tells the caller (the Solver stops on it);
                # scores alone would pass silently into argmax.
                warnings.warn(f"the scores hold NaN or inf although X is finite: the activations "
                              f"overflowed {self.dtype} (parameters that diverged in training, or "
                              f"inputs far from unit scale)", RuntimeWarning, stacklevel=4)
        if y is None:
            return scores

        # Checks y: integer, length N, in [0, C).
        loss, dout = L.softmax_loss(scores, y, self.label_smoothing)
        if self.reg:
            # Before the backward pass: sgd_steps change the weights during it.
            for name in self._weight_names:
                flat = p[name].ravel()
                loss += 0.5 * self.reg * float(np.dot(flat, flat))

        grads = {}
        dout, dw, grads[f"b{last}"] = L.affine_backward(dout, last_cache, w_step=sgd_steps.get(f"W{last}"))
        if dw is not None:
            grads[f"W{last}"] = dw
        for i in range(last - 1, 0, -1):
            dout, dw, db, dgamma, dbeta = hidden_block_backward(
                dout, caches[i - 1], need_dx=i > 1, w_step=sgd_steps.get(f"W{i}"))
            grads[f"b{i}"] = db
            if dw is not None:
                grads[f"W{i}"] = dw
            if self.normalization is not None:
                grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta

        if self.reg and penalty_grads:
            for name in self._weight_names:
                if name in grads:
                    add_scaled(grads[name], p[name], self.reg)
        return loss, grads

    def _check_sgd_steps(self, sgd_steps, y, penalty_grads):
        """``sgd_steps`` checked, as ``{name: (learning_rate, total weight decay)}``; ``{}`` when None."""
        if sgd_steps is None:
            return {}
        if y is None:
            raise ValueError("sgd_steps needs labels y: there is no step to take when only scoring X")
        if not isinstance(sgd_steps, dict):
            raise TypeError(f"sgd_steps must be a dict {{'W<i>': (learning_rate, weight_decay)}}, "
                            f"got {type(sgd_steps).__name__}")
        checked = {}
        weights = self.penalized_params
        for name, step in sgd_steps.items():
            if name not in weights:
                raise ValueError(f"sgd_steps can only name weight matrices "
                                 f"{', '.join(weights)}; got {name!r}")
            try:
                learning_rate, weight_decay = (float(v) for v in step)
            except (TypeError, ValueError):
                raise ValueError(f"sgd_steps[{name!r}] must be a pair (learning_rate, weight_decay) "
                                 f"of numbers, got {step!r}") from None
            if not (math.isfinite(learning_rate) and math.isfinite(weight_decay)
                    and learning_rate >= 0 and weight_decay >= 0):
                # A NaN or negative step would silently ruin the weights in place.
                raise ValueError(f"sgd_steps[{name!r}] must be (learning_rate, weight_decay) with both "
                                 f"finite and >= 0, got {step!r}")
            # With penalty_grads the step follows dW + reg * W, as the returned gradient would.
            checked[name] = (learning_rate, weight_decay + (self.reg if penalty_grads else 0.0))
        return checked

    def predict(self, X, batch_size=2048):
        """Predicted class of each example.

        Parameters
        ----------
        X : ndarray, shape (N, d_1, ..., d_k)
        batch_size : int
            Examples scored at a time, to bound memory on large inputs. 2048 was the fastest
            of 1024, 2048 and 4096 for 3072-100-10 here (2-3% ahead of 4096; all equal for
            3072-1024-512-10).

        Returns
        -------
        y_pred : ndarray of int, shape (N,)
        """
        batch_size = check_positive_int("batch_size", batch_size)
        X = check_features("X", X, self.input_dim, finite=False)
        out = np.empty(X.shape[0], dtype=np.intp)
        for start in range(0, X.shape[0], batch_size):
            out[start:start + batch_size] = np.argmax(
                self._loss(X[start:start + batch_size], None, True, None), axis=1)
        return out


class TwoLayerNet(FullyConnectedNet):
    """``affine - relu - affine - softmax``: a FullyConnectedNet with one hidden layer.

    Parameters
    ----------
    input_dim : int
    hidden_dims : int
        Size H of the hidden layer.
    num_classes : int
    dropout : float in [0, 1)
    weight_scale : float
        Standard deviation of the initial weights (W1 is (D, H), W2 is (H, C)).
    reg : float
    dtype : float32 or float64
        float64 by default, so the course's reference losses match to 1e-10.
    seed : None, int or numpy.random.Generator
    activation, normalization, init, label_smoothing : see FullyConnectedNet.
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dims=100, num_classes=10, dropout=0,
                 weight_scale=1e-3, reg=0.0, dtype=np.float64, seed=None, activation="relu",
                 normalization=None, init=None, label_smoothing=0.0):
        if not isinstance(hidden_dims, numbers.Integral) or isinstance(hidden_dims, bool):
            raise TypeError(f"hidden_dims of a TwoLayerNet must be one positive int, got {hidden_dims!r}")
        if hidden_dims < 1:  # checked here so that the error quotes 0, not the list [0] passed on
            raise ValueError(f"hidden_dims of a TwoLayerNet must be one positive int, got {hidden_dims!r}")
        super().__init__([hidden_dims], input_dim=input_dim, num_classes=num_classes,
                         dropout=dropout, reg=reg, weight_scale=weight_scale, dtype=dtype,
                         seed=seed, activation=activation, normalization=normalization,
                         init=init, label_smoothing=label_smoothing)
