"""Tests for nndl.checkpoint: exact round trip, atomic writes, refusal of foreign files, Solver resume."""

import json
import re

import numpy as np
import pytest

from nndl.checkpoint import CheckpointError, load_checkpoint, load_model, save_model
from nndl.fc_net import FullyConnectedNet, TwoLayerNet
from nndl.solver import Solver


@pytest.mark.parametrize("model", [
    FullyConnectedNet([8, 6], input_dim=12, num_classes=4, use_batchnorm=True, seed=0),
    FullyConnectedNet([5], input_dim=12, num_classes=4, activation="swish", normalization="layernorm",
                      dtype=np.float64, seed=1),
    TwoLayerNet(input_dim=12, hidden_dims=7, num_classes=4, seed=2),
])
def test_round_trip_predicts_exactly_the_same(tmp_path, model):
    X = np.random.default_rng(0).standard_normal((20, 12))
    model.loss(X, np.arange(20) % 4)  # fills batchnorm running averages
    save_model(tmp_path / "m.npz", model, preprocessing={"mean_image": np.ones(12)},
               class_names=list("abcd"))
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded) is type(model) and loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.loss(X), model.loss(X))
    assert loaded.class_names == list("abcd")
    np.testing.assert_array_equal(loaded.preprocessing["mean_image"], np.ones(12))


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    model = FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0)
    path = tmp_path / "m.npz"
    save_model(path, model)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, model)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


def test_saving_onto_a_directory_or_into_a_missing_one_is_refused_by_name(tmp_path):
    model = FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0)
    (tmp_path / "runs").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot write .*runs: it is a directory; give a file name"):
        save_model(tmp_path / "runs", model)
    with pytest.raises(FileNotFoundError, match=r"directory .*nope does not exist"):
        save_model(tmp_path / "nope" / "m.npz", model)
    assert [p.name for p in tmp_path.iterdir()] == ["runs"] and not any((tmp_path / "runs").iterdir())


def test_files_that_are_not_nndl_models_are_refused(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match=r"not an nndl model file \(not an .npz archive\)$"):
        load_model(tmp_path / "text.npz")
    np.save(tmp_path / "weights.npy", np.ones(3))
    with pytest.raises(CheckpointError, match="not an .npz archive"):
        load_model(tmp_path / "weights.npy")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(CheckpointError, match="no nndl metadata"):
        load_model(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "missing.npz")


def test_incompatible_format_version_is_refused(tmp_path):
    model = FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0)
    save_model(tmp_path / "m.npz", model)
    with np.load(tmp_path / "m.npz") as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__nndl__"]))
    meta["format_version"] = 99
    arrays["__nndl__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(CheckpointError, match="format 99"):
        load_model(tmp_path / "future.npz")


def _toy_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 10))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    return {"X_train": X[:100], "y_train": y[:100], "X_val": X[100:], "y_val": y[100:]}


def _solver(model, data, **kwargs):
    options = dict(update_rule="adam", optim_config={"learning_rate": 1e-2}, lr_decay=0.9, batch_size=20,
                   num_train_samples=50, verbose=False, seed=3, sampling="permutation")
    return Solver(model, data, **{**options, **kwargs})


def _net():
    return FullyConnectedNet([16, 8], input_dim=10, num_classes=4, use_batchnorm=True, weight_scale=0.1,
                             dtype=np.float64, seed=0)


# sgd: the weights step inside model.loss (sgd_steps); adam: every parameter through the rule.
@pytest.mark.parametrize("rule", ["adam", "sgd"])
def test_resumed_training_continues_exactly_like_an_uninterrupted_run(tmp_path, rule):
    data = _toy_data()
    full = _solver(_net(), data, num_epochs=4, update_rule=rule).train()

    first = _solver(_net(), data, num_epochs=2, update_rule=rule, checkpoint_name=str(tmp_path / "run")).train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_epoch_1.npz", "run_epoch_2.npz"]
    resumed = _solver(_net(), data, num_epochs=4, update_rule=rule, resume_from=tmp_path / "run_epoch_2.npz")
    assert resumed.epoch == 2 and len(resumed.loss_history) == len(first.loss_history)
    assert resumed.optim_configs["W1"]["learning_rate"] == pytest.approx(1e-2 * 0.9 ** 2)
    resumed.train()

    assert resumed.loss_history == full.loss_history
    assert resumed.val_acc_history == full.val_acc_history and resumed.best_val_acc == full.best_val_acc
    for name in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[name], full.model.params[name])
    np.testing.assert_array_equal(resumed.model.bn_params[0]["running_mean"], full.model.bn_params[0]["running_mean"])


def test_solver_checkpoint_is_also_a_model_file(tmp_path):
    solver = _solver(_net(), _toy_data(), num_epochs=1, checkpoint_name=str(tmp_path / "run")).train()
    model = load_model(tmp_path / "run_epoch_1.npz")
    X = _toy_data()["X_val"]
    assert model.config() == solver.model.config() and model.loss(X).shape == (20, 4)


def test_resume_refuses_checkpoints_that_do_not_fit(tmp_path):
    data = _toy_data()
    _solver(_net(), data, num_epochs=1, checkpoint_name=str(tmp_path / "run")).train()
    ckpt = tmp_path / "run_epoch_1.npz"
    save_model(tmp_path / "model.npz", _net())
    with pytest.raises(CheckpointError, match="is a model file, not a Solver checkpoint"):
        _solver(_net(), data, resume_from=tmp_path / "model.npz")
    other = FullyConnectedNet([16], input_dim=10, num_classes=4, dtype=np.float64, seed=0)
    with pytest.raises(CheckpointError, match=r"was saved from a FullyConnectedNet with hidden_dims=\[16, 8\], "
                                              r"normalization='batchnorm', weight_scale=0.1; the Solver's "
                                              r"model has hidden_dims=\[16\], normalization=None"):
        _solver(other, data, resume_from=ckpt)
    with pytest.raises(CheckpointError, match="trained with update_rule 'adam'; the Solver uses 'sgd'"):
        _solver(_net(), data, resume_from=ckpt, update_rule="sgd")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        _solver(_net(), data, resume_from=tmp_path / "nope.npz")
    # num_epochs counts the epochs done: fewer than the checkpoint's would train nothing.
    _solver(_net(), data, num_epochs=2, checkpoint_name=str(tmp_path / "two")).train()
    with pytest.raises(ValueError, match=r"num_epochs must be at least the 2 epochs .*two_epoch_2.npz "
                                         r"has already done \(it counts them\), got 1"):
        _solver(_net(), data, num_epochs=1, resume_from=tmp_path / "two_epoch_2.npz")

    # A checkpoint whose training state lost a parameter's optimizer entry: refused, solver untouched.
    with np.load(ckpt) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__nndl__"]))
    del meta["solver"]["optim_scalars"]["W2"]
    arrays["__nndl__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "damaged.npz", **arrays)
    solver = _solver(_net(), data)
    before = {k: v.copy() for k, v in solver.model.params.items()}
    with pytest.raises(CheckpointError, match="damaged.npz: the training state is incomplete or damaged"):
        solver.resume(tmp_path / "damaged.npz")
    assert solver.epoch == 0 and all(np.array_equal(before[k], solver.model.params[k]) for k in before)

    # Damaged best-epoch entries are found before anything changes too.
    for key, value in (("bestbn/x/running_mean", np.zeros(3)), ("best/W1", np.zeros((2, 2))),
                       ("best/W2", None)):
        with np.load(ckpt) as npz:
            arrays = dict(npz)
        if value is None:
            del arrays[key]  # the best epoch without one of its parameters
        else:
            arrays[key] = value
        np.savez(tmp_path / "damaged_best.npz", **arrays)
        with pytest.raises(CheckpointError, match="damaged_best.npz: "):
            solver.resume(tmp_path / "damaged_best.npz")
        assert solver.epoch == 0 and all(np.array_equal(before[k], solver.model.params[k]) for k in before)


def test_damaged_best_batchnorm_averages_are_refused_before_anything_changes(tmp_path):
    _solver(_net(), _toy_data(), num_epochs=2, checkpoint_name=str(tmp_path / "run")).train()
    with np.load(tmp_path / "run_epoch_2.npz") as npz:
        good = dict(npz)
    key = next(k for k in good if k.startswith("bestbn/0/running_mean"))
    for change in ({key: good[key][:2]}, {key: good[key][:1]}, {"bestbn/5/running_mean": good[key]}):
        np.savez(tmp_path / "bad.npz", **{**good, **change})
        solver = _solver(_net(), _toy_data(), num_epochs=4)
        before = {k: v.copy() for k, v in solver.model.params.items()}
        with pytest.raises(CheckpointError, match="best batchnorm"):
            solver.resume(tmp_path / "bad.npz")
        assert solver.epoch == 0 and all(np.array_equal(before[k], solver.model.params[k]) for k in before)


def test_checkpoint_keeps_the_best_epochs_batchnorm_averages(tmp_path):
    first = _solver(_net(), _toy_data(), num_epochs=2, checkpoint_name=str(tmp_path / "run")).train()
    assert first.best_bn_stats and first.best_bn_stats[0]["running_mean"].any()
    resumed = _solver(_net(), _toy_data(), num_epochs=4, resume_from=tmp_path / "run_epoch_2.npz")
    assert len(resumed.best_bn_stats) == len(first.best_bn_stats)
    for saved, restored in zip(first.best_bn_stats, resumed.best_bn_stats):
        assert sorted(saved) == sorted(restored)
        for key in saved:
            np.testing.assert_array_equal(restored[key], saved[key])


def test_a_loaded_dropout_model_trains_with_fresh_masks(tmp_path):
    model = FullyConnectedNet([16], input_dim=10, num_classes=3, dropout=0.5, seed=0)  # fixed mask
    save_model(tmp_path / "m.npz", model)
    X, y = np.random.default_rng(0).standard_normal((8, 10)), np.arange(8) % 3
    for seed in (None, 5, np.random.default_rng(5)):
        loaded = load_model(tmp_path / "m.npz", seed=seed)
        assert "seed" not in loaded.dropout_param
        first, second = (loaded.loss(X, y)[1]["W1"] for _ in range(2))
        assert not np.array_equal(first, second)  # a new mask each call
    a, b = (load_model(tmp_path / "m.npz", seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.loss(X, y)[1]["W1"], b.loss(X, y)[1]["W1"])  # reproducible
    with pytest.raises(TypeError, match="seed must be None, a non-negative int or a numpy Generator"):
        load_model(tmp_path / "m.npz", seed="x")


def test_numpy_scalars_in_metadata_and_optimizer_config_are_saved(tmp_path):
    model = FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0)
    save_model(tmp_path / "m.npz", model, epochs=np.int64(5), val_acc=np.float32(0.5))
    assert load_model(tmp_path / "m.npz").metadata["epochs"] == 5
    data = _toy_data()
    solver = _solver(_net(), data, num_epochs=1, update_rule="sgd_momentum",
                     optim_config={"learning_rate": 1e-2, "momentum": np.float32(0.9)},
                     checkpoint_name=str(tmp_path / "run"))
    solver.train()
    assert load_model(tmp_path / "run_epoch_1.npz").metadata["solver"]["optim_scalars"]["W1"]["momentum"] == \
        pytest.approx(0.9)


def test_a_model_save_model_cannot_write_is_refused_before_training(tmp_path):
    from nndl.neural_net import TwoLayerNet as CourseTwoLayerNet

    course = CourseTwoLayerNet(10, 8, 4)
    with pytest.raises(TypeError, match="save_model supports nndl.fc_net.FullyConnectedNet .* got "
                                        "nndl.neural_net.TwoLayerNet"):
        save_model(tmp_path / "m.npz", course)
    with pytest.raises(TypeError, match="checkpoint_name needs a model save_model can write"):
        Solver(course, _toy_data(), checkpoint_name=str(tmp_path / "run"))

    class MyNet(FullyConnectedNet):  # load_model could not rebuild it: refused too
        pass

    with pytest.raises(TypeError, match="got .*MyNet"):
        save_model(tmp_path / "m.npz", MyNet([4], input_dim=3, num_classes=2, seed=0))
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("value, got", [
    ({"a": 1}, "got a dict"),
    ([np.zeros(2), np.zeros(3)], "got a list"),
    (np.array([None, 1.0]), "got an ndarray of dtype object"),
])
def test_save_model_refuses_what_only_pickle_could_store(tmp_path, value, got):
    # np.savez would pickle these, and load_model refuses pickles: the file would not load.
    model = FullyConnectedNet([3], input_dim=4, num_classes=2, seed=0)
    path = tmp_path / "model.npz"
    with pytest.raises(TypeError, match=re.escape("preprocessing['mean_image'] must be an array of numbers, "
                                                  "booleans or strings (files are written without pickle), "
                                                  + got)):
        save_model(path, model, preprocessing={"mean_image": value})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("class_names", [5, "cat"])
def test_save_model_names_bad_class_names(tmp_path, class_names):
    model = FullyConnectedNet([3], input_dim=4, num_classes=2, seed=0)
    with pytest.raises(TypeError, match=re.escape(f"class_names must be a sequence of names or None, "
                                                  f"got {class_names!r}")):
        save_model(tmp_path / "model.npz", model, class_names=class_names)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("class_names", [[0, 1], range(2), np.array(["0", "1"]), ("0", "1")])
def test_save_model_stores_class_names_as_strings(tmp_path, class_names):
    model = FullyConnectedNet([3], input_dim=4, num_classes=2, seed=0)
    save_model(tmp_path / "model.npz", model, class_names=class_names)
    meta, _ = load_checkpoint(tmp_path / "model.npz")
    assert meta["class_names"] == ["0", "1"]
