"""Tests for nndl.vis_utils.visualize_grid."""

import numpy as np
import pytest

from nndl.vis_utils import visualize_grid


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
