"""Data and training: the one place a search reads a dataset and trains a configuration.

Contract
--------
``load_dataset(name, ...)`` loads 'digits' (the built-in 8x8 digits, split as ``nndl train``
splits them: ``DIGITS_NUM_TEST`` test digits, ``nndl.data_utils.DIGITS_SPLIT_SEED``) or
'cifar10' as float32 splits through nndl's one loader (``nndl.data.load_dataset``), with the
JSON ``source`` (``DatasetSource.to_dict()``) that ``nndl evaluate`` rebuilds the split from; split sizes
that do not fit raise ``SearchError``. ``train_config(params, data, epochs, seed)`` builds a
FullyConnectedNet (float32, every hidden layer ``hidden_size`` wide) and trains it with the
Solver; the trials and the retraining of the best one both go through it, seeded by
``_trial_seed(study_seed, trial_number)``, so a trial is reproducible whichever worker runs it.
"""

import numpy as np

from ..recipes import TRAIN_DEFAULTS
from .config import DATASETS
from .space import SearchError


DIGITS_NUM_TEST = TRAIN_DEFAULTS["digits"]["num_test"]
"""Digits held out as the test split of a digits search: the same 360 as ``nndl train``'s."""


def load_dataset(name="digits", data_dir=None, num_validation=None, num_training=None):
    """Load a dataset by name as float32 splits; the one place the search reads data.

    Parameters
    ----------
    name : {'digits', 'cifar10'}
        'digits' is the built-in 8x8 handwritten digits; 'cifar10' reads the official
        python batches from ``data_dir``.
    data_dir : str, optional
        CIFAR-10 directory (default: ``nndl.data_utils``'s default location).
    num_validation, num_training : int, optional
        Split sizes (default: the loader's; for CIFAR-10, 1,000 validation images and every
        other training image). The validation and test splits do not depend on
        ``num_training``: a smaller training split is cut from the front of the full one.

    Returns
    -------
    dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test`` (possibly
        empty), ``mean_image``, ``class_names``, and ``source``: the JSON description of the
        split that is saved with the best model, so that ``nndl evaluate`` rebuilds it.
    """
    from .. import data_utils
    from ..data import load_dataset as load

    if name not in DATASETS:
        raise SearchError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    num_test = None
    if name == "digits":
        # The search keeps the loader's fixed test split; say so in terms of the two sizes a
        # search can set (the loader's own message would also name its num_test).
        available = data_utils.NUM_DIGITS - DIGITS_NUM_TEST
        if num_validation is not None and num_validation >= available:
            raise SearchError(f"num_validation must be less than {available} for digits (the {data_utils.NUM_DIGITS} "
                              f"digits less the {DIGITS_NUM_TEST} of the test split), got {num_validation}")
        validation = num_validation if num_validation is not None else TRAIN_DEFAULTS["digits"]["num_validation"]
        if num_training is not None and num_training + validation > available:
            raise SearchError(f"num_training + num_validation must be at most {available} for digits (the "
                              f"{data_utils.NUM_DIGITS} digits less the {DIGITS_NUM_TEST} of the test split), "
                              f"got {num_training} + {validation}")
        num_test = DIGITS_NUM_TEST
    try:
        # The split nndl train uses (and nndl evaluate rebuilds from the saved source).
        data, source = load(name, data_dir, num_validation, num_test, num_training, dtype=np.float32)
    except ValueError as exc:
        if "num_training" not in str(exc):
            raise
        raise SearchError(str(exc)) from None
    source = source.to_dict()
    data["source"] = source
    return data


def _num_classes(data):
    names = data.get("class_names")
    if names is not None:
        return len(names)
    return int(max(np.max(data["y_train"]), np.max(data["y_val"]))) + 1


def train_config(params, data, epochs, seed, epoch_callback=None):
    """Train one configuration; the trials and the final retraining both go through here.

    Parameters
    ----------
    params : dict
        A value for every name in ``HYPERPARAMETERS``.
    data : dict
        ``X_train`` (N, ...), ``y_train`` (N,), ``X_val`` (N_val, ...), ``y_val`` (N_val,).
    epochs : int
    seed : int
        Seeds the initial weights, dropout masks and batch order.
    epoch_callback : callable, optional
        Passed to the Solver (``epoch_callback(solver)`` after each accuracy check).

    Returns
    -------
    model : FullyConnectedNet
        With the parameters of its best validation epoch.
    solver : Solver
    """
    from ..fc_net import FullyConnectedNet
    from ..solver import Solver

    rng = np.random.default_rng(seed)
    input_dim = int(np.prod(data["X_train"].shape[1:]))
    model = FullyConnectedNet(
        [int(params["hidden_size"])] * int(params["num_layers"]), input_dim=input_dim,
        num_classes=_num_classes(data), dropout=params["dropout"],
        use_batchnorm=params["use_batchnorm"], reg=params["reg"],
        weight_scale=params["weight_scale"], dtype=np.float32, seed=rng)
    solver = Solver(
        model, data, update_rule=params["update_rule"],
        optim_config={"learning_rate": params["learning_rate"]}, lr_decay=params["lr_decay"],
        batch_size=int(params["batch_size"]), num_epochs=epochs, verbose=False,
        sampling="permutation", seed=rng, epoch_callback=epoch_callback)
    solver.train()
    return model, solver


def _trial_seed(study_seed, number):
    """A seed that depends only on the study's seed and the trial number."""
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])
