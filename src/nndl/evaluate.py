"""``nndl evaluate``: a saved model's accuracy and confusion matrix on its dataset.

Contract
--------
``nndl evaluate MODEL [--dataset NAME] [--data-dir DIR] [--split test|val] [--tta flip]`` loads a
model file (``nndl train``'s ``model.npz``, a checkpoint, ...) and the dataset it was trained on
(recorded in the file; ``--dataset`` and ``--data-dir`` choose another), applies the file's
preprocessing and prints the accuracy and the confusion matrix (rows: true class, columns:
predicted class) on the test split, or on the validation split where there is no test split,
as ``nndl train`` then reported. It writes no file. Exit status and errors follow ``nndl.cli``:
a model that does not name its dataset, whose input size, mean image or classes do not fit the
dataset's, or a split that is empty, is refused in one line.
"""

import os
import sys

import numpy as np

from .cli import UserError, _score
# One loader for every command: data by name with its DatasetSource (nndl.data).
from .data import DatasetSource, cifar10_dir as _cifar_dir, load_dataset
from .data_utils import DIGITS_SPLIT_SEED
from .predict import _input_shape, add_tta_argument, check_tta, class_probabilities
from .recipes import DATASETS

__all__ = ["add_evaluate_arguments", "run_evaluate_command"]


def add_evaluate_arguments(parser):
    """The options of ``nndl evaluate``."""
    parser.add_argument("model", metavar="MODEL", help="a model file written by nndl train (model.npz)")
    parser.add_argument("--dataset", choices=DATASETS, help="(default: the dataset the model was trained on)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="CIFAR-10 directory (default: the one the model was trained on, else "
                             "$NNDL_DATA_DIR/cifar-10-batches-py)")
    parser.add_argument("--split", choices=("test", "val"),
                        help="score the test split or the validation split (default: test, or val "
                             "where there is no test split, as nndl train then reported)")
    add_tta_argument(parser)
    return parser


def _confusion_matrix(y_true, y_pred, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def _format_confusion(matrix, class_names):
    labels = [str(n) for n in class_names]
    width = max(max(map(len, labels)), len(str(matrix.max())), 3)
    lines = ["confusion matrix (rows: true class, columns: predicted class):",
             " " * (width + 1) + " ".join(f"{n[:width]:>{width}}" for n in labels)]
    for name, row in zip(labels, matrix):
        lines.append(f"{name[:width]:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def _saved_source(path, model):
    """The ``DatasetSource`` a model file recorded, or None (a model saved by hand)."""
    saved = (model.metadata or {}).get("dataset")
    if saved is None:
        return None
    try:
        return DatasetSource.from_dict(saved)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def _evaluation_split(args, model, source):
    """``(name, split, data)``: the dataset and split ``nndl evaluate`` scores, loaded."""
    from .data_utils import CIFAR10_TEST_FILE

    name = args.dataset or (source.name if source else None)
    if name is None:
        raise UserError(f"{args.model} does not say which dataset it was trained on; pass --dataset")
    same = source is not None and source.name == name
    data_dir = args.data_dir
    if name == "cifar10" and data_dir is None and same and os.path.isdir(source.data_dir or ""):
        data_dir = source.data_dir
    num_test = source.num_test if same else None
    # The validation split is the model's own only on the data it was trained on; on another
    # directory the same positions may hold its training images.
    trained_here = same and (name == "digits" or os.path.abspath(_cifar_dir(data_dir)) == source.data_dir)
    no_test_split = num_test == 0 or (
        name == "cifar10" and not os.path.isfile(os.path.join(_cifar_dir(data_dir), CIFAR10_TEST_FILE)))
    split = args.split or "test"
    if args.split is None and trained_here and no_test_split:
        # No test split where the model was trained (the CIFAR-10 subset has no test_batch;
        # --num-test 0): nndl train then reported validation accuracy, the number to reproduce.
        print("note: there is no test split; scoring the validation split", file=sys.stderr)
        split = "val"
    # CIFAR-10's test split is its own file: no training image need be held out for it.
    num_validation = 0 if name == "cifar10" and split == "test" else (source.num_validation if same else None)
    seed = source.split_seed if same and source.split_seed is not None else DIGITS_SPLIT_SEED
    if name == "digits" and data_dir is not None:
        raise UserError("--data-dir applies to --dataset cifar10 only (the digits are built in)")
    data, _ = load_dataset(name, data_dir, num_validation, num_test, subtract_mean=False, dtype=model.dtype,
                           split_seed=seed)
    if not len(data[f"y_{split}"]):
        if split == "test" and name == "cifar10" and not (same and source.num_test == 0):
            raise UserError(f"{_cifar_dir(data_dir)} has no test_batch, so there is no test split; "
                            f"use --split val, or point --data-dir at the full dataset")
        flag, other = ("--num-test", "val") if split == "test" else ("--num-validation", "test")
        raise UserError(f"{args.model} was trained with no {name} {split} split ({flag} 0); use --split {other}")
    return name, split, data


def _check_classes(path, model, name, dataset_classes):
    """Refuse a model whose classes are not the dataset's labels 0..K-1 in order (e.g. an
    estimator fitted on string labels, whose columns are in sorted order): scored against
    the dataset's labels, its accuracy would be meaningless."""
    names = [str(c) for c in (model.class_names or [])]
    expected = [str(c) for c in dataset_classes]
    if not names or names == expected or names == [str(i) for i in range(len(expected))]:
        return
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    raise UserError(f"{path} predicts the classes {shown}, not the {name} labels ({', '.join(expected[:4])}, ...) "
                    f"in their order; score it on its own labels in Python")


def run_evaluate_command(args):
    """``nndl evaluate``: accuracy and confusion matrix of a saved model."""
    from .checkpoint import load_model, preprocess

    model = load_model(args.model)
    check_tta(args.tta, args.model, _input_shape(model), model)  # the model's inputs, before any data loads
    source = _saved_source(args.model, model)
    name, split, data = _evaluation_split(args, model, source)
    _check_classes(args.model, model, name, data["class_names"])
    X, y = data[f"X_{split}"], data[f"y_{split}"]
    mean = model.preprocessing.get("mean_image")
    if int(np.prod(X.shape[1:])) != model.input_dim:
        raise UserError(f"{args.model} takes {model.input_dim} input features, but {name} images have shape "
                        f"{X.shape[1:]}; pass the --dataset it was trained on")
    if mean is None:
        print(f"note: {args.model} has no mean image; scoring the images without mean subtraction",
              file=sys.stderr)
    elif mean.shape != X.shape[1:]:
        raise UserError(f"{args.model} has a mean image of shape {mean.shape}, but {name} images have "
                        f"shape {X.shape[1:]}")
    else:
        X = preprocess(model, X)
    print(f"model: {args.model} ({type(model).__name__}, trained on {source.name if source else 'unknown data'})"
          + (f", test-time augmentation: {args.tta}" if args.tta else ""))
    predictions = model.predict(X) if args.tta is None else class_probabilities(model, X, tta=args.tta).argmax(1)
    _score(model, X, y, "test" if split == "test" else "validation", predictions)
    class_names = model.class_names or data["class_names"]
    print(_format_confusion(_confusion_matrix(y, predictions, model.num_classes), class_names))
    return 0
