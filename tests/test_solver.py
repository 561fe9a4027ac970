"""Tests for nndl.solver: training on a small problem, progress lines, bad input, NaN stop."""

import re
import warnings

import numpy as np
import pytest

from nndl.checkpoint import load_checkpoint
from nndl.fc_net import FullyConnectedNet
from nndl.solver import Solver


def blobs(n=600, d=10, classes=3, seed=0):
    """Gaussian blobs: an easy, learnable classification problem."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((classes, d))
    y = rng.integers(classes, size=n)
    X = centres[y] + rng.standard_normal((n, d))
    return {"X_train": X[:500], "y_train": y[:500], "X_val": X[500:], "y_val": y[500:]}


def small_model(**kw):
    return FullyConnectedNet([20], input_dim=10, num_classes=3, weight_scale=0.1, seed=0, **kw)


@pytest.mark.parametrize("rule, lr", [("sgd", 0.1), ("sgd_momentum", 0.05), ("sgd_nesterov_momentum", 0.05),
                                      ("rmsprop", 1e-2), ("adam", 1e-2)])
def test_solver_learns_blobs(rule, lr):
    solver = Solver(small_model(), blobs(), update_rule=rule, optim_config={"learning_rate": lr},
                    num_epochs=5, batch_size=50, verbose=False, seed=0)
    solver.train()
    assert np.mean(solver.loss_history[-10:]) < 0.5 * solver.loss_history[0]
    assert solver.best_val_acc > 0.9
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 6  # epoch 0 .. 5


def test_best_params_are_restored_into_the_model():
    model = small_model()
    solver = Solver(model, blobs(), optim_config={"learning_rate": 0.1}, num_epochs=4,
                    batch_size=50, verbose=False, seed=0)
    solver.train()
    for name, value in solver.best_params.items():
        np.testing.assert_array_equal(model.params[name], value)
    assert solver.check_accuracy(solver.X_val, solver.y_val) == solver.best_val_acc
    assert solver.best_val_acc == max(solver.val_acc_history)


def test_progress_lines_follow_the_course_format(capsys):
    data = blobs()
    solver = Solver(small_model(), data, optim_config={"learning_rate": 0.1}, num_epochs=2,
                    batch_size=100, print_every=2, seed=0)
    solver.train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("(Iteration 1 / 10) loss: ")
    assert re.fullmatch(r"\(Epoch 0 / 2\) train acc: \d\.\d{6}; val acc: \d\.\d{6}", lines[1])
    assert lines[-1].startswith("(Epoch 2 / 2) train acc: ")
    assert sum(line.startswith("(Iteration") for line in lines) == 5  # t = 0, 2, 4, 6, 8


def test_lr_decay_applies_once_per_epoch():
    solver = Solver(small_model(), blobs(), optim_config={"learning_rate": 0.1}, lr_decay=0.5,
                    num_epochs=3, batch_size=100, verbose=False, seed=0)
    solver.train()
    assert all(c["learning_rate"] == pytest.approx(0.1 * 0.5 ** 3) for c in solver.optim_configs.values())


def test_permutation_sampling_visits_every_example_once_per_epoch():
    data = blobs()
    solver = Solver(small_model(), data, sampling="permutation", batch_size=100, num_epochs=1,
                    verbose=False, seed=0)
    seen = np.concatenate([solver._batch_indices(t) for t in range(5)])
    assert sorted(seen.tolist()) == list(range(500))


def test_permutation_sampling_skips_the_remainder_of_each_permutation_as_documented():
    data = blobs()  # 500 training examples; batches of 60 leave 20 each epoch
    solver = Solver(small_model(), data, sampling="permutation", batch_size=60, num_epochs=2,
                    verbose=False, seed=0)
    epochs = [np.concatenate([solver._batch_indices(t) for t in range(e * 8, e * 8 + 8)]) for e in range(2)]
    for seen in epochs:
        assert len(seen) == 480 and len(set(seen.tolist())) == 480  # no repeats within an epoch
    assert set(epochs[0].tolist()) != set(epochs[1].tolist())  # a different 20 skipped each time


def test_seed_makes_training_reproducible_without_touching_global_state():
    runs = []
    for _ in range(2):
        state = np.random.get_state()[1].copy()
        solver = Solver(small_model(), blobs(), num_epochs=2, batch_size=50, verbose=False, seed=3)
        solver.train()
        np.testing.assert_array_equal(np.random.get_state()[1], state)
        runs.append(solver.loss_history)
    assert runs[0] == runs[1]


def test_data_is_cast_to_the_model_dtype_once():
    data = blobs()
    solver = Solver(small_model(dtype=np.float32), data, verbose=False)
    assert solver.X_train.dtype == np.float32 and solver.X_val.dtype == np.float32
    X32 = {**data, "X_train": data["X_train"].astype(np.float32)}
    solver = Solver(small_model(dtype=np.float32), X32, verbose=False)
    assert solver.X_train is X32["X_train"]  # already float32: no copy


def test_nan_loss_stops_training_with_a_clear_error():
    solver = Solver(small_model(), blobs(), optim_config={"learning_rate": 1e12}, num_epochs=5,
                    batch_size=50, verbose=False, seed=0)
    with warnings.catch_warnings():
        # The error alone reports the divergence: NumPy's overflow warnings from inside the
        # layers must not reach the user ahead of it.
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(FloatingPointError, match=r"at iteration \d+.*smaller learning rate"):
            solver.train()


def test_checkpoint_name_saves_one_checkpoint_per_epoch(tmp_path):
    solver = Solver(small_model(), blobs(), num_epochs=2, batch_size=100, verbose=False, seed=0,
                    update_rule="adam", checkpoint_name=str(tmp_path / "run"))
    solver.train()
    meta, arrays = load_checkpoint(tmp_path / "run_epoch_2.npz")
    assert meta["solver"]["epoch"] == 2 and meta["solver"]["update_rule"] == "adam"
    assert "optim/W1/m" in arrays and len(meta["solver"]["loss_history"]) == 10
    assert (tmp_path / "run_epoch_1.npz").is_file()


def test_epoch_callback_is_called_after_every_check():
    epochs = []
    solver = Solver(small_model(), blobs(), num_epochs=3, batch_size=100, verbose=False,
                    epoch_callback=lambda s: epochs.append(s.epoch))
    solver.train()
    assert epochs == [0, 1, 2, 3]


# ----------------------------------------------------------------- bad input

def test_unknown_keyword_is_rejected_by_name():
    with pytest.raises(TypeError, match="unexpected keyword argument\\(s\\) learning_rate"):
        Solver(small_model(), blobs(), learning_rate=0.1)


def test_unknown_update_rule_lists_valid_ones():
    with pytest.raises(ValueError, match="update_rule must be one of adam, .*; got 'sqd'"):
        Solver(small_model(), blobs(), update_rule="sqd")


@pytest.mark.parametrize("drop", ["X_train", "y_val"])
def test_missing_data_keys_are_named(drop):
    data = blobs()
    del data[drop]
    with pytest.raises(ValueError, match=f"data is missing {drop}"):
        Solver(small_model(), data)


@pytest.mark.parametrize("change, error, message", [
    (lambda d: d.update(y_train=d["y_train"][:10]), ValueError, r"y_train must have shape \(500,\)"),
    (lambda d: d.update(y_val=d["y_val"] + 5), ValueError, r"y_val must lie in \[0, 3\)"),
    (lambda d: d.update(y_train=d["y_train"] + 0.5), TypeError, "y_train must hold integer class labels"),
    (lambda d: d["X_train"].__setitem__((3, 3), np.nan), ValueError, "X_train contains NaN or inf"),
    (lambda d: d.update(X_val=d["X_val"][:, :5]), ValueError, "X_val must have 10 features per example"),
    (lambda d: d.update(X_train=d["X_train"][:, :9]), ValueError,
     r"X_train must have 10 features per example \(the model's input_dim\), got shape \(\d+, 9\)"),
])
def test_bad_data_is_rejected(change, error, message):
    data = blobs()
    change(data)
    with pytest.raises(error, match=message):
        Solver(small_model(), data)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be a positive int, got 0"),
    (dict(num_epochs=-1), "num_epochs must be a positive int, got -1"),
    (dict(lr_decay=2.0), r"lr_decay must be a number in \(0, 1\], got 2.0"),
    (dict(lr_decay=-1), r"lr_decay must be a number in \(0, 1\], got -1"),
    (dict(sampling="shuffle"), "sampling must be one of"),
    (dict(update_rule="adam", optim_config={"beta1": "0.9"}), r"optim_config\['beta1'\] must be a number in \[0, 1\), got '0.9'"),
    (dict(update_rule="sgd_momentum", optim_config={"momentum": 5}), r"optim_config\['momentum'\] must be a number in \[0, 1\), got 5"),
    (dict(update_rule="rmsprop", optim_config={"epsilon": 0}), r"optim_config\['epsilon'\] must be a finite number > 0, got 0"),
    (dict(optim_config={"learnin_rate": 1e-3}),
     "optim_config has unknown key\\(s\\) 'learnin_rate' for update_rule 'sgd'; its keys are learning_rate"),
    (dict(update_rule="adam", optim_config={"learning_rate": 1e-3, "beta": 0.9}),
     "unknown key\\(s\\) 'beta' for update_rule 'adam'; its keys are learning_rate, weight_decay, beta1"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Solver(small_model(), blobs(), **kwargs)


def test_batchnorm_running_averages_of_the_best_epoch_are_restored():
    model = small_model(use_batchnorm=True)
    snapshots = []

    def remember(solver):
        snapshots.append((solver.val_acc_history[-1], model.bn_params[0]["running_mean"].copy()))

    solver = Solver(model, blobs(), optim_config={"learning_rate": 0.5}, num_epochs=6, batch_size=50,
                    verbose=False, seed=0, epoch_callback=remember)
    solver.train()
    best = max(range(len(snapshots)), key=lambda i: (snapshots[i][0], -i))
    np.testing.assert_array_equal(model.bn_params[0]["running_mean"], snapshots[best][1])
    assert solver.check_accuracy(solver.X_val, solver.y_val) == solver.best_val_acc


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "adam"])
@pytest.mark.parametrize("extra_decay", [0.0, 0.01])
def test_l2_through_the_update_rule_trains_exactly_as_the_models_gradient(rule, extra_decay):
    # The Solver's fast path hands the L2 term to nndl's rule as weight_decay; a rule of the
    # caller's own (here the same rule behind a lambda) gets the model's full gradient.
    from nndl import optim

    histories, params, fast_path = [], [], []
    for update_rule in (rule, lambda w, dw, c, f=optim.UPDATE_RULES[rule]: f(w, dw, c)):
        model = small_model(reg=0.05, dtype=np.float64)
        config = {"learning_rate": 0.05}
        if extra_decay:
            config["weight_decay"] = extra_decay
        solver = Solver(model, blobs(), update_rule=update_rule, optim_config=config,
                        num_epochs=2, batch_size=50, lr_decay=0.5, verbose=False, seed=0)
        solver.train()
        histories.append(solver.loss_history)
        params.append(model.params)
        fast_path.append((solver._l2_in_update, solver._sgd_in_backward))
    # The lambda took the model's full gradient; plain SGD stepped inside model.loss.
    assert fast_path == [(True, rule == "sgd"), (False, False)]
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-10)
    for name in params[0]:
        np.testing.assert_allclose(params[0][name], params[1][name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("lr, error", [(None, TypeError), ("0.1", TypeError), (-0.1, ValueError),
                                       (float("nan"), ValueError)])
@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_bad_learning_rate_is_rejected_by_name(lr, error, rule):
    with pytest.raises(error, match=r"optim_config\['learning_rate'\] must be"):
        Solver(small_model(), blobs(), update_rule=rule, optim_config={"learning_rate": lr}, verbose=False)


def test_negative_weight_decay_is_rejected():
    with pytest.raises(ValueError, match="weight_decay"):
        Solver(small_model(), blobs(), optim_config={"weight_decay": -1.0}, verbose=False)


def test_training_a_model_whose_int_seed_fixes_the_dropout_mask_warns():
    with pytest.warns(UserWarning, match="int seed fixes its dropout mask"):
        Solver(FullyConnectedNet([8], input_dim=10, num_classes=3, dropout=0.5, seed=0), blobs())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fresh masks (a Generator) or no dropout: no warning
        Solver(FullyConnectedNet([8], input_dim=10, num_classes=3, dropout=0.5,
                                 seed=np.random.default_rng(0)), blobs())
        Solver(FullyConnectedNet([8], input_dim=10, num_classes=3, seed=0), blobs())


class _BatchRecorder:
    """A model that records the first feature of every training batch (the example's index)."""

    def __init__(self):
        self.params = {"w": np.zeros(1)}
        self.batches = []

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((X.shape[0], 2))
        self.batches.append(X[:, 0].astype(int))
        return 0.0, {"w": np.zeros(1)}


@pytest.mark.parametrize("seed", [None, 7])
def test_replacement_sampling_draws_the_batches_of_choice(seed):
    # seed=None: NumPy's global state, batch for batch as the course's np.random.choice;
    # an int seed: the Generator's choice.
    N, B = 500, 40
    X = np.arange(N, dtype=float).reshape(N, 1)
    data = {"X_train": X, "y_train": np.zeros(N, dtype=int), "X_val": X[:10], "y_val": np.zeros(10, dtype=int)}
    model = _BatchRecorder()
    np.random.seed(3)
    Solver(model, data, batch_size=B, num_epochs=2, verbose=False, seed=seed).train()
    np.random.seed(3)
    rng = np.random.default_rng(seed) if seed is not None else np.random
    expected = [rng.choice(N, B) for _ in model.batches]
    assert len(model.batches) == 2 * (N // B)
    for got, want in zip(model.batches, expected):
        np.testing.assert_array_equal(got, want)



def test_a_second_train_call_with_nothing_left_to_do_says_so():
    solver = Solver(small_model(), blobs(), num_epochs=1, batch_size=100, verbose=False, seed=0).train()
    losses = list(solver.loss_history)
    with pytest.warns(UserWarning, match="train\\(\\) has nothing to do: the 1 epochs of num_epochs=1 are done"):
        solver.train()
    assert solver.loss_history == losses
    solver.num_epochs = 2  # what the warning suggests: train one epoch more
    solver.train()
    assert solver.epoch == 2 and len(solver.loss_history) == 2 * len(losses)


def test_check_accuracy_takes_lists_and_refuses_mismatched_labels():
    data = blobs()
    solver = Solver(small_model(), data, verbose=False, seed=0)
    X, y = data["X_val"], data["y_val"]
    assert solver.check_accuracy(X.tolist(), y.tolist()) == solver.check_accuracy(X, y)
    with pytest.raises(ValueError, match=r"y must have shape \(\d+,\) to match the inputs"):
        solver.check_accuracy(X, y[:-1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=0), "num_samples must be a positive int, got 0"),
    (dict(num_samples=-3), "num_samples must be a positive int, got -3"),
    (dict(batch_size=0), "batch_size must be a positive int, got 0"),
])
def test_check_accuracy_refuses_bad_sizes_by_name(kwargs, message):
    data = blobs()
    solver = Solver(small_model(), data, verbose=False, seed=0)
    with pytest.raises(ValueError, match=message):
        solver.check_accuracy(data["X_val"], data["y_val"], **kwargs)


def test_stopping_early_from_the_epoch_callback_then_restore_best_gives_the_best_parameters():
    # A learning rate so large that validation accuracy falls after its best epoch.
    class Stop(Exception):
        pass

    last = {}

    def stop_at_3(solver):
        if solver.epoch == 3:
            last.update({k: v.copy() for k, v in solver.model.params.items()})
            raise Stop

    solver = Solver(small_model(), blobs(), num_epochs=10, batch_size=100, verbose=False, seed=0,
                    update_rule="sgd", optim_config={"learning_rate": 5.0}, epoch_callback=stop_at_3)
    with pytest.raises(Stop):
        solver.train()
    assert solver.epoch == 3
    assert not np.array_equal(last["W1"], solver.best_params["W1"])  # the best epoch was an earlier one
    # Stopped by an exception, the model keeps its last parameters (train() could carry on) ...
    np.testing.assert_array_equal(solver.model.params["W1"], last["W1"])
    solver.restore_best()  # ... until the caller asks for the best ones, as train() does at its end
    for name, value in solver.best_params.items():
        np.testing.assert_array_equal(solver.model.params[name], value)
    assert solver.model.params["W1"] is not solver.best_params["W1"]  # a copy


def test_iteration_count_of_the_notebooks_solver_cell(capsys):
    # Seed 000 trains on 49,000 images with batch 200 for 10 epochs and prints
    # "(Iteration 1 / 2450)": 245 steps an epoch, one loss per step. 49,100 examples give the
    # same count only if a partial last batch is dropped (the course's floor, not a ceiling).
    rng = np.random.default_rng(0)
    y = rng.integers(10, size=49100)
    X = rng.standard_normal((49100, 2)).astype(np.float32) + y[:, None]
    data = {"X_train": X, "y_train": y, "X_val": X[:100], "y_val": y[:100]}
    model = FullyConnectedNet([5], input_dim=2, num_classes=10, seed=0)
    solver = Solver(model, data, num_epochs=10, batch_size=200, print_every=1000, num_train_samples=100,
                    optim_config={"learning_rate": 1e-3})
    solver.train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 2450) loss:" in out and "(Epoch 10 / 10) train acc:" in out
    assert len(solver.loss_history) == 2450 and len(solver.val_acc_history) == 11


@pytest.mark.parametrize("kwargs, message", [
    (dict(verbose="no"), "verbose must be True or False, got 'no'"),
    (dict(checkpoint_name=5), "checkpoint_name must be a path prefix (str) or None, got 5"),
    (dict(epoch_callback=5), "epoch_callback must be a function of the Solver or None, got 5"),
])
def test_bad_types_of_options_are_rejected_before_training(kwargs, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        Solver(small_model(), blobs(), **kwargs)


@pytest.mark.parametrize("verbose, printed", [(np.True_, True), (np.False_, False), (None, False), (0, False)])
def test_verbose_takes_numpy_bools_and_none(verbose, printed, capsys):
    Solver(small_model(), blobs(), num_epochs=1, batch_size=100, verbose=verbose).train()
    assert bool(capsys.readouterr().out) == printed


def test_checkpoint_name_may_be_a_path(tmp_path):
    solver = Solver(small_model(), blobs(), num_epochs=1, batch_size=100, verbose=0,
                    checkpoint_name=tmp_path / "run")
    solver.train()
    assert (tmp_path / "run_epoch_1.npz").is_file()


# ---------------------------------------------------------------- augment, lr_schedule, patience


def test_augment_sees_every_batch_as_a_copy_and_its_output_is_trained_on():
    data = blobs()
    original = data["X_train"].copy()
    seen = []

    def zero_out(X, rng):
        seen.append(X.shape)
        X[:] = 0  # in place, on the gathered batch only
        return X

    solver = Solver(small_model(), data, optim_config={"learning_rate": 0.1}, num_epochs=2, batch_size=50,
                    verbose=False, seed=0, augment=zero_out)
    solver.train()
    assert seen == [(50, 10)] * 20
    np.testing.assert_array_equal(solver.X_train, original.astype(np.float32))  # the training set is untouched
    # Trained on zeros only, the model cannot separate the blobs.
    assert solver.best_val_acc < 0.6


def test_augment_with_real_flips_still_learns():
    from nndl.augment import random_flip

    solver = Solver(small_model(), blobs(), optim_config={"learning_rate": 0.1}, num_epochs=3, batch_size=50,
                    verbose=False, seed=0, augment=random_flip((1, 1, 10), p=0.0))
    solver.train()
    assert solver.best_val_acc > 0.9


def test_lr_schedule_sets_every_learning_rate_each_iteration():
    from nndl.schedules import make_schedule

    rates = []
    solver = Solver(small_model(), blobs(), update_rule="adamw", optim_config={"learning_rate": 0.01},
                    num_epochs=3, batch_size=100, verbose=False, seed=0, lr_schedule="onecycle",
                    epoch_callback=lambda s: rates.append(s.optim_configs["W1"]["learning_rate"]))
    solver.train()
    schedule = make_schedule("onecycle", 15, 5)
    # After the first iteration (t = 0) and after each epoch's last iteration (t = 4, 9, 14).
    np.testing.assert_allclose(rates, [0.01 * schedule(t) for t in (0, 4, 9, 14)], rtol=1e-12)
    assert {c["learning_rate"] for c in solver.optim_configs.values()} == {rates[-1]}


def test_lr_schedule_uses_the_rules_default_rate():
    solver = Solver(small_model(), blobs(), update_rule="adam", num_epochs=2, batch_size=250,
                    verbose=False, seed=0, lr_schedule={"name": "cosine", "final": 0.5})
    solver.train()
    # The last iteration (t = 3 of 4): 1e-3 * (0.5 + 0.5 * (1 + cos(3 pi / 4)) / 2).
    assert solver.optim_configs["b1"]["learning_rate"] == pytest.approx(1e-3 * (0.5 + 0.25 * (1 + np.cos(0.75 * np.pi))))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr_schedule="cosine", lr_decay=0.9), "lr_decay=0.9 and lr_schedule='cosine' both set"),
    (dict(lr_schedule={"name": "cosine", "warmup_epochs": 3}), "warmup_epochs must be shorter than the run's 3.0"),
    (dict(lr_schedule={"name": "cosine", "warmup_epochs": -1}), r"warmup_epochs must be in \[0, inf\]"),
    (dict(augment="flip"), "augment must be a function"),
    (dict(patience=0), "patience must be"),
])
def test_bad_training_options_are_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Solver(small_model(), blobs(), num_epochs=3, verbose=False, **kwargs)


def test_patience_stops_early_and_restores_the_best_epoch(capsys):
    model = small_model()
    # A learning rate of 0 never improves on epoch 0's accuracy.
    solver = Solver(model, blobs(), optim_config={"learning_rate": 0.0}, num_epochs=20, batch_size=100,
                    seed=0, patience=3, print_every=1000)
    solver.train()
    assert solver.stopped_epoch == 3 and solver.epoch == 3
    assert len(solver.val_acc_history) == 4
    assert "stopping early: no better validation accuracy for 3 epochs" in capsys.readouterr().out
    for name, value in solver.best_params.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_patience_does_not_stop_an_improving_run():
    solver = Solver(small_model(), blobs(), optim_config={"learning_rate": 0.1}, num_epochs=4, batch_size=50,
                    verbose=False, seed=0, patience=10)
    solver.train()
    assert solver.stopped_epoch is None and solver.epoch == 4


def test_resume_continues_a_schedule_exactly(tmp_path):
    def run(epochs, resume=None, name=None):
        return Solver(small_model(), blobs(), update_rule="adamw", optim_config={"learning_rate": 0.01},
                      num_epochs=epochs, batch_size=50, verbose=False, seed=np.random.default_rng(0),
                      lr_schedule={"name": "cosine", "warmup_epochs": 1}, checkpoint_name=name,
                      resume_from=resume).train()

    whole = run(4)
    run(4, name=str(tmp_path / "ck"))
    resumed = run(4, resume=tmp_path / "ck_epoch_2.npz")
    assert resumed.loss_history == whole.loss_history
    for name in whole.model.params:
        np.testing.assert_array_equal(resumed.model.params[name], whole.model.params[name])


def test_resume_with_another_schedule_is_refused(tmp_path):
    from nndl.checkpoint import CheckpointError

    Solver(small_model(), blobs(), num_epochs=1, batch_size=100, verbose=False, seed=0, lr_schedule="cosine",
           checkpoint_name=str(tmp_path / "ck")).train()
    with pytest.raises(CheckpointError, match="was trained with lr_schedule .*'cosine'.*; the Solver uses None"):
        Solver(small_model(), blobs(), num_epochs=2, batch_size=100, verbose=False, seed=0,
               resume_from=tmp_path / "ck_epoch_1.npz")


def _state_run(**extra):
    """A solver with batchnorm, dropout, Adam, a schedule and private generators."""
    model = FullyConnectedNet([20, 20], input_dim=10, num_classes=3, weight_scale=0.1, normalization="batchnorm",
                              dropout=0.2, seed=np.random.default_rng(1))
    options = dict(update_rule="adam", optim_config={"learning_rate": 1e-2}, lr_schedule="cosine", num_epochs=4,
                   batch_size=50, sampling="permutation", verbose=False, seed=np.random.default_rng(2))
    return Solver(model, blobs(), **{**options, **extra})


class _Stop(Exception):
    pass


def _interrupted_run(epochs):
    """A 4-epoch run stopped (as by an interrupt) after ``epochs`` epochs."""
    def stop(solver):
        if solver.epoch == epochs:
            raise _Stop

    solver = _state_run(epoch_callback=stop)
    with pytest.raises(_Stop):
        solver.train()
    return solver


def test_load_state_of_a_state_dict_continues_the_run_bit_for_bit():
    import copy
    import json

    whole = _state_run().train()
    state = copy.deepcopy(_interrupted_run(2).state_dict())
    arrays = ("optim_configs", "params", "bn_stats", "best_params", "best_bn_stats")
    json.dumps({k: v for k, v in state.items() if k not in arrays})  # the rest is JSON-ready
    resumed = _state_run()
    resumed.load_state(state)
    assert resumed.epoch == 2 and resumed.num_epochs == 4
    resumed.train()
    assert resumed.loss_history == whole.loss_history
    assert resumed.val_acc_history == whole.val_acc_history
    for name in whole.model.params:
        np.testing.assert_array_equal(resumed.model.params[name], whole.model.params[name])
    np.testing.assert_array_equal(resumed.model.bn_params[0]["running_var"], whole.model.bn_params[0]["running_var"])


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(batch_size=25), "my run was trained with batch_size 25; the Solver uses 50"),
    (lambda s: s.update(update_rule="sgd"), "my run was trained with update_rule 'sgd'; the Solver uses 'adam'"),
    (lambda s: s.update(lr_schedule=None), "my run was trained with lr_schedule None"),
    (lambda s: s["params"].update(W1=np.zeros((3, 3))), r"my run: parameter\(s\) W1 missing from the model or of"),
    (lambda s: s["best_params"].pop("W2"), r"my run: parameter\(s\) best-epoch set"),
    (lambda s: s.update(epoch=9), "num_epochs must be at least the 9 epochs my run has already done"),
])
def test_load_state_refuses_a_state_that_does_not_fit_and_changes_nothing(change, message):
    state = _interrupted_run(1).state_dict()
    change(state)
    solver = _state_run()
    before = {k: v.copy() for k, v in solver.model.params.items()}
    with pytest.raises(ValueError, match=message):
        solver.load_state(state, source="my run")
    assert solver.epoch == 0 and solver.loss_history == []
    for name, value in before.items():
        np.testing.assert_array_equal(solver.model.params[name], value)


def test_options_are_declared_once_and_kept():
    from dataclasses import fields

    from nndl.solver import SolverOptions

    assert Solver.DEFAULTS == {f.name: f.default for f in fields(SolverOptions)}
    rng = np.random.default_rng(0)
    solver = Solver(small_model(), blobs(), num_epochs=3, seed=rng, verbose=False)
    assert solver.options.num_epochs == 3 and solver.options.seed is rng  # kept as given, not copied
    assert solver.options.batch_size == Solver.DEFAULTS["batch_size"] == solver.batch_size
