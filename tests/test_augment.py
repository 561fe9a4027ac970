"""Tests for nndl.augment: what each augmentation does to known images, shapes, dtypes, errors."""

import numpy as np
import pytest

from nndl.augment import brightness_jitter, compose, random_crop, random_flip, standard_augment


class FixedDraws:
    """A stand-in random source whose ``random`` returns given values."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self, size):
        return np.broadcast_to(np.asarray(self.values.pop(0), dtype=float), size).copy()


def _images(n=2, shape=(3, 4, 5), dtype=np.float64):
    return np.arange(n * int(np.prod(shape)), dtype=dtype).reshape((n,) + shape)


def test_flip_mirrors_the_chosen_images_only():
    X = _images()
    out = random_flip((3, 4, 5))(X.copy(), FixedDraws([0.1, 0.9]))
    np.testing.assert_array_equal(out[0], X[0][:, :, ::-1])
    np.testing.assert_array_equal(out[1], X[1])


@pytest.mark.parametrize("mode", ["reflect", "zero"])
def test_crop_at_the_centre_offset_is_the_identity(mode):
    X = _images()
    # offset = floor(u * (2p + 1)); u = 0.5 gives p: the window starts at the original image.
    out = random_crop((3, 4, 5), padding=2, mode=mode)(X.copy(), FixedDraws(0.5))
    np.testing.assert_array_equal(out, X)


def test_crop_shifts_with_reflected_and_zero_borders():
    X = _images(n=1, shape=(1, 3, 3))
    # Offsets (0, 0): the window's top-left is the padding corner; a shift by one pixel down-right.
    reflect = random_crop((1, 3, 3), padding=1)(X.copy(), FixedDraws(0.0))
    zero = random_crop((1, 3, 3), padding=1, mode="zero")(X.copy(), FixedDraws(0.0))
    img = X[0, 0]
    np.testing.assert_array_equal(reflect[0, 0], np.pad(img, 1, mode="reflect")[:3, :3])
    np.testing.assert_array_equal(zero[0, 0], [[0, 0, 0], [0, 0, 1], [0, 3, 4]])


def test_rows_in_rows_out_and_dtype_kept():
    X = _images(n=8, shape=(3, 32, 32), dtype=np.float32).reshape(8, -1)
    out = standard_augment((3, 32, 32))(X.copy(), np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == np.float32
    # Flips and crops move pixels, they do not invent values (reflect padding repeats real ones).
    assert set(np.unique(out)) <= set(np.unique(X))


def test_augmentations_draw_from_the_global_state_too():
    np.random.seed(0)
    a = standard_augment((3, 8, 8))(_images(4, (3, 8, 8)), np.random.mtrand._rand)
    np.random.seed(0)
    b = standard_augment((3, 8, 8))(_images(4, (3, 8, 8)), np.random.mtrand._rand)
    np.testing.assert_array_equal(a, b)


def test_brightness_adds_one_offset_per_image_and_channel():
    X = np.zeros((2, 3, 2, 2))
    out = brightness_jitter((3, 2, 2), 0.5)(X, FixedDraws(1.0))
    np.testing.assert_allclose(out, 0.5)
    out = brightness_jitter((3, 2, 2), 0.5)(np.zeros((2, 3, 2, 2)), np.random.default_rng(1))
    assert np.all(np.abs(out) <= 0.5) and np.all(out == out[:, :, :1, :1])


def test_compose_applies_in_order():
    calls = []
    first = lambda X, rng: calls.append("a") or X + 1  # noqa: E731
    second = lambda X, rng: calls.append("b") or X * 2  # noqa: E731
    assert compose(first, second)(np.ones(2), None).tolist() == [4.0, 4.0] and calls == ["a", "b"]


@pytest.mark.parametrize("make, message", [
    (lambda: random_crop((3, 32, 32), padding=32), "padding must be smaller than the image's 32x32 pixels"),
    (lambda: random_crop((3, 32, 32), padding=-1), "padding must be an int >= 0, got -1"),
    (lambda: random_crop((3, 32, 32), mode="wrap"), "mode must be 'reflect' or 'zero', got 'wrap'"),
    (lambda: random_flip((32, 32)), r"image_shape must be \(channels, height, width\)"),
    (lambda: random_flip((3, 32, 32), p=2), r"p must be a probability in \[0, 1\], got 2"),
    (lambda: brightness_jitter((3, 32, 32), -0.1), "delta must be a finite number >= 0, got -0.1"),
    (lambda: compose(1), "compose takes augmentations"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_batch_of_the_wrong_size_is_named():
    with pytest.raises(ValueError, match=r"X must be a batch of images \(3, 4, 4\)"):
        random_flip((3, 4, 4))(np.zeros((2, 10)), np.random.default_rng(0))


@pytest.mark.parametrize("H, W, p", [(32, 32, 4), (3, 5, 2), (4, 4, 3), (8, 8, 1), (2, 2, 1)])
@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("zero", "constant")])
def test_padding_equals_numpys(H, W, p, mode, numpy_mode):
    from nndl.augment import _pad

    X = np.random.default_rng(0).standard_normal((3, 2, H, W))
    np.testing.assert_array_equal(_pad(X, p, mode), np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)), mode=numpy_mode))
