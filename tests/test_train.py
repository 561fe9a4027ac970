"""Tests of ``nndl train`` (``nndl.train``): training runs and what they write, the recipes and
flags, resuming from checkpoints, ``--out`` handling, progress and ``--log-json``, early stopping,
CIFAR-10 download and directories, and every bad training setting giving one line and a nonzero
exit. Some runs are then scored with ``nndl evaluate`` to check what train reported."""

import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from cifar_files import make_archive, md5, serve, write_batch
from cli_helpers import PLOTS, accuracy_line, assert_one_line_error, run
from cli_helpers import cifar_dir as _cifar_dir

from nndl import cli
from nndl import train as train_command
from nndl.checkpoint import load_model, save_model
from nndl.data_utils import CIFAR10_FILES
from nndl.fc_net import FullyConnectedNet


# --------------------------------------------------------------------------- training runs

def test_default_train_reaches_95_percent_on_digits_and_writes_everything(digits_run):
    history = json.loads((digits_run / "history.json").read_text())
    assert history["dataset"]["name"] == "digits" and history["test_acc"] >= 0.95
    epochs = history["training"]["epochs"]
    assert history["epochs_done"] == epochs and len(history["val_acc_history"]) == epochs + 1
    assert len(history["loss_history"]) == epochs * (1257 // history["training"]["batch_size"])
    assert history["loss_history"][-1] < history["loss_history"][0] / 10
    for name in PLOTS:
        assert (digits_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = load_model(digits_run / "model.npz")
    assert model.class_names == [str(d) for d in range(10)]
    assert model.preprocessing["mean_image"].shape == (1, 8, 8)
    assert model.metadata["test_acc"] == history["test_acc"]


def test_train_in_process_small_run_prints_accuracies_and_progress(tmp_path, capsys):
    status, out, err = run(["train", "--epochs", 2, "--hidden", 32, 16, "--batchnorm", "--dropout", 0.1,
                            "--update-rule", "sgd_momentum", "--lr", 0.05, "--out", tmp_path], capsys)
    assert status == 0
    assert accuracy_line(out, "validation") and accuracy_line(out)
    assert "FullyConnectedNet(hidden_dims=[32, 16]" in out and "normalization='batchnorm'" in out
    assert re.search(r"^epoch 2/2 loss .* val_acc ", err, re.M)  # progress on stderr: plain lines off a terminal
    model = load_model(tmp_path / "model.npz")
    assert model.hidden_dims == [32, 16] and model.dropout == 0.1
    assert model.metadata["training"]["update_rule"] == "sgd_momentum"


def test_train_without_the_cli_extra_still_trains_and_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # neither tqdm nor matplotlib importable
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status, out, err = run(["train", "--epochs", 2, "--out", tmp_path], capsys)
    assert status == 0
    assert re.search(r"^epoch 2/2 loss \d\.\d{4} train_acc \d\.\d{3} val_acc \d\.\d{3}$", err, re.M)
    assert "plots skipped: plotting needs matplotlib: pip install 'nndl[cli]'" in err
    assert sorted(os.listdir(tmp_path)) == ["history.json", "model.npz"]
    assert "wrote model.npz, history.json to" in out


def test_cifar_default_recipe_is_the_modern_one_and_evaluate_applies_its_standardisation(
        cifar_subset_dir, tmp_path, capsys):
    status, out, _ = run(["train", "--dataset", "cifar10", "--data-dir", cifar_subset_dir, "--epochs", 1,
                          "--out", tmp_path, "-q"], capsys)
    assert status == 0
    model = load_model(tmp_path / "model.npz")
    assert type(model).__name__ == "FullyConnectedNet" and model.hidden_dims == [1024, 512]
    assert model.init == "he" and model.label_smoothing == 0.1 and model.normalization == "batchnorm"
    training = model.metadata["training"]
    assert (training["recipe"], training["update_rule"], training["lr_schedule"], training["augment"],
            training["standardize"]) == ("cifar10", "adamw", "onecycle", "flip-crop", True)
    std = model.preprocessing["std_image"]
    assert std.shape == (3, 32, 32) and np.all(std == std[:, :1, :1])  # one std per channel
    val = accuracy_line(out, "validation")
    status, out, _ = run(["evaluate", tmp_path / "model.npz"], capsys)
    assert status == 0 and accuracy_line(out, "validation").group(1) == val.group(1)


def test_cifar_subset_trains_seed_000_recipe_and_reports_validation_only(cifar_subset_dir, tmp_path, capsys):
    status, out, _ = run(["train", "--dataset", "cifar10", "--recipe", "seed", "--data-dir", cifar_subset_dir,
                          "--epochs", 1, "--checkpoints", "--out", tmp_path, "-q"], capsys)
    assert status == 0
    assert "4170 training, 1000 validation, 0 test images of shape (3, 32, 32)" in out
    assert "has no test_batch: reporting validation accuracy only" in out and not accuracy_line(out)
    val = accuracy_line(out, "validation")
    model = load_model(tmp_path / "model.npz")
    assert type(model).__name__ == "TwoLayerNet" and model.hidden_dims == [200]
    assert model.metadata["training"] == {"update_rule": "sgd", "learning_rate": 6e-4, "lr_decay": 0.9,
                                          "epochs": 1, "batch_size": 200, "num_train_samples": 2000,
                                          "sampling": "replacement", "seed": 0, "recipe": "seed",
                                          "weight_decay": 0.0, "lr_schedule": None, "warmup_epochs": 0.0,
                                          "augment": None, "crop_padding": 4, "standardize": False,
                                          "patience": None}
    assert model.class_names[0] == "airplane" and (tmp_path / "weights.png").is_file()

    # By default evaluate scores the split train reported (validation here), saying so.
    status, out, err = run(["evaluate", tmp_path / "model.npz"], capsys)
    assert status == 0 and accuracy_line(out, "validation").group(1) == val.group(1)
    assert "there is no test split; scoring the validation split" in err
    status, out, _ = run(["evaluate", tmp_path / "model.npz", "--split", "val"], capsys)
    assert status == 0 and accuracy_line(out, "validation").group(1) == val.group(1)
    # A checkpoint's metadata says as much about the split: the same default.
    status, out, err = run(["evaluate", tmp_path / "checkpoints" / "epoch_1.npz"], capsys)
    assert status == 0 and accuracy_line(out, "validation").group(1) == val.group(1)
    # Asked for the test split explicitly, it says why there is none.
    status, _, err = run(["evaluate", tmp_path / "model.npz", "--split", "test"], capsys)
    assert_one_line_error(status, err, "has no test_batch, so there is no test split; use --split val")


def test_train_downloads_cifar10_from_a_mirror_then_trains(tmp_path, capsys):
    archive = make_archive(tmp_path)
    data_dir = tmp_path / "data" / "cifar-10-batches-py"
    with serve() as server:
        server.files["/c.tar.gz"] = archive
        status, out, err = run(["train", "--dataset", "cifar10", "--download", "--data-dir", data_dir,
                                "--download-url", server.url + "/c.tar.gz", "--download-md5", md5(archive),
                                "--num-validation", 10, "--batch-size", 5, "--epochs", 1, "--out", tmp_path / "o",
                                "-q"], capsys)
        assert status == 0, err
        assert sorted(os.listdir(data_dir)) == sorted(CIFAR10_FILES)
        assert "20 training, 10 validation, 6 test images" in out and accuracy_line(out).group(3) == "6"
        # The second run finds the data and does not download again.
        status, _, _ = run(["train", "--dataset", "cifar10", "--download", "--data-dir", data_dir,
                            "--download-url", server.url + "/c.tar.gz", "--num-validation", 10, "--epochs", 1,
                            "--out", tmp_path / "o2", "-q"], capsys)
        assert status == 0 and server.requests == ["/c.tar.gz"]


def test_resume_through_the_command_line_matches_an_uninterrupted_run(tmp_path, capsys):
    common = ["--hidden", 16, "--update-rule", "adam", "--lr", 1e-2, "--batch-size", 100, "-q"]
    assert run(["train", "--epochs", 3, "--out", tmp_path / "full", *common], capsys)[0] == 0
    assert run(["train", "--epochs", 2, "--checkpoints", "--out", tmp_path / "part", *common], capsys)[0] == 0
    assert sorted(os.listdir(tmp_path / "part" / "checkpoints")) == ["epoch_1.npz", "epoch_2.npz"]
    checkpoint = tmp_path / "part" / "checkpoints" / "epoch_2.npz"
    # A checkpoint is a complete model too: evaluate scores it like model.npz.
    status, out, _ = run(["evaluate", checkpoint], capsys)
    assert status == 0 and accuracy_line(out).group(3) == "360"
    status, _, err = run(["train", "--epochs", 1, "--resume", checkpoint, "--out", tmp_path / "short"], capsys)
    assert_one_line_error(status, err, "--epochs is the new total and must be more than the 2 epochs")
    status, out, err = run(["train", "--epochs", 3, "--resume", checkpoint, "--out", tmp_path / "resumed", "-q"], capsys)
    assert status == 0, err
    assert "resuming at epoch 2 of 3" in out
    assert "trained 1 epoch (epoch 3 of 3) in " in out  # what this run trained, not the total
    full, resumed = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("full", "resumed"))
    assert resumed["loss_history"] == full["loss_history"]
    assert resumed["val_acc_history"] == full["val_acc_history"] and resumed["test_acc"] == full["test_acc"]
    assert resumed["training"]["resumed_from"] == str(checkpoint)
    assert resumed["training"]["learning_rate"] == pytest.approx(1e-2 * 0.95 ** 2)  # where it resumed


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv, pattern", [
    (["--data-dir", "x"], "--data-dir applies to --dataset cifar10 only"),
    (["--download"], "--download applies to --dataset cifar10 only"),
    (["--batchnorm", "--normalization", "layernorm"], "--batchnorm conflicts with --normalization layernorm"),
    (["--resume", "ckpt.npz", "--hidden", "10", "--lr", "0.1"], "--hidden, --learning-rate cannot be combined with "
                                                                 "--resume: the model and the optimizer state come"),
    (["--resume", "nothing.npz"], "model file not found: nothing.npz"),
    (["--resume", "ckpt.npz", "--init", "xavier", "--label-smoothing", "0", "--lr-schedule", "cosine", "--recipe", "seed"],
     "--recipe, --init, --label-smoothing, --lr-schedule cannot be combined with --resume"),
    (["--batch-size", "5000"], "--batch-size must be at most the 1257 training examples, got 5000"),
    (["--num-validation", "1700"], r"^nndl: error: --num-validation \+ --num-test must leave some of the 1797 digits for training, got 1700 \+ 360"),
    (["--learning-rate", "1e9", "--update-rule", "sgd", "--weight-scale", "10", "--epochs", "1"],
     r"loss became (inf|nan) at iteration \d+; training stopped. Try a smaller learning rate"),
])
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_bad_training_settings_are_one_line_errors(tmp_path, argv, pattern, capsys):
    status, _, err = run(["train", "--out", tmp_path / "a" / "b" / "o", "-q", *argv], capsys)
    assert_one_line_error(status, err, pattern)
    assert os.listdir(tmp_path) == []  # the failed run left no empty --out, nor parents, behind


def test_force_with_checkpoints_replaces_the_earlier_runs_checkpoints(tmp_path, capsys):
    common = ["--hidden", 8, "--batch-size", 100, "--checkpoints", "--out", tmp_path / "o", "-q"]
    assert run(["train", "--epochs", 3, *common], capsys)[0] == 0
    # A run that fails before its first checkpoint leaves the earlier ones alone...
    status, _, _ = run(["train", "--epochs", 1, "--force", "--lr", 1e9, "--update-rule", "sgd",
                        "--weight-scale", 10, *common], capsys)
    assert status == 1
    assert sorted(os.listdir(tmp_path / "o" / "checkpoints")) == ["epoch_1.npz", "epoch_2.npz", "epoch_3.npz"]
    # ...one that writes its own replaces them.
    assert run(["train", "--epochs", 1, "--force", *common], capsys)[0] == 0
    assert os.listdir(tmp_path / "o" / "checkpoints") == ["epoch_1.npz"]


def _bad_shape(path):
    write_batch(path)
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch[b"data"] = batch[b"data"][:, :100]
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def _bad_labels(path):
    write_batch(path, n=5)
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch[b"labels"] = batch[b"labels"][:4]
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


@pytest.mark.parametrize("damage, pattern", [
    ("missing_dir", r"CIFAR-10 directory not found: .*nowhere \(download it with `nndl train --dataset cifar10 "
                    r"--download`"),
    ("missing_file", r"CIFAR-10 directory .*cifar is missing data_batch_3 \(download it with"),
    ("truncated", r"data_batch_2 is corrupt or truncated"),
    ("not_a_pickle", r"data_batch_4 is corrupt or truncated"),
    ("bad_shape", r"data_batch_5: 'data' must be an array of shape \(N, 3072\), got \(4, 100\)"),
    ("bad_labels", r"data_batch_1: 4 labels for 5 images"),
    ("download_over_partial", r"cifar exists but is missing test_batch, batches.meta; --download does not overwrite"),
])
def test_bad_cifar_directories_name_the_file(tmp_path, damage, pattern, capsys):
    directory = _cifar_dir(tmp_path)
    extra = []
    if damage == "missing_dir":
        directory = tmp_path / "nowhere"
    elif damage == "missing_file":
        os.unlink(directory / "data_batch_3")
    elif damage == "truncated":
        raw = (directory / "data_batch_2").read_bytes()
        (directory / "data_batch_2").write_bytes(raw[: len(raw) // 3])
    elif damage == "not_a_pickle":
        (directory / "data_batch_4").write_text("this is not a pickle")
    elif damage == "bad_shape":
        _bad_shape(directory / "data_batch_5")
    elif damage == "bad_labels":
        _bad_labels(directory / "data_batch_1")
    elif damage == "download_over_partial":
        extra = ["--download", "--download-url", "http://127.0.0.1:9/never-contacted"]
    before = sorted(os.listdir(directory)) if directory.exists() else None
    status, _, err = run(["train", "--dataset", "cifar10", "--data-dir", directory, "--num-validation", 4,
                          "--out", tmp_path / "o", "-q", *extra], capsys)
    assert_one_line_error(status, err, pattern)
    assert (sorted(os.listdir(directory)) if directory.exists() else None) == before


def test_out_that_is_a_file_or_not_writable_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    status, _, err = run(["train", "--out", tmp_path / "file", "-q"], capsys)
    assert_one_line_error(status, err, r"--out .*file exists and is not a directory")
    status, _, err = run(["train", "--out", tmp_path / "file" / "sub", "-q"], capsys)
    assert_one_line_error(status, err, r"--out .*file/sub is not writable")
    assert (tmp_path / "file").read_text() == "mine"


def test_out_where_files_cannot_be_created_is_refused(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):  # what a read-only directory does to anyone but root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "mkstemp", refuse)
    status, _, err = run(["train", "--out", tmp_path / "o", "-q"], capsys)
    assert_one_line_error(status, err, r"--out .*o is not writable \(Permission denied\)")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_out_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        status, _, err = run(["train", "--out", locked, "-q"], capsys)
    finally:
        locked.chmod(0o700)
    assert_one_line_error(status, err, r"--out .*locked is not writable")


def test_existing_outputs_are_kept_unless_forced(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "model.npz").write_bytes(b"my precious model")
    (out / "notes.txt").write_text("keep me")
    status, _, err = run(["train", "--epochs", 1, "--out", out, "-q"], capsys)
    assert_one_line_error(status, err, r"already holds model.npz; pass --force to overwrite")
    assert (out / "model.npz").read_bytes() == b"my precious model"
    assert sorted(os.listdir(out)) == ["model.npz", "notes.txt"]
    status, _, _ = run(["train", "--epochs", 1, "--out", out, "--force", "-q"], capsys)
    assert status == 0 and load_model(out / "model.npz").num_classes == 10
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("argv, pattern, code", [
    (["--label-smoothing", "1"], r"--label-smoothing: expected a number in \[0, 1\), got '1'", 2),
    (["--lr-schedule", "cosine", "--warmup-epochs", "3", "--epochs", "3"],
     "--warmup-epochs 3 must be shorter than the run's --epochs 3", 1),
    (["--weight-decay", "0.1", "--update-rule", "adam"],
     r"--weight-decay 0.1 \(decoupled\) needs --update-rule adamw or sgdw, got adam; use --reg", 1),
    (["--lr-schedule", "onecycle", "--lr-decay", "0.9"], "--lr-schedule onecycle and --lr-decay 0.9 both set", 1),
    (["--lr-schedule", "onecycle", "--warmup-epochs", "1"],
     "--warmup-epochs 1 applies to --lr-schedule cosine only, got --lr-schedule onecycle", 1),
    (["--warmup-epochs", "1"], "--warmup-epochs 1 applies to --lr-schedule cosine only, got --lr-schedule none", 1),
    (["--crop-padding", "2"], "--crop-padding 2 applies to --augment flip-crop only", 1),
    (["--augment", "flip-crop", "--crop-padding", "8"], "--crop-padding 8 must be smaller than the digits images' 8", 1),
    (["--log-json", "no/such/dir/log.jsonl"], "--log-json no/such/dir/log.jsonl: expected a file in an existing", 1),
    (["--recipe", "fast"], "argument --recipe: invalid choice: 'fast'", 2),
    (["--init", "he", "--weight-scale", "0.1"],
     "--weight-scale 0.1 applies to --init none only, but the weights are initialised by --init he$", 1),
    (["--recipe", "cifar10", "--dataset", "digits", "--weight-scale", "0.1"],
     r"initialised by --init he \(the cifar10 recipe's\)", 1),
    (["--weight-decay", "0.1"], r"needs --update-rule adamw or sgdw, got adam \(the digits recipe's\); use --reg", 1),
    (["--patience", "0"], "--patience: expected a positive integer, got '0'", 2),
])
def test_modern_training_flags_refuse_bad_values_in_one_line(tmp_path, capsys, argv, pattern, code):
    status, _, err = run(["train", "--epochs", 1, "--out", tmp_path / "o", "-q"] + argv, capsys)
    assert_one_line_error(status, err, pattern, code)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- modern options, progress and early stopping

def test_digits_with_the_modern_options_trains_and_evaluates(tmp_path, capsys):
    status, out, _ = run(["train", "--epochs", 15, "--update-rule", "adamw", "--weight-decay", "0.01",
                          "--lr-schedule", "cosine", "--warmup-epochs", "1", "--label-smoothing", "0.1",
                          "--init", "he", "--augment", "flip-crop", "--standardize", "--patience", 5,
                          "--out", tmp_path, "-q"], capsys)
    assert status == 0
    model = load_model(tmp_path / "model.npz")
    assert model.metadata["training"]["crop_padding"] == 1  # the 8x8 digits' default
    assert "std_image" in model.preprocessing
    test = accuracy_line(out)
    status, out, _ = run(["evaluate", tmp_path / "model.npz"], capsys)
    assert status == 0 and accuracy_line(out).group(1) == test.group(1)
    assert float(test.group(1)) > 0.6  # chance is 0.1; mirrored digits make it harder than plain training


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal_and_log_json_records_epochs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nndl", "train", "--epochs", "3", "--out", str(tmp_path / "o"),
                             "--log-json", str(tmp_path / "log.jsonl")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["0/3", "1/3", "2/3", "3/3"]
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert set(records[-1]) == {"epoch", "loss", "train_acc", "val_acc", "learning_rate", "seconds"}
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert [r["val_acc"] for r in records] == history["val_acc_history"]


def test_progress_bar_only_on_a_terminal():
    pytest.importorskip("tqdm")
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    class Stub:
        epoch, loss_history, train_acc_history, val_acc_history, optim_configs = 1, [1.0], [0.5], [0.5], {}

    for stream, bar in ((Terminal(), True), (io.StringIO(), False)):
        reporter = train_command._EpochReporter(2, True, Stub(), stream=stream)
        reporter(Stub())
        reporter.close()
        assert ("\r" in stream.getvalue()) is bar
        assert ("epoch 1/2" in stream.getvalue()) is not bar


def test_early_stopping_is_reported_with_the_epoch_kept(tmp_path, capsys):
    status, out, _ = run(["train", "--epochs", 40, "--patience", 1, "--learning-rate", "0.05",
                          "--out", tmp_path, "-q"], capsys)
    assert status == 0
    history = json.loads((tmp_path / "history.json").read_text())
    stopped = history["training"]["stopped_early_at_epoch"]
    assert stopped < 40 and history["epochs_done"] == stopped
    best = history["best_epoch"]
    assert history["val_acc_history"][best] == max(history["val_acc_history"]) == history["best_val_acc"]
    assert (f"stopped early at epoch {stopped}: no better validation accuracy for 1 epoch; kept epoch {best} "
            f"(validation accuracy {history['best_val_acc']:.4f})") in out


def test_a_recipe_trains_on_its_own_dataset_and_takes_the_datasets_split(cifar_subset_dir, tmp_path, capsys):
    status, out, _ = run(["train", "--recipe", "cifar10", "--data-dir", cifar_subset_dir, "--hidden", 16, "--epochs", 1,
                          "--out", tmp_path / "c", "-q"], capsys)
    assert status == 0 and "cifar10: 4170 training, 1000 validation, 0 test images" in out
    # A recipe made for CIFAR-10 on the digits: the digits' split, not the recipe's 1,000 validation images.
    status, out, _ = run(["train", "--dataset", "digits", "--recipe", "seed", "--epochs", 1, "--out", tmp_path / "d",
                          "-q"], capsys)
    assert status == 0 and "digits: 1257 training, 180 validation, 360 test images" in out


def test_a_chosen_rule_or_decay_replaces_the_recipes_conflicting_default_with_a_note(tmp_path, capsys):
    status, _, err = run(["train", "--recipe", "cifar10", "--dataset", "digits", "--hidden", 16, "--update-rule", "adam",
                          "--lr-decay", "0.9", "--epochs", 1, "--out", tmp_path, "-q"], capsys)
    assert status == 0, err
    assert "note: --update-rule adam has no decoupled weight decay; the cifar10 recipe's 0.05 is off" in err
    assert "note: --lr-decay 0.9 replaces the cifar10 recipe's onecycle schedule" in err
    training = json.loads((tmp_path / "history.json").read_text())["training"]
    assert training["weight_decay"] == 0.0 and training["lr_schedule"] is None and training["lr_decay"] == 0.9


def test_resume_takes_the_dataset_directory_and_recipe_from_the_checkpoint(cifar_subset_dir, tmp_path, capsys):
    data_dir = tmp_path / "cdata"
    data_dir.symlink_to(cifar_subset_dir)
    assert run(["train", "--recipe", "seed", "--data-dir", data_dir, "--epochs", 1, "--checkpoints",
                "--out", tmp_path / "a", "-q"], capsys)[0] == 0
    checkpoint = tmp_path / "a" / "checkpoints" / "epoch_1.npz"
    status, _, err = run(["train", "--resume", checkpoint, "--dataset", "digits", "--epochs", 2,
                          "--out", tmp_path / "b"], capsys)
    assert_one_line_error(status, err, f"--dataset digits: {re.escape(str(checkpoint))} was trained on cifar10$")
    status, out, err = run(["train", "--resume", checkpoint, "--epochs", 2, "--out", tmp_path / "c", "-q"], capsys)
    assert status == 0, err
    assert "cifar10: 4170 training, 1000 validation" in out and "resuming at epoch 1 of 2" in out
    assert json.loads((tmp_path / "c" / "history.json").read_text())["training"]["recipe"] == "seed"
    # The directory it was trained on is gone: said, not replaced by the default directory.
    data_dir.unlink()
    status, _, err = run(["train", "--resume", checkpoint, "--epochs", 2, "--out", tmp_path / "d"], capsys)
    assert_one_line_error(status, err, r"--resume .*epoch_1.npz was trained on the CIFAR-10 directory .*cdata, which "
                                       r"is missing; pass --data-dir$")
    status, out, err = run(["train", "--resume", checkpoint, "--data-dir", cifar_subset_dir, "--epochs", 2,
                            "--out", tmp_path / "e", "-q"], capsys)
    assert status == 0 and "resuming at epoch 1 of 2" in out, err


def test_resume_of_a_file_without_its_dataset_needs_dataset(tmp_path, capsys):
    save_model(tmp_path / "m.npz", FullyConnectedNet([5], input_dim=64, num_classes=10, seed=0))
    status, _, err = run(["train", "--resume", tmp_path / "m.npz", "--out", tmp_path / "o"], capsys)
    assert_one_line_error(status, err, r"--resume .*m.npz does not record its dataset; pass --dataset$")


def test_num_test_for_a_directory_without_a_test_batch_is_refused(cifar_subset_dir, tmp_path, capsys):
    status, _, err = run(["train", "--dataset", "cifar10", "--data-dir", cifar_subset_dir, "--num-test", 500,
                          "--out", tmp_path / "o"], capsys)
    assert_one_line_error(status, err, r"--num-test 500: .* has no test_batch, so there is no test split to size$")
    assert not (tmp_path / "o").exists()
