"""Named training recipes: every setting of a run, and what builds its model and Solver.

Contract
--------
``RECIPES`` maps a recipe name to a complete settings dict (the keys of ``SETTINGS``);
``DATASET_RECIPES`` names each dataset's default recipe (what ``nndl train --dataset D``
trains without ``--recipe``). ``recipe_settings(name)`` returns a copy to change;
``build_model(settings, input_dim, num_classes, rng)`` and ``solver_options(settings,
image_shape)`` turn settings into a model and the Solver's keyword arguments, so the command
line, the benchmarks and the scikit-learn estimator train a recipe the same way.

Recipes (accuracy and time of each: ``docs/recipes.md``, measured by
``benchmarks/bench_recipes.py``):

- ``digits``: the built-in digits' default, a 100-unit two-layer net with Adam.
- ``seed``: seed 000's CIFAR-10 recipe exactly (TwoLayerNet with 200 hidden units, SGD at
  6e-4 decayed by 0.9 per epoch, 10 epochs of batches of 200).
- ``cifar10``: a modern recipe for CIFAR-10, the default for ``--dataset cifar10``: per-channel
  standardisation, random flips and 4-pixel reflect crops, He initialisation, batchnorm,
  AdamW with decoupled weight decay, a one-cycle schedule, label smoothing 0.1.

Adding a recipe: add its dict to ``RECIPES`` (start from ``dict(RECIPES['cifar10'], ...)``) and
its dataset to ``RECIPE_DATASETS``,
measure it with ``benchmarks/bench_recipes.py --recipe NAME`` and document the figures.
"""

import numpy as np

from .data import DATASET_NAMES, SPLIT_DEFAULTS

__all__ = ["RECIPES", "DATASET_RECIPES", "RECIPE_DATASETS", "SETTINGS", "DATASETS", "TRAIN_DEFAULTS", "recipe_settings",
           "build_model", "solver_options"]

DATASETS = DATASET_NAMES  # the datasets of nndl's one loader (nndl.data)

SETTINGS = {
    "hidden": "hidden layer sizes (one size: TwoLayerNet, more: FullyConnectedNet)",
    "activation": "hidden nonlinearity",
    "normalization": "None, 'batchnorm' or 'layernorm' after each hidden affine layer",
    "dropout": "probability of dropping a hidden unit",
    "reg": "L2 strength (coupled: 0.5 * reg * sum(W**2) in the loss)",
    "weight_scale": "std of the initial weights when init is None",
    "init": "None (weight_scale), 'he' or 'xavier'",
    "label_smoothing": "label smoothing of the softmax loss, in [0, 1)",
    "dtype": "float32 or float64",
    "update_rule": "a name in nndl.optim.UPDATE_RULES",
    "learning_rate": "base learning rate",
    "weight_decay": "decoupled weight decay of adamw/sgdw",
    "lr_decay": "learning-rate factor per epoch (1 with a schedule)",
    "lr_schedule": "None, 'cosine' or 'onecycle' (or a full spec dict of nndl.schedules)",
    "warmup_epochs": "linear warmup of the cosine schedule, in epochs",
    "epochs": "number of epochs",
    "batch_size": "examples per step",
    "num_train_samples": "training examples sampled for the per-epoch training accuracy (None: all)",
    "sampling": "'replacement' (the course) or 'permutation'",
    "augment": "None or 'flip-crop' (random flips and padded crops, image data only)",
    "crop_padding": "padding of the random crops, in pixels",
    "standardize": "per-channel standardisation instead of mean-image subtraction",
    "patience": "early stopping after this many epochs without a better validation accuracy (None: off)",
    "num_validation": "images held out for validation",
    "num_test": "test images to score (None: all)",
}
"""Every setting of a recipe, with what it means."""

_MODERN_OFF = dict(init=None, label_smoothing=0.0, weight_decay=0.0, lr_schedule=None, warmup_epochs=0.0,
                   augment=None, crop_padding=4, standardize=False, patience=None)

RECIPES = {
    "digits": dict(hidden=[100], activation="relu", normalization=None, dropout=0.0, reg=0.0,
                   weight_scale=1e-2, dtype="float32", update_rule="adam", learning_rate=1e-3,
                   lr_decay=0.95, epochs=40, batch_size=50, num_train_samples=None,
                   sampling="replacement", **SPLIT_DEFAULTS["digits"], **_MODERN_OFF),
    "seed": dict(hidden=[200], activation="relu", normalization=None, dropout=0.0, reg=0.0,
                 weight_scale=1e-3, dtype="float32", update_rule="sgd", learning_rate=6e-4,
                 lr_decay=0.9, epochs=10, batch_size=200, num_train_samples=2000,
                 sampling="replacement", **SPLIT_DEFAULTS["cifar10"], **_MODERN_OFF),
}
RECIPES["cifar10"] = dict(
    RECIPES["seed"], hidden=[1024, 512], normalization="batchnorm", dropout=0.0, init="he",
    update_rule="adamw", learning_rate=2e-3, weight_decay=0.05, lr_decay=1.0, lr_schedule="onecycle",
    label_smoothing=0.1, epochs=60, batch_size=128, num_train_samples=1000, sampling="permutation",
    augment="flip-crop", standardize=True)

DATASET_RECIPES = {"digits": "digits", "cifar10": "cifar10"}
"""The recipe ``nndl train --dataset D`` uses without ``--recipe``."""

RECIPE_DATASETS = {"digits": "digits", "seed": "cifar10", "cifar10": "cifar10"}
"""The dataset each recipe was made for (``nndl train --recipe R`` trains on it without
``--dataset``); a recipe's split sizes are that dataset's ``SPLIT_DEFAULTS``."""

TRAIN_DEFAULTS = {dataset: RECIPES[name] for dataset, name in DATASET_RECIPES.items()}
"""Each dataset's default settings (the settings of its default recipe)."""


def recipe_settings(name):
    """A copy of recipe ``name``'s settings, or ``ValueError`` listing the recipes."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}")
    settings = dict(RECIPES[name])
    settings["hidden"] = list(settings["hidden"])
    return settings


def build_model(settings, input_dim, num_classes, rng):
    """The model of ``settings``: a TwoLayerNet for one hidden layer (the course's), else a
    FullyConnectedNet.

    ``rng`` seeds the initial weights (and dropout masks): an ``np.random.Generator``, an int
    >= 0 or None, as the models' ``seed`` takes. The data-side settings (``standardize``,
    ``num_validation``, ``num_test``) are not used here: pass them to
    ``nndl.data.load_dataset``.
    """
    from .fc_net import FullyConnectedNet, TwoLayerNet

    common = dict(input_dim=input_dim, num_classes=num_classes, dropout=settings["dropout"], reg=settings["reg"],
                  weight_scale=settings["weight_scale"], dtype=np.dtype(settings["dtype"]), seed=rng,
                  activation=settings["activation"], normalization=settings["normalization"],
                  init=settings["init"], label_smoothing=settings["label_smoothing"])
    hidden = settings["hidden"]
    return TwoLayerNet(hidden_dims=hidden[0], **common) if len(hidden) == 1 else FullyConnectedNet(hidden, **common)


def solver_options(settings, image_shape=None):
    """The ``Solver`` keyword arguments of ``settings`` (without data, seed or callbacks).

    ``image_shape`` (C, H, W) is needed when the recipe augments its images. The model-side
    settings are ``build_model``'s and the data-side ones ``nndl.data.load_dataset``'s; a key
    that is no setting at all (a misspelling) is a ``ValueError``.
    """
    from .augment import standard_augment

    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"settings has unknown keys {', '.join(map(repr, unknown))}; the settings are "
                         f"{', '.join(SETTINGS)}")

    optim_config = {"learning_rate": settings["learning_rate"]}
    if settings["weight_decay"]:
        if settings["update_rule"] not in ("adamw", "sgdw"):
            raise ValueError(f"weight_decay (decoupled) needs update_rule adamw or sgdw, got "
                             f"{settings['update_rule']!r}; use reg for L2 with other rules")
        optim_config["decoupled_weight_decay"] = settings["weight_decay"]
    schedule = settings["lr_schedule"]
    if schedule == "cosine":
        schedule = {"name": "cosine", "warmup_epochs": settings["warmup_epochs"]}
    elif settings["warmup_epochs"] and isinstance(schedule, str):
        raise ValueError(f"warmup_epochs applies to lr_schedule 'cosine', not {schedule!r}")
    augment = None
    if settings["augment"] is not None:
        if settings["augment"] != "flip-crop":
            raise ValueError(f"augment must be None or 'flip-crop', got {settings['augment']!r}")
        if image_shape is None or len(image_shape) != 3:
            raise ValueError(f"augment 'flip-crop' needs image data (C, H, W), got examples of shape {image_shape}")
        augment = standard_augment(image_shape, padding=settings["crop_padding"])
    return dict(update_rule=settings["update_rule"], optim_config=optim_config, lr_decay=settings["lr_decay"],
                lr_schedule=schedule, num_epochs=settings["epochs"], batch_size=settings["batch_size"],
                num_train_samples=settings["num_train_samples"], sampling=settings["sampling"],
                augment=augment, patience=settings["patience"])
