"""nndl.data: the one dataset loader and its DatasetSource."""

import json
import os

import numpy as np
import pytest

from conftest import CIFAR_SUBSET
from nndl.data import SPLIT_DEFAULTS, DatasetSource, load_dataset


def test_digits_load_with_a_source_that_rebuilds_the_same_split():
    data, source = load_dataset("digits", num_validation=100, num_test=200, split_seed=3)
    assert source == DatasetSource("digits", 100, 200, split_seed=3)
    assert source.to_dict() == {"name": "digits", "num_validation": 100, "num_test": 200, "split_seed": 3}
    again = DatasetSource.from_dict(json.loads(json.dumps(source.to_dict())))
    assert again == source
    rebuilt, _ = load_dataset(again.name, num_validation=again.num_validation, num_test=again.num_test,
                              split_seed=again.split_seed)
    for key in ("X_val", "y_val", "X_test", "y_test"):
        np.testing.assert_array_equal(rebuilt[key], data[key])
    assert len(data["y_val"]) == 100 and len(data["y_test"]) == 200


def test_defaults_and_a_smaller_training_split_keep_validation_and_test():
    full, source = load_dataset("digits")
    assert (source.num_validation, source.num_test) == (SPLIT_DEFAULTS["digits"]["num_validation"],
                                                        SPLIT_DEFAULTS["digits"]["num_test"])
    part, _ = load_dataset("digits", num_training=300, subtract_mean=False)
    raw, _ = load_dataset("digits", subtract_mean=False)
    assert len(part["y_train"]) == 300
    np.testing.assert_array_equal(part["X_val"], raw["X_val"])
    np.testing.assert_array_equal(part["y_train"], raw["y_train"][:300])


@pytest.mark.skipif(not CIFAR_SUBSET.is_dir(), reason="the CIFAR-10 subset is not in ../shared/data")
def test_cifar10_source_names_its_directory_and_cuts_training_from_the_front():
    data, source = load_dataset("cifar10", str(CIFAR_SUBSET), num_validation=500, num_training=1000)
    assert source.to_dict() == {"name": "cifar10", "num_validation": 500, "num_test": None,
                                "data_dir": os.path.abspath(CIFAR_SUBSET)}
    assert len(data["y_train"]) == 1000 and len(data["y_val"]) == 500 and len(data["y_test"]) == 0
    with pytest.raises(ValueError, match="num_training must be at most the 4670 CIFAR-10 training images"):
        load_dataset("cifar10", str(CIFAR_SUBSET), num_validation=500, num_training=5000)


@pytest.mark.parametrize("call, message", [
    (lambda: load_dataset("mnist"), "dataset must be one of digits, cifar10; got 'mnist'"),
    (lambda: load_dataset("digits", data_dir="x"), "data_dir applies to cifar10 only"),
    (lambda: DatasetSource.from_dict({"name": "digits", "colour": 1}), "unknown field"),
    (lambda: DatasetSource.from_dict({"name": "mnist"}), "name must be one of digits, cifar10, got 'mnist'"),
    (lambda: DatasetSource.from_dict(["digits"]), "must be a dict, got list"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_source_without_split_sizes_takes_the_defaults():
    assert DatasetSource.from_dict({"name": "cifar10", "data_dir": "/d"}) == DatasetSource("cifar10", 1000, None,
                                                                                           data_dir="/d")
