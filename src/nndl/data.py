"""The one dataset loader of nndl train, evaluate, predict and search: data by name, with its source.

Contract
--------
``load_dataset(name, ...)`` loads ``'digits'`` (built in) or ``'cifar10'`` (the official python
batches) split into training, validation and test sets and preprocessed as the course does
(``nndl.data_utils``), and returns ``(data, source)``: ``data`` is the dict of
``get_CIFAR10_data`` (``X_train`` (N, C, H, W), ..., ``mean_image``, ``class_names``, and
``std_image`` when standardising); ``source`` is a ``DatasetSource``, the small frozen record
of which data and which split, that ``to_dict()`` turns into the JSON stored in a model file and
``DatasetSource.from_dict`` reads back, so that ``nndl evaluate`` rebuilds the same split.

Split sizes default to ``SPLIT_DEFAULTS`` (digits: 180 validation and 360 test digits of a
shuffle seeded by ``split_seed``; CIFAR-10: 1,000 validation images and the whole test batch).
The validation and test splits never depend on ``num_training``: a smaller training split is
cut from the front of the full one (the digits' mean image is then that of the smaller split;
CIFAR-10's stays that of the full training split, as the course computes it).
"""

import os
from dataclasses import asdict, dataclass, fields

import numpy as np

from . import data_utils
from .data_utils import DIGITS_SPLIT_SEED

__all__ = ["DatasetSource", "load_dataset", "SPLIT_DEFAULTS", "DATASET_NAMES"]

DATASET_NAMES = ("digits", "cifar10")

SPLIT_DEFAULTS = {"digits": {"num_validation": 180, "num_test": 360},
                  "cifar10": {"num_validation": 1000, "num_test": None}}
"""Each dataset's split sizes when none are given (``num_test=None``: every test image)."""


@dataclass(frozen=True)
class DatasetSource:
    """Which data a model saw, and how it was split (what ``nndl evaluate`` needs to rebuild it).

    Attributes
    ----------
    name : {'digits', 'cifar10'}
    num_validation : int
    num_test : int or None
        None: every image of CIFAR-10's test batch.
    split_seed : int or None
        The digits' shuffle (None for CIFAR-10, whose split is by position).
    data_dir : str or None
        CIFAR-10's directory, absolute (None for the built-in digits).
    """

    name: str
    num_validation: int
    num_test: object = None
    split_seed: object = None
    data_dir: object = None

    def to_dict(self):
        """The JSON form stored in model files: the fields that apply to this dataset."""
        return {k: v for k, v in asdict(self).items()
                if not (v is None and k in ("split_seed", "data_dir"))}

    @classmethod
    def from_dict(cls, value):
        """The source a model file recorded (``to_dict``'s form), or ``ValueError`` naming what
        is wrong with it. Fields a file leaves out take their defaults."""
        if not isinstance(value, dict):
            raise ValueError(f"a dataset source must be a dict, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"a dataset source has unknown field(s) {', '.join(unknown)}; "
                             f"known are {', '.join(sorted(known))}")
        if value.get("name") not in DATASET_NAMES:
            raise ValueError(f"a dataset source's name must be one of {', '.join(DATASET_NAMES)}, "
                             f"got {value.get('name')!r}")
        defaults = SPLIT_DEFAULTS[value["name"]]
        return cls(**{"num_validation": defaults["num_validation"], "num_test": defaults["num_test"], **value})


def cifar10_dir(data_dir=None):
    """``data_dir``, or the default CIFAR-10 directory ``$NNDL_DATA_DIR/cifar-10-batches-py``."""
    if data_dir:
        return os.fspath(data_dir)
    return os.path.join(data_utils.default_data_dir(), data_utils.CIFAR10_DIRNAME)


def load_dataset(name, data_dir=None, num_validation=None, num_test=None, num_training=None,
                 subtract_mean=True, dtype=np.float32, split_seed=DIGITS_SPLIT_SEED, standardize=False):
    """Load a dataset by name, split and preprocessed.

    Parameters
    ----------
    name : {'digits', 'cifar10'}
    data_dir : str or None
        CIFAR-10 directory (default ``$NNDL_DATA_DIR/cifar-10-batches-py``); the digits take
        none (``ValueError``).
    num_validation, num_test, num_training : int or None
        Split sizes; None means ``SPLIT_DEFAULTS`` (and every remaining image for training).
    subtract_mean, standardize : bool
        Subtract the training split's mean image, or standardise per channel (adds
        ``std_image``).
    dtype : numpy dtype
    split_seed : int
        Seed of the digits' shuffle.

    Returns
    -------
    data : dict
    source : DatasetSource
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"dataset must be one of {', '.join(DATASET_NAMES)}; got {name!r}")
    defaults = SPLIT_DEFAULTS[name]
    num_validation = defaults["num_validation"] if num_validation is None else num_validation
    num_test = defaults["num_test"] if num_test is None else num_test
    if name == "digits":
        if data_dir is not None:
            raise ValueError("data_dir applies to cifar10 only (the digits are built in)")
        data = data_utils.get_digits_data(num_validation=num_validation, num_test=num_test, num_training=num_training,
                                          seed=split_seed, subtract_mean=subtract_mean, dtype=dtype,
                                          standardize=standardize)
        return data, DatasetSource("digits", num_validation, num_test, split_seed=split_seed)
    directory = cifar10_dir(data_dir)
    data = data_utils.get_CIFAR10_data(num_training=None, num_validation=num_validation, num_test=num_test,
                                       subtract_mean=subtract_mean, cifar10_dir=directory, dtype=dtype,
                                       standardize=standardize)
    if num_training is not None:
        available = len(data["y_train"])
        if not 1 <= num_training <= available:
            raise ValueError(f"num_training must be at most the {available} CIFAR-10 training images left "
                             f"after validation (and at least 1), got {num_training}")
        data["X_train"], data["y_train"] = data["X_train"][:num_training], data["y_train"][:num_training]
    return data, DatasetSource("cifar10", num_validation, num_test, data_dir=os.path.abspath(directory))
