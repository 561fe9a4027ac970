"""Tests for nndl.sklearn.MLPClassifier: scikit-learn's estimator checks, pipelines, files."""

import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="the sklearn extra (scikit-learn) is not installed")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nndl.sklearn import MLPClassifier  # noqa: E402

# Checks expected to fail, with the reason (keep this list short and true).
EXPECTED_FAILURES = {
    "check_methods_subset_invariance": (
        "can fail with the default dtype float32 (whether it does depends on the fitted weights): BLAS may "
        "round a matrix product of a subset differently from the whole batch's, and probabilities then "
        "differ by ~2e-7 relative, above the check's 1e-7 (dtype='float64' passes, tested below)"),
}


def test_float64_estimator_is_subset_invariant():
    from sklearn.utils.estimator_checks import check_methods_subset_invariance

    check_methods_subset_invariance("MLPClassifier", MLPClassifier(max_epochs=5, dtype="float64", random_state=0))


@parametrize_with_checks([MLPClassifier(max_epochs=30, random_state=0)],
                         expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def blobs(n=300, seed=0):
    return make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=3, random_state=seed)


def test_labels_of_any_type_and_probabilities():
    X, y = blobs()
    names = np.array(["cat", "dog", "emu"])[y]
    clf = MLPClassifier(max_epochs=30, random_state=0).fit(X, names)
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert set(clf.predict(X)) <= {"cat", "dog", "emu"} and clf.score(X, names) > 0.85
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_in_a_pipeline_with_a_scaler_and_in_grid_search():
    X, y = blobs()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=20, random_state=0))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.7
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(16,), (64,)],
                               "mlpclassifier__learning_rate": [1e-3, 1e-2]}, cv=3).fit(X, y)
    assert grid.best_score_ > 0.7 and grid.best_params_["mlpclassifier__hidden_layer_sizes"] in [(16,), (64,)]


def test_partial_fit_adds_epochs_and_needs_classes_first():
    X, y = blobs()
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be given on the first call"):
        clf.partial_fit(X, y)
    for _ in range(15):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_epochs_ == 15 and clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes_"):
        clf.partial_fit(X, np.full(len(y), 7))


def test_early_stopping_holds_out_data_and_stops():
    X, y = blobs()
    clf = MLPClassifier(max_epochs=200, early_stopping=True, patience=3, learning_rate=1e-2, random_state=0).fit(X, y)
    assert clf.n_epochs_ < 200 and clf.best_validation_score_ > 0.7


def test_modern_options_train():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), normalization="batchnorm", dropout=0.1, weight_decay=0.01,
                        lr_schedule="onecycle", learning_rate=1e-2, label_smoothing=0.1, max_epochs=30,
                        random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.85


def test_augmentation_needs_the_image_shape():
    X = np.random.default_rng(0).standard_normal((40, 3 * 4 * 4))
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match="augment needs image_shape"):
        MLPClassifier(augment="flip-crop", max_epochs=1).fit(X, y)
    clf = MLPClassifier(augment="flip-crop", image_shape=(3, 4, 4), crop_padding=1, max_epochs=2).fit(X, y)
    assert clf.predict(X).shape == (40,)


def test_save_load_and_pickle_give_the_same_predictions(tmp_path):
    X, y = blobs()
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0).fit(X, labels)
    clf.save(tmp_path / "clf.npz")
    loaded = MLPClassifier.load(tmp_path / "clf.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params() == clf.get_params() and loaded.classes_.tolist() == ["a", "b", "c"]
    unpickled = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(unpickled.predict(X), clf.predict(X))


def test_load_refuses_a_model_file_not_saved_by_the_estimator(tmp_path):
    from nndl.checkpoint import CheckpointError, save_model
    from nndl.fc_net import FullyConnectedNet

    save_model(tmp_path / "m.npz", FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0))
    with pytest.raises(CheckpointError, match="was not saved by MLPClassifier.save"):
        MLPClassifier.load(tmp_path / "m.npz")


def test_nndl_evaluate_refuses_an_estimator_fitted_on_other_labels(tmp_path):
    import subprocess
    import sys

    from nndl.data_utils import load_digits

    X, y = load_digits(np.float64)
    X = X.reshape(len(y), -1)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    MLPClassifier(max_epochs=2, random_state=0).fit(X, names[y]).save(tmp_path / "words.npz")
    MLPClassifier(max_epochs=2, random_state=0).fit(X, y).save(tmp_path / "digits.npz")
    run = [sys.executable, "-m", "nndl", "evaluate", "--dataset", "digits"]
    words = subprocess.run(run + [str(tmp_path / "words.npz")], capture_output=True, text=True, timeout=120)
    assert words.returncode == 1 and words.stdout == ""
    assert "predicts the classes eight, five, four, nine, ..., not the digits labels" in words.stderr
    ints = subprocess.run(run + [str(tmp_path / "digits.npz")], capture_output=True, text=True, timeout=120)
    assert ints.returncode == 0, ints.stderr
    assert "test accuracy:" in ints.stdout


def test_one_int_is_one_hidden_layer_and_survives_save_and_load(tmp_path):
    X, y = np.random.default_rng(0).normal(size=(60, 4)), np.arange(60) % 3
    clf = MLPClassifier(hidden_layer_sizes=7, max_epochs=2, random_state=0).fit(X, y)
    assert clf.model_.hidden_dims == [7]
    clf.save(tmp_path / "m.npz")
    again = MLPClassifier.load(tmp_path / "m.npz")
    assert again.hidden_layer_sizes == 7
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))


@pytest.mark.parametrize("params, message", [
    (dict(update_rule="adam", weight_decay=0.1), "weight_decay .decoupled. needs update_rule 'adamw' or 'sgdw', got 'adam'; use alpha"),
    (dict(learning_rate=-1.0), r"learning_rate must be a number > 0, got -1.0"),
    (dict(augment="flip-crop", image_shape=(3, 8, 8)), r"image_shape must be \(channels, height, width\) with 4 values"),
])
def test_bad_parameters_are_named_before_training(params, message):
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 2
    with pytest.raises(ValueError, match=message):
        MLPClassifier(max_epochs=1, **params).fit(X, y)
