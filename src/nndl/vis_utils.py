"""Pictures of data and weights.

Contract
--------
``visualize_grid(Xs, ubound=255.0, padding=1)`` tiles N images of shape (H, W, C) into one
square-ish grid image, each image rescaled on its own to [0, ubound]; it needs only NumPy.
"""

import math

import numpy as np

__all__ = ["visualize_grid"]


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Tile images into a grid, for looking at first-layer weights.

    Parameters
    ----------
    Xs : ndarray, shape (N, H, W, C)
    ubound : float
        Each image is rescaled to [0, ubound].
    padding : int
        Blank pixels between neighbouring images.

    Returns
    -------
    grid : ndarray, shape (G*H + (G-1)*padding, G*W + (G-1)*padding, C), G = ceil(sqrt(N))
    """
    Xs = np.asarray(Xs)
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got {Xs.shape}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    N, H, W, C = Xs.shape
    G = max(math.ceil(math.sqrt(N)), 1)
    grid = np.zeros((G * H + (G - 1) * padding, G * W + (G - 1) * padding, C))
    for n in range(N):
        row, col = divmod(n, G)
        img = Xs[n].astype(np.float64)
        low, high = img.min(), img.max()
        scaled = ubound * (img - low) / (high - low) if high > low else np.zeros_like(img)
        y0, x0 = row * (H + padding), col * (W + padding)
        grid[y0:y0 + H, x0:x0 + W] = scaled
    return grid
