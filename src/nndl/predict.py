"""``nndl predict``: apply a saved model to new data, from arrays or image files.

Contract
--------
``nndl predict MODEL INPUT... [--top K] [--output FILE.csv [--force]] [--key NAME] [--tta flip]``
prints, for every example of every INPUT, its ``K`` most probable classes with their
probabilities (one line per example), or writes them to a CSV file. Exit status and errors
follow ``nndl.cli``: a bad input is one line naming the file, what it holds and what the model
expects; an existing ``--output`` is never overwritten without ``--force``.

Inputs are raw data, as the dataset the model was trained on stores it; the model file's
preprocessing (mean image, per-channel std) is applied here, as ``nndl evaluate`` does:

- ``.npy``: one example of the model's input shape, or a batch ``(N, *shape)``; flat rows
  ``(N, D)``, channels-last images ``(N, H, W, C)`` or ``(H, W, C)`` and grey images without a
  channel axis ``(N, H, W)`` are accepted too.
- ``.npz``: the array named by ``--key``, or the archive's only array.
- image files (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``; needs Pillow, the ``images``
  extra): converted to the model's channels (RGB or grey) and resized to its image size, pixel
  values 0-255 as CIFAR-10 stores them. A digits model reads an image as dark ink on light
  paper and scales it to the digits' 0-16 range.

``--tta flip`` averages each image's prediction with its mirror image's (test-time
augmentation, for models trained with random flips).

The library functions ``read_inputs(path, input_shape, ...)`` and ``class_probabilities(model,
X, tta=None)`` are what the command uses; both are importable.
"""

import csv
import io
import os
import sys

import numpy as np

from .cli import UserError, _number
from .layers import softmax

__all__ = ["add_predict_arguments", "run_predict_command", "read_inputs", "class_probabilities",
           "IMAGE_SUFFIXES", "TEST_TIME_AUGMENTATIONS"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

TEST_TIME_AUGMENTATIONS = ("flip",)
"""What ``class_probabilities``'s ``tta`` (and ``--tta`` of ``nndl predict``/``evaluate``) accepts."""

# How an image file's 0-255 grey levels map onto a dataset's pixel values: (scale, invert).
# The built-in digits are 0-16 with the ink high; a photo or scan has dark ink on light paper.
_IMAGE_PIXELS = {"digits": (16.0 / 255.0, True)}


def add_predict_arguments(parser):
    """The options of ``nndl predict``."""
    parser.add_argument("model", metavar="MODEL", help="a model file: nndl train's model.npz, a checkpoint, a "
                                                       "search's best_model.npz or MLPClassifier.save's file")
    parser.add_argument("inputs", metavar="INPUT", nargs="+",
                        help="a .npy or .npz array of raw examples, or image files (" + ", ".join(IMAGE_SUFFIXES)
                             + "; needs Pillow)")
    parser.add_argument("--top", type=_number(int, lambda v: v >= 1, "an integer >= 1"), default=1, metavar="K",
                        help="print the K most probable classes of each example (default: 1)")
    parser.add_argument("--output", metavar="FILE.csv",
                        help="write the predictions to this CSV file instead of printing them")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    parser.add_argument("--key", metavar="NAME", help="the array of a .npz input to use (default: its only array)")
    add_tta_argument(parser)
    return parser


def add_tta_argument(parser):
    """``--tta``, shared by ``nndl predict`` and ``nndl evaluate``."""
    parser.add_argument("--tta", choices=TEST_TIME_AUGMENTATIONS,
                        help="test-time augmentation: 'flip' averages each image's prediction with its mirror "
                             "image's (for models trained with flips, e.g. the cifar10 recipe; not for digits)")


def _input_shape(model):
    """The shape of one raw example: the mean image's when the model file has one, else flat
    (a model built in Python has no ``preprocessing``)."""
    mean = (getattr(model, "preprocessing", None) or {}).get("mean_image")
    if mean is not None and int(np.prod(mean.shape)) == model.input_dim:
        return tuple(mean.shape)
    return (model.input_dim,)


def _load_array(path, key):
    """The array stored in ``path`` (.npy or .npz), never unpickling objects."""
    try:
        stored = np.load(path, allow_pickle=False)
        if isinstance(stored, np.ndarray):
            return stored
        with stored:
            return _npz_array(path, stored, key)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable .npy/.npz array ({' '.join(str(exc).split())})") from None


def _npz_array(path, stored, key):
    names = list(stored.files)
    if key is None:
        if len(names) != 1:
            raise UserError(f"{path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                            f"choose one with --key")
        key = names[0]
    if key not in names:
        raise UserError(f"--key {key!r} is not an array of {path}; it holds {', '.join(names) or 'none'}")
    return stored[key]


def _as_examples(path, X, input_shape):
    """``X`` as a batch ``(N, *input_shape)``, or a one-line error naming the accepted shapes."""
    dim = int(np.prod(input_shape))
    if X.dtype.kind not in "biuf":
        raise UserError(f"{path} holds {X.dtype} data; expected numbers")
    if len(input_shape) == 3 and input_shape[0] == 1 and X.ndim in (2, 3) and X.shape[-2:] == input_shape[1:]:
        X = X.reshape((-1,) + input_shape)  # grey images without their channel axis: (N, H, W) or (H, W)
    if X.shape == input_shape or (X.ndim == 1 and X.size == dim):
        X = X.reshape((1,) + input_shape)
    elif X.shape[1:] == input_shape:
        pass
    elif X.ndim == 2 and X.shape[1] == dim:
        X = X.reshape((-1,) + input_shape)
    elif len(input_shape) == 3 and X.ndim in (3, 4) and X.shape[-3:] == input_shape[1:] + input_shape[:1]:
        # channels-last (N, H, W, C) or one (H, W, C) image, as image libraries store them
        X = X.reshape((-1,) + X.shape[-3:]).transpose(0, 3, 1, 2)
    else:
        shapes = [f"(N, {', '.join(map(str, input_shape))})"] + ([f"(N, {dim})"] if len(input_shape) > 1 else [])
        if len(input_shape) == 3:
            c, h, w = input_shape
            shapes.insert(1, f"(N, {h}, {w})" if c == 1 else f"(N, {h}, {w}, {c})")
        raise UserError(f"{path} holds an array of shape {X.shape}; the model takes examples of shape "
                        f"{input_shape}: expected {', '.join(shapes)} or one example")
    if not len(X):
        raise UserError(f"{path} holds no examples (shape {X.shape})")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise UserError(f"{path} holds NaN or infinite values")
    return X


def _read_image(path, input_shape, dataset):
    """One image file as an example of ``input_shape`` (C, H, W)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UserError(f"reading {path} needs Pillow: pip install 'nndl[images]'") from None
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise UserError(f"{path} is an image, but the model takes {input_shape[0] if len(input_shape) == 1 else input_shape} "
                        f"features, not 1- or 3-channel images; give a .npy array")
    channels, height, width = input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L").resize((width, height), Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.float64)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable image ({' '.join(str(exc).split())})") from None
    pixels = pixels.reshape(height, width, channels).transpose(2, 0, 1)
    scale, invert = _IMAGE_PIXELS.get(dataset, (1.0, False))
    if invert:
        pixels = 255.0 - pixels
    return (pixels * scale)[None]


def read_inputs(path, input_shape, key=None, dataset=None):
    """Raw examples from one input file.

    Parameters
    ----------
    path : str
        A ``.npy``/``.npz`` array or an image file (see the module docstring).
    input_shape : tuple of int
        The shape of one example the model takes, e.g. (3, 32, 32) or (64,).
    key : str or None
        The array of an ``.npz`` file.
    dataset : str or None
        The dataset the model was trained on (how image pixels are scaled).

    Returns
    -------
    X : ndarray, shape (N, *input_shape), float64
    """
    if not os.path.isfile(path):
        raise UserError(f"INPUT {path} does not exist" if not os.path.exists(path) else f"INPUT {path} is not a file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return _read_image(path, input_shape, dataset)
    if suffix not in (".npy", ".npz"):
        raise UserError(f"INPUT {path}: expected a .npy or .npz array or an image file "
                        f"({', '.join(IMAGE_SUFFIXES)}), got {suffix or 'no suffix'}")
    return _as_examples(path, _load_array(path, key), tuple(input_shape))


def class_probabilities(model, X, batch_size=1024, tta=None):
    """Softmax probabilities of preprocessed inputs ``X`` (N, ...), shape (N, num_classes), in
    batches so that a large input does not need all its activations at once.

    ``tta='flip'`` (test-time augmentation) averages each image's probabilities with those of
    its left-right mirror image; ``X`` must then be images (N, C, H, W). A model trained with
    random flips has learnt both orientations, and the average of the two predictions is more
    accurate than either (``docs/recipes.md`` has the figures); ``None`` scores ``X`` as it is.
    """
    if tta is not None and tta not in TEST_TIME_AUGMENTATIONS:
        raise ValueError(f"tta must be None or one of {', '.join(TEST_TIME_AUGMENTATIONS)}; got {tta!r}")
    if tta == "flip":
        # Channels-last images would be mirrored along their channels: check the layout against
        # the model's image shape when its file records one.
        image = _input_shape(model)
        known = len(image) == 3
        if X.ndim != 4 or (known and X.shape[1:] != image):
            expected = f"(N, {', '.join(map(str, image))})" if known else "(N, channels, height, width)"
            raise ValueError(f"tta 'flip' needs images {expected}, got inputs of shape {X.shape}")
    out = np.empty((X.shape[0], model.num_classes))
    for start in range(0, X.shape[0], batch_size):
        batch = X[start:start + batch_size].astype(model.dtype, copy=False)
        probs = softmax(model.loss(batch))
        if tta == "flip":
            probs = 0.5 * (probs + softmax(model.loss(batch[..., ::-1])))
        out[start:start + batch_size] = probs
    return out


def check_tta(tta, path, input_shape, model):
    """Refuse ``--tta`` for a model (file ``path``) whose inputs of ``input_shape`` are not images;
    note it for a model that ``nndl train`` trained without flips."""
    if tta is None:
        return
    if len(input_shape) != 3:
        raise UserError(f"--tta {tta}: {path} takes inputs of shape {input_shape}, not images "
                        f"(channels, height, width)")
    training = (getattr(model, "metadata", None) or {}).get("training") or {}
    if "augment" in training and training["augment"] is None:
        print(f"note: {path} was trained without flips (augment none); --tta {tta} may lower its accuracy",
              file=sys.stderr)


def run_predict_command(args):
    """``nndl predict``: see ``add_predict_arguments`` and the module docstring."""
    from ._files import write_atomically
    from .checkpoint import load_model, preprocess

    if args.output is not None:
        if os.path.exists(args.output) and not args.force:
            raise UserError(f"--output {args.output} exists; pass --force to overwrite it")
        directory = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(directory):
            raise UserError(f"--output {args.output}: directory {directory} does not exist")
    model = load_model(args.model)
    if args.top > model.num_classes:
        raise UserError(f"--top {args.top} is more than the model's {model.num_classes} classes")
    names = [str(n) for n in (model.class_names or range(model.num_classes))]
    dataset = ((model.metadata or {}).get("dataset") or {}).get("name")
    input_shape = _input_shape(model)
    check_tta(args.tta, args.model, input_shape, model)
    rows = []
    for path in args.inputs:  # every input is read before anything is written
        X = read_inputs(path, input_shape, args.key, dataset)
        probs = class_probabilities(model, preprocess(model, X), tta=args.tta)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :args.top]
        for i, classes in enumerate(top):
            rows.append((path, i, [(names[c], probs[i, c]) for c in classes]))
    if "mean_image" not in model.preprocessing:
        print(f"note: {args.model} has no mean image; predicting on the inputs as given", file=sys.stderr)
    if args.output is None:
        for path, i, ranked in rows:
            print(f"{path}[{i}]  " + "  ".join(f"{name} {p:.4f}" for name, p in ranked))
        return 0
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["input", "index"] + [f"{field}_{k}" for k in range(1, args.top + 1)
                                          for field in ("class", "probability")])
    for path, i, ranked in rows:
        writer.writerow([path, i] + [v for name, p in ranked for v in (name, f"{p:.6f}")])
    write_atomically(args.output, lambda f: f.write(text.getvalue()), text=True)
    print(f"wrote {len(rows)} predictions to {args.output}")
    return 0
