"""Tests for nndl.fc_net: the course's reference numbers, gradient checks, dtype and bad input."""

import warnings

import numpy as np
import pytest

from conftest import assert_model_gradients
from nndl.data_utils import get_CIFAR10_data
from nndl.fc_net import FullyConnectedNet, TwoLayerNet
from nndl.gradient_check import eval_numerical_gradient, rel_error
from nndl.solver import Solver


# ----------------------------------------------------------------- TwoLayerNet (seed 000)

@pytest.fixture
def reference_two_layer_net():
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dims=H, num_classes=C, weight_scale=1e-2)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    return model, X, np.asarray([0, 5, 1])


def test_two_layer_net_initialisation():
    np.random.seed(231)
    std = 1e-2
    model = TwoLayerNet(input_dim=5, hidden_dims=50, num_classes=7, weight_scale=std)
    assert abs(model.params["W1"].std() - std) < std / 10
    assert abs(model.params["W2"].std() - std) < std / 10
    assert np.all(model.params["b1"] == 0) and np.all(model.params["b2"] == 0)
    assert model.params["W1"].shape == (5, 50) and model.params["W2"].shape == (50, 7)


def test_two_layer_net_reference_scores(reference_two_layer_net):
    model, X, _ = reference_two_layer_net
    correct_scores = np.asarray(
        [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
         [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
         [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319]])
    assert np.abs(model.loss(X) - correct_scores).sum() < 1e-6


def test_two_layer_net_reference_losses(reference_two_layer_net):
    model, X, y = reference_two_layer_net
    assert abs(model.loss(X, y)[0] - 3.4702243556) < 1e-10
    model.reg = 1.0
    assert abs(model.loss(X, y)[0] - 26.5948426952) < 1e-10


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_reference_model_gradient_check(reference_two_layer_net, reg):
    # The notebook's gradient check runs on its fixed linspace model (seed 000 prints relative
    # errors from 3.2e-10 to 2.5e-7); here each must be below 1e-6 by the plain relative
    # error, with no fallback for tiny entries.
    model, X, y = reference_two_layer_net
    model.reg = reg
    _, grads = model.loss(X, y)
    for name in sorted(grads):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
        assert rel_error(num, grads[name]) < 1e-6, name


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradient_check(reg):
    np.random.seed(231)
    X, y = np.random.randn(3, 5), np.random.randint(7, size=3)
    model = TwoLayerNet(input_dim=5, hidden_dims=50, num_classes=7, weight_scale=1e-2, reg=reg)
    assert_model_gradients(model, X, y, tol=1e-6)


# ----------------------------------------------------------------- FullyConnectedNet (seed 000)

def test_fully_connected_net_gradient_check_and_initial_losses():
    # The notebook's cell: one seed, then a fresh model per reg drawn from the global state.
    # With np.random.seed(231) the CS231n notebook publishes the initial losses
    # 2.3004790897684924 (reg 0) and 7.052114776533016 (reg 3.14).
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    for reg, initial_loss in [(0, 2.3004790897684924), (3.14, 7.052114776533016)]:
        model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg,
                                  weight_scale=5e-2, dtype=np.float64)
        loss, _ = model.loss(X, y)
        assert loss == pytest.approx(initial_loss, abs=1e-12)
        assert_model_gradients(model, X, y, tol=5e-5 if reg == 0 else 1e-6)


MODEL_VARIANTS = [
    dict(normalization="batchnorm"),
    dict(use_batchnorm=True, dropout=0.25, seed=5),
    dict(normalization="layernorm"),
    dict(dropout=0.3, seed=1),
    dict(activation="leaky_relu"),
    dict(activation="swish"),
    dict(activation="swish", normalization="layernorm", dropout=0.2, seed=2),
]


@pytest.mark.parametrize("options", MODEL_VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_fully_connected_net_variants_gradient_check(options):
    rng = np.random.default_rng(7)
    N, D, H1, H2, C = 10, 8, 12, 9, 5
    X, y = rng.standard_normal((N, D)), rng.integers(C, size=N)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=0.1,
                              weight_scale=0.3, dtype=np.float64, **options)
    if "seed" not in options:
        model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=0.1,
                                  weight_scale=0.3, dtype=np.float64, seed=11, **options)
    assert_model_gradients(model, X, y, tol=1e-5)


def test_gamma_and_beta_exist_only_with_normalisation():
    plain = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, seed=0)
    normed = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, use_batchnorm=True, seed=0)
    assert sorted(plain.params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= normed.params.keys()
    assert "gamma3" not in normed.params
    np.testing.assert_array_equal(normed.params["gamma1"], 1)


def test_batchnorm_model_updates_running_averages_in_training_only():
    model = FullyConnectedNet([6], input_dim=4, num_classes=3, use_batchnorm=True, seed=0)
    X, y = np.random.default_rng(0).standard_normal((8, 4)), np.arange(8) % 3
    model.loss(X, y)
    running = model.bn_params[0]["running_mean"].copy()
    assert np.any(running != 0)
    model.loss(X)  # test mode
    np.testing.assert_array_equal(model.bn_params[0]["running_mean"], running)


def test_dropout_is_off_at_test_time():
    model = FullyConnectedNet([50], input_dim=4, num_classes=3, dropout=0.5, seed=np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_array_equal(model.loss(X), model.loss(X))


def test_seed_makes_initialisation_private_and_reproducible():
    state = np.random.get_state()[1].copy()
    a = FullyConnectedNet([7], input_dim=3, num_classes=2, seed=4)
    b = FullyConnectedNet([7], input_dim=3, num_classes=2, seed=4)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_no_seed_draws_from_global_state():
    np.random.seed(0)
    a = FullyConnectedNet([7], input_dim=3, num_classes=2)
    np.random.seed(0)
    b = FullyConnectedNet([7], input_dim=3, num_classes=2)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])


# ----------------------------------------------------------------- dtype contract

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, dict(normalization="batchnorm", dropout=0.5, activation="swish")])
def test_model_keeps_its_dtype(dtype, options):
    model = FullyConnectedNet([6, 5], input_dim=12, num_classes=3, dtype=dtype, seed=0, **options)
    X = np.random.default_rng(0).standard_normal((4, 3, 2, 2))  # float64 input is cast once
    assert model.loss(X).dtype == dtype
    loss, grads = model.loss(X, np.array([0, 1, 2, 0]))
    assert isinstance(loss, float)
    assert all(model.params[k].dtype == dtype and g.dtype == dtype for k, g in grads.items())


def test_predict_returns_argmax_in_batches():
    model = FullyConnectedNet([6], input_dim=4, num_classes=3, seed=0)
    X = np.random.default_rng(0).standard_normal((25, 4))
    np.testing.assert_array_equal(model.predict(X, batch_size=7), np.argmax(model.loss(X), axis=1))


# ----------------------------------------------------------------- overfitting (real images)

def test_overfits_50_cifar_images_with_the_course_recipe(cifar_subset_dir):
    data = get_CIFAR10_data(num_training=None, num_validation=1000, cifar10_dir=cifar_subset_dir)
    small = {"X_train": data["X_train"][:50], "y_train": data["y_train"][:50],
             "X_val": data["X_val"], "y_val": data["y_val"]}
    np.random.seed(0)
    model = FullyConnectedNet([100, 100], weight_scale=1e-2, dtype=np.float64)
    solver = Solver(model, small, print_every=10, num_epochs=20, batch_size=25,
                    update_rule="sgd", optim_config={"learning_rate": 1e-2}, verbose=False)
    solver.train()
    assert len(solver.loss_history) == 40  # the notebook's "(Iteration 1 / 40)"
    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < solver.loss_history[0] / 5


# ----------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(hidden_dims=[]), ValueError, r"hidden_dims must be a non-empty list of positive ints, got \[\]"),
    (dict(hidden_dims=[100, 0]), ValueError, r"got \[100, 0\]"),
    (dict(hidden_dims=[10, -3]), ValueError, r"got \[10, -3\]"),
    (dict(hidden_dims=[10.5]), ValueError, r"got \[10.5\]"),
    (dict(hidden_dims="abc"), ValueError, "hidden_dims"),
    (dict(hidden_dims=[5], reg=-1.0), ValueError, "reg must be a finite number >= 0, got -1.0"),
    (dict(hidden_dims=[5], dropout=1.0), ValueError, r"dropout must be in \[0, 1\), got 1.0"),
    (dict(hidden_dims=[5], dropout=-0.1), ValueError, "dropout"),
    (dict(hidden_dims=[5], weight_scale=0), ValueError, "weight_scale must be a finite number > 0"),
    (dict(hidden_dims=[5], input_dim=0), ValueError, "input_dim must be a positive int, got 0"),
    (dict(hidden_dims=[5], num_classes=1.5), ValueError, "num_classes"),
    (dict(hidden_dims=[5], activation="tanh"), ValueError, "activation must be one of"),
    (dict(hidden_dims=[5], normalization="groupnorm"), ValueError, "normalization must be one of"),
    (dict(hidden_dims=[5], dtype=np.int32), TypeError, "dtype must be float32 or float64, got int32"),
    (dict(hidden_dims=[5], dtype=np.float16), TypeError, "dtype must be float32 or float64, got float16"),
    (dict(hidden_dims=[5], seed="x"), TypeError, "seed must be None"),
])
def test_constructor_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        FullyConnectedNet(**kwargs)


def test_two_layer_net_rejects_a_list_of_hidden_dims():
    with pytest.raises(TypeError, match="one positive int"):
        TwoLayerNet(hidden_dims=[10, 10])


@pytest.mark.parametrize("hidden_dims", [0, -3])
def test_two_layer_net_quotes_the_hidden_size_it_was_given(hidden_dims):
    with pytest.raises(ValueError, match=rf"hidden_dims of a TwoLayerNet must be one positive int, got {hidden_dims}$"):
        TwoLayerNet(hidden_dims=hidden_dims)


@pytest.mark.parametrize("X, y, error, message", [
    (np.zeros((2, 5)), None, ValueError, r"X must have 4 features per example .* got shape \(2, 5\)"),
    (np.zeros(4), None, ValueError, "X must have at least 2 dimension"),
    (np.array([[0, np.nan, 0, 0]]), None, ValueError, "X contains NaN or inf"),
    (np.array([[0, np.inf, 0, 0]]), None, ValueError, "X contains NaN or inf"),
    (np.zeros((2, 4)), np.array([0, 3]), ValueError, r"y must lie in \[0, 3\), got label 3"),
    (np.zeros((2, 4)), np.array([0]), ValueError, r"y must have shape \(2,\)"),
    (np.zeros((2, 4)), np.array(["a", "b"]), TypeError, "integer class labels"),
    (np.zeros((2, 4)), np.array([0.5, 1.0]), TypeError, "integer class labels"),
])
def test_loss_rejects_bad_input(X, y, error, message):
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the error alone, no NumPy warning first
        with pytest.raises(error, match=message):
            model.loss(X, y)


def test_overflowed_scores_from_finite_input_warn_once_with_the_cause():
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    model.params["W1"][:] = 1e38  # 4 x 1e38 overflows float32
    X = np.ones((3, 4))
    with pytest.warns(RuntimeWarning, match="scores hold NaN or inf although X is finite") as record:
        pred = model.predict(X)
    assert len(record) == 1
    assert pred.shape == (3,)
    # With labels the loss itself shows it (the Solver stops on it): no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        loss, _ = model.loss(X, np.array([0, 1, 2]))
    assert not np.isfinite(loss)


def test_empty_input_scores_to_nothing_but_has_no_loss():
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    assert model.loss(np.zeros((0, 4))).shape == (0, 3)
    assert model.predict(np.zeros((0, 2, 2))).shape == (0,)
    with pytest.raises(ValueError, match=r"X must hold at least one example to compute a loss, got shape \(0, 4\)"):
        model.loss(np.zeros((0, 4)), np.zeros(0, dtype=int))


@pytest.mark.parametrize("reg, error", [(-1.0, ValueError), (float("inf"), ValueError), ("0.1", TypeError)])
def test_a_bad_reg_set_after_construction_is_refused_at_the_next_call(reg, error):
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    model.reg = reg
    with pytest.raises(error, match="reg must be a"):
        model.loss(np.zeros((2, 4)), np.array([0, 1]))


def test_a_single_class_is_refused():
    with pytest.raises(ValueError, match="num_classes must be at least 2 .* got 1"):
        FullyConnectedNet([5], input_dim=4, num_classes=1)


def test_whole_valued_float_labels_are_accepted():
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    loss, _ = model.loss(np.zeros((2, 4)), np.array([0.0, 2.0]))
    assert np.isfinite(loss)


def test_penalty_grads_false_leaves_only_reg_w_out_of_the_weight_gradients():
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, reg=0.7, weight_scale=0.3,
                              normalization="batchnorm", dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)), rng.integers(3, size=8)
    loss, grads = model.loss(X, y)
    loss_no, grads_no = model.loss(X, y, penalty_grads=False)
    assert loss_no == loss  # the loss still holds the penalty
    assert model.penalized_params == ("W1", "W2", "W3")
    for name, g in grads.items():
        expected = g - model.reg * model.params[name] if name in model.penalized_params else g
        np.testing.assert_allclose(grads_no[name], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_steps_update_the_weights_as_sgd_on_their_gradients(dtype):
    from nndl import optim

    def make():
        return FullyConnectedNet([6, 5], input_dim=4, num_classes=3, reg=0.7, weight_scale=0.3,
                                 normalization="batchnorm", dtype=dtype, seed=0)

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)).astype(dtype), rng.integers(3, size=8)
    reference, stepped = make(), make()
    loss, grads = reference.loss(X, y, penalty_grads=False)
    steps = {"W1": (0.1, 0.7), "W3": (0.2, 0.0)}
    loss_s, grads_s = stepped.loss(X, y, penalty_grads=False, sgd_steps=steps)
    assert loss_s == pytest.approx(loss, rel=1e-12 if dtype == np.float64 else 1e-6)
    assert set(grads_s) == set(grads) - set(steps)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for name, g in grads.items():
        if name in steps:
            lr, wd = steps[name]
            expected, _ = optim.sgd(reference.params[name].copy(), g, {"learning_rate": lr, "weight_decay": wd})
            np.testing.assert_allclose(stepped.params[name], expected, **tol)
            assert stepped.params[name].dtype == dtype
        else:
            np.testing.assert_allclose(grads_s[name], g, **tol)
            np.testing.assert_array_equal(stepped.params[name], reference.params[name])


@pytest.mark.parametrize("steps, y, error, message", [
    ({"b1": (0.1, 0.0)}, True, ValueError, "only name weight matrices W1, W2; got 'b1'"),
    ({"W1": 0.1}, True, ValueError, r"sgd_steps\['W1'\] must be a pair"),
    ({"W1": ("fast", 0.0)}, True, ValueError, r"sgd_steps\['W1'\] must be a pair"),
    ([("W1", (0.1, 0.0))], True, TypeError, "sgd_steps must be a dict"),
    ({"W1": (0.1, 0.0)}, False, ValueError, "sgd_steps needs labels y"),
    ({"W2": (float("nan"), 0.0)}, True, ValueError, r"sgd_steps\['W2'\] .* finite and >= 0, got \(nan, 0.0\)"),
    ({"W1": (-0.1, 0.0)}, True, ValueError, r"sgd_steps\['W1'\] .* finite and >= 0"),
    ({"W1": (0.1, float("inf"))}, True, ValueError, r"sgd_steps\['W1'\] .* finite and >= 0"),
])
def test_bad_sgd_steps_are_rejected_before_any_weight_changes(steps, y, error, message):
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    X = np.ones((2, 4))
    with pytest.raises(error, match=message):
        model.loss(X, np.array([0, 1]) if y else None, sgd_steps=steps)
    for name, value in before.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_sgd_steps_with_penalty_grads_follow_the_penalized_gradient():
    # With penalty_grads=True (the default) the step follows dW + reg * W, as the gradient
    # loss() would return for W does; weight_decay adds to it.
    def make():
        return FullyConnectedNet([5], input_dim=4, num_classes=3, reg=0.3, weight_scale=0.3,
                                 dtype=np.float64, seed=0)

    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 4)), rng.integers(3, size=6)
    reference, stepped = make(), make()
    _, grads = reference.loss(X, y)
    stepped.loss(X, y, sgd_steps={"W1": (0.1, 0.2)})
    expected = reference.params["W1"] - 0.1 * (grads["W1"] + 0.2 * reference.params["W1"])
    np.testing.assert_allclose(stepped.params["W1"], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype, message", [
    (">f4", r"dtype must be float32 or float64, got >f4 \(float32 in the other byte order\)"),
    (None, "dtype must be float32 or float64, got None"),
    (np.complex64, "dtype must be float32 or float64, got complex64"),
])
def test_only_native_float32_and_float64_models_are_built(dtype, message):
    with pytest.raises(TypeError, match=message):
        FullyConnectedNet([3], input_dim=2, num_classes=2, dtype=dtype)


# ---------------------------------------------------------------- init by name, label smoothing


@pytest.mark.parametrize("init, expected", [("he", lambda fi, fo: np.sqrt(2 / fi)),
                                            ("xavier", lambda fi, fo: np.sqrt(2 / (fi + fo)))])
def test_init_by_name_scales_each_layer(init, expected):
    model = FullyConnectedNet([400, 300], input_dim=500, num_classes=10, init=init, dtype=np.float64,
                              seed=0)
    plain = FullyConnectedNet([400, 300], input_dim=500, num_classes=10, weight_scale=1.0,
                              dtype=np.float64, seed=0)
    for name, (fi, fo) in zip(("W1", "W2", "W3"), [(500, 400), (400, 300), (300, 10)]):
        # The same standard-normal draws, scaled by the named rule's std.
        np.testing.assert_allclose(model.params[name], expected(fi, fo) * plain.params[name], rtol=1e-12)
        assert np.std(model.params[name]) == pytest.approx(expected(fi, fo), rel=0.05)


def test_init_default_keeps_weight_scale_and_config():
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, weight_scale=0.5, seed=1)
    assert model.init is None and "init" not in model.config() and "label_smoothing" not in model.config()
    he = FullyConnectedNet([5], input_dim=4, num_classes=3, init="he", label_smoothing=0.1, seed=1)
    assert he.config()["init"] == "he" and he.config()["label_smoothing"] == 0.1


def test_unknown_init_is_refused_by_name():
    with pytest.raises(ValueError, match="init must be one of None, 'he', 'xavier'; got 'kaiming'"):
        FullyConnectedNet([5], input_dim=4, num_classes=3, init="kaiming")


def test_label_smoothing_model_gradients():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    model = FullyConnectedNet([7, 4], input_dim=5, num_classes=3, reg=0.1, init="he",
                              label_smoothing=0.2, dtype=np.float64, seed=3)
    assert_model_gradients(model, X, y)


def test_label_smoothing_saved_and_loaded(tmp_path):
    from nndl.checkpoint import load_model, save_model

    model = FullyConnectedNet([5], input_dim=4, num_classes=3, init="xavier", label_smoothing=0.1, seed=1)
    save_model(tmp_path / "m.npz", model)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.label_smoothing == 0.1 and loaded.init == "xavier"
    X, y = np.ones((2, 4)), np.array([0, 2])
    assert loaded.loss(X, y)[0] == pytest.approx(model.loss(X, y)[0])
