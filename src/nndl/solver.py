"""Solver: minibatch training of any model that has ``params`` and ``loss(X, y=None)``.

Contract
--------
``Solver(model, data, **kwargs)`` takes the course's keyword arguments and nndl's (declared,
with their defaults, by ``SolverOptions``; ``Solver.DEFAULTS`` maps them to their defaults and
``solver.options`` holds a Solver's own), rejects unknown ones by name and checks the data once: ``data`` must hold
``X_train``, ``y_train``, ``X_val`` and ``y_val`` with matching lengths, integer labels and no
NaN/inf. Inputs are cast to the model's ``dtype`` (if it has one) once, here, not per batch.

``train()`` runs ``num_epochs`` epochs of ``max(num_train // batch_size, 1)`` iterations
(in total: after a resume, or a second ``train()``, only the epochs not done yet). It
records ``loss_history`` (per iteration) and ``train_acc_history`` / ``val_acc_history`` (after
the first iteration, as the course does, and after every epoch), prints the course's progress lines when ``verbose``, decays
every learning rate by ``lr_decay`` after each epoch, and at the end copies the parameters
with the best validation accuracy (``best_params``, ``best_val_acc``) back into the model,
together with that epoch's batchnorm running averages (``best_bn_stats``).
A loss that becomes NaN or inf stops training with ``FloatingPointError``.

The update rules change the model's parameter arrays in place (``nndl.optim``): an array the
caller put into ``model.params`` is trained along with it; pass copies to keep the originals.

L2: for a model with ``penalized_params`` (FullyConnectedNet, TwoLayerNet) and one of
``nndl.optim``'s rules, the Solver asks the model for gradients without ``reg * W`` and has the
rule add it (``weight_decay``), which saves passes over every weight matrix; the updates are
the same to float round-off. A ``weight_decay`` in ``optim_config`` adds to the model's
``reg`` on the weights and applies alone to the other parameters. With ``update_rule='sgd'``
the model goes one step further and updates each weight matrix inside the matrix product
that forms its gradient (``FullyConnectedNet.loss(..., sgd_steps=...)``).

Sampling: ``sampling='replacement'`` (default) draws each batch with replacement, as the course
does; ``sampling='permutation'`` cuts each epoch's batches from a fresh random permutation of
the training set, so no example repeats within an epoch. Both modes run ``num_train //
batch_size`` steps an epoch: with a permutation, the ``num_train % batch_size`` examples at its
end are skipped that epoch (PyTorch's ``drop_last=True``), different ones every epoch.
With ``seed=None`` batches come from NumPy's global random state; an int or Generator
``seed`` is used privately.

Modern training (all off by default, so the course's runs are unchanged): ``augment`` is a
callable ``augment(X_batch, rng) -> X_batch`` (``nndl.augment``) applied to every training
batch after it is gathered, drawing from the Solver's batch generator; ``lr_schedule`` (a name
or dict, ``nndl.schedules``) sets every parameter's learning rate before each iteration to the
base rate (``optim_config['learning_rate']``, else the rule's default) times the schedule's
factor, and cannot be combined with ``lr_decay`` (the 'step' schedule is ``lr_decay``);
``patience`` stops training once the validation accuracy has not improved for that many
epochs, then restores the best epoch as usual (``stopped_epoch`` says when; None if it ran to
the end). A schedule spans ``num_epochs`` and is a function of the iteration alone, so a
resumed run continues it exactly; its spec is saved in checkpoints.
"""

import copy
import inspect
import numbers
import os
import warnings
from dataclasses import dataclass, fields

import numpy as np

from . import optim
from ._memory import keep_freed_memory
from .schedules import make_schedule
from ._validation import (
    PROBABILITY, check_array, check_choice, check_domain, check_features, check_labels, check_nonneg_float,
    check_positive_float, check_positive_int, check_seed,
)

__all__ = ["Solver", "SolverOptions", "REQUIRED_DATA"]

REQUIRED_DATA = ("X_train", "y_train", "X_val", "y_val")


@dataclass(frozen=True)
class SolverOptions:
    """The ``Solver``'s keyword arguments and their defaults, in one declared place (their
    meaning: the ``Solver`` docstring). ``Solver(model, data, **options)`` keeps them as
    ``solver.options``; the Solver checks each one when it is built."""

    update_rule: object = "sgd"
    optim_config: object = None
    lr_decay: float = 1.0
    batch_size: int = 100
    num_epochs: int = 10
    num_train_samples: object = 1000
    num_val_samples: object = None
    print_every: int = 10
    verbose: object = True
    checkpoint_name: object = None
    sampling: str = "replacement"
    seed: object = None
    epoch_callback: object = None
    resume_from: object = None
    augment: object = None
    lr_schedule: object = None
    patience: object = None
    keep_best: object = True


class Solver:
    """Trains a classification model with minibatch gradient descent.

    Parameters
    ----------
    model : object
        Has ``params`` (dict of arrays) and ``loss(X, y=None)`` returning scores, or
        ``(loss, grads)`` when labels are given.
    data : dict
        ``X_train`` (N, ...), ``y_train`` (N,), ``X_val`` (N_val, ...), ``y_val`` (N_val,).
    update_rule : str or callable
        A name in ``nndl.optim.UPDATE_RULES`` ('sgd', 'sgd_momentum', 'adam', ...).
    optim_config : dict
        Hyperparameters for the update rule (``learning_rate``, ...), copied per parameter.
    lr_decay : float in (0, 1]
        Learning-rate multiplier applied after each epoch. With ``sgd_momentum`` or
        ``sgd_nesterov_momentum`` the rate lives inside the velocity (the course's rules), so a
        decayed run differs from ``torch.optim.SGD`` with a scheduler (see ``nndl.optim``).
    batch_size : int
    num_epochs : int
    num_train_samples : int or None
        Training examples sampled for the training-accuracy check (None: all).
    num_val_samples : int or None
        Validation examples sampled for the validation-accuracy check (None: all).
    print_every : int
        Print the loss every this many iterations when verbose.
    verbose : bool
    checkpoint_name : str, path or None
        If given, save a checkpoint to ``f"{checkpoint_name}_epoch_{epoch}.npz"`` after each
        epoch (see ``nndl.checkpoint``).
    sampling : {'replacement', 'permutation'}
        How batches are drawn (see the module docstring).
    seed : None, int or numpy.random.Generator
        Source of the batch and accuracy-subsample randomness.
    epoch_callback : callable or None
        ``epoch_callback(solver)`` after each accuracy check (epoch 0 included); use it for
        progress bars or to stop early by raising an exception (the model then holds the last
        parameters; ``solver.restore_best()`` puts the best ones so far into it).
    resume_from : str, path or None
        A checkpoint written with ``checkpoint_name`` (or ``save_checkpoint``): training
        continues from its epoch with its optimizer state, histories and best parameters
        (see ``resume``). ``num_epochs`` is the total, counting the epochs already done.
    augment : callable or None
        ``augment(X_batch, rng) -> X_batch``, applied to every training batch (``nndl.augment``).
    lr_schedule : None, str or dict
        A learning-rate schedule of ``nndl.schedules`` ('cosine', 'onecycle', 'step', or a dict
        with 'name' and options), applied per iteration; needs ``lr_decay=1``.
    patience : int or None
        Early stopping: stop after this many epochs without a better validation accuracy.
    keep_best : bool
        True (the course's way): ``train`` ends by putting the best validation epoch's
        parameters into the model. False keeps the last epoch's (``best_params`` is still
        recorded; ``restore_best()`` puts it in).
    """

    DEFAULTS = None  # set below from SolverOptions: {option: default}

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(self.DEFAULTS))
        if unknown:
            valid = ", ".join(sorted(self.DEFAULTS))
            raise TypeError(f"Solver got unexpected keyword argument(s) {', '.join(unknown)}; "
                            f"valid ones are {valid}")
        if not hasattr(model, "params") or not callable(getattr(model, "loss", None)):
            raise TypeError(f"model must have a params dict and a loss method, got {type(model).__name__}")
        self.options = SolverOptions(**kwargs)  # every option, as given or defaulted
        options = {f.name: getattr(self.options, f.name) for f in fields(SolverOptions)}

        self.model = model
        self._set_update_rule(options["update_rule"], options["optim_config"])
        self.lr_decay = check_domain("lr_decay", options["lr_decay"])
        self.batch_size = check_positive_int("batch_size", options["batch_size"])
        self.num_epochs = check_positive_int("num_epochs", options["num_epochs"])
        self.num_train_samples = _optional_positive_int("num_train_samples", options["num_train_samples"])
        self.num_val_samples = _optional_positive_int("num_val_samples", options["num_val_samples"])
        self.print_every = check_positive_int("print_every", options["print_every"])
        verbose = options["verbose"]
        if verbose is not None and not isinstance(verbose, (bool, np.bool_, numbers.Integral)):
            # bool("no") would be True; None (falsy, as the course's Solver took it) means False.
            raise TypeError(f"verbose must be True or False, got {verbose!r}")
        self.verbose = bool(verbose)
        self.checkpoint_name = options["checkpoint_name"]
        if self.checkpoint_name is not None:
            if not isinstance(self.checkpoint_name, (str, os.PathLike)):
                raise TypeError(f"checkpoint_name must be a path prefix (str) or None, got {self.checkpoint_name!r}")
            from .checkpoint import check_savable  # checkpoint imports fc_net; import late

            try:
                check_savable(model)
            except TypeError as exc:  # refused now, not after the first epoch's training
                raise TypeError(f"checkpoint_name needs a model save_model can write: {exc}") from None
        self.sampling = check_choice("sampling", options["sampling"], ("replacement", "permutation"))
        self.epoch_callback = options["epoch_callback"]
        if self.epoch_callback is not None and not callable(self.epoch_callback):
            # Refused now, not after the first epoch's training.
            raise TypeError(f"epoch_callback must be a function of the Solver or None, got {self.epoch_callback!r}")
        self.rng = _generator(options["seed"])
        self._set_training_options(options)
        dropout_param = getattr(model, "dropout_param", None)
        if isinstance(dropout_param, dict) and dropout_param.get("p", 0) > 0 and "seed" in dropout_param:
            warnings.warn("the model's int seed fixes its dropout mask (as gradient checks need), so "
                          "training drops the same units at every step; build the model with "
                          "seed=np.random.default_rng(n) for fresh masks", UserWarning, stacklevel=2)
        self._set_data(data)
        self._reset()
        # A bad schedule (a warmup as long as the run, say) is refused now, not at train().
        self._make_schedule(max(self.X_train.shape[0] // self.batch_size, 1))
        if options["resume_from"] is not None:
            self.resume(options["resume_from"])

    def _set_update_rule(self, update_rule, optim_config):
        """Check and keep the update rule and its hyperparameters (before any training)."""
        self.update_rule = optim.get_update_rule(update_rule)
        self.update_rule_name = getattr(self.update_rule, "__name__", str(update_rule))
        optim_config = optim_config or {}
        if not isinstance(optim_config, dict):
            raise TypeError(f"optim_config must be a dict, got {optim_config!r}")
        self.optim_config = dict(optim_config)
        known = optim.CONFIG_KEYS.get(self.update_rule_name)
        if self.update_rule in optim.UPDATE_RULES.values() and known is not None:
            unknown = sorted(set(self.optim_config) - set(known))
            if unknown:
                raise ValueError(f"optim_config has unknown key(s) {', '.join(map(repr, unknown))} for "
                                 f"update_rule {self.update_rule_name!r}; its keys are {', '.join(known)}")
        self._base_weight_decay = check_nonneg_float(
            "optim_config['weight_decay']", self.optim_config.get("weight_decay", 0.0))
        if "learning_rate" in self.optim_config:
            check_nonneg_float("optim_config['learning_rate']", self.optim_config["learning_rate"])
        # The other hyperparameters of nndl's rules, checked here rather than failing (or
        # diverging) at the first step.
        for key in ("momentum", "decay_rate", "beta1", "beta2"):
            value = self.optim_config.get(key)
            if value is not None and value not in PROBABILITY:
                raise ValueError(f"optim_config['{key}'] must be {PROBABILITY.expected}, got {value!r}")
        if self.optim_config.get("epsilon") is not None:
            check_positive_float("optim_config['epsilon']", self.optim_config["epsilon"])
        # Fast path: a model that names its L2-penalised parameters leaves reg * W out of their
        # gradients and nndl's own update rule adds it as weight_decay, in the same pass over
        # memory as the update. A rule of the caller's own may not know weight_decay.
        self._l2_in_update = (self.update_rule in optim.UPDATE_RULES.values()
                              and hasattr(self.model, "penalized_params"))
        # Faster still for plain SGD: the model takes the weights' steps inside the products
        # that form their gradients (FullyConnectedNet.loss's sgd_steps).
        self._sgd_in_backward = (self._l2_in_update and self.update_rule is optim.sgd
                                 and _accepts_keyword(self.model.loss, "sgd_steps"))

    def _set_training_options(self, options):
        """Check and keep ``augment``, ``lr_schedule`` and ``patience``."""
        self.augment = options["augment"]
        if self.augment is not None and not callable(self.augment):
            raise TypeError(f"augment must be a function (X_batch, rng) -> X_batch or None, got {self.augment!r}")
        self.lr_schedule = options["lr_schedule"]
        if self.lr_schedule is not None:
            if self.lr_decay != 1.0:
                raise ValueError(f"lr_decay={self.lr_decay} and lr_schedule={self.lr_schedule!r} both set the "
                                 f"learning rate; use one (the 'step' schedule is lr_decay)")
            if "learning_rate" not in self.optim_config and self.update_rule_name not in optim.DEFAULT_LEARNING_RATES:
                raise ValueError("lr_schedule needs optim_config['learning_rate'] for an update rule of your own")
        self.patience = _optional_positive_int("patience", options["patience"])
        keep_best = options["keep_best"]
        if not isinstance(keep_best, (bool, np.bool_)):
            raise TypeError(f"keep_best must be True or False, got {keep_best!r}")
        self.keep_best = bool(keep_best)
        self.stopped_epoch = None

    def _make_schedule(self, iterations_per_epoch):
        """The run's ``Schedule`` (checked against ``num_epochs``), or None."""
        if self.lr_schedule is None:
            return None
        return make_schedule(self.lr_schedule, self.num_epochs * iterations_per_epoch, iterations_per_epoch)

    def _set_data(self, data):
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict with keys {', '.join(REQUIRED_DATA)}, got {type(data).__name__}")
        missing = [k for k in REQUIRED_DATA if k not in data]
        if missing:
            raise ValueError(f"data is missing {', '.join(missing)}; it must hold {', '.join(REQUIRED_DATA)}")
        dtype = getattr(self.model, "dtype", None)
        num_classes = getattr(self.model, "num_classes", None)
        input_dim = getattr(self.model, "input_dim", None)
        for split in ("train", "val"):
            if isinstance(input_dim, numbers.Integral):
                X = check_features(f"X_{split}", data[f"X_{split}"], input_dim)
            else:
                X = check_array(f"X_{split}", data[f"X_{split}"], ndim_min=2)
            y = check_labels(f"y_{split}", data[f"y_{split}"], X.shape[0], num_classes)
            if X.shape[0] == 0:
                raise ValueError(f"X_{split} must hold at least one example, got shape {X.shape}")
            if dtype is not None:
                X = np.asarray(X, dtype=dtype)  # no copy when it already has the model's dtype
            setattr(self, f"X_{split}", X)
            setattr(self, f"y_{split}", y)
        if self.X_train.shape[1:] != self.X_val.shape[1:]:
            raise ValueError(f"X_val must have the example shape of X_train {self.X_train.shape[1:]}, "
                             f"got {self.X_val.shape[1:]}")

    def _reset(self):
        """Fresh bookkeeping and one optimizer config per parameter."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self.best_bn_stats = []
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.optim_configs = {name: copy.deepcopy(self.optim_config) for name in self.model.params}
        self._order = None

    # ------------------------------------------------------------------ training

    def _batch_indices(self, t):
        """Indices of the batch for iteration ``t``."""
        num_train = self.X_train.shape[0]
        if self.sampling == "replacement":
            # The same draws as rng.choice(num_train, batch_size), which is the course's
            # np.random.choice, without choice's argument handling (a test holds them equal).
            if isinstance(self.rng, np.random.Generator):
                return self.rng.integers(0, num_train, self.batch_size)
            return self.rng.randint(0, num_train, self.batch_size)
        per_epoch = max(num_train // self.batch_size, 1)
        step = t % per_epoch
        if step == 0 or self._order is None:
            self._order = self.rng.permutation(num_train)
        return self._order[step * self.batch_size:(step + 1) * self.batch_size]

    def _step(self, t):
        """One gradient update on one minibatch."""
        idx = self._batch_indices(t)
        X = self.X_train[idx]  # a fresh copy: the augmentation may change it in place
        if self.augment is not None:
            X = self.augment(X, self.rng)
        model = self.model
        configs = self.optim_configs
        stepped = {}  # weights whose SGD step model.loss takes itself (then not in grads)
        if self._l2_in_update:
            # model.reg is read every step, as the model itself does.
            decay = self._base_weight_decay + model.reg
            weights = model.penalized_params
            for name in weights:
                configs[name]["weight_decay"] = decay
            if self._sgd_in_backward:
                stepped = {name: (configs[name].setdefault("learning_rate", optim.SGD_LEARNING_RATE), decay)
                           for name in weights}
                loss, grads = model.loss(X, self.y_train[idx], penalty_grads=False, sgd_steps=stepped)
            else:
                loss, grads = model.loss(X, self.y_train[idx], penalty_grads=False)
        else:
            loss, grads = model.loss(X, self.y_train[idx])
        self.loss_history.append(loss)
        params = model.params
        for name, w in params.items():
            if name not in stepped:
                params[name], configs[name] = self.update_rule(w, grads[name], configs[name])
        return loss

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of examples the model classifies correctly.

        A model with a ``score(X, y)`` method (the autoencoder) is scored by it instead, so
        "best" means the highest score.

        Parameters
        ----------
        X : ndarray, shape (N, d_1, ..., d_k)
        y : ndarray of int, shape (N,)
        num_samples : int or None
            If given and smaller than N, score this many examples drawn at random with
            replacement (as the course's Solver does).
        batch_size : int
            Examples scored at a time.

        Returns
        -------
        float
        """
        X = check_array("X", X, ndim_min=2, finite=False)  # the model's loss checks the values
        y = check_labels("y", y, X.shape[0])
        if num_samples is not None:
            num_samples = check_positive_int("num_samples", num_samples)
        batch_size = check_positive_int("batch_size", batch_size)
        N = X.shape[0]
        if num_samples is not None and num_samples < N:
            idx = self.rng.choice(N, num_samples)
            X, y = X[idx], y[idx]
            N = num_samples
        if callable(getattr(self.model, "score", None)):
            return float(self.model.score(X, y))
        correct = 0
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            correct += int(np.sum(np.argmax(scores, axis=1) == y[start:start + batch_size]))
        return correct / N

    def _check_epoch(self):
        train_acc = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; val acc: {val_acc:f}")
        if not self.best_params or val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
            # Batchnorm's running averages belong to the best epoch as much as its weights do.
            self.best_bn_stats = [{k: v.copy() for k, v in p.items() if isinstance(v, np.ndarray)}
                                  for p in getattr(self.model, "bn_params", [])]
        if self.checkpoint_name is not None and self.epoch > 0:
            self.save_checkpoint(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")
        if self.epoch_callback is not None:
            self.epoch_callback(self)

    def train(self):
        """Run the optimisation; see the module docstring. Returns ``self``."""
        keep_freed_memory()  # per-step temporaries reuse memory instead of page-faulting
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        start = self.epoch * iterations_per_epoch
        schedule = self._make_schedule(iterations_per_epoch)
        if schedule is not None:
            base_lr = self.optim_config.get("learning_rate", optim.DEFAULT_LEARNING_RATES.get(self.update_rule_name))
        self.stopped_epoch = None
        if start >= num_iterations:
            warnings.warn(f"train() has nothing to do: the {self.epoch} epochs of num_epochs={self.num_epochs} "
                          f"are done; raise solver.num_epochs to train further", UserWarning, stacklevel=2)
        for t in range(start, num_iterations):
            if schedule is not None:
                lr = base_lr * schedule(t)
                for config in self.optim_configs.values():
                    config["learning_rate"] = lr
            # A diverging run overflows somewhere in the step; the loss check below reports
            # that in one clear error, so NumPy's warnings from inside the layers would only
            # bury it.
            with np.errstate(over="ignore", invalid="ignore"):
                loss = self._step(t)
            if not np.isfinite(loss):
                lr = self.optim_configs[next(iter(self.optim_configs))].get("learning_rate")
                raise FloatingPointError(
                    f"loss became {loss} at iteration {t + 1}; training stopped. "
                    f"Try a smaller learning rate (was {lr}) or a smaller weight_scale")
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {loss:f}")
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] = float(config["learning_rate"] * self.lr_decay)
            if t == 0 or epoch_end or t == num_iterations - 1:
                self._check_epoch()
                if epoch_end and self._out_of_patience():
                    self.stopped_epoch = self.epoch
                    if self.verbose:
                        print(f"(Epoch {self.epoch} / {self.num_epochs}) stopping early: no better validation "
                              f"accuracy for {self.patience} epochs")
                    break
        if self.keep_best:
            self.restore_best()
        return self

    def _out_of_patience(self):
        """True when early stopping is on and the best validation accuracy is ``patience``
        epochs old (derived from the history, so a resumed run counts the same)."""
        if self.patience is None:
            return False
        history = self.val_acc_history
        best_at = int(np.argmax(history))  # the first maximum: best_params changes only on a gain
        return len(history) - 1 - best_at >= self.patience

    def restore_best(self):
        """Put the best epoch's parameters (and batchnorm running averages) into the model.

        ``train`` does this at its end. A run stopped by an exception (an ``epoch_callback``
        that stops early, an interrupt) leaves the last parameters in the model, so that
        ``train()`` can carry on from where it stopped; call this to keep the best ones instead.
        """
        for name, value in self.best_params.items():
            self.model.params[name] = value.copy()
        for bn_param, saved in zip(getattr(self.model, "bn_params", []), self.best_bn_stats):
            bn_param.update({k: v.copy() for k, v in saved.items()})

    # ------------------------------------------------------------------ state

    def state_dict(self):
        """The training state: what ``load_state`` needs to continue this run as if unbroken.

        Returns
        -------
        dict
            The run's settings (``update_rule``, ``lr_decay``, ``batch_size``, ``num_epochs``,
            ``sampling``, ``num_train_samples``, ``num_val_samples``, ``patience``,
            ``lr_schedule`` as its full spec), its progress (``epoch``, ``best_val_acc``,
            ``loss_history``, ``train_acc_history``, ``val_acc_history``, and the states of the
            batch generator ``rng_state`` and the dropout generator ``model_rng_state``, None
            when they draw from NumPy's global state), all JSON-ready; and arrays:
            ``optim_configs`` ({param: {key: scalar or array}}), the model's ``params`` and
            ``bn_stats`` (batchnorm running averages, one dict per layer), ``best_params`` and
            ``best_bn_stats``. The arrays are the Solver's and the model's own, not copies.
        """
        model = self.model
        return dict(
            update_rule=self.update_rule_name, lr_decay=self.lr_decay, batch_size=self.batch_size,
            num_epochs=self.num_epochs, sampling=self.sampling, num_train_samples=self.num_train_samples,
            num_val_samples=self.num_val_samples, patience=self.patience, lr_schedule=schedule_spec(self.lr_schedule),
            epoch=self.epoch, best_val_acc=self.best_val_acc, loss_history=[float(v) for v in self.loss_history],
            train_acc_history=list(self.train_acc_history), val_acc_history=list(self.val_acc_history),
            rng_state=_generator_state(self.rng), model_rng_state=_generator_state(_dropout_generator(model)),
            optim_configs=self.optim_configs, params=dict(model.params), bn_stats=_bn_stats(model),
            best_params=self.best_params, best_bn_stats=self.best_bn_stats)

    def load_state(self, state, source="the state", error=ValueError):
        """Continue from ``state`` (a ``state_dict()``, of this Solver's model and settings).

        Everything is checked before anything changes: the update rule, the settings that
        shape the run (batch size, sampling, lr decay, schedule) and every array's name and
        shape must match this Solver and its model, else ``error`` (``ValueError`` or a subclass,
        such as ``CheckpointError``) names ``source`` (e.g. the checkpoint's path) and what
        differs; a ``num_epochs`` smaller than the state's epoch is a ``ValueError``. The model,
        the optimizer state, the epoch, the histories, the best epoch and the generators'
        states are then replaced; ``num_epochs`` stays this Solver's (the total to train to).
        Returns ``self``.
        """
        model = self.model
        if state["update_rule"] != self.update_rule_name:
            raise error(f"{source} was trained with update_rule {state['update_rule']!r}; "
                        f"the Solver uses {self.update_rule_name!r}")
        for key in RUN_SETTINGS:
            if key in state and state[key] != getattr(self, key):
                raise error(f"{source} was trained with {key} {state[key]!r}; the Solver uses "
                            f"{getattr(self, key)!r} (resume with the checkpoint's value)")
        if state.get("lr_schedule") != schedule_spec(self.lr_schedule):
            raise error(f"{source} was trained with lr_schedule {state.get('lr_schedule')!r}; "
                        f"the Solver uses {schedule_spec(self.lr_schedule)!r}")
        _check_state_arrays(model, state, source, error)
        epoch = int(state["epoch"])
        if epoch > self.num_epochs:
            # train() would do nothing and report the checkpoint as the finished run.
            raise ValueError(f"num_epochs must be at least the {epoch} epochs {source} has already done "
                             f"(it counts them), got {self.num_epochs}")
        dtype = getattr(model, "dtype", None)
        model.params.update({k: np.asarray(v, dtype) for k, v in state["params"].items()})
        for bn_param, stats in zip(getattr(model, "bn_params", []), state.get("bn_stats") or []):
            bn_param.update({k: np.asarray(v, dtype) for k, v in stats.items()})
        self.optim_configs = {name: dict(config) for name, config in state["optim_configs"].items()}
        self.epoch, self.best_val_acc = epoch, float(state["best_val_acc"])
        for key in ("loss_history", "train_acc_history", "val_acc_history"):
            setattr(self, key, list(state[key]))
        self.best_params = {k: np.asarray(v, dtype) for k, v in state["best_params"].items()}
        self.best_bn_stats = [{k: np.asarray(v, dtype) for k, v in stats.items()} for stats in state["best_bn_stats"]]
        _set_generator_state(self.rng, state.get("rng_state"))
        # The dropout masks' generator too, so that a resumed run with dropout equals the whole one.
        _set_generator_state(_dropout_generator(model), state.get("model_rng_state"))
        return self

    def save_checkpoint(self, path):
        """Save model, optimizer state and histories so that training can resume."""
        from .checkpoint import save_solver_checkpoint  # checkpoint imports fc_net; import late

        save_solver_checkpoint(self, path)

    def resume(self, path):
        """Load the training state of a checkpoint so that ``train()`` continues from it.

        Restores the model's parameters, the optimizer state (including the decayed learning
        rate), the epoch, the histories, the best parameters and, for a Solver with its own
        ``seed``, the batch-sampling generator (``load_state`` of the file's state; see
        ``nndl.checkpoint.restore_solver_checkpoint``). Returns ``self``.
        """
        from .checkpoint import restore_solver_checkpoint

        return restore_solver_checkpoint(self, path)


Solver.DEFAULTS = {f.name: f.default for f in fields(SolverOptions)}
"""Each Solver keyword argument's default (the fields of ``SolverOptions``)."""


# Settings that change the run: a resume under other values would not continue it.
RUN_SETTINGS = ("batch_size", "sampling", "lr_decay")


def schedule_spec(spec):
    """A Solver's ``lr_schedule`` as its full JSON spec (defaults filled in), or None."""
    if spec is None:
        return None
    # The run's length does not enter the spec; any consistent one will do to fill the defaults.
    return make_schedule(spec, 10**9, 1).spec


def _bn_stats(model):
    """The batchnorm running averages of ``model``, one dict of arrays per layer."""
    return [{k: v for k, v in p.items() if k in ("running_mean", "running_var") and isinstance(v, np.ndarray)}
            for p in getattr(model, "bn_params", [])]


def _check_state_arrays(model, state, source, error):
    """``error`` unless the arrays of ``state`` fit ``model`` (names, shapes, batchnorm layers)."""
    params, best_params, best_bn = state["params"], state["best_params"], state["best_bn_stats"]
    wrong = [n for n in model.params if n not in params or np.shape(params[n]) != model.params[n].shape]
    if set(state["optim_configs"]) != set(model.params):
        wrong.append(f"optimizer state {sorted(state['optim_configs'])}")
    if best_params and set(best_params) != set(model.params):
        wrong.append(f"best-epoch set {sorted(best_params)} (the model has {sorted(model.params)})")
    wrong += [f"best {n}" for n, v in best_params.items() if n in model.params and np.shape(v) != model.params[n].shape]
    # The best epoch's batchnorm averages: one entry per batchnorm layer (restored by position),
    # each of its layer's width.
    num_bn = len(getattr(model, "bn_params", []))
    if best_bn and len(best_bn) != num_bn:
        wrong.append(f"best batchnorm layers {list(range(len(best_bn)))} (the model has {num_bn})")
    for i, stats in enumerate(best_bn):
        gamma = model.params.get(f"gamma{i + 1}")
        for key, value in stats.items():
            if gamma is None or key not in ("running_mean", "running_var") or np.shape(value) != gamma.shape:
                wrong.append(f"best batchnorm {i}/{key}")
    if wrong:
        raise error(f"{source}: parameter(s) {', '.join(wrong)} missing from the model or of the wrong shape")


def _dropout_generator(model):
    """The Generator the model draws its dropout masks from, or None."""
    return (getattr(model, "dropout_param", None) or {}).get("rng")


def _generator_state(rng):
    """A private Generator's state (JSON-ready), or None for anything else (the global state)."""
    return rng.bit_generator.state if isinstance(rng, np.random.Generator) else None


def _set_generator_state(rng, state):
    """Put a saved state back into ``rng`` when both are of the same kind of generator."""
    if (state is not None and isinstance(rng, np.random.Generator)
            and state.get("bit_generator") == type(rng.bit_generator).__name__):
        rng.bit_generator.state = state


def _generator(seed):
    """The batch sampler's generator for ``seed`` (None: NumPy's global RandomState, as the course)."""
    seed = check_seed(seed)
    if seed is None:
        return np.random.mtrand._rand  # the global RandomState behind np.random.*
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _accepts_keyword(function, name):
    """True when ``function`` can be called with the keyword argument ``name``."""
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, say)
        return False


def _optional_positive_int(name, value):
    return None if value is None else check_positive_int(name, value)
