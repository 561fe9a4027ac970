"""Datasets: CIFAR-10 in its official python-pickle layout, loaded safely and preprocessed.

Contract
--------
``load_CIFAR_batch(filename)`` returns ``(X, y)`` with X of shape (N, 32, 32, 3) and y (N,)
int; ``load_CIFAR10(ROOT)`` concatenates ``data_batch_1..5`` and reads ``test_batch``;
``get_CIFAR10_data(...)`` returns the course's preprocessed dict (validation taken from the end
of the training batches, the training mean image subtracted, images as (N, 3, 32, 32)).

The batch files are pickles. They are read with a restricted unpickler that accepts only the
few NumPy globals the official files use, so a crafted file cannot run code: it is refused with
``ValueError`` naming the file. Missing or malformed files raise errors that name the file.
"""

import codecs
import io
import os
import pickle

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["default_data_dir", "load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data", "load_CIFAR10_meta",
           "CIFAR10_CLASSES", "CIFAR10_TRAIN_FILES", "CIFAR10_TEST_FILE"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"

CIFAR10_DIRNAME = "cifar-10-batches-py"


def default_data_dir():
    """Where datasets live: ``$NNDL_DATA_DIR`` if set, else ``~/.cache/nndl``."""
    return os.environ.get("NNDL_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "nndl")


# The only globals an official CIFAR-10 batch pickle refers to (how NumPy pickles an ndarray),
# plus codecs.encode, which Python 3 uses for bytes in protocol-2 pickles. None can run code.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): codecs.encode,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside ``_ALLOWED_GLOBALS``."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in ``_ALLOWED_GLOBALS``."""

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"refusing to load global {module}.{name}: not part of a CIFAR-10 batch") from None


def _unpickle(filename):
    """Safely unpickle a CIFAR-10 file into a dict with str keys."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"CIFAR-10 file not found: {filename}")
    with open(filename, "rb") as f:
        raw = f.read()
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _RefusedGlobal as exc:
        raise ValueError(f"{filename} is not a valid CIFAR-10 batch file: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as exc:
        raise ValueError(f"{filename} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{filename} is not a CIFAR-10 batch file: it holds a {type(obj).__name__}, not a dict")
    # Python-2 pickles give bytes keys under encoding='bytes'; normalise to str.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def load_CIFAR_batch(filename, dtype=np.float64):
    """Load one CIFAR-10 batch file.

    Parameters
    ----------
    filename : str or path
    dtype : numpy dtype
        dtype of the returned images (float64 as in the course; float32 halves memory).

    Returns
    -------
    X : ndarray, shape (N, 32, 32, 3)
        Pixel values in [0, 255].
    y : ndarray of int64, shape (N,)
    """
    filename = os.fspath(filename)
    d = _unpickle(filename)
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{filename} is not a CIFAR-10 batch file: it has no 'data'/'labels' entries")
    data = d["data"]
    labels = np.asarray(d["labels"], dtype=np.int64)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{filename}: 'data' must be an array of shape (N, 3072), got {shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{filename}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{filename}: labels must lie in [0, 10), got {labels.min()}..{labels.max()}")
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(dtype)
    return X, labels


def load_CIFAR10_meta(ROOT):
    """Class names from ``batches.meta`` (the standard ten if the file is absent)."""
    path = os.path.join(ROOT, "batches.meta")
    if not os.path.isfile(path):
        return list(CIFAR10_CLASSES)
    names = _unpickle(path).get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise ValueError(f"{path}: 'label_names' must be a list of 10 names")
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def load_CIFAR10(ROOT, dtype=np.float64, require_test=True):
    """Load the training batches and the test batch of CIFAR-10.

    Parameters
    ----------
    ROOT : str or path
        Directory holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``.
    dtype : numpy dtype
    require_test : bool
        When False, a missing ``test_batch`` gives empty test arrays instead of an error
        (for partial copies of the dataset).

    Returns
    -------
    Xtr : ndarray, shape (N_train, 32, 32, 3)
    Ytr : ndarray, shape (N_train,)
    Xte : ndarray, shape (N_test, 32, 32, 3)
    Yte : ndarray, shape (N_test,)
    """
    ROOT = os.fspath(ROOT)
    if not os.path.isdir(ROOT):
        raise FileNotFoundError(
            f"CIFAR-10 directory not found: {ROOT} (download it with nndl.data_utils.download_cifar10 "
            f"or `nndl train --dataset cifar10 --download`)")
    missing = [f for f in CIFAR10_TRAIN_FILES if not os.path.isfile(os.path.join(ROOT, f))]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 directory {ROOT} is missing {', '.join(missing)}")
    parts = [load_CIFAR_batch(os.path.join(ROOT, f), dtype) for f in CIFAR10_TRAIN_FILES]
    Xtr = np.concatenate([p[0] for p in parts])
    Ytr = np.concatenate([p[1] for p in parts])
    test_path = os.path.join(ROOT, CIFAR10_TEST_FILE)
    if os.path.isfile(test_path) or require_test:
        Xte, Yte = load_CIFAR_batch(test_path, dtype)
    else:
        Xte, Yte = np.empty((0, 32, 32, 3), dtype=dtype), np.empty(0, dtype=np.int64)
    return Xtr, Ytr, Xte, Yte


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True,
                     cifar10_dir=None, dtype=np.float64, layout="image"):
    """Load CIFAR-10 and preprocess it as the course does.

    Parameters
    ----------
    num_training, num_validation, num_test : int
        Sizes of the splits; validation is the ``num_validation`` images after the first
        ``num_training``. ``num_training=None`` uses every training image not held for
        validation. The test split is empty when the directory has no ``test_batch``.
    subtract_mean : bool
        Subtract the training split's mean image from every split.
    cifar10_dir : str or path, optional
        The dataset directory; default ``default_data_dir()/cifar-10-batches-py``.
    dtype : numpy dtype
    layout : {'image', 'rows'}
        'image': X as (N, 3, 32, 32) (the modular notebook); 'rows': X as (N, 3072) in
        height-width-channel order (the two-layer-net notebook).

    Returns
    -------
    dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test``, and
        ``mean_image`` (zeros when ``subtract_mean`` is False), ``class_names``.
    """
    if cifar10_dir is None:
        cifar10_dir = os.path.join(default_data_dir(), CIFAR10_DIRNAME)
    if layout not in ("image", "rows"):
        raise ValueError(f"layout must be 'image' or 'rows', got {layout!r}")
    X_train, y_train, X_test, y_test = load_CIFAR10(cifar10_dir, dtype=dtype, require_test=False)
    available = X_train.shape[0]
    if num_training is None:
        num_training = available - num_validation
    if num_training <= 0 or num_training + num_validation > available:
        raise ValueError(
            f"num_training + num_validation must be at most the {available} training images in "
            f"{cifar10_dir}, got {num_training} + {num_validation}")
    X_val = X_train[num_training:num_training + num_validation]
    y_val = y_train[num_training:num_training + num_validation]
    X_train, y_train = X_train[:num_training], y_train[:num_training]
    X_test, y_test = X_test[:num_test], y_test[:num_test]

    mean_image = X_train.mean(axis=0) if subtract_mean else np.zeros(X_train.shape[1:], dtype=dtype)
    splits = {}
    for name, X in (("train", X_train), ("val", X_val), ("test", X_test)):
        X = X - mean_image
        splits[name] = X.reshape(X.shape[0], -1) if layout == "rows" else X.transpose(0, 3, 1, 2).copy()
    mean = mean_image.reshape(-1) if layout == "rows" else mean_image.transpose(2, 0, 1)
    return {
        "X_train": splits["train"], "y_train": y_train,
        "X_val": splits["val"], "y_val": y_val,
        "X_test": splits["test"], "y_test": y_test,
        "mean_image": mean, "class_names": load_CIFAR10_meta(cifar10_dir),
    }
