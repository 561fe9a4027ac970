"""``nndl train``: train a classifier and save the model, its history and plots.

Contract
--------
``nndl train [--dataset digits|cifar10] [--recipe NAME] [OPTION...] [--out DIR]`` trains on the
built-in digits (default) or CIFAR-10, starting from the dataset's recipe (``nndl.recipes``) with
the options given overriding it, and writes to ``--out`` (default ``runs/DATASET``) the model
(``model.npz``), the history (``history.json``) and PNG plots (``OUTPUT_FILES`` of ``nndl.cli``);
with ``--checkpoints`` also a resumable Solver checkpoint per epoch in ``--out/checkpoints``,
which ``--resume`` continues. Exit status and errors follow ``nndl.cli``: options that
contradict each other or would be ignored are refused by flag before any data is loaded, and a
diverged run is an error.

Outputs are never overwritten silently: ``train`` refuses an ``--out`` that already holds one
of its files unless ``--force`` is given, and every file is written to a temporary name and
renamed into place.
"""

import argparse
import json
import os
import re
import sys
import time

import numpy as np

from ._files import missing_paths, write_atomically
from .cli import (OUTPUT_FILES, UserError, _decay, _md5, _nonneg_float, _nonneg_int, _positive_float, _positive_int,
                  _probability, _score, prepare_out_dir)
from .data import SPLIT_DEFAULTS, cifar10_dir as _cifar_dir, load_dataset
# The settings of each recipe, and which recipe each dataset trains by default, live in the
# library (nndl.recipes), so that the benchmarks and the estimator train them the same way.
from .recipes import (DATASET_RECIPES, DATASETS, RECIPE_DATASETS, RECIPES, TRAIN_DEFAULTS, build_model,
                      recipe_settings, solver_options)

__all__ = ["add_train_arguments", "run_train_command"]


def _defaults_help(key):
    """'(default: digits X; cifar10 Y)' for a per-dataset default."""
    def show(v):
        if isinstance(v, list):
            return " ".join(map(str, v))
        # None is "every image" for the split and sample sizes, "off" for the rest.
        return ("all" if key.startswith("num_") else "none") if v is None else str(v)

    return "(default: " + "; ".join(f"{d} {show(TRAIN_DEFAULTS[d][key])}" for d in DATASETS) + ")"


def add_train_arguments(parser):
    """The options of ``nndl train``, in four groups."""
    _add_data_arguments(parser.add_argument_group("data"))
    _add_model_arguments(parser.add_argument_group("model"))
    _add_optimisation_arguments(parser.add_argument_group("optimisation"))
    _add_output_arguments(parser.add_argument_group("output"))
    return parser


def _add_data_arguments(data):
    """``nndl train``'s data options (dataset, split, preprocessing, augmentation)."""
    data.add_argument("--dataset", choices=DATASETS,
                      help="digits: the built-in 8x8 handwritten digits (no download); cifar10: CIFAR-10 "
                           "in its official python format (default: the --resume checkpoint's, else the "
                           "--recipe's, else digits)")
    data.add_argument("--data-dir", metavar="DIR",
                      help="CIFAR-10 directory holding data_batch_1..5 (and test_batch) "
                           "(default: $NNDL_DATA_DIR/cifar-10-batches-py, $NNDL_DATA_DIR defaulting to ~/.cache/nndl)")
    data.add_argument("--download", action="store_true",
                      help="download CIFAR-10 (163 MB, MD5-checked) into --data-dir if it is not there")
    data.add_argument("--download-url", metavar="URL", help="mirror of the CIFAR-10 python archive "
                                                            "(default: the official one)")
    data.add_argument("--download-md5", metavar="HEX", type=_md5,
                      help="its MD5 (default: the official archive's)")
    data.add_argument("--num-validation", type=_positive_int, metavar="N",
                      help="images held out for validation " + _defaults_help("num_validation"))
    data.add_argument("--num-test", type=_nonneg_int, metavar="N",
                      help="test images to score " + _defaults_help("num_test"))

    data.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                      help="per-channel standardisation instead of mean-image subtraction "
                           + _defaults_help("standardize"))
    data.add_argument("--augment", choices=("none", "flip-crop"),
                      help="random horizontal flips and padded crops of the training images (flips suit photos, "
                           "not digits) " + _defaults_help("augment"))
    data.add_argument("--crop-padding", type=_nonneg_int, metavar="P",
                      help="padding of the random crops, in pixels (default: 4; 1 on the 8x8 digits)")


def _add_model_arguments(model):
    """``nndl train``'s model options (recipe, architecture, initialisation, loss)."""
    model.add_argument("--recipe", choices=tuple(RECIPES),
                       help="named settings to start from; flags override them (default: the dataset's: "
                            + ", ".join(f"{d} {r}" for d, r in DATASET_RECIPES.items())
                            + "; 'seed' is seed 000's two-layer recipe)")
    model.add_argument("--hidden", type=_positive_int, nargs="+", metavar="H",
                       help="hidden layer sizes, e.g. --hidden 200 100 " + _defaults_help("hidden"))
    # The choices come from the library's registries, so a new activation or normalisation
    # is offered here without a second list to keep in step.
    from ._validation import MODEL_DTYPES
    from .layer_utils import NORMALIZATIONS
    from .layers import ACTIVATIONS

    model.add_argument("--activation", choices=tuple(ACTIVATIONS), help="(default: relu)")
    model.add_argument("--normalization", choices=("none",) + tuple(NORMALIZATIONS),
                       help="after each hidden affine layer " + _defaults_help("normalization"))
    model.add_argument("--batchnorm", action="store_true", help="same as --normalization batchnorm")
    model.add_argument("--dropout", type=_probability, metavar="P",
                       help="probability of dropping a hidden unit (default: 0)")
    model.add_argument("--reg", type=_nonneg_float, help="L2 strength, penalty 0.5*reg*sum(W**2) (default: 0)")
    model.add_argument("--weight-scale", type=_positive_float, metavar="S",
                       help="std of the initial weights, with --init none " + _defaults_help("weight_scale"))
    model.add_argument("--init", choices=("none", "he", "xavier"),
                       help="initial weight scale by name ('none': --weight-scale) " + _defaults_help("init"))
    model.add_argument("--label-smoothing", type=_probability, metavar="S",
                       help="label smoothing of the softmax loss " + _defaults_help("label_smoothing"))
    model.add_argument("--dtype", choices=MODEL_DTYPES, help="(default: float32)")


def _add_optimisation_arguments(optim):
    """``nndl train``'s optimisation options (update rule, schedule, epochs, batches, seed)."""
    from .optim import UPDATE_RULES  # the library's registry, so a new rule is offered here

    optim.add_argument("--update-rule", choices=tuple(UPDATE_RULES),
                       help=_defaults_help("update_rule"))
    optim.add_argument("--learning-rate", "--lr", type=_positive_float, metavar="LR",
                       help=_defaults_help("learning_rate"))
    optim.add_argument("--lr-decay", type=_decay, metavar="F",
                       help="learning-rate factor after each epoch " + _defaults_help("lr_decay"))
    optim.add_argument("--weight-decay", type=_nonneg_float, metavar="WD",
                       help="decoupled weight decay of adamw/sgdw " + _defaults_help("weight_decay"))
    optim.add_argument("--lr-schedule", choices=("none", "cosine", "onecycle"),
                       help="learning-rate schedule per iteration (needs --lr-decay 1) "
                            + _defaults_help("lr_schedule"))
    optim.add_argument("--warmup-epochs", type=_nonneg_float, metavar="E",
                       help="linear warmup of --lr-schedule cosine (default: 0)")
    optim.add_argument("--patience", type=_positive_int, metavar="N",
                       help="stop after N epochs without a better validation accuracy (default: off)")
    optim.add_argument("--epochs", type=_positive_int, metavar="N", help=_defaults_help("epochs"))
    optim.add_argument("--batch-size", type=_positive_int, metavar="N", help=_defaults_help("batch_size"))
    optim.add_argument("--num-train-samples", type=_positive_int, metavar="N",
                       help="training images sampled for the per-epoch training accuracy "
                            + _defaults_help("num_train_samples"))
    optim.add_argument("--sampling", choices=("replacement", "permutation"),
                       help="batches drawn with replacement (the course) or as a fresh permutation per "
                            "epoch " + _defaults_help("sampling"))
    optim.add_argument("--seed", type=_nonneg_int, default=0, help="seed of initialisation, dropout and batches "
                                                                   "(default: 0)")


def _add_output_arguments(out):
    """``nndl train``'s output options (directory, checkpoints, progress, logs)."""
    out.add_argument("--out", metavar="DIR", help="output directory (default: runs/DATASET)")
    out.add_argument("--force", action="store_true",
                     help=f"overwrite {', '.join(OUTPUT_FILES)} in --out (with --checkpoints, replace its "
                          "checkpoints too, once this run has written its first)")
    out.add_argument("--checkpoints", action="store_true",
                     help="also save a resumable Solver checkpoint after every epoch in --out/checkpoints")
    out.add_argument("--resume", metavar="CHECKPOINT",
                     help="continue a run from a checkpoint written with --checkpoints (architecture, "
                          "optimizer state and epoch come from it; --epochs is the new total)")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-epoch lines")
    out.add_argument("--log-json", metavar="FILE",
                     help="append one JSON line per epoch (epoch, loss, train_acc, val_acc, learning_rate, "
                          "seconds) to FILE")


# What a checkpoint fixes (the model, the optimizer and its state, the schedule, the recipe they
# came from): flags for these cannot be combined with --resume.
_RESUMED_FLAGS = ("recipe", "hidden", "activation", "normalization", "dropout", "reg", "weight_scale", "init",
                  "label_smoothing", "dtype", "update_rule", "learning_rate", "weight_decay", "lr_decay",
                  "lr_schedule", "warmup_epochs")


def _resolve_dataset(args, resumed):
    """Fill in ``args.dataset`` when it is not given: the ``--resume`` checkpoint's (``resumed``,
    whose CIFAR-10 directory is also the default ``--data-dir``), else the ``--recipe``'s, else the
    digits."""
    if resumed is not None:
        meta = resumed.metadata
        saved = meta.get("dataset") or {}
        name = saved.get("name")
        if name is None and args.dataset is None:
            raise UserError(f"--resume {args.resume} does not record its dataset; pass --dataset")
        if name is not None and args.dataset not in (None, name):
            raise UserError(f"--dataset {args.dataset}: {args.resume} was trained on {name}")
        args.dataset = args.dataset or name
        directory = saved.get("data_dir")
        if args.dataset == name and args.data_dir is None and directory is not None:
            if not os.path.isdir(directory):
                raise UserError(f"--resume {args.resume} was trained on the CIFAR-10 directory {directory}, which "
                                f"is missing; pass --data-dir")
            args.data_dir = directory
        # The recipe the checkpoint's run started from (recorded with its settings), for history.json.
        args.recipe = (meta.get("settings") or {}).get("recipe")
    if args.dataset is None:
        args.dataset = RECIPE_DATASETS[args.recipe] if args.recipe else "digits"


def _recipe_name(args):
    return args.recipe or DATASET_RECIPES[args.dataset]


def _train_settings(args):
    """``(settings, resumed)``: the effective settings (the flags given, the recipe's, by default
    the dataset's, for the rest, with the dataset's split sizes: a recipe made for another dataset
    does not bring its own), and the ``--resume`` checkpoint's model (None without it)."""
    from .checkpoint import load_model

    if args.resume is not None:
        given = [f"--{k.replace('_', '-')}" for k in _RESUMED_FLAGS if getattr(args, k) is not None] + \
                (["--batchnorm"] if args.batchnorm else [])
        if given:
            raise UserError(f"{', '.join(given)} cannot be combined with --resume: the model and the optimizer "
                            f"state come from the checkpoint")
    resumed = load_model(args.resume) if args.resume is not None else None
    _resolve_dataset(args, resumed)
    settings = recipe_settings(_recipe_name(args))
    settings.update(SPLIT_DEFAULTS[args.dataset])
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    for key in ("normalization", "init", "lr_schedule", "augment"):
        if settings[key] == "none":
            settings[key] = None
    if settings["lr_schedule"] is not None and args.lr_decay is None:
        settings["lr_decay"] = 1.0  # the recipe's per-epoch decay gives way to the chosen schedule
    elif args.lr_decay not in (None, 1.0) and args.lr_schedule is None and settings["lr_schedule"] is not None:
        # and, the other way round, the recipe's schedule gives way to a chosen per-epoch decay
        print(f"note: --lr-decay {args.lr_decay} replaces the {_recipe_name(args)} recipe's "
              f"{settings['lr_schedule']} schedule", file=sys.stderr)
        settings["lr_schedule"] = None
    if settings["weight_decay"] and args.weight_decay is None and args.update_rule not in (None, "adamw", "sgdw"):
        # A rule the user chose drops the recipe's decoupled decay, which only adamw/sgdw have.
        print(f"note: --update-rule {args.update_rule} has no decoupled weight decay; the "
              f"{_recipe_name(args)} recipe's {settings['weight_decay']} is off (--reg gives L2)", file=sys.stderr)
        settings["weight_decay"] = 0.0
    if settings["augment"] is not None and args.dataset == "digits" and args.crop_padding is None:
        settings["crop_padding"] = 1  # 8x8 digits: a 4-pixel shift would move half a digit out
    if args.batchnorm:
        if args.normalization not in (None, "batchnorm"):
            raise UserError(f"--batchnorm conflicts with --normalization {args.normalization}")
        settings["normalization"] = "batchnorm"
    if args.dataset != "cifar10" and (args.download or args.data_dir is not None):
        flag = "--download" if args.download else "--data-dir"
        raise UserError(f"{flag} applies to --dataset cifar10 only (the digits are built in)")
    _check_flag_combinations(args, settings)
    return settings, resumed


_IMAGE_SIZE = {"digits": 8, "cifar10": 32}  # pixels per side, for the crop check before loading


def _origin(args, key):
    """' (the R recipe's)' when setting ``key`` came from the recipe, not from a flag."""
    return "" if getattr(args, key, None) is not None else f" (the {_recipe_name(args)} recipe's)"


def _check_flag_combinations(args, settings):
    """Refuse, by flag and before any data is loaded, settings that contradict each other or
    that would be silently ignored."""
    if settings["lr_schedule"] is not None and settings["lr_decay"] != 1.0:
        raise UserError(f"--lr-schedule {settings['lr_schedule']} and --lr-decay {settings['lr_decay']} both set "
                        f"the learning rate; use one (--lr-decay 1 with a schedule)")
    if settings["weight_decay"] and settings["update_rule"] not in ("adamw", "sgdw"):
        raise UserError(f"--weight-decay {settings['weight_decay']} (decoupled) needs --update-rule adamw or sgdw, "
                        f"got {settings['update_rule']}{_origin(args, 'update_rule')}; use --reg for L2 with "
                        f"other rules")
    if args.weight_scale is not None and settings["init"] is not None:
        raise UserError(f"--weight-scale {args.weight_scale} applies to --init none only, but the weights are "
                        f"initialised by --init {settings['init']}{_origin(args, 'init')}")
    if args.warmup_epochs is not None and settings["lr_schedule"] != "cosine":
        raise UserError(f"--warmup-epochs {args.warmup_epochs:g} applies to --lr-schedule cosine only, "
                        f"got --lr-schedule {settings['lr_schedule'] or 'none'}")
    if settings["lr_schedule"] == "cosine" and settings["warmup_epochs"] >= settings["epochs"]:
        raise UserError(f"--warmup-epochs {settings['warmup_epochs']:g} must be shorter than the run's "
                        f"--epochs {settings['epochs']}")
    if args.crop_padding is not None and settings["augment"] is None:
        raise UserError(f"--crop-padding {args.crop_padding} applies to --augment flip-crop only")
    size = _IMAGE_SIZE[args.dataset]
    if settings["augment"] is not None and settings["crop_padding"] >= size:
        raise UserError(f"--crop-padding {settings['crop_padding']} must be smaller than the {args.dataset} "
                        f"images' {size} pixels")
    if args.log_json is not None:
        directory = os.path.dirname(os.path.abspath(args.log_json))
        if os.path.isdir(args.log_json) or not os.path.isdir(directory):
            raise UserError(f"--log-json {args.log_json}: expected a file in an existing directory")


class _EpochReporter:
    """Solver ``epoch_callback``: progress after each epoch.

    A tqdm bar when stderr is a terminal (and tqdm is installed); otherwise one plain line per
    epoch, so a log redirected to a file or a pipe holds no carriage-return clutter. With
    ``log_json``, one JSON object per epoch (epoch, loss, accuracies, learning rate, seconds)
    is also appended to that file and flushed, for other tools to follow.
    """

    def __init__(self, total, enabled, solver, log_json=None, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.bar, self.enabled = None, enabled
        if enabled and _is_terminal(self.stream):
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm comes with the `cli` extra; fall back to one line per epoch
                pass
            else:
                self.bar = tqdm(total=total, initial=min(solver.epoch, total), desc="training", unit="epoch",
                                file=self.stream, dynamic_ncols=True)
        self.total, self.seen_iterations = total, len(solver.loss_history)
        self.log = open(log_json, "a") if log_json is not None else None
        self.start = time.perf_counter()

    def __call__(self, solver):
        recent = solver.loss_history[self.seen_iterations:] or solver.loss_history[-1:]
        self.seen_iterations = len(solver.loss_history)
        loss = float(np.mean(recent)) if recent else None
        train_acc, val_acc = solver.train_acc_history[-1], solver.val_acc_history[-1]
        stats = {"loss": "-" if loss is None else f"{loss:.4f}", "train_acc": f"{train_acc:.3f}",
                 "val_acc": f"{val_acc:.3f}"}
        if self.bar is not None:
            self.bar.set_postfix(stats, refresh=False)
            self.bar.update(solver.epoch - self.bar.n)
        elif self.enabled:
            print(f"epoch {solver.epoch}/{self.total} " + " ".join(f"{k} {v}" for k, v in stats.items()),
                  file=self.stream, flush=True)
        if self.log is not None:
            config = next(iter(solver.optim_configs.values()), {})
            record = {"epoch": solver.epoch, "loss": loss, "train_acc": train_acc, "val_acc": val_acc,
                      "learning_rate": config.get("learning_rate"),
                      "seconds": round(time.perf_counter() - self.start, 3)}
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            self.log.close()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class _Checkpointer:
    """Solver ``epoch_callback`` for ``--checkpoints``: after each epoch, a checkpoint that is also a
    complete model file (mean image, class names, dataset), then the progress report."""

    def __init__(self, directory, then, replace_later=False, **metadata):
        os.makedirs(directory, exist_ok=True)
        _remove_stale_temporaries(directory)
        self.directory, self.then, self.metadata = directory, then, metadata
        self.replace_later = replace_later  # --force: an earlier run's checkpoints go, see below

    def __call__(self, solver):
        from .checkpoint import save_solver_checkpoint

        if solver.epoch > 0:
            path = os.path.join(self.directory, f"epoch_{solver.epoch}.npz")
            save_solver_checkpoint(solver, path, **self.metadata)
            if self.replace_later:
                # Only once this run has a checkpoint of its own: a run that fails in its first
                # epoch leaves the earlier run's checkpoints as they were.
                _remove_stale_checkpoints(self.directory, solver.epoch)
                self.replace_later = False
        self.then(solver)


def _save_plots(out, solver, model, image_shape):
    """Write the three PNGs; returns their names (none when matplotlib is missing)."""
    from . import vis_utils

    try:
        vis_utils.plot_loss_history(solver.loss_history, os.path.join(out, "loss.png"))
    except ImportError as exc:
        print(f"note: plots skipped: {exc}", file=sys.stderr)
        return []
    vis_utils.plot_accuracy_history(solver.train_acc_history, solver.val_acc_history,
                                    os.path.join(out, "accuracy.png"))
    names = ["loss.png", "accuracy.png"]
    if len(image_shape) == 3 and image_shape[0] in (1, 3):
        vis_utils.plot_first_layer_weights(model.params["W1"], image_shape, os.path.join(out, "weights.png"))
        names.append("weights.png")
    return names


def run_train_command(args):
    """``nndl train``: see ``add_train_arguments`` and the module docstring."""
    settings, resumed = _train_settings(args)
    out = args.out if args.out is not None else os.path.join("runs", args.dataset)
    names = OUTPUT_FILES + (("checkpoints",) if args.checkpoints else ())
    created = missing_paths(out)
    prepare_out_dir(out, names, args.force)
    try:
        return _train(args, settings, out, resumed)
    except BaseException:
        # A run that failed leaves no empty --out behind, nor the parents made for it
        # (checkpoints it wrote stay, and so do the folders holding them).
        _remove_empty_dirs([os.path.join(out, "checkpoints")] + created)
        raise


def _remove_empty_dirs(paths):
    for path in paths:
        try:
            os.rmdir(path)
        except OSError:
            pass  # missing or not empty


def _epoch_files(directory):
    """``{k: path}`` of the ``epoch_<k>.npz`` files in ``directory`` (none if it is missing)."""
    found = {}
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            stem, ext = os.path.splitext(name)
            if ext == ".npz" and stem.startswith("epoch_") and stem[6:].isdigit():
                found[int(stem[6:])] = os.path.join(directory, name)
    return found


def _is_nndl_checkpoint(path):
    """True when ``path`` is a Solver checkpoint nndl wrote (format and training state)."""
    from .checkpoint import load_checkpoint

    try:
        meta, _ = load_checkpoint(path)
    except (OSError, ValueError):
        return False
    return isinstance(meta.get("solver"), dict)


def _check_checkpoint_names(directory, epochs):
    """Refuse a run that would overwrite a file nndl did not write at one of its checkpoint names."""
    for k, path in sorted(_epoch_files(directory).items()):
        if k <= epochs and not _is_nndl_checkpoint(path):
            raise UserError(f"{path} is not an nndl checkpoint, and this run would write its epoch {k} there; "
                            f"move it away or choose another --out")


def _remove_stale_checkpoints(directory, after_epoch):
    """Delete the earlier run's ``epoch_<k>.npz`` for k > ``after_epoch``: with ``--force`` they
    must not sit beside this run's as if they continued it. Only nndl checkpoints are removed;
    any other file of that name is left, with a note."""
    for k, path in sorted(_epoch_files(directory).items()):
        if k > after_epoch:
            if _is_nndl_checkpoint(path):
                os.remove(path)
            else:
                print(f"note: left {path} in place: it is not an nndl checkpoint", file=sys.stderr)


# write_atomically's names: mkstemp's prefix, eight random characters, a suffix ending in .tmp.
_TEMPORARY = re.compile(r"\.nndl-[a-z0-9_]{8}(\.[a-z]+)?\.tmp")


def _remove_stale_temporaries(directory):
    """Remove the temporary files of ``write_atomically`` that a killed run left in ``directory``
    (only names of nndl's own pattern, ``.nndl-XXXXXXXX.tmp``; nothing else is touched)."""
    if not os.path.isdir(directory):
        return
    stale = [name for name in os.listdir(directory) if _TEMPORARY.fullmatch(name)]
    for name in stale:
        os.remove(os.path.join(directory, name))
    if stale:
        print(f"note: removed {len(stale)} temporary file(s) an interrupted run left in {directory}", file=sys.stderr)


def _restore_settings(args, settings, saved):
    """Take every setting the checkpoint recorded (``saved``) that no flag gives; a flag that
    differs from the checkpoint gets a note (the Solver refuses the ones that would change the
    run: batch size, sampling). The flags of ``_RESUMED_FLAGS`` were refused before."""
    for key, value in saved.items():
        if key not in settings or key in ("epochs", "learning_rate"):
            continue  # --epochs is the new total; the learning rate is the optimizer's state
        if getattr(args, key, None) is None:
            settings[key] = value
        elif settings[key] != value and key not in ("batch_size", "sampling"):  # those the Solver refuses
            print(f"note: --{key.replace('_', '-')} {settings[key]} differs from the checkpoint's {value}; "
                  f"yours is used", file=sys.stderr)


def _resume_settings(args, settings, resumed):
    """Take the run's settings from the ``--resume`` checkpoint's model ``resumed`` (if any)."""
    if resumed is None:
        return
    # The checkpoint's architecture and training settings, unless a flag overrides the latter.
    settings.update({k: v for k, v in resumed.config().items() if k in settings})
    settings["hidden"] = resumed.hidden_dims
    saved = resumed.metadata.get("solver") or {}
    _restore_settings(args, settings, {**(resumed.metadata.get("settings") or {}), **saved})
    # The checkpoint's schedule (the Solver refuses a resume under another one).
    settings["lr_schedule"] = saved.get("lr_schedule")
    # The optimizer state, decayed learning rate included, comes from the checkpoint.
    first = next(iter((saved.get("optim_scalars") or {}).values()), {})
    settings["learning_rate"] = first.get("learning_rate", settings["learning_rate"])
    done = saved.get("epoch", 0)
    if isinstance(done, int) and done >= settings["epochs"]:
        raise UserError(f"--epochs is the new total and must be more than the {done} epochs "
                        f"{args.resume} has already done, got {settings['epochs']}")


def _download(directory, url, md5, progress):
    """Make sure ``directory`` holds CIFAR-10, fetching the archive if it does not."""
    from .data_utils import CIFAR10_FILES, download_cifar10

    missing = [f for f in CIFAR10_FILES if not os.path.isfile(os.path.join(directory, f))]
    if not missing:
        return
    if os.path.exists(directory):
        raise UserError(f"{directory} exists but is missing {', '.join(missing)}; --download does not "
                        f"overwrite it: move it away or choose another --data-dir")
    parent, name = os.path.split(os.path.abspath(directory))
    print(f"downloading CIFAR-10 from {url} into {directory}", file=sys.stderr)
    download_cifar10(parent, url=url, md5=md5, name=name, progress=progress)


def _training_data(args, settings):
    """``(data, source)`` of the run (downloading CIFAR-10 first with ``--download``), reported."""
    from .data_utils import CIFAR10_MD5, CIFAR10_URL

    if args.dataset == "cifar10" and args.download:
        _download(_cifar_dir(args.data_dir), args.download_url or CIFAR10_URL, args.download_md5 or CIFAR10_MD5,
                  progress=not args.quiet)
    if args.dataset == "cifar10" and args.num_test and os.path.isdir(_cifar_dir(args.data_dir)) \
            and not os.path.isfile(os.path.join(_cifar_dir(args.data_dir), "test_batch")):
        raise UserError(f"--num-test {args.num_test}: {_cifar_dir(args.data_dir)} has no test_batch, so there is "
                        f"no test split to size")
    try:
        data, source = load_dataset(args.dataset, args.data_dir, settings["num_validation"], settings["num_test"],
                                    dtype=np.dtype(settings["dtype"]), standardize=settings["standardize"])
    except ValueError as exc:
        # The loader names its parameters; the user typed (or defaulted) the flags of the same names.
        raise UserError(re.sub(r"\bnum_(validation|test)\b", r"--num-\1", str(exc))) from None
    source = source.to_dict()  # as stored in the model file
    if args.batch_size is not None and args.batch_size > len(data["y_train"]):
        # The Solver would draw each batch with replacement from fewer examples: a typo, surely.
        # (A per-dataset default is left alone: it is not the user's mistake on a small subset.)
        raise UserError(f"--batch-size must be at most the {len(data['y_train'])} training examples, "
                        f"got {settings['batch_size']}")
    print(f"{args.dataset}: {len(data['y_train'])} training, {len(data['y_val'])} validation, "
          f"{len(data['y_test'])} test images of shape {data['X_train'].shape[1:]}")
    if not len(data["y_test"]):
        reason = "the test split is empty (--num-test 0)" if settings["num_test"] == 0 else \
            f"{source['data_dir']} has no test_batch"
        print(f"note: {reason}: reporting validation accuracy only")
    return data, source


def _train(args, settings, out, resumed):
    """``nndl train`` after ``--out`` is prepared (``resumed``: the ``--resume`` checkpoint's model,
    or None); returns the exit status."""
    from .solver import Solver

    _resume_settings(args, settings, resumed)
    data, source = _training_data(args, settings)
    preprocessing = {k: data[k] for k in ("mean_image", "std_image") if k in data}
    image_shape = data["X_train"].shape[1:]
    model_rng, solver_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(2))
    try:
        options = solver_options(settings, image_shape)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    model = resumed if resumed is not None else build_model(
        settings, int(np.prod(image_shape)), len(data["class_names"]), model_rng)
    if resumed is not None and model.dropout_param:
        model.dropout_param["rng"] = model_rng  # fresh masks while training, as for a new model
    print(f"model: {model!r}")
    epochs = settings["epochs"]
    solver = Solver(model, data, seed=solver_rng, verbose=False, resume_from=args.resume, **options)
    if args.resume is not None:
        print(f"resuming at epoch {solver.epoch} of {epochs} from {args.resume}")
    # Made after the Solver so that a resumed run's bar starts at the checkpoint's epoch.
    reporter = _EpochReporter(epochs, not args.quiet, solver, log_json=args.log_json)
    solver.epoch_callback = reporter
    if args.checkpoints:
        _check_checkpoint_names(os.path.join(out, "checkpoints"), epochs)
        solver.epoch_callback = _Checkpointer(os.path.join(out, "checkpoints"), reporter, replace_later=args.force,
                                              preprocessing=preprocessing,
                                              settings=dict(settings, recipe=_recipe_name(args)),
                                              class_names=data["class_names"], dataset=source)
    start = time.perf_counter()
    epochs_before = solver.epoch  # a resumed run starts at its checkpoint's epoch
    try:
        solver.train()
    finally:
        reporter.close()
    seconds = time.perf_counter() - start
    if solver.stopped_epoch is not None:
        best = int(np.argmax(solver.val_acc_history))
        print(f"stopped early at epoch {solver.stopped_epoch}: no better validation accuracy for "
              f"{settings['patience']} epoch{'s' if settings['patience'] != 1 else ''}; kept epoch {best} "
              f"(validation accuracy {solver.best_val_acc:.4f})")
    written = _write_outputs(args, settings, out, solver, data, source, preprocessing, seconds)
    done = solver.epoch - epochs_before
    which = ""
    if epochs_before:
        which = (f" (epoch {solver.epoch} of {epochs})" if done == 1
                 else f" (epochs {epochs_before + 1}-{solver.epoch} of {epochs})")
    print(f"trained {done} epoch{'' if done == 1 else 's'}{which} in {seconds:.1f} s; "
          f"wrote {', '.join(written)} to {out}")
    return 0


def _write_json(path, obj):
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_atomically(path, lambda f: f.write(json.dumps(obj, indent=1) + "\n"), suffix=".json.tmp", text=True)


def _write_outputs(args, settings, out, solver, data, source, preprocessing, seconds):
    """Score the trained model, write ``model.npz``, ``history.json`` and the plots; returns
    the names written."""
    from .checkpoint import save_model

    model = solver.model
    val_acc = _score(model, data["X_val"], data["y_val"], "validation")
    test_acc = _score(model, data["X_test"], data["y_test"], "test")
    training = {k: settings[k] for k in ("update_rule", "learning_rate", "lr_decay", "epochs", "batch_size",
                                         "num_train_samples", "sampling", "weight_decay", "lr_schedule",
                                         "warmup_epochs", "augment", "crop_padding", "standardize", "patience")}
    training["recipe"] = _recipe_name(args)
    if solver.stopped_epoch is not None:
        training["stopped_early_at_epoch"] = solver.stopped_epoch
    training["seed"] = args.seed
    if args.resume is not None:
        training["resumed_from"] = args.resume
    save_model(os.path.join(out, "model.npz"), model, preprocessing=preprocessing,
               class_names=data["class_names"], dataset=source, training=training,
               val_acc=val_acc, test_acc=test_acc)
    _write_json(os.path.join(out, "history.json"), {
        "dataset": source, "model_class": type(model).__name__, "model": model.config(), "training": training,
        "epochs_done": solver.epoch, "seconds": round(seconds, 3),
        "loss_history": [float(v) for v in solver.loss_history],
        "train_acc_history": solver.train_acc_history, "val_acc_history": solver.val_acc_history,
        "best_val_acc": solver.best_val_acc, "best_epoch": int(np.argmax(solver.val_acc_history)),
        "val_acc": val_acc, "test_acc": test_acc,
    })
    return ["model.npz", "history.json"] + _save_plots(out, solver, model, data["X_train"].shape[1:])
