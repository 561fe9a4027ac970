"""Tests for nndl.checkpoint: exact round trip, atomic writes, refusal of foreign files."""

import json

import numpy as np
import pytest

from nndl.checkpoint import CheckpointError, load_model, save_model
from nndl.fc_net import FullyConnectedNet, TwoLayerNet


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


def test_files_that_are_not_nndl_models_are_refused(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="not an nndl model file"):
        load_model(tmp_path / "text.npz")
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
