"""Tests for nndl.recipes: the named settings, and the models and Solver options they build."""

import numpy as np
import pytest

from nndl import recipes
from nndl.fc_net import FullyConnectedNet, TwoLayerNet


def test_every_recipe_has_every_setting():
    for name, settings in recipes.RECIPES.items():
        assert set(settings) == set(recipes.SETTINGS), name


def test_seed_recipe_is_seed_000s_and_cifar10_default_is_the_modern_one():
    seed = recipes.recipe_settings("seed")
    assert (seed["hidden"], seed["update_rule"], seed["learning_rate"], seed["lr_decay"], seed["epochs"],
            seed["batch_size"]) == ([200], "sgd", 6e-4, 0.9, 10, 200)
    assert recipes.DATASET_RECIPES["cifar10"] == "cifar10"
    assert recipes.TRAIN_DEFAULTS["cifar10"]["update_rule"] == "adamw"


def test_recipe_settings_is_a_copy():
    settings = recipes.recipe_settings("cifar10")
    settings["hidden"].append(7)
    assert recipes.RECIPES["cifar10"]["hidden"] == [1024, 512]


def test_unknown_recipe_lists_them():
    with pytest.raises(ValueError, match="recipe must be one of digits, seed, cifar10; got 'fast'"):
        recipes.recipe_settings("fast")


def test_build_model_follows_the_settings():
    rng = np.random.default_rng(0)
    model = recipes.build_model(recipes.recipe_settings("cifar10"), 3072, 10, rng)
    assert isinstance(model, FullyConnectedNet) and model.init == "he" and model.label_smoothing == 0.1
    assert isinstance(recipes.build_model(recipes.recipe_settings("seed"), 3072, 10, rng), TwoLayerNet)


def test_solver_options_of_the_modern_recipe():
    options = recipes.solver_options(recipes.recipe_settings("cifar10"), (3, 32, 32))
    assert options["update_rule"] == "adamw" and options["lr_schedule"] == "onecycle"
    assert options["optim_config"] == {"learning_rate": 2e-3, "decoupled_weight_decay": 0.05}
    X = np.zeros((4, 3072), dtype=np.float32)
    assert options["augment"](X, np.random.default_rng(0)).shape == X.shape


@pytest.mark.parametrize("change, image_shape, message", [
    (dict(update_rule="adam", weight_decay=0.1), (3, 32, 32), "weight_decay .decoupled. needs update_rule adamw"),
    (dict(), (3072,), r"augment 'flip-crop' needs image data \(C, H, W\)"),
    (dict(augment="rotate"), (3, 32, 32), "augment must be None or 'flip-crop', got 'rotate'"),
    (dict(warmup_epochs=2.0), (3, 32, 32), "warmup_epochs applies to lr_schedule 'cosine', not 'onecycle'"),
])
def test_inconsistent_settings_are_named(change, image_shape, message):
    with pytest.raises(ValueError, match=message):
        recipes.solver_options({**recipes.recipe_settings("cifar10"), **change}, image_shape)


def test_cosine_recipe_carries_its_warmup():
    settings = {**recipes.recipe_settings("cifar10"), "lr_schedule": "cosine", "warmup_epochs": 2.0}
    assert recipes.solver_options(settings, (3, 32, 32))["lr_schedule"] == {"name": "cosine", "warmup_epochs": 2.0}


def test_a_misspelt_setting_is_refused_by_name():
    settings = dict(recipes.recipe_settings("cifar10"), lrate=0.1)
    with pytest.raises(ValueError, match="settings has unknown keys 'lrate'; the settings are hidden, "):
        recipes.solver_options(settings, (3, 32, 32))


def test_every_recipe_names_its_dataset_and_has_that_datasets_split():
    from nndl.data import SPLIT_DEFAULTS

    assert set(recipes.RECIPE_DATASETS) == set(recipes.RECIPES)
    for name, dataset in recipes.RECIPE_DATASETS.items():
        for key, value in SPLIT_DEFAULTS[dataset].items():
            assert recipes.RECIPES[name][key] == value, (name, key)
