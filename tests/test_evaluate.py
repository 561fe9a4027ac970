"""Tests of ``nndl evaluate`` (``nndl.evaluate``): the accuracy and confusion matrix of a saved
model on the split ``nndl train`` reported, ``--tta flip``, ``--split`` and ``--dataset``, and the
files, datasets and splits it refuses in one line."""

import json
import os
import shutil

import numpy as np
from cifar_files import write_batch
from cli_helpers import accuracy_line, assert_one_line_error, run
from cli_helpers import cifar_dir as _cifar_dir

from nndl.checkpoint import load_model, save_model
from nndl.fc_net import FullyConnectedNet


# --------------------------------------------------------------------------- the shared digits run

def test_evaluate_prints_the_accuracy_train_reported_and_a_confusion_matrix(digits_run, capsys):
    status, out, _ = run(["evaluate", digits_run / "model.npz"], capsys)
    assert status == 0
    line = accuracy_line(out)
    history = json.loads((digits_run / "history.json").read_text())
    assert float(line.group(1)) == round(history["test_acc"], 4) and line.group(3) == "360"
    rows = out.split("columns: predicted class):\n")[1].strip().splitlines()[1:]
    matrix = np.array([[int(v) for v in row.split()[1:]] for row in rows])
    assert matrix.shape == (10, 10) and matrix.sum() == 360
    assert np.trace(matrix) == int(line.group(2))


def test_evaluate_tta_flip_scores_the_averaged_predictions(digits_run, capsys):
    from nndl.checkpoint import preprocess
    from nndl.data import load_dataset
    from nndl.predict import class_probabilities

    status, out, err = run(["evaluate", digits_run / "model.npz", "--tta", "flip"], capsys)
    assert status == 0 and "test-time augmentation: flip" in out
    assert "was trained without flips (augment none); --tta flip may lower its accuracy" in err
    model = load_model(digits_run / "model.npz")
    data, _ = load_dataset("digits", subtract_mean=False)  # raw images, as evaluate reads them
    X = preprocess(model, data["X_test"])
    flipped = class_probabilities(model, X, tta="flip").argmax(1)
    assert not np.array_equal(flipped, model.predict(X))  # the option changes what is scored
    line = accuracy_line(out)
    assert int(line.group(2)) == int(np.sum(flipped == data["y_test"]))
    rows = out.split("columns: predicted class):\n")[1].strip().splitlines()[1:]
    assert np.trace(np.array([[int(v) for v in row.split()[1:]] for row in rows])) == int(line.group(2))


# --------------------------------------------------------------------------- other models, datasets and splits

def test_evaluate_refuses_files_that_are_not_nndl_models(tmp_path, capsys):
    (tmp_path / "text.npz").write_text("hello")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    model = FullyConnectedNet([4], input_dim=64, num_classes=10, seed=0)
    save_model(tmp_path / "nodata.npz", model)
    with np.load(tmp_path / "nodata.npz") as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__nndl__"]))
    meta["format_version"] = 99
    arrays["__nndl__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "future.npz", **arrays)
    for name, pattern in [("text.npz", "text.npz is not an nndl model file"),
                          ("plain.npz", "plain.npz is not an nndl model file \\(no nndl metadata\\)"),
                          ("future.npz", "future.npz has checkpoint format 99 .* reads format 1"),
                          ("missing.npz", "model file not found: .*missing.npz"),
                          ("nodata.npz", "nodata.npz does not say which dataset it was trained on; pass --dataset")]:
        status, _, err = run(["evaluate", tmp_path / name], capsys)
        assert_one_line_error(status, err, pattern)
    (tmp_path / "runs").mkdir()
    status, _, err = run(["evaluate", tmp_path / "runs"], capsys)
    assert_one_line_error(status, err, r"runs is a directory, not a model file \(e.g. .*runs/model.npz\)")
    status, _, err = run(["evaluate", os.devnull], capsys)
    assert_one_line_error(status, err, "/dev/null is not a regular file, so not an nndl model file")


def test_evaluate_on_the_wrong_dataset_says_so(digits_run, tmp_path, capsys):
    directory = _cifar_dir(tmp_path)
    write_batch(directory / "test_batch", n=4, seed=9)
    status, _, err = run(["evaluate", digits_run / "model.npz", "--dataset", "cifar10", "--data-dir", directory],
                         capsys)
    assert_one_line_error(status, err, r"takes 64 input features, but cifar10 images have shape \(3, 32, 32\)")


def test_evaluate_a_library_saved_model_with_dataset_given(tmp_path, capsys):
    model = FullyConnectedNet([8], input_dim=64, num_classes=10, seed=0)
    save_model(tmp_path / "m.npz", model)  # no mean image, no dataset: saved from Python
    status, out, err = run(["evaluate", tmp_path / "m.npz", "--dataset", "digits"], capsys)
    assert status == 0 and accuracy_line(out).group(3) == "360"
    assert "has no mean image; scoring the images without mean subtraction" in err
    # Its inputs are 64 flat features, not images: no test-time flips, as nndl predict says.
    status, _, err = run(["evaluate", tmp_path / "m.npz", "--dataset", "digits", "--tta", "flip"], capsys)
    assert_one_line_error(status, err, r"--tta flip: .*m.npz takes inputs of shape \(64,\), not images")


def test_evaluate_a_digits_model_trained_without_a_test_split(tmp_path, capsys):
    assert run(["train", "--num-test", 0, "--epochs", 1, "--hidden", 8, "--out", tmp_path / "o", "-q"], capsys)[0] == 0
    status, out, err = run(["evaluate", tmp_path / "o" / "model.npz"], capsys)  # the split train reported
    assert status == 0 and accuracy_line(out, "validation") and "scoring the validation split" in err
    status, _, err = run(["evaluate", tmp_path / "o" / "model.npz", "--split", "test"], capsys)
    assert_one_line_error(status, err, r"was trained with no digits test split \(--num-test 0\); use --split val")
    assert "cifar" not in err.lower()
    status, out, _ = run(["evaluate", tmp_path / "o" / "model.npz", "--split", "val"], capsys)
    assert status == 0 and accuracy_line(out, "validation")


def test_evaluate_a_cifar10_model_trained_with_num_test_0(tmp_path, capsys):
    directory = _cifar_dir(tmp_path)
    write_batch(directory / "test_batch", n=4, seed=9)  # the test batch exists; the run skipped it
    assert run(["train", "--dataset", "cifar10", "--data-dir", directory, "--num-test", 0, "--num-validation", 10,
                "--batch-size", 5, "--epochs", 1, "--out", tmp_path / "o", "-q"], capsys)[0] == 0
    status, _, err = run(["evaluate", tmp_path / "o" / "model.npz", "--split", "test"], capsys)
    assert_one_line_error(status, err, r"was trained with no cifar10 test split \(--num-test 0\); use --split val")


def test_evaluate_does_not_fall_back_to_validation_on_another_directory(tmp_path, capsys):
    # Trained where there is a test batch; then pointed at a copy without one. That copy's
    # "validation" images may be the model's training images, so there is no fallback.
    full = _cifar_dir(tmp_path)
    write_batch(full / "test_batch", n=4, seed=9)
    other = tmp_path / "other"
    shutil.copytree(full, other)
    (other / "test_batch").unlink()
    assert run(["train", "--dataset", "cifar10", "--data-dir", full, "--num-validation", 10, "--batch-size", 5,
                "--epochs", 1, "--out", tmp_path / "o", "-q"], capsys)[0] == 0
    status, _, err = run(["evaluate", tmp_path / "o" / "model.npz", "--data-dir", other], capsys)
    assert_one_line_error(status, err, "has no test_batch, so there is no test split; use --split val")
