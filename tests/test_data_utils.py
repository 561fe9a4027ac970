"""Tests for nndl.data_utils: CIFAR-10 loading and download (local server), the built-in digits."""

import os
import pickle
import re
import socket
import tarfile

import numpy as np
import pytest
from cifar_files import make_archive, md5, serve, write_batch

from nndl.data_utils import (
    CIFAR10_CLASSES, CIFAR10_FILES, DownloadError, download_cifar10, get_CIFAR10_data, get_digits_data,
    load_CIFAR10, load_CIFAR10_meta, load_CIFAR_batch, load_digits,
)


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
    with pytest.raises(ValueError, match="num_training must be an int >= 1, got 1.5"):
        get_CIFAR10_data(num_training=1.5, cifar10_dir=cifar_subset_dir)
    with pytest.raises(FileNotFoundError, match="test_batch \\(a partial copy without it loads with require_test=False\\)"):
        load_CIFAR10(cifar_subset_dir)
    with pytest.raises(ValueError, match="num_validation must leave some of the 5170 training images .* got 6000"):
        get_CIFAR10_data(num_training=None, num_validation=6000, cifar10_dir=cifar_subset_dir)


# --------------------------------------------------------------------------- built-in digits

def test_load_digits_is_the_uci_test_set():
    X, y = load_digits()
    assert X.shape == (1797, 8, 8) and y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and np.all(X == np.round(X))
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170  # ten roughly balanced classes


def test_get_digits_data_splits_everything_once_and_subtracts_the_mean():
    data = get_digits_data(num_validation=100, num_test=300, seed=3)
    assert data["X_train"].shape == (1397, 1, 8, 8) and data["X_val"].shape == (100, 1, 8, 8)
    assert data["X_test"].shape == (300, 1, 8, 8) and data["mean_image"].shape == (1, 8, 8)
    assert data["class_names"] == [str(d) for d in range(10)]
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-12)
    # Adding the mean back gives exactly the shipped images, each used once.
    X, y = load_digits()
    rows = [(data[f"X_{s}"] + data["mean_image"]).reshape(-1, 64) for s in ("train", "val", "test")]
    restored = np.round(np.concatenate(rows)).astype(int)
    labels = np.concatenate([data[f"y_{s}"] for s in ("train", "val", "test")])
    key = lambda A, b: sorted(map(tuple, np.column_stack([A, b])))  # noqa: E731
    assert key(restored, labels) == key(X.reshape(-1, 64).astype(int), y)


def test_get_digits_data_can_train_on_fewer_images_with_the_same_test_split():
    small, full = get_digits_data(num_training=200), get_digits_data()
    assert small["X_train"].shape == (200, 1, 8, 8)
    np.testing.assert_array_equal(small["y_test"], full["y_test"])
    np.testing.assert_array_equal(small["y_val"], full["y_val"])


def test_get_digits_data_split_depends_only_on_the_seed():
    a, b = get_digits_data(seed=0), get_digits_data(seed=0, dtype=np.float32, layout="rows")
    np.testing.assert_array_equal(a["y_test"], b["y_test"])
    assert b["X_test"].shape == (360, 64) and b["X_test"].dtype == np.float32
    assert not np.array_equal(a["y_test"], get_digits_data(seed=1)["y_test"])


def test_get_digits_data_without_a_seed_draws_from_the_global_state():
    # As everywhere in nndl (DESIGN.md): np.random.seed before the call repeats the split.
    np.random.seed(5)
    a = get_digits_data(seed=None)
    b = get_digits_data(seed=None)
    np.random.seed(5)
    c = get_digits_data(seed=None)
    np.testing.assert_array_equal(a["y_test"], c["y_test"])
    assert not np.array_equal(a["y_test"], b["y_test"])
    # A Generator is used as given, leaving the global state alone.
    state = np.random.get_state()[1].copy()
    d = get_digits_data(seed=np.random.default_rng(3))
    np.testing.assert_array_equal(d["y_test"], get_digits_data(seed=3)["y_test"])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"seed": "a"}, TypeError, "seed must be None, a non-negative int or a numpy Generator, got 'a'"),
    ({"seed": -1}, TypeError, "seed must be None, a non-negative int or a numpy Generator, got -1"),
    ({"dtype": "int8"}, TypeError, "dtype must be a float dtype with subtract_mean=True, got int8 "
                                    "(pass subtract_mean=False for raw integer pixels)"),
    ({"dtype": None}, TypeError, "dtype must be a numeric dtype such as float32 or float64, got None"),
    ({"dtype": "U3", "subtract_mean": False}, TypeError,
     "dtype must be a numeric dtype such as float32 or float64, got 'U3'"),
])
def test_get_digits_data_rejects_a_bad_seed_or_dtype(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        get_digits_data(**kwargs)


def test_get_cifar10_data_rejects_an_int_dtype_before_reading(tmp_path):
    # tmp_path holds no CIFAR-10 files: the dtype error comes first, naming the argument.
    with pytest.raises(TypeError, match="dtype must be a float dtype with subtract_mean=True, got uint8"):
        get_CIFAR10_data(cifar10_dir=str(tmp_path), dtype="uint8")


def test_raw_integer_pixels_without_mean_subtraction():
    data = get_digits_data(subtract_mean=False, dtype=np.uint8)
    assert data["X_train"].dtype == np.uint8 and data["X_train"].max() == 16


@pytest.mark.parametrize("kwargs, message", [
    ({"num_validation": 900, "num_test": 900}, "must leave some of the 1797 digits for training, got 900 \\+ 900"),
    ({"num_validation": 100, "num_test": 100, "num_training": 1700}, "must be at most the 1797 digits"),
    ({"num_training": 1500}, r"got 1500 \+ 180 \+ 360"),
    ({"num_test": -1}, "num_test must be an int >= 0, got -1"),
    ({"num_validation": 1.5}, "num_validation must be an int >= 0, got 1.5"),
    ({"num_training": 1.5}, "num_training must be an int >= 1, got 1.5"),
    ({"num_training": "100"}, "num_training must be an int >= 1, got '100'"),
    ({"layout": "columns"}, "layout must be 'image' or 'rows'"),
])
def test_get_digits_data_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_digits_data(**kwargs)


def test_damaged_digits_file_is_named(tmp_path, monkeypatch):
    import nndl.data_utils as du

    np.savez(tmp_path / "digits.npz", images=np.zeros((5, 8, 8)), labels=np.zeros(5))
    monkeypatch.setattr(du, "_DIGITS_FILE", str(tmp_path / "digits.npz"))
    with pytest.raises(ValueError, match=r"digits.npz holds images \(5, 8, 8\).*reinstall nndl"):
        load_digits()
    monkeypatch.setattr(du, "_DIGITS_FILE", str(tmp_path / "gone.npz"))
    with pytest.raises(FileNotFoundError, match="built-in digits file is missing: .*gone.npz"):
        load_digits()


# --------------------------------------------------------------------------- download

@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1; put bytes in ``server.files[path]``."""
    with serve() as httpd:
        yield httpd


def test_download_unpacks_a_verified_archive(tmp_path, server):
    archive = make_archive(tmp_path)
    server.files["/c.tar.gz"] = archive
    dest = tmp_path / "cache"
    path = download_cifar10(dest, url=server.url + "/c.tar.gz", md5=md5(archive), progress=False)
    assert path == str(dest / "cifar-10-batches-py") and sorted(os.listdir(dest)) == ["cifar-10-batches-py"]
    Xtr, ytr, Xte, yte = load_CIFAR10(path)
    assert Xtr.shape == (30, 32, 32, 3) and Xte.shape == (6, 32, 32, 3)
    assert load_CIFAR10_meta(path) == list(CIFAR10_CLASSES)
    # A complete copy is not fetched again.
    assert download_cifar10(dest, url=server.url + "/c.tar.gz", md5=md5(archive), progress=False) == path
    assert server.requests == ["/c.tar.gz"]


def test_download_default_location_follows_the_environment(tmp_path, server, monkeypatch):
    archive = make_archive(tmp_path)
    server.files["/c.tar.gz"] = archive
    monkeypatch.setenv("NNDL_DATA_DIR", str(tmp_path / "env"))
    path = download_cifar10(url=server.url + "/c.tar.gz", md5=md5(archive), progress=False)
    assert path == str(tmp_path / "env" / "cifar-10-batches-py")
    assert get_CIFAR10_data(num_training=20, num_validation=10, num_test=6)["X_test"].shape == (6, 3, 32, 32)


def test_download_with_progress_bar_reports_to_stderr(tmp_path, server, capsys):
    pytest.importorskip("tqdm")
    archive = make_archive(tmp_path)
    server.files["/c.tar.gz"] = archive
    download_cifar10(tmp_path / "cache", url=server.url + "/c.tar.gz", md5=md5(archive), progress=True)
    assert "c.tar.gz" in capsys.readouterr().err


def _corrupt(archive):
    flipped = bytearray(archive)
    flipped[len(flipped) // 2] ^= 0xFF
    return bytes(flipped)


@pytest.mark.parametrize("case, message", [
    ("wrong_md5", "has MD5 [0-9a-f]{32}, expected [0-9a-f]{32}: it is corrupt"),
    ("cut_transfer", "truncated: got [0-9]+ of [0-9]+ bytes|broke off"),
    ("truncated_file_matching_md5", "corrupt or truncated"),
    ("corrupt_file_matching_md5", "corrupt or truncated"),
    ("missing_test_batch", "has no cifar-10-batches-py/test_batch"),
    ("not_found", "HTTP 404"),
])
def test_failed_downloads_leave_nothing_behind(tmp_path, server, case, message):
    archive = make_archive(tmp_path, files=[f for f in CIFAR10_FILES if f != "test_batch"]) \
        if case == "missing_test_batch" else make_archive(tmp_path)
    served, path, digest = archive, "/c.tar.gz", md5(archive)
    if case == "wrong_md5":
        served = _corrupt(archive)
    elif case == "cut_transfer":
        path = "/cut/c.tar.gz"
    elif case == "truncated_file_matching_md5":
        served = archive[: len(archive) // 2]
        digest = md5(served)
    elif case == "corrupt_file_matching_md5":
        served = _corrupt(archive)
        digest = md5(served)
    if case != "not_found":
        server.files["/c.tar.gz"] = served
    dest = tmp_path / "cache"
    with pytest.raises(DownloadError, match=message):
        download_cifar10(dest, url=server.url + path, md5=digest, progress=False)
    assert os.listdir(dest) == []


def test_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=f"cannot download http://127.0.0.1:{port}/x.tar.gz"):
        download_cifar10(tmp_path, url=f"http://127.0.0.1:{port}/x.tar.gz", md5="0" * 32, progress=False,
                         timeout=5)


def _member(name, kind=tarfile.REGTYPE, payload=b"pwned", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(payload) if kind == tarfile.REGTYPE else 0
    return info, payload if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("member", [
    _member("../evil.txt"),
    _member("cifar-10-batches-py/../../evil.txt"),
    _member("/tmp/nndl-evil-absolute.txt"),
    _member("cifar-10-batches-py/link", tarfile.SYMTYPE, linkname="../../evil.txt"),
    _member("cifar-10-batches-py/hard", tarfile.LNKTYPE, linkname="/etc/passwd"),
    _member("cifar-10-batches-py/fifo", tarfile.FIFOTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_unsafe_archive_members_are_refused(tmp_path, server, member):
    archive = make_archive(tmp_path, extra=[member])
    server.files["/c.tar.gz"] = archive
    dest = tmp_path / "a" / "b"
    with pytest.raises(DownloadError, match="refusing to unpack archive member"):
        download_cifar10(dest, url=server.url + "/c.tar.gz", md5=md5(archive), progress=False)
    assert os.listdir(dest) == []
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not os.path.exists("/tmp/nndl-evil-absolute.txt")


def test_an_existing_dataset_is_kept_unless_forced(tmp_path, server):
    archive = make_archive(tmp_path)
    server.files["/good.tar.gz"], server.files["/bad.tar.gz"] = archive, _corrupt(archive)
    target = tmp_path / "cache" / "cifar-10-batches-py"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="exists but is missing data_batch_1.*force"):
        download_cifar10(tmp_path / "cache", url=server.url + "/good.tar.gz", md5=md5(archive), progress=False)
    # force with a corrupt archive: the old folder survives untouched.
    with pytest.raises(DownloadError, match="has MD5"):
        download_cifar10(tmp_path / "cache", url=server.url + "/bad.tar.gz", md5=md5(archive), progress=False,
                         force=True)
    assert os.listdir(target) == ["notes.txt"] and os.listdir(tmp_path / "cache") == ["cifar-10-batches-py"]
    download_cifar10(tmp_path / "cache", url=server.url + "/good.tar.gz", md5=md5(archive), progress=False,
                     force=True)
    assert sorted(os.listdir(target)) == sorted(CIFAR10_FILES)
    assert os.listdir(tmp_path / "cache") == ["cifar-10-batches-py"]


@pytest.mark.parametrize("kwargs, message", [
    ({"md5": "abc"}, "md5 must be a 32-character hex digest, got 'abc'"),
    ({"name": "../up"}, "name must be a plain folder name, got '../up'"),
])
def test_download_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        download_cifar10(tmp_path, **kwargs)


def test_rows_layout_without_test_batch_gives_an_empty_test_split(cifar_subset_dir):
    data = get_CIFAR10_data(num_training=100, num_validation=50, cifar10_dir=cifar_subset_dir, layout="rows")
    assert data["X_test"].shape == (0, 3072) and data["y_test"].shape == (0,)
