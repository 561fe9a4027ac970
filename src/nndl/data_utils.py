"""Datasets: CIFAR-10 (load safely, download, preprocess) and the built-in 8x8 digits.

Contract
--------
``load_CIFAR_batch(filename)`` returns ``(X, y)`` with X of shape (N, 32, 32, 3) and y (N,)
int; ``load_CIFAR10(ROOT)`` concatenates ``data_batch_1..5`` and reads ``test_batch``;
``get_CIFAR10_data(...)`` returns the course's preprocessed dict (validation taken from the end
of the training batches, the training mean image subtracted, images as (N, 3, 32, 32)).

``download_cifar10(dest)`` fetches the official python archive into
``dest/cifar-10-batches-py``: the MD5 is checked before anything is unpacked, members that
would land outside the target (absolute paths, ``..``, links, devices) are refused, and the
download and extraction happen in temporary names inside ``dest`` that are renamed into place
only when complete, so a failure leaves no half-written dataset behind.

``load_digits()`` and ``get_digits_data(...)`` serve the UCI handwritten digits (1,797 images
of 8x8 pixels with values 0..16, 10 classes) shipped inside the package, so a first run needs
no download; ``get_digits_data`` returns the same dict as ``get_CIFAR10_data`` with images of
shape (N, 1, 8, 8). Attribution: ``nndl/datasets/DIGITS_LICENSE.txt``.

The batch files are pickles. They are read with a restricted unpickler that accepts only the
few NumPy globals the official files use, so a crafted file cannot run code: it is refused with
``ValueError`` naming the file. Missing or malformed files raise errors that name the file.
"""

import codecs
import gzip
import hashlib
import http.client
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib

import numpy as np

from . import _env
from ._validation import check_seed, parse_dtype

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["default_data_dir", "load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data", "load_CIFAR10_meta",
           "download_cifar10", "DownloadError", "load_digits", "get_digits_data",
           "CIFAR10_CLASSES", "CIFAR10_TRAIN_FILES", "CIFAR10_TEST_FILE", "CIFAR10_FILES",
           "CIFAR10_URL", "CIFAR10_MD5", "CIFAR10_DIRNAME", "DIGITS_CLASSES", "NUM_DIGITS"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"

CIFAR10_FILES = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE, "batches.meta")
CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_HOW_TO_DOWNLOAD = ("download it with `nndl train --dataset cifar10 --download` "
                    "or nndl.data_utils.download_cifar10()")

DIGITS_CLASSES = tuple(str(d) for d in range(10))
_DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "digits.npz")
_DIGITS_SHAPE = (1797, 8, 8)
NUM_DIGITS = _DIGITS_SHAPE[0]
DIGITS_SPLIT_SEED = 0  # the digits split of nndl train and search: fixed, so nndl evaluate sees the same test digits
"""Examples in the built-in digits dataset."""


def default_data_dir():
    """Where datasets live: ``$NNDL_DATA_DIR`` if set, else ``~/.cache/nndl``."""
    return _env.get("NNDL_DATA_DIR")


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


def _batch_labels(filename, labels):
    """A batch's labels as int64, refusing text and fractions by name (``np.asarray(..., int64)``
    would truncate 1.5 to 1 silently)."""
    try:
        values = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{filename}: 'labels' must be a list of class numbers ({exc})") from None
    if values.size and values.dtype.kind not in "iuf":
        raise ValueError(f"{filename}: 'labels' must be class numbers 0-9, got {values.dtype} values "
                         f"such as {values.flat[0]!r}")
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise ValueError(f"{filename}: 'labels' must be whole class numbers 0-9, got {values[bad].flat[0]!r}")
    return values.astype(np.int64)


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
    labels = _batch_labels(filename, d["labels"])
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{filename}: 'data' must be an array of shape (N, 3072), got {shape}")
    if data.dtype.kind not in "fiu":
        raise ValueError(f"{filename}: 'data' must hold pixel values (numbers), got {data.dtype} values")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ValueError(f"{filename}: 'data' holds NaN or inf pixel values")
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
        raise FileNotFoundError(f"CIFAR-10 directory not found: {ROOT} ({_HOW_TO_DOWNLOAD})")
    missing = [f for f in CIFAR10_TRAIN_FILES if not os.path.isfile(os.path.join(ROOT, f))]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 directory {ROOT} is missing {', '.join(missing)} ({_HOW_TO_DOWNLOAD})")
    parts = [load_CIFAR_batch(os.path.join(ROOT, f), dtype) for f in CIFAR10_TRAIN_FILES]
    Xtr = np.concatenate([p[0] for p in parts])
    Ytr = np.concatenate([p[1] for p in parts])
    test_path = os.path.join(ROOT, CIFAR10_TEST_FILE)
    if require_test and not os.path.isfile(test_path):
        raise FileNotFoundError(f"CIFAR-10 file not found: {test_path} (a partial copy without it loads "
                                f"with require_test=False)")
    if os.path.isfile(test_path):
        Xte, Yte = load_CIFAR_batch(test_path, dtype)
    else:
        Xte, Yte = np.empty((0, 32, 32, 3), dtype=dtype), np.empty(0, dtype=np.int64)
    return Xtr, Ytr, Xte, Yte


def _check_count(name, value, minimum=0):
    """Return ``value`` as int if it is an integer >= ``minimum``, else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_data_dtype(dtype, subtract_mean):
    """Return ``np.dtype(dtype)``, else raise ``TypeError``: a numeric dtype, and a float one
    when the mean is subtracted (uint8 pixels minus a mean wrap around)."""
    value = parse_dtype(dtype)
    if value is None or value.kind not in "uif":
        raise TypeError(f"dtype must be a numeric dtype such as float32 or float64, got {dtype!r}")
    if subtract_mean and value.kind != "f":
        raise TypeError(f"dtype must be a float dtype with subtract_mean=True, got {value.name} "
                        f"(pass subtract_mean=False for raw integer pixels)")
    return value


def _channel_stats(X_train):
    """Per-channel mean and standard deviation of (N, H, W, C) images, broadcast to (H, W, C)."""
    mean = X_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = X_train.std(axis=(0, 1, 2), dtype=np.float64)
    if np.any(std == 0):
        raise ValueError(f"standardize needs every channel to vary over the training images; channel(s) "
                         f"{np.flatnonzero(std == 0).tolist()} are constant")
    shape = X_train.shape[1:]
    return np.broadcast_to(mean, shape), np.broadcast_to(std, shape)


def _preprocess(splits, subtract_mean, layout, dtype, class_names, standardize=False):
    """Turn raw (N, H, W, C) splits into the course's dict.

    Parameters
    ----------
    splits : dict
        ``"train"``, ``"val"``, ``"test"`` -> ``(X, y)`` with X of shape (N, H, W, C).
    subtract_mean : bool
    layout : {'image', 'rows'}
    dtype : numpy dtype
    class_names : list of str
    standardize : bool
        Per-channel standardisation instead of the mean image: subtract each channel's mean
        over the training split and divide by its standard deviation.

    Returns
    -------
    dict
        ``X_<split>`` as (N, C, H, W) ('image') or (N, H*W*C) ('rows'), ``y_<split>``,
        ``mean_image`` shaped like one example, ``class_names``; with ``standardize`` also
        ``std_image`` (each channel's std, shaped like one example): ``(X - mean_image) /
        std_image`` is what the model sees.
    """
    if layout not in ("image", "rows"):
        raise ValueError(f"layout must be 'image' or 'rows', got {layout!r}")
    X_train = splits["train"][0]
    std_image = None
    if standardize:
        mean_image, std_image = (a.astype(dtype) for a in _channel_stats(X_train))
    elif subtract_mean:
        mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
    else:
        mean_image = np.zeros(X_train.shape[1:], dtype=dtype)
    out = {}
    for name, (X, y) in splits.items():
        X = X.astype(dtype, copy=False) - mean_image
        if std_image is not None:
            X /= std_image
        if layout == "rows":
            # An explicit row length: reshape cannot infer -1 for an empty split (no test_batch).
            out[f"X_{name}"] = X.reshape(X.shape[0], int(np.prod(X.shape[1:])))
        else:
            out[f"X_{name}"] = X.transpose(0, 3, 1, 2).copy()
        out[f"y_{name}"] = y
    for key, image in (("mean_image", mean_image), ("std_image", std_image)):
        if image is not None:
            out[key] = image.reshape(-1) if layout == "rows" else image.transpose(2, 0, 1).copy()
    out["class_names"] = list(class_names)
    return out


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True,
                     cifar10_dir=None, dtype=np.float64, layout="image", standardize=False):
    """Load CIFAR-10 and preprocess it as the course does.

    Parameters
    ----------
    num_training, num_validation, num_test : int
        Sizes of the splits; validation is the ``num_validation`` images after the first
        ``num_training``. ``num_training=None`` uses every training image not held for
        validation, ``num_test=None`` every test image. The test split is empty when the
        directory has no ``test_batch``.
    subtract_mean : bool
        Subtract the training split's mean image from every split.
    cifar10_dir : str or path, optional
        The dataset directory; default ``default_data_dir()/cifar-10-batches-py``.
    dtype : numpy dtype
        Numeric; a float dtype unless ``subtract_mean=False`` (e.g. raw uint8 pixels).
    layout : {'image', 'rows'}
        'image': X as (N, 3, 32, 32) (the modular notebook); 'rows': X as (N, 3072) in
        height-width-channel order (the two-layer-net notebook).
    standardize : bool
        Per-channel standardisation (each channel's mean and std over the training split)
        instead of the mean image; adds ``std_image`` to the result.

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
    num_validation = _check_count("num_validation", num_validation)
    num_test = None if num_test is None else _check_count("num_test", num_test)
    dtype = _check_data_dtype(dtype, subtract_mean or standardize)
    X_train, y_train, X_test, y_test = load_CIFAR10(cifar10_dir, dtype=dtype, require_test=False)
    available = X_train.shape[0]
    if num_validation >= available:
        raise ValueError(f"num_validation must leave some of the {available} training images in "
                         f"{cifar10_dir} for training, got {num_validation}")
    if num_training is None:
        num_training = available - num_validation
    num_training = _check_count("num_training", num_training, minimum=1)
    if num_training + num_validation > available:
        raise ValueError(
            f"num_training + num_validation must be at most the {available} training images in "
            f"{cifar10_dir}, got {num_training} + {num_validation}")
    splits = {
        "train": (X_train[:num_training], y_train[:num_training]),
        "val": (X_train[num_training:num_training + num_validation],
                y_train[num_training:num_training + num_validation]),
        "test": (X_test[:num_test], y_test[:num_test]),
    }
    return _preprocess(splits, subtract_mean, layout, dtype, load_CIFAR10_meta(cifar10_dir), standardize)


# --------------------------------------------------------------------------- digits

def load_digits(dtype=np.float64):
    """The UCI handwritten digits shipped with nndl.

    Parameters
    ----------
    dtype : numpy dtype

    Returns
    -------
    X : ndarray, shape (1797, 8, 8)
        Pixel values, integers in [0, 16].
    y : ndarray of int64, shape (1797,)
        The digit shown, in [0, 10).
    """
    try:
        with np.load(_DIGITS_FILE, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except FileNotFoundError:
        raise FileNotFoundError(f"the built-in digits file is missing: {_DIGITS_FILE}; reinstall nndl") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"the built-in digits file {_DIGITS_FILE} is damaged ({exc}); reinstall nndl") from None
    if images.shape != _DIGITS_SHAPE or labels.shape != _DIGITS_SHAPE[:1]:
        raise ValueError(f"the built-in digits file {_DIGITS_FILE} holds images {images.shape} and labels "
                         f"{labels.shape}, expected {_DIGITS_SHAPE} and {_DIGITS_SHAPE[:1]}; reinstall nndl")
    return images.astype(dtype), labels.astype(np.int64)


def get_digits_data(num_validation=180, num_test=360, num_training=None, subtract_mean=True, seed=0,
                    dtype=np.float64, layout="image", standardize=False):
    """The built-in digits, split at random and preprocessed like ``get_CIFAR10_data``.

    Parameters
    ----------
    num_validation, num_test : int
        Sizes of the validation and test splits.
    num_training : int or None
        Size of the training split; None uses every image not held for validation or test.
    subtract_mean : bool
        Subtract the training split's mean image from every split.
    seed : int, numpy Generator or None
        Seed of the shuffle that assigns images to splits; the same seed gives the same
        splits on every machine (``nndl evaluate`` relies on it). None draws the shuffle from
        NumPy's global random state, so ``np.random.seed`` before the call repeats it.
    dtype : numpy dtype
        Numeric; a float dtype unless ``subtract_mean=False``.
    layout : {'image', 'rows'}
        'image': X as (N, 1, 8, 8); 'rows': X as (N, 64).
    standardize : bool
        Standardise with the training split's pixel mean and std (one channel) instead of
        subtracting the mean image; adds ``std_image``.

    Returns
    -------
    dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test``, ``mean_image``
        (shape (1, 8, 8) or (64,)), ``class_names`` (``'0'`` ... ``'9'``).
    """
    num_validation = _check_count("num_validation", num_validation)
    num_test = _check_count("num_test", num_test)
    seed = check_seed(seed)
    dtype = _check_data_dtype(dtype, subtract_mean or standardize)
    X, y = load_digits(dtype)
    total = X.shape[0]
    if num_validation + num_test >= total:
        raise ValueError(f"num_validation + num_test must leave some of the {total} digits for training, "
                         f"got {num_validation} + {num_test}")
    if num_training is None:
        num_training = total - num_validation - num_test
    num_training = _check_count("num_training", num_training, minimum=1)
    if num_training + num_validation + num_test > total:
        raise ValueError(f"num_training + num_validation + num_test must be at most the {total} digits with "
                         f"num_training >= 1, got {num_training} + {num_validation} + {num_test}")
    # default_rng returns a Generator unchanged, so only None needs its own source.
    order = (np.random if seed is None else np.random.default_rng(seed)).permutation(total)
    # Test and validation come first, so they do not depend on num_training.
    used = order[:num_test + num_validation + num_training]
    test, val, train = np.split(used, [num_test, num_test + num_validation])
    X = X[..., np.newaxis]  # (N, 8, 8, 1): the (N, H, W, C) layout of the CIFAR loader
    splits = {"train": (X[train], y[train]), "val": (X[val], y[val]), "test": (X[test], y[test])}
    return _preprocess(splits, subtract_mean, layout, dtype, DIGITS_CLASSES, standardize)


# --------------------------------------------------------------------------- download

class DownloadError(OSError):
    """A download that failed, was corrupt, or held something unsafe to unpack."""


def _progress_bar(total, desc, enabled):
    """A tqdm bar if tqdm is installed and ``enabled``, else a stand-in that does nothing."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm comes with the `cli` extra; the core works without it
            pass
        else:
            return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)

    class _Silent:
        def update(self, n):
            pass

        def close(self):
            pass

    return _Silent()


def _fetch(url, out, timeout, progress):
    """Stream ``url`` into the open file ``out``; return the MD5 hex digest of what was written."""
    digest = hashlib.md5()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            bar = _progress_bar(expected, os.path.basename(url) or "download", progress)
            try:
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot download {url}: {exc.reason}") from None
    except (http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        raise DownloadError(f"download of {url} broke off after {received} bytes "
                            f"({type(exc).__name__}: {exc}); try again") from None
    if expected is not None and received != expected:
        raise DownloadError(f"download of {url} is truncated: got {received} of {expected} bytes; try again")
    return digest.hexdigest()


def _member_path(root, name):
    """Where archive member ``name`` goes under ``root``; raise if it would land outside it."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or not parts or ":" in parts[0]:
        raise DownloadError(f"refusing to unpack archive member {name!r}: it would land outside {root}")
    return os.path.join(root, *parts)


def _safe_extract(archive, root, url):
    """Unpack the regular files and directories of a .tar.gz into ``root``; refuse anything else."""
    try:
        with gzip.open(archive, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                path = _member_path(root, member.name)
                if member.isdir():
                    os.makedirs(path, exist_ok=True)
                elif member.isfile():
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with tar.extractfile(member) as src, open(path, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:
                    raise DownloadError(f"refusing to unpack archive member {member.name!r}: "
                                        f"links and special files are not allowed")
            # tar stops at its end-of-archive marker; reading gzip to the end makes it check
            # its CRC and length, which catches corruption in the last members too.
            while gz.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DownloadError(f"the archive from {url} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def _missing_files(directory):
    return [f for f in CIFAR10_FILES if not os.path.isfile(os.path.join(directory, f))]


def _install(new, target, parking):
    """Rename ``new`` to ``target``; an existing ``target`` is parked and put back on failure."""
    parked = os.path.exists(target)
    if parked:
        os.replace(target, parking)
    try:
        os.replace(new, target)
    except OSError:
        if parked:
            os.replace(parking, target)
        raise


def _fetch_and_install(url, md5, dest, target, timeout, progress):
    """Download, check and unpack the archive, then rename it into ``target``; no temporaries remain."""
    # Temporary names inside dest keep the final renames on one filesystem, hence atomic.
    fd, archive = tempfile.mkstemp(prefix=".cifar10-", suffix=".tar.gz.part", dir=dest)
    workdir = tempfile.mkdtemp(prefix=".cifar10-", suffix=".unpack", dir=dest)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, timeout, progress)
        if digest != md5.lower():
            raise DownloadError(f"the archive from {url} has MD5 {digest}, expected {md5.lower()}: it is corrupt "
                                f"or not the official file; nothing was unpacked")
        _safe_extract(archive, workdir, url)
        unpacked = os.path.join(workdir, CIFAR10_DIRNAME)
        missing = _missing_files(unpacked)
        if missing:
            raise DownloadError(f"the archive from {url} has no {CIFAR10_DIRNAME}/{', '.join(missing)}")
        _install(unpacked, target, os.path.join(workdir, "previous"))
    finally:
        os.unlink(archive)
        shutil.rmtree(workdir, ignore_errors=True)


def download_cifar10(dest=None, url=CIFAR10_URL, md5=CIFAR10_MD5, name=CIFAR10_DIRNAME, force=False,
                     progress=True, timeout=60.0):
    """Download and unpack the official CIFAR-10 python archive.

    Nothing is unpacked until the whole archive has arrived and its MD5 matches; members
    outside the archive's folder, links and special files are refused; on any failure the
    temporary files are removed and an existing dataset is left as it was.

    Parameters
    ----------
    dest : str or path, optional
        Directory that receives the dataset folder; default ``default_data_dir()``
        (``$NNDL_DATA_DIR`` or ``~/.cache/nndl``). Created if needed.
    url : str
        Where to fetch the archive (a mirror, or a local server in tests).
    md5 : str
        Expected MD5 hex digest of the archive.
    name : str
        Name of the dataset folder under ``dest``.
    force : bool
        Replace an existing ``dest/name`` (only once the new copy is complete). Without it a
        complete copy is returned as is and an incomplete one is an error, so nothing the
        user has is overwritten.
    progress : bool
        Show a tqdm progress bar (when tqdm is installed).
    timeout : float
        Seconds to wait for the server on connect and on each read.

    Returns
    -------
    str
        The dataset directory ``dest/name`` holding ``data_batch_1..5``, ``test_batch`` and
        ``batches.meta``.

    Raises
    ------
    DownloadError
        The server could not be reached, the transfer broke off, the MD5 differs, the
        archive is corrupt or lacks a batch file, or it holds an unsafe member.
    """
    dest = default_data_dir() if dest is None else os.fspath(dest)
    if not name or os.path.basename(name) != name or name in (".", ".."):
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    if not isinstance(md5, str) or len(md5) != 32:
        raise ValueError(f"md5 must be a 32-character hex digest, got {md5!r}")
    target = os.path.join(dest, name)
    if os.path.exists(target) and not force:
        missing = _missing_files(target)
        if not missing:
            return target
        raise DownloadError(f"{target} exists but is missing {', '.join(missing)}; move it away or pass "
                            f"force=True (--force) to replace it")
    os.makedirs(dest, exist_ok=True)
    _fetch_and_install(url, md5, dest, target, timeout, progress)
    return target
