"""Data augmentation for image batches, in NumPy: random flips, padded crops, brightness jitter.

Contract
--------
An augmentation is a callable ``augment(X, rng) -> X`` taking a batch ``X`` of shape
``(N, C, H, W)`` or flat rows ``(N, C*H*W)`` (channel-first order, as nndl's datasets
give them) and a random source (``np.random.Generator`` or NumPy's global ``RandomState``,
whatever the Solver samples its batches with), and returning a batch of the same shape and
dtype. It may change ``X`` in place: the Solver hands it the freshly gathered batch, never
the training set itself. Each factory checks its arguments against the image shape once:

- ``random_flip(image_shape, p=0.5)``: mirror each image left-right with probability ``p``;
- ``random_crop(image_shape, padding=4, mode='reflect')``: pad by ``padding`` pixels on every
  side (``'reflect'`` or ``'zero'``) and cut an ``H x W`` window at a random offset;
- ``brightness_jitter(image_shape, delta)``: add one uniform offset in ``[-delta, delta]`` per
  image and channel (the data's units; with standardised data, in standard deviations);
- ``compose(*augmentations)`` applies them in order; ``standard_augment(image_shape)`` is
  the usual CIFAR-10 pair, flip and 4-pixel reflect crop.

All of them work on the whole batch with a few vectorised operations (one gather for the crops),
so an epoch's augmentation costs a small fraction of its matrix products
(``benchmarks/bench_recipes.py --overhead`` measures it).
"""

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["random_flip", "random_crop", "brightness_jitter", "compose", "standard_augment"]


def _image_shape(image_shape):
    """``image_shape`` as a tuple ``(C, H, W)`` of positive ints, else ``ValueError``."""
    try:
        shape = tuple(int(v) for v in image_shape)
        ok = len(shape) == 3 and all(v > 0 and v == s for v, s in zip(shape, image_shape))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"image_shape must be (channels, height, width) of positive ints, got {image_shape!r}")
    return shape


def _as_images(X, shape):
    """A (N, C, H, W) view of the batch ``X``, checked against ``shape``."""
    X = np.asarray(X)
    size = int(np.prod(shape))
    if X.ndim < 2 or int(np.prod(X.shape[1:])) != size:
        raise ValueError(f"X must be a batch of images {shape} (or rows of {size} values), got shape {X.shape}")
    return X.reshape((X.shape[0],) + shape)


def _uniform(rng, size):
    """Uniform [0, 1) draws from a Generator or a RandomState (both have ``random``)."""
    return rng.random(size)


def random_flip(image_shape, p=0.5):
    """Mirror each image left-right with probability ``p``; returns an augmentation."""
    shape = _image_shape(image_shape)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")

    def flip(X, rng):
        images = _as_images(X, shape)
        chosen = _uniform(rng, images.shape[0]) < p
        images[chosen] = images[chosen, :, :, ::-1]
        return images.reshape(np.shape(X))

    return flip


def random_crop(image_shape, padding=4, mode="reflect"):
    """Pad every side by ``padding`` pixels and cut a random window of the image's size.

    ``mode``: 'reflect' mirrors the border pixels (without repeating the edge), 'zero' pads
    with zeros. ``padding`` must be smaller than the image's height and width.
    """
    shape = _image_shape(image_shape)
    _, H, W = shape
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if padding >= min(H, W):
        raise ValueError(f"padding must be smaller than the image's {H}x{W} pixels (the crop would be "
                         f"mostly border), got {padding}")
    if mode not in ("reflect", "zero"):
        raise ValueError(f"mode must be 'reflect' or 'zero', got {mode!r}")
    def crop(X, rng):
        images = _as_images(X, shape)
        if padding == 0:
            return X
        N = images.shape[0]
        padded = _pad(images, padding, mode)
        offsets = (_uniform(rng, (2, N)) * (2 * padding + 1)).astype(np.intp)
        # Every H x W window of every padded image, as a view; image n takes its window at
        # (dy_n, dx_n). One gather of the batch's size, no copy of the windows.
        windows = sliding_window_view(padded, (H, W), axis=(2, 3))
        return windows[np.arange(N), :, offsets[0], offsets[1]].reshape(np.shape(X))

    return crop


def _pad(images, p, mode):
    """(N, C, H, W) images padded by ``p`` on every side: mirrored without repeating the edge
    ('reflect', as ``np.pad``'s mode of that name) or zeros. Written out because ``np.pad`` took
    most of a crop's time here."""
    N, C, H, W = images.shape
    out = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=images.dtype)
    out[:, :, p:p + H, p:p + W] = images
    if mode == "reflect":
        # Rows first (inside the image's columns), then whole columns, which fills the corners.
        k = np.arange(p)
        out[:, :, :p, p:p + W] = images[:, :, p - k, :]
        out[:, :, p + H:, p:p + W] = images[:, :, H - 2 - k, :]
        out[:, :, :, :p] = out[:, :, :, 2 * p - k]
        out[:, :, :, p + W:] = out[:, :, :, p + W - 2 - k]
    return out


def brightness_jitter(image_shape, delta):
    """Add a uniform offset in ``[-delta, delta]`` to each image's channels (one per channel)."""
    shape = _image_shape(image_shape)
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0 <= delta < np.inf:
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")

    def jitter(X, rng):
        images = _as_images(X, shape)
        offsets = (2 * _uniform(rng, (images.shape[0], shape[0], 1, 1)) - 1) * delta
        images += offsets.astype(images.dtype)
        return images.reshape(np.shape(X))

    return jitter


def compose(*augmentations):
    """One augmentation applying ``augmentations`` in order."""
    for a in augmentations:
        if not callable(a):
            raise TypeError(f"compose takes augmentations (callables X, rng -> X), got {a!r}")

    def composed(X, rng):
        for a in augmentations:
            X = a(X, rng)
        return X

    return composed


def standard_augment(image_shape, padding=4, mode="reflect"):
    """The usual CIFAR-10 augmentation: a random left-right flip and a padded random crop."""
    return compose(random_flip(image_shape), random_crop(image_shape, padding, mode))
