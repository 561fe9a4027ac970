"""Pictures of data, weights and training runs.

Contract
--------
``visualize_grid(Xs, ubound=255.0, padding=1)`` tiles N images of shape (H, W, C) into one
square-ish grid image, each image rescaled on its own to [0, ubound]; it needs only NumPy.

The plotting helpers ``plot_loss_history``, ``plot_accuracy_history`` and
``plot_first_layer_weights`` draw on a bare ``matplotlib.figure.Figure`` (rendered by the Agg
backend, so no display is needed and pyplot's global state is never touched), save it as a PNG
when given a path, and return the figure. matplotlib is imported only when one of them is
called, so the rest of nndl needs NumPy alone; without matplotlib they raise ``ImportError``
saying which extra to install. Files are written to a temporary name and renamed into place.
"""

import math
import numbers
import operator

import numpy as np

from ._files import write_atomically

__all__ = ["visualize_grid", "first_layer_images", "plot_loss_history", "plot_accuracy_history",
           "plot_first_layer_weights"]


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
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral):
        raise TypeError(f"padding must be an int >= 0, got {padding!r}")
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


def first_layer_images(W1, image_shape):
    """The first-layer weights of a fully-connected net as one image per hidden unit.

    Parameters
    ----------
    W1 : ndarray, shape (D, M)
        Weights from D = C*H*W inputs (flattened in (C, H, W) order, as ``X.reshape(N, -1)``
        flattens (N, C, H, W) images) to M hidden units.
    image_shape : tuple (C, H, W)

    Returns
    -------
    ndarray, shape (M, H, W, C)
        The layout ``visualize_grid`` takes.
    """
    W1 = np.asarray(W1)
    try:
        C, H, W = (operator.index(n) for n in image_shape)
        if min(C, H, W) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be three positive ints (C, H, W), got {image_shape!r}") from None
    if W1.ndim != 2 or W1.shape[0] != C * H * W:
        raise ValueError(f"W1 must have shape ({C * H * W}, M) for images of shape {tuple(image_shape)}, "
                         f"got {W1.shape}")
    return W1.T.reshape(-1, C, H, W).transpose(0, 2, 3, 1)


def _figure(figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'nndl[cli]'") from None
    return Figure(figsize=figsize, dpi=100, layout="constrained")


def _save(fig, path):
    """Write ``fig`` as a PNG to ``path`` (atomically) if a path is given; return ``fig``."""
    if path is not None:
        write_atomically(path, lambda f: fig.savefig(f, format="png"), suffix=".png.tmp")
    return fig


def plot_loss_history(loss_history, path=None, title="Training loss"):
    """The loss of every iteration, with a moving average to show the trend.

    Parameters
    ----------
    loss_history : sequence of float, length T
    path : str or path, optional
        Where to save the PNG.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    loss = np.asarray(loss_history, dtype=np.float64)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"loss_history must be a non-empty sequence of numbers, got shape {loss.shape}")
    fig = _figure((7, 4))
    ax = fig.subplots()
    iterations = np.arange(1, loss.size + 1)
    ax.plot(iterations, loss, ".", markersize=2, alpha=0.4, color="tab:blue", label="minibatch loss")
    window = max(loss.size // 50, 1)
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(iterations[window - 1:], smooth, "-", color="tab:red", label=f"mean of {window}")
    ax.set(title=title, xlabel="iteration", ylabel="loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_accuracy_history(train_acc_history, val_acc_history, path=None, title="Accuracy"):
    """Training and validation accuracy at each epoch (the Solver's epoch 0 is measured after
    its first iteration).

    Parameters
    ----------
    train_acc_history, val_acc_history : sequence of float, length E + 1
    path : str or path, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    train, val = (np.asarray(h, dtype=np.float64) for h in (train_acc_history, val_acc_history))
    if train.ndim != 1 or train.shape != val.shape or train.size == 0:
        raise ValueError(f"train_acc_history and val_acc_history must be non-empty and of equal length, "
                         f"got shapes {train.shape} and {val.shape}")
    fig = _figure((7, 4))
    ax = fig.subplots()
    epochs = np.arange(train.size)
    ax.plot(epochs, train, "-o", markersize=4, label="train")
    ax.plot(epochs, val, "-o", markersize=4, label="val")
    ax.set(title=title, xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_first_layer_weights(W1, image_shape, path=None, title="First-layer weights"):
    """Each hidden unit's incoming weights drawn as an image, tiled in a grid.

    Parameters
    ----------
    W1 : ndarray, shape (D, M)
    image_shape : tuple (C, H, W)
        C is 1 (drawn in grey) or 3 (drawn in colour).
    path : str or path, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = first_layer_images(W1, image_shape)
    C = image_shape[0]
    if C not in (1, 3):
        raise ValueError(f"image_shape must have 1 or 3 channels, got {tuple(image_shape)}")
    padding = max(image_shape[1] // 8, 1)
    grid = visualize_grid(images, ubound=1.0, padding=padding)
    # The grid is square; drop the rows of empty tiles below the last unit.
    per_row = math.ceil(math.sqrt(len(images)))
    grid = grid[:math.ceil(len(images) / per_row) * (image_shape[1] + padding) - padding]
    # 6 inches wide, tall enough for the grid's aspect ratio plus the title.
    fig = _figure((6, 6 * grid.shape[0] / grid.shape[1] + 0.4))
    ax = fig.subplots()
    if C == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_title(f"{title} ({images.shape[0]} units)")
    ax.axis("off")
    return _save(fig, path)
