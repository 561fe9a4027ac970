"""The bad-input and fault catalogue: every case runs the real ``nndl`` command in a subprocess.

Each case asserts the three promises of the command line: the failure is one line on stderr
naming what is wrong and where (no traceback, no NumPy warning with a source line), the exit
status is nonzero, and no file the user had is lost or changed. Add a case for every bad
input or fault you think of.
"""

import hashlib
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from cifar_files import write_batch
from nndl.checkpoint import load_checkpoint, save_model
from nndl.data_utils import CIFAR10_CLASSES
from nndl.fc_net import FullyConnectedNet, TwoLayerNet


def nndl(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "nndl", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=300)
    return result.returncode, result.stdout, result.stderr


def digests(directory):
    """{relative path: sha256} of every file under ``directory``."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


def assert_refused(status, err, *needles):
    assert status != 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Warning" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def rewrite_npz(path, change):
    """Rewrite an nndl model file with ``change(arrays, meta)`` applied (arrays: dict, meta: dict)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("__nndl__")))
    change(arrays, meta)
    arrays["__nndl__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.fixture
def model_file(tmp_path):
    def make(model=None):
        model = model or TwoLayerNet(input_dim=64, hidden_dims=8, num_classes=10, seed=0)
        path = tmp_path / "user" / "model.npz"
        path.parent.mkdir(exist_ok=True)
        save_model(path, model, preprocessing={"mean_image": np.zeros((1, 8, 8))},
                   dataset={"name": "digits", "num_validation": 180, "num_test": 360, "split_seed": 0})
        return path
    return make


# ---------------------------------------------------------------- damaged model files

@pytest.mark.parametrize("change, needles", [
    (lambda a, m: m.pop("config"), ["model.npz", "no 'config' entry"]),
    (lambda a, m: m["config"].update(hidden_dims=[8, 8]), ["model.npz", "TwoLayerNet has one hidden layer",
                                                          "hidden_dims=[8, 8]"]),
    (lambda a, m: a.update({"param/W1": np.full((64, 8), "x")}), ["model.npz", "parameter W1", "not numbers"]),
    (lambda a, m: a["param/W2"].__setitem__((0, 0), np.nan), ["model.npz", "parameter W2", "NaN or inf"]),
    (lambda a, m: a["param/b1"].__setitem__(0, np.inf), ["model.npz", "parameter b1", "NaN or inf"]),
    (lambda a, m: a.update({"param/W3": np.zeros((10, 10))}), ["model.npz", "parameter(s) W3 do not belong"]),
    (lambda a, m: a.update({"pre/mean_image": np.full((1, 8, 8), "m")}), ["model.npz", "preprocessing mean_image"]),
])
def test_damaged_model_files_are_refused_by_evaluate(tmp_path, model_file, change, needles):
    path = model_file()
    rewrite_npz(path, change)
    before = digests(path.parent)
    status, out, err = nndl("evaluate", path, cwd=tmp_path)
    assert_refused(status, err, *needles)
    assert "accuracy" not in out
    assert digests(path.parent) == before


def test_a_fully_connected_net_edited_to_another_depth_is_refused(tmp_path, model_file):
    path = model_file(FullyConnectedNet([8, 8], input_dim=64, num_classes=10, seed=0))
    rewrite_npz(path, lambda a, m: m["config"].update(hidden_dims=[8]))
    assert_refused(*nndl("evaluate", path, cwd=tmp_path)[::2], "model.npz", "W3, b3 do not belong")


# ---------------------------------------------------------------- damaged CIFAR-10 batches

def cifar_dir(tmp_path, labels=None, data=None):
    """A small CIFAR-10 directory whose data_batch_1 gets the given labels or data."""
    directory = tmp_path / "cifar"
    directory.mkdir()
    for i in range(1, 6):
        write_batch(directory / f"data_batch_{i}", n=6, seed=i)
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, f, protocol=2)
    batch = write_batch(directory / "data_batch_1", n=6, seed=1)
    if labels is not None:
        batch[b"labels"] = labels
    if data is not None:
        batch[b"data"] = data
    with open(directory / "data_batch_1", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return directory


@pytest.mark.parametrize("labels, data, needles", [
    ([1.5, 2, 3, 4, 5, 6], None, ["data_batch_1", "whole class numbers", "1.5"]),
    (["cat", "dog", "a", "b", "c", "d"], None, ["data_batch_1", "'labels' must be class numbers"]),
    ([0, 1, 2, 3, 4, 12], None, ["data_batch_1", "labels must lie in [0, 10)"]),
    (None, np.full((6, 3072), np.inf), ["data_batch_1", "NaN or inf pixel values"]),
    (None, np.full((6, 3072), "x"), ["data_batch_1", "'data' must hold pixel values"]),
])
def test_bad_cifar_batches_are_named_in_one_line(tmp_path, labels, data, needles):
    directory = cifar_dir(tmp_path, labels, data)
    before = digests(directory)
    status, _, err = nndl("train", "--dataset", "cifar10", "--data-dir", directory, "--num-validation", 6,
                          "--epochs", 1, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert_refused(status, err, *needles)
    assert digests(directory) == before and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- checkpoints

def test_force_keeps_a_users_file_among_the_checkpoints(tmp_path):
    args = ("train", "--hidden", 8, "--batch-size", 100, "--checkpoints", "-q", "--out", tmp_path / "run")
    assert nndl(*args, "--epochs", 6, cwd=tmp_path)[0] == 0
    user = tmp_path / "run" / "checkpoints" / "epoch_9.npz"
    user.write_bytes(b"my own notes")
    status, _, err = nndl(*args, "--epochs", 2, "--force", cwd=tmp_path)
    assert status == 0, err
    assert user.read_bytes() == b"my own notes"
    assert f"left {user} in place: it is not an nndl checkpoint" in err
    # The earlier run's own later checkpoints (3..6) went; this run's two are there.
    assert sorted(os.listdir(user.parent)) == ["epoch_1.npz", "epoch_2.npz", "epoch_9.npz"]


def test_a_users_file_at_a_checkpoint_name_this_run_writes_is_refused(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    user = tmp_path / "run" / "checkpoints" / "epoch_1.npz"
    user.write_bytes(b"mine")
    status, _, err = nndl("train", "--epochs", 2, "--checkpoints", "--force", "-q", "--out", tmp_path / "run",
                          cwd=tmp_path)
    assert_refused(status, err, "epoch_1.npz is not an nndl checkpoint", "move it away")
    assert user.read_bytes() == b"mine"


def test_stale_temporaries_of_a_killed_run_are_cleaned_and_nothing_else(tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    stale = [checkpoints / ".nndl-ab12cd_3.npz.tmp", checkpoints / ".nndl-zz99yy00.tmp"]
    keep = [checkpoints / "notes.tmp", checkpoints / ".nndl-short.tmp", checkpoints / ".nndl-ab12cd_3.npz"]
    for path in stale + keep:
        path.write_bytes(b"x")
    status, _, err = nndl("train", "--epochs", 1, "--checkpoints", "--force", "-q", "--out", tmp_path / "run",
                          cwd=tmp_path)
    assert status == 0, err
    assert "removed 2 temporary file(s) an interrupted run left" in err
    assert not any(p.exists() for p in stale) and all(p.read_bytes() == b"x" for p in keep)


def test_a_kill_during_checkpoint_writing_leaves_only_temporaries_the_next_run_removes(tmp_path):
    # SIGKILL while a checkpoint is being written: the temporary stays, the previous one is intact.
    script = (
        "import os, signal, numpy as np\n"
        "import nndl.checkpoint as c\n"
        "real = np.savez\n"
        "def dying(f, **arrays):\n"
        "    f.write(b'partial'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "c.np.savez = dying\n"
        "from nndl.cli import main\n"
        f"main(['train', '--epochs', '2', '--checkpoints', '-q', '--out', {str(tmp_path / 'run')!r}])\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, timeout=120)
    assert result.returncode == -9
    left = os.listdir(tmp_path / "run" / "checkpoints")
    assert len(left) == 1 and left[0].startswith(".nndl-") and left[0].endswith(".npz.tmp")
    status, _, err = nndl("train", "--epochs", 1, "--checkpoints", "--force", "-q", "--out", tmp_path / "run",
                          cwd=tmp_path)
    assert status == 0 and os.listdir(tmp_path / "run" / "checkpoints") == ["epoch_1.npz"]


# ---------------------------------------------------------------- resume restores the run

def test_resume_restores_sampling_and_the_other_settings(tmp_path):
    common = ["--hidden", 16, "--update-rule", "adam", "--lr", 1e-2, "--batch-size", 100, "--sampling",
              "permutation", "--dropout", 0.2, "-q"]
    assert nndl("train", "--epochs", 3, "--out", tmp_path / "full", *common, cwd=tmp_path)[0] == 0
    assert nndl("train", "--epochs", 2, "--checkpoints", "--out", tmp_path / "part", *common, cwd=tmp_path)[0] == 0
    checkpoint = tmp_path / "part" / "checkpoints" / "epoch_2.npz"
    meta, _ = load_checkpoint(checkpoint)
    assert meta["solver"]["sampling"] == "permutation" and meta["solver"]["model_rng_state"] is not None
    # Only --resume and --epochs: sampling, batch size and the rest come from the checkpoint,
    # and with dropout too the continuation equals the uninterrupted run bit for bit.
    status, _, err = nndl("train", "--epochs", 3, "--resume", checkpoint, "--out", tmp_path / "resumed", "-q",
                          cwd=tmp_path)
    assert status == 0, err
    full, resumed = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("full", "resumed"))
    assert resumed["loss_history"] == full["loss_history"]
    assert resumed["training"]["sampling"] == "permutation"
    # A flag that contradicts the checkpoint's run is refused in one line.
    status, _, err = nndl("train", "--epochs", 3, "--resume", checkpoint, "--sampling", "replacement",
                          "--out", tmp_path / "other", "-q", cwd=tmp_path)
    assert_refused(status, err, "trained with sampling 'permutation'", "'replacement'")
    assert not (tmp_path / "other").exists()


def test_a_file_that_is_not_a_zip_is_refused_and_kept(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("hello")
    assert_refused(*nndl("evaluate", path, cwd=tmp_path)[::2], "model.npz is not an nndl model file")
    assert path.read_text() == "hello"
    assert zipfile.is_zipfile(path) is False
