"""Tests for nndl.neural_net and nndl.cs231n: both toy notebooks' numbers, training, bad input."""

import warnings

import numpy as np
import pytest

from nndl.cs231n.classifiers.neural_net import TwoLayerNet as CS231nTwoLayerNet
from nndl.gradient_check import eval_numerical_gradient, rel_error
from nndl.neural_net import TwoLayerNet

INPUT_SIZE, HIDDEN_SIZE, NUM_CLASSES, NUM_INPUTS = 4, 10, 3, 5


def init_toy(cls):
    """The notebooks' init_toy_model() and init_toy_data()."""
    np.random.seed(0)
    net = cls(INPUT_SIZE, HIDDEN_SIZE, NUM_CLASSES, std=1e-1)
    np.random.seed(1)
    X = 10 * np.random.randn(NUM_INPUTS, INPUT_SIZE)
    return net, X, np.array([0, 1, 2, 2, 1])


SEED000_SCORES = np.asarray([
    [-1.07260209, 0.05083871, -0.87253915],
    [-2.02778743, -0.10832494, -1.52641362],
    [-0.74225908, 0.15259725, -0.39578548],
    [-0.38172726, 0.10835902, -0.17328274],
    [-0.64417314, -0.18886813, -0.41106892]])
SEED002_SCORES = np.asarray([
    [-0.81233741, -1.27654624, -0.70335995],
    [-0.17129677, -1.18803311, -0.47310444],
    [-0.51590475, -1.01354314, -0.8504215],
    [-0.15419291, -0.48629638, -0.52901952],
    [-0.00618733, -0.12435261, -0.15226949]])


@pytest.mark.parametrize("cls, scores, loss", [
    (TwoLayerNet, SEED000_SCORES, 1.071696123862817),
    (CS231nTwoLayerNet, SEED002_SCORES, 1.30378789133),
])
def test_toy_scores_and_loss(cls, scores, loss):
    net, X, y = init_toy(cls)
    assert np.sum(np.abs(net.loss(X) - scores)) < 1e-7
    assert abs(net.loss(X, y, reg=0.05)[0] - loss) < 1e-12


def test_weight_layouts():
    a, _, _ = init_toy(TwoLayerNet)
    b, _, _ = init_toy(CS231nTwoLayerNet)
    assert a.params["W1"].shape == (HIDDEN_SIZE, INPUT_SIZE) and a.params["W2"].shape == (NUM_CLASSES, HIDDEN_SIZE)
    assert b.params["W1"].shape == (INPUT_SIZE, HIDDEN_SIZE) and b.params["W2"].shape == (HIDDEN_SIZE, NUM_CLASSES)


@pytest.mark.parametrize("cls", [TwoLayerNet, CS231nTwoLayerNet])
def test_toy_gradient_check(cls):
    net, X, y = init_toy(cls)
    _, grads = net.loss(X, y, reg=0.05)
    for name in grads:
        num = eval_numerical_gradient(lambda W: net.loss(X, y, reg=0.05)[0], net.params[name], verbose=False)
        assert grads[name].shape == net.params[name].shape
        assert rel_error(num, grads[name]) < 1e-8, name


@pytest.mark.parametrize("cls", [TwoLayerNet, CS231nTwoLayerNet])
def test_toy_training_reaches_small_loss(cls):
    net, X, y = init_toy(cls)
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    assert stats["loss_history"][-1] < 0.2
    assert len(stats["loss_history"]) == 100
    assert (net.predict(X) == y).all()


def test_cs231n_toy_training_reproduces_the_notebook_loss_exactly():
    # The notebook's order: model, data, then a fresh model whose training draws the batches
    # from the global state left by its initialisation.
    np.random.seed(0)
    net = CS231nTwoLayerNet(INPUT_SIZE, HIDDEN_SIZE, NUM_CLASSES, std=1e-1)
    np.random.seed(1)
    X = 10 * np.random.randn(NUM_INPUTS, INPUT_SIZE)
    y = np.array([0, 1, 2, 2, 1])
    np.random.seed(0)
    net = CS231nTwoLayerNet(INPUT_SIZE, HIDDEN_SIZE, NUM_CLASSES, std=1e-1)
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    assert stats["loss_history"][-1] == pytest.approx(0.017149607938732093, rel=1e-9)


def test_train_records_accuracy_and_decays_once_per_epoch(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1000, 6)), rng.integers(3, size=1000)
    np.random.seed(0)
    net = TwoLayerNet(6, 8, 3)
    seen = []  # (b2 before the step, gradient of b2) at every training call
    original = net.loss

    def spy(X, y=None, reg=0.0):
        out = original(X, y, reg)
        if y is not None:
            seen.append((net.params["b2"].copy(), out[1]["b2"].copy()))
        return out

    monkeypatch.setattr(net, "loss", spy)
    # 1000 // 300 = 3 iterations per epoch (a float 1000 / 300 would never divide an
    # iteration count evenly, and the decay would never fire).
    stats = net.train(X, y, X[:50], y[:50], learning_rate=0.1, learning_rate_decay=0.5,
                      num_iters=10, batch_size=300)
    assert len(stats["train_acc_history"]) == len(stats["val_acc_history"]) == 4  # its 0, 3, 6, 9
    steps = [(before - after) / grad for (before, grad), (after, _) in zip(seen, seen[1:])]
    rates = [float(np.median(s)) for s in steps]
    expected = [0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_verbose_prints_every_100_iterations(capsys):
    net, X, y = init_toy(TwoLayerNet)
    net.train(X, y, X, y, num_iters=201, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["iteration 0 / 201", "iteration 100 / 201",
                                                      "iteration 200 / 201"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=0), "learning_rate must be a finite number > 0"),
    (dict(learning_rate_decay=1.5), r"learning_rate_decay must be in \(0, 1\]"),
    (dict(reg=-1), "reg must be a finite number >= 0, got -1"),
    (dict(num_iters=0), "num_iters must be a positive int, got 0"),
    (dict(batch_size=2.5), "batch_size must be a positive int, got 2.5"),
])
def test_train_rejects_bad_hyperparameters(kwargs, message):
    net, X, y = init_toy(TwoLayerNet)
    with pytest.raises(ValueError, match=message):
        net.train(X, y, X, y, **kwargs)


def test_loss_rejects_bad_input():
    net, X, y = init_toy(TwoLayerNet)
    with pytest.raises(ValueError, match="X must have 4 features"):
        net.loss(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y must lie in \[0, 3\), got label 5"):
        net.loss(X, np.array([0, 1, 2, 5, 1]))
    with pytest.raises(ValueError, match="X_val must have 4 features"):
        net.train(X, y, np.zeros((2, 2)), y[:2])
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        TwoLayerNet(4, 10, 3, std=-1)


@pytest.mark.parametrize("cls, notebook_loss", [
    (TwoLayerNet, 2.302757518613176),  # seed 000: L2 is 0.5 * reg * sum(W**2)
    (CS231nTwoLayerNet, 2.302954),  # seed 002: L2 is reg * sum(W**2)
], ids=["ece_c147", "cs231n"])
def test_first_cifar_loss_is_the_notebooks(cls, notebook_loss, cifar_subset_dir):
    # The notebooks' CIFAR-10 run (3072-50-10, std 1e-4, batch 200, reg 0.25) starts at
    # log(10) plus the L2 term of the initial weights, 2e-4 or 4e-4 by convention. The subset
    # holds other images than the full set, which moves the data term by 3e-5 or so; the other
    # convention would miss by 1.6e-4 or more, so a 6e-5 limit tells the two apart.
    from nndl.data_utils import get_CIFAR10_data

    data = get_CIFAR10_data(num_training=None, num_validation=1000, cifar10_dir=cifar_subset_dir, layout="rows")
    np.random.seed(0)
    net = cls(32 * 32 * 3, 50, 10)
    stats = net.train(data["X_train"], data["y_train"], data["X_val"], data["y_val"], num_iters=1,
                      batch_size=200, learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25, verbose=False)
    assert abs(stats["loss_history"][0] - notebook_loss) < 6e-5


@pytest.mark.parametrize("cls", [TwoLayerNet, CS231nTwoLayerNet])
def test_train_stops_on_a_diverging_loss(cls):
    net, X, y = init_toy(cls)
    with warnings.catch_warnings():
        # The error alone reports the divergence: no NumPy overflow warning ahead of it.
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(FloatingPointError, match=r"loss became (nan|inf) at iteration \d+; training "
                                                     r"stopped\. Try a smaller learning rate \(was 1000000\.0\)"):
            net.train(X, y, X, y, learning_rate=1e6, learning_rate_decay=1.0, reg=0.0, num_iters=100,
                      verbose=False)
