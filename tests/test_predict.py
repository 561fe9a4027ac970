"""``nndl predict`` through the real command (subprocess), and its library functions."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from nndl.checkpoint import save_model
from nndl.data_utils import CIFAR10_CLASSES, load_digits
from nndl.fc_net import FullyConnectedNet, TwoLayerNet
from nndl.predict import class_probabilities, read_inputs


def nndl(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "nndl", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=300)
    return result.returncode, result.stdout, result.stderr


def one_line_error(status, err, *needles):
    assert status == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nndl: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def cifar_model(tmp_path_factory):
    """A small CIFAR-shaped model with a mean image and per-channel std, as nndl train saves it."""
    rng = np.random.default_rng(0)
    model = FullyConnectedNet([20], input_dim=3 * 32 * 32, num_classes=10, weight_scale=5e-2,
                              dtype=np.float64, seed=0)
    mean = rng.uniform(100, 150, size=(3, 32, 32))
    std = np.broadcast_to(np.array([60.0, 55.0, 50.0])[:, None, None], (3, 32, 32)).copy()
    path = tmp_path_factory.mktemp("cifar") / "model.npz"
    save_model(path, model, preprocessing={"mean_image": mean, "std_image": std}, class_names=CIFAR10_CLASSES,
               dataset={"name": "cifar10"})
    return path, model, mean, std


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    X, y = load_digits(np.float64)
    X = X.reshape(-1, 1, 8, 8)
    mean = X[:1000].mean(axis=0)
    model = TwoLayerNet(input_dim=64, hidden_dims=30, num_classes=10, weight_scale=1e-1, dtype=np.float64, seed=0)
    for _ in range(300):  # a few full-batch gradient steps: enough to tell a 0 from a 1
        _, grads = model.loss(X[:1000] - mean, y[:1000])
        for k in model.params:
            model.params[k] -= 0.05 * grads[k]
    path = tmp_path_factory.mktemp("digits") / "model.npz"
    save_model(path, model, preprocessing={"mean_image": mean}, class_names=[str(i) for i in range(10)],
               dataset={"name": "digits"})
    return path, model, mean


def expected_probs(model, X, mean, std=1.0):
    scores = model.loss((X - mean) / std)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def predict_random_images(path, tmp_path, seed, n, *flags):
    """Save ``n`` random raw CIFAR-10-sized images as x.npy and run ``nndl predict`` on them with
    ``flags``; returns the images and the command's (status, stdout, stderr)."""
    X = np.random.default_rng(seed).uniform(0, 255, size=(n, 3, 32, 32))
    np.save(tmp_path / "x.npy", X)
    return X, nndl("predict", path, "x.npy", *flags, cwd=tmp_path)


def assert_ranked_lines(out, probs, k):
    """``out`` has one line per row of ``probs``: x.npy[i], then its k most probable classes."""
    lines = out.strip().splitlines()
    assert len(lines) == len(probs)
    for i, line in enumerate(lines):
        fields = line.split()
        assert fields[0] == f"x.npy[{i}]"
        order = np.argsort(-probs[i])[:k]
        assert fields[1::2] == [CIFAR10_CLASSES[c] for c in order]
        np.testing.assert_allclose([float(v) for v in fields[2::2]], probs[i, order], atol=1e-4)


def test_predictions_apply_the_model_files_preprocessing(cifar_model, tmp_path):
    path, model, mean, std = cifar_model
    X, (status, out, err) = predict_random_images(path, tmp_path, 1, 4, "--top", "3")
    assert status == 0, err
    assert_ranked_lines(out, expected_probs(model, X, mean, std), 3)


def test_layouts_of_the_same_examples_give_the_same_predictions(cifar_model, tmp_path):
    path, *_ = cifar_model
    X = np.random.default_rng(2).uniform(0, 255, size=(3, 3, 32, 32))
    np.save(tmp_path / "chw.npy", X)
    np.save(tmp_path / "hwc.npy", X.transpose(0, 2, 3, 1))
    np.save(tmp_path / "flat.npy", X.reshape(3, -1))
    np.save(tmp_path / "one.npy", X[0])
    np.savez(tmp_path / "both.npz", images=X, labels=np.arange(3))
    outputs = []
    for args in (["chw.npy"], ["hwc.npy"], ["flat.npy"], ["both.npz", "--key", "images"]):
        status, out, err = nndl("predict", path, *args, cwd=tmp_path)
        assert status == 0, err
        outputs.append([line.split(None, 1)[1] for line in out.strip().splitlines()])
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]
    np.save(tmp_path / "one_hwc.npy", X[0].transpose(1, 2, 0))  # np.asarray(PIL image)'s layout
    for name in ("one.npy", "one_hwc.npy"):
        status, out, err = nndl("predict", path, name, cwd=tmp_path)
        assert status == 0 and out.split(None, 1)[1].strip() == outputs[0][0], err


def test_csv_output_is_written_and_never_overwritten_without_force(cifar_model, tmp_path):
    path, model, mean, std = cifar_model
    X, (status, out, err) = predict_random_images(path, tmp_path, 3, 5, "--top", "2", "--output", "p.csv")
    assert status == 0, err
    assert "wrote 5 predictions to p.csv" in out
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["input", "index", "class_1", "probability_1", "class_2", "probability_2"]
    probs = expected_probs(model, X, mean, std)
    for i, row in enumerate(rows[1:]):
        assert row[:3] == ["x.npy", str(i), CIFAR10_CLASSES[int(np.argmax(probs[i]))]]
        assert float(row[3]) == pytest.approx(probs[i].max(), abs=1e-6)
    before = (tmp_path / "p.csv").read_bytes()
    status, _, err = nndl("predict", path, "x.npy", "--output", "p.csv", cwd=tmp_path)
    one_line_error(status, err, "--output p.csv exists", "--force")
    assert (tmp_path / "p.csv").read_bytes() == before
    status, _, err = nndl("predict", path, "x.npy", "--output", "p.csv", "--force", cwd=tmp_path)
    assert status == 0, err
    assert (tmp_path / "p.csv").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "x.npy"]  # no temporary left


def test_a_bad_input_writes_nothing(cifar_model, tmp_path):
    path, *_ = cifar_model
    np.save(tmp_path / "good.npy", np.zeros((2, 3, 32, 32)))
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 16, 16)))
    status, _, err = nndl("predict", path, "good.npy", "bad.npy", "--output", "p.csv", cwd=tmp_path)
    one_line_error(status, err, "bad.npy", "(2, 3, 16, 16)", "(3, 32, 32)")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("make, needles", [
    (lambda d: np.save(d / "in.npy", np.zeros((2, 5))), ["in.npy", "(2, 5)", "(N, 3, 32, 32)", "(N, 32, 32, 3)"]),
    (lambda d: np.save(d / "in.npy", np.zeros((0, 3072))), ["in.npy", "no examples"]),
    (lambda d: np.save(d / "in.npy", np.full((1, 3072), np.nan)), ["in.npy", "NaN"]),
    (lambda d: np.save(d / "in.npy", np.array([["a"] * 3072])), ["in.npy", "expected numbers"]),
    (lambda d: np.save(d / "in.npy", np.array([None] * 3072, dtype=object)), ["in.npy", "not a readable"]),
    (lambda d: (d / "in.npy").write_text("not an array"), ["in.npy", "not a readable"]),
    (lambda d: np.savez(d / "in.npz", a=np.zeros(3072), b=np.zeros(3072)), ["in.npz", "2 arrays", "--key"]),
    (lambda d: (d / "in.csv").write_text("1,2"), ["in.csv", ".npy or .npz"]),
    (lambda d: (d / "in.png").write_bytes(b"not a png"), ["in.png", "not a readable image"]),
    (lambda d: None, ["missing.npy", "does not exist"]),
])
def test_bad_inputs_are_one_line_errors_naming_the_file(cifar_model, tmp_path, make, needles):
    path, *_ = cifar_model
    make(tmp_path)
    names = [p.name for p in tmp_path.iterdir()] or ["missing.npy"]
    status, out, err = nndl("predict", path, names[0], cwd=tmp_path)
    one_line_error(status, err, *needles)
    assert out == ""


def test_bad_options(cifar_model, tmp_path):
    path, *_ = cifar_model
    np.save(tmp_path / "x.npy", np.zeros((1, 3072)))
    np.savez(tmp_path / "x.npz", a=np.zeros((1, 3072)))
    one_line_error(*nndl("predict", path, "x.npy", "--top", "11", cwd=tmp_path)[::2], "--top 11", "10 classes")
    one_line_error(*nndl("predict", path, "x.npz", "--key", "b", cwd=tmp_path)[::2], "--key 'b'", "x.npz")
    one_line_error(*nndl("predict", path, "x.npy", "--output", "no/dir/p.csv", cwd=tmp_path)[::2], "does not exist")
    one_line_error(*nndl("predict", "none.npz", "x.npy", cwd=tmp_path)[::2], "none.npz")
    status, _, err = nndl("predict", path, "x.npy", "--top", "0", cwd=tmp_path)
    assert status == 2 and "--top" in err and len(err.strip().splitlines()) == 1


def test_image_files_are_resized_to_the_model_and_match_arrays(cifar_model, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path, model, mean, std = cifar_model
    pixels = np.random.default_rng(4).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "same.png")
    Image.fromarray(pixels).resize((64, 48)).save(tmp_path / "big.jpg")
    X = read_inputs(str(tmp_path / "same.png"), (3, 32, 32))
    np.testing.assert_array_equal(X[0], pixels.transpose(2, 0, 1))
    assert read_inputs(str(tmp_path / "big.jpg"), (3, 32, 32)).shape == (1, 3, 32, 32)
    np.save(tmp_path / "same.npy", pixels[None])
    status, out, err = nndl("predict", path, "same.png", "same.npy", "big.jpg", cwd=tmp_path)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["same.png[0]", "same.npy[0]", "big.jpg[0]"]
    assert lines[0].split()[1:] == lines[1].split()[1:]


def test_digit_images_read_as_ink_on_paper(digits_model, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path, model, mean = digits_model
    X, y = load_digits(np.float64)
    picks = [int(np.flatnonzero(y[1000:] == d)[0]) + 1000 for d in (0, 1, 7)]
    for i in picks:  # dark ink on white paper, as a scan would be
        Image.fromarray(np.round(255 - X[i] * 255 / 16).astype(np.uint8)).save(tmp_path / f"{y[i]}.png")
        np.testing.assert_allclose(read_inputs(str(tmp_path / f"{y[i]}.png"), (1, 8, 8), dataset="digits")[0, 0],
                                   X[i], atol=16 / 255)
    np.save(tmp_path / "grey.npy", X[picks])  # (N, 8, 8): grey images without the channel axis
    status, out, err = nndl("predict", path, "0.png", "1.png", "7.png", "grey.npy", cwd=tmp_path)
    assert status == 0, err
    predicted = [line.split()[1] for line in out.strip().splitlines()]
    assert predicted[:3] == predicted[3:]
    assert predicted[:3] == [str(y[i]) for i in picks]


def test_an_image_for_a_flat_model_is_refused(tmp_path):
    pytest.importorskip("PIL.Image")
    from PIL import Image

    model = FullyConnectedNet([5], input_dim=7, num_classes=3, dtype=np.float64, seed=0)
    save_model(tmp_path / "m.npz", model)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    np.save(tmp_path / "x.npy", np.ones((2, 7)))
    one_line_error(*nndl("predict", "m.npz", "a.png", cwd=tmp_path)[::2], "a.png", "7 features")
    np.save(tmp_path / "bad.npy", np.ones((2, 8)))
    status, _, err = nndl("predict", "m.npz", "bad.npy", cwd=tmp_path)
    one_line_error(status, err, "bad.npy", "expected (N, 7) or one example")
    status, out, err = nndl("predict", "m.npz", "x.npy", cwd=tmp_path)
    assert status == 0 and "no mean image" in err and out.count("x.npy[") == 2


def test_class_probabilities_in_batches_equal_one_pass(cifar_model):
    _, model, *_ = cifar_model
    X = np.random.default_rng(5).normal(size=(25, 3072))
    probs = class_probabilities(model, X, batch_size=7)
    np.testing.assert_allclose(probs, expected_probs(model, X, 0.0), rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_flip_tta_averages_each_image_with_its_mirror(cifar_model):
    _, model, *_ = cifar_model
    X = np.random.default_rng(6).normal(size=(9, 3, 32, 32))
    probs = class_probabilities(model, X, batch_size=4, tta="flip")
    by_hand = 0.5 * (expected_probs(model, X, 0.0) + expected_probs(model, X[..., ::-1], 0.0))
    np.testing.assert_allclose(probs, by_hand, rtol=1e-12)
    # Mirrored images get the same averaged prediction (the mirror is the left-right one,
    # not up-down: flipping the height axis would change it).
    np.testing.assert_allclose(class_probabilities(model, X[..., ::-1].copy(), tta="flip"), probs, rtol=1e-12)
    assert not np.allclose(class_probabilities(model, X[:, :, ::-1].copy(), tta="flip"), probs)
    assert not np.allclose(probs, class_probabilities(model, X))


def test_flip_tta_bad_arguments(cifar_model):
    _, model, *_ = cifar_model
    with pytest.raises(ValueError, match=r"tta must be None or one of flip; got 'crop'"):
        class_probabilities(model, np.zeros((2, 3, 32, 32)), tta="crop")
    with pytest.raises(ValueError, match=r"tta 'flip' needs images .* got inputs of shape \(2, 3072\)"):
        class_probabilities(model, np.zeros((2, 3072)), tta="flip")


def test_flip_tta_refuses_channels_last_images_of_a_loaded_model(cifar_model):
    from nndl.checkpoint import load_model

    model = load_model(cifar_model[0])
    with pytest.raises(ValueError, match=r"needs images \(N, 3, 32, 32\), got inputs of shape \(2, 32, 32, 3\)"):
        class_probabilities(model, np.zeros((2, 32, 32, 3)), tta="flip")


def test_predict_tta_flip_through_the_command(cifar_model, tmp_path):
    path, model, mean, std = cifar_model
    X, (status, out, err) = predict_random_images(path, tmp_path, 7, 3, "--tta", "flip", "--top", "2")
    assert status == 0, err
    probs = 0.5 * (expected_probs(model, X, mean, std) + expected_probs(model, X[..., ::-1], mean[..., ::-1],
                                                                        std[..., ::-1]))
    assert_ranked_lines(out, probs, 2)


def test_predict_tta_refused_for_a_model_of_flat_inputs(tmp_path):
    model = FullyConnectedNet([5], input_dim=7, num_classes=3, dtype=np.float64, seed=0)
    save_model(tmp_path / "m.npz", model)
    np.save(tmp_path / "x.npy", np.ones((2, 7)))
    status, out, err = nndl("predict", "m.npz", "x.npy", "--tta", "flip", cwd=tmp_path)
    one_line_error(status, err, "--tta flip", "m.npz", "(7,)", "not images")
    assert out == ""
    status, _, err = nndl("predict", "m.npz", "x.npy", "--tta", "crop", cwd=tmp_path)
    assert status == 2 and "invalid choice: 'crop'" in err
