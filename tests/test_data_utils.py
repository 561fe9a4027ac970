"""Tests for nndl.data_utils: CIFAR-10 loading (real subset and crafted files) and preprocessing."""

import os
import pickle

import numpy as np
import pytest

from nndl.data_utils import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch


def write_batch(path, n=4, seed=0, key_type=bytes, protocol=2):
    """Write a batch file in the official layout (Python-2 style bytes keys by default)."""
    rng = np.random.default_rng(seed)
    k = (lambda s: s.encode()) if key_type is bytes else (lambda s: s)
    batch = {k("batch_label"): k("testing batch"), k("labels"): rng.integers(10, size=n).tolist(),
             k("data"): rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
             k("filenames"): [k(f"img_{i}.png") for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return batch


def test_loads_the_real_subset(cifar_subset_dir):
    X, y = load_CIFAR_batch(cifar_subset_dir / "data_batch_1")
    assert X.shape == (1102, 32, 32, 3) and y.shape == (1102,)
    assert X.dtype == np.float64 and 0 <= X.min() and X.max() <= 255
    assert set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize("key_type", [bytes, str])
def test_both_key_styles_load(tmp_path, key_type):
    batch = write_batch(tmp_path / "b", key_type=key_type)
    X, y = load_CIFAR_batch(tmp_path / "b")
    data = batch[b"data" if key_type is bytes else "data"]
    # Row layout is R, G, B planes of 32x32; X is (N, 32, 32, 3).
    np.testing.assert_array_equal(X[1, :, :, 2], data[1, 2048:].reshape(32, 32))


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_crafted_pickle_is_refused_without_running_code(tmp_path):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({"data": Boom(), "labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load global posix.system|refusing to load global"):
        load_CIFAR_batch(path)


def test_truncated_and_missing_files_are_named(tmp_path):
    write_batch(tmp_path / "full")
    raw = (tmp_path / "full").read_bytes()
    (tmp_path / "cut").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut is corrupt or truncated"):
        load_CIFAR_batch(tmp_path / "cut")
    with pytest.raises(FileNotFoundError, match="CIFAR-10 file not found: .*nope"):
        load_CIFAR_batch(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="missing data_batch_1"):
        load_CIFAR10(tmp_path)


def test_get_cifar10_data_splits_and_subtracts_the_mean(tmp_path):
    for i in range(1, 6):
        write_batch(tmp_path / f"data_batch_{i}", n=10, seed=i)
    write_batch(tmp_path / "test_batch", n=6, seed=9)
    data = get_CIFAR10_data(num_training=45, num_validation=5, num_test=4, cifar10_dir=tmp_path)
    assert data["X_train"].shape == (45, 3, 32, 32) and data["X_val"].shape == (5, 3, 32, 32)
    assert data["X_test"].shape == (4, 3, 32, 32)
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-9)
    Xtr, ytr, _, _ = load_CIFAR10(tmp_path)
    np.testing.assert_array_equal(data["y_val"], ytr[45:50])  # validation from the end
    rows = get_CIFAR10_data(num_training=45, num_validation=5, num_test=4, cifar10_dir=tmp_path,
                            layout="rows")
    assert rows["X_train"].shape == (45, 3072)


def test_get_cifar10_data_without_test_batch_and_too_many_requested(cifar_subset_dir):
    data = get_CIFAR10_data(num_training=None, num_validation=1000, cifar10_dir=cifar_subset_dir,
                            dtype=np.float32)
    assert data["X_train"].shape[0] + 1000 == 1102 + 4 * 1017
    assert data["X_test"].shape[0] == 0 and data["X_train"].dtype == np.float32
    with pytest.raises(ValueError, match="at most the 5170 training images"):
        get_CIFAR10_data(num_training=49000, cifar10_dir=cifar_subset_dir)
