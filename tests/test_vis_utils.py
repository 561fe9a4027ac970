"""Tests for nndl.vis_utils: visualize_grid and the training-curve and weight plots."""

import re
import sys

import numpy as np
import pytest

from nndl.vis_utils import (
    first_layer_images, plot_accuracy_history, plot_first_layer_weights, plot_loss_history, visualize_grid,
)


def test_grid_shape_and_per_image_scaling():
    rng = np.random.default_rng(0)
    Xs = rng.standard_normal((10, 4, 5, 3))
    grid = visualize_grid(Xs, ubound=255.0, padding=2)
    # ceil(sqrt(10)) = 4 tiles per side
    assert grid.shape == (4 * 4 + 3 * 2, 4 * 5 + 3 * 2, 3)
    first = grid[:4, :5]
    assert first.min() == 0.0 and first.max() == pytest.approx(255.0)
    np.testing.assert_allclose(first, 255 * (Xs[0] - Xs[0].min()) / np.ptp(Xs[0]))
    assert np.all(grid[4:6] == 0)  # padding stays blank


def test_grid_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"Xs must have shape \(N, H, W, C\)"):
        visualize_grid(np.zeros((3, 4, 4)))


# --------------------------------------------------------------------------- plots

def test_first_layer_images_inverts_the_flattening_of_images():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((7, 3, 4, 5))  # (M, C, H, W), as the model sees its inputs
    W1 = images.reshape(7, -1).T                 # unit m's weights are image m, flattened
    np.testing.assert_array_equal(first_layer_images(W1, (3, 4, 5)), images.transpose(0, 2, 3, 1))
    with pytest.raises(ValueError, match=r"W1 must have shape \(60, M\) for images of shape \(3, 4, 5\)"):
        first_layer_images(W1[:-1], (3, 4, 5))


def _png_size(path):
    import matplotlib.image

    return matplotlib.image.imread(path).shape


def test_loss_and_accuracy_plots_hold_the_data_and_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    loss = np.linspace(2.3, 0.1, 300) + 0.05 * np.random.default_rng(0).random(300)
    fig = plot_loss_history(loss, tmp_path / "loss.png")
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), loss)
    assert _png_size(tmp_path / "loss.png")[:2] == (400, 700)
    fig = plot_accuracy_history([0.1, 0.6, 0.8], [0.1, 0.5, 0.7], tmp_path / "acc.png")
    assert [list(line.get_ydata()) for line in fig.axes[0].lines] == [[0.1, 0.6, 0.8], [0.1, 0.5, 0.7]]
    assert (tmp_path / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.png", "loss.png"]  # no temporary left
    with pytest.raises(ValueError, match="non-empty and of equal length"):
        plot_accuracy_history([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="loss_history must be a non-empty sequence"):
        plot_loss_history([])


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_first_layer_weight_grid_shows_every_unit(tmp_path, shape):
    pytest.importorskip("matplotlib")
    W1 = np.random.default_rng(0).standard_normal((int(np.prod(shape)), 10))
    fig = plot_first_layer_weights(W1, shape, tmp_path / "w.png")
    shown = fig.axes[0].images[0].get_array()
    pad = max(shape[1] // 8, 1)
    # 10 units: 4 tiles per row, 3 rows (the empty fourth row of the square grid is dropped)
    assert shown.shape[:2] == (3 * shape[1] + 2 * pad, 4 * shape[2] + 3 * pad)
    assert "10 units" in fig.axes[0].get_title() and (tmp_path / "w.png").is_file()
    with pytest.raises(ValueError, match="1 or 3 channels"):
        plot_first_layer_weights(np.zeros((32, 2)), (2, 4, 4))


def test_failed_plot_write_keeps_the_previous_file(tmp_path, monkeypatch):
    matplotlib_figure = pytest.importorskip("matplotlib.figure")
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")

    def crash(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib_figure.Figure, "savefig", crash)
    with pytest.raises(OSError, match="disk full"):
        plot_loss_history([1.0, 0.5], path)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_plots_without_matplotlib_say_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'nndl\[cli\]'"):
        plot_loss_history([1.0, 0.5])


@pytest.mark.parametrize("call, error, message", [
    (lambda: visualize_grid(np.zeros((2, 3, 3, 1)), padding="a"), TypeError, "padding must be an int >= 0, got 'a'"),
    (lambda: visualize_grid(np.zeros((2, 3, 3, 1)), padding=-1), ValueError, "padding must be >= 0, got -1"),
    (lambda: first_layer_images(np.zeros((12, 5)), (3, 2)), ValueError,
     "image_shape must be three positive ints (C, H, W), got (3, 2)"),
    (lambda: first_layer_images(np.zeros((12, 5)), (3, 2, 0)), ValueError,
     "image_shape must be three positive ints (C, H, W), got (3, 2, 0)"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
