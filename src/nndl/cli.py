"""The ``nndl`` command: train, evaluate and gradient-check fully-connected classifiers.

Contract
--------
``main(argv=None)`` runs one subcommand and returns the exit status: 0 on success, 1 on a user
error (a missing or corrupt file, a value the library refuses, an unwritable ``--out``, a
diverged run), printed as the single line ``nndl: error: ...`` on stderr with no traceback
(``nndl --traceback ...`` shows it), 2 on a usage error (an unknown flag or a malformed value,
also one line), 130 when interrupted, 141 (quietly) when the reader of its output goes away.
``python -m nndl`` is the same command.

Subcommands
    ``train``      train on the built-in digits (default) or CIFAR-10; write the model, the
                   history (JSON) and PNG plots to ``--out``; by ``nndl.train``
    ``evaluate``   a saved model's accuracy and confusion matrix on its dataset's test split,
                   by ``nndl.evaluate``
    ``gradcheck``  numeric gradient check of every layer, sandwich and model
    ``predict``    a saved model's classes and probabilities for new data, by ``nndl.predict``
    ``search``     hyperparameter search, provided by ``nndl.search``

Adding a subcommand: a module provides ``add_<name>_arguments(parser)`` (adds its options to
an argparse parser) and ``run_<name>_command(args) -> int`` (runs it; raises ``ValueError``,
``OSError`` or ``UserError`` for user errors), and ``COMMANDS`` maps ``<name>`` to that module
and a one-line help. A module other than this one is imported when the parser is built, so
it should import heavy dependencies inside its functions; if it is missing the subcommand is
not offered, and if its import fails the subcommand reports the failure in one line while the
other subcommands keep working.

What the subcommands share lives here: ``UserError``, the argparse types, ``prepare_out_dir``
(an ``--out`` is refused rather than overwritten without ``--force``) and ``_score`` (the
accuracy line of ``train`` and ``evaluate``). ``OUTPUT_FILES`` (the files ``nndl train``
writes), ``TRAIN_DEFAULTS`` and ``load_dataset`` stay importable from here.
"""

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile

import numpy as np

from ._validation import DECAY, NONNEGATIVE, NONNEGATIVE_INT, POSITIVE, POSITIVE_INT, PROBABILITY
# Re-exported (see __all__) for code written when the train and evaluate commands lived here.
from .data import load_dataset
from .recipes import TRAIN_DEFAULTS

__all__ = ["main", "build_parser", "UserError", "COMMANDS", "TRAIN_DEFAULTS", "OUTPUT_FILES",
           "load_dataset", "prepare_out_dir"]

COMMANDS = {
    "train": ("nndl.train", "train a classifier and save the model, its history and plots"),
    "evaluate": ("nndl.evaluate", "print a saved model's test accuracy and confusion matrix"),
    "gradcheck": ("nndl.cli", "numeric gradient check of every layer and model"),
    "predict": ("nndl.predict", "apply a saved model to .npy/.npz arrays or image files"),
    "search": ("nndl.search", "hyperparameter search with Optuna (needs the `search` extra)"),
}
"""Subcommand name -> (module providing it, one-line help)."""

OUTPUT_FILES = ("model.npz", "history.json", "loss.png", "accuracy.png", "weights.png")


class UserError(Exception):
    """A problem with the user's input that the command reports in one line."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line, pointing at ``--help``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- argument types

def _number(kind, test, expected):
    """An argparse ``type`` that converts with ``kind`` and accepts values passing ``test``
    (for a domain outside ``nndl._validation.DOMAINS``)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


# The domains are declared once, in nndl._validation, for the library and the command alike.
_positive_int = POSITIVE_INT.argument_type()
_nonneg_int = NONNEGATIVE_INT.argument_type()
_positive_float = POSITIVE.argument_type()
_nonneg_float = NONNEGATIVE.argument_type()
_probability = PROBABILITY.argument_type()
_decay = DECAY.argument_type()


def _md5(text):
    """An argparse ``type``: 32 hexadecimal digits, lower-cased."""
    if len(text) != 32 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"expected an MD5 of 32 hexadecimal digits, got {text!r}")
    return text.lower()


# --------------------------------------------------------------------------- shared helpers

def prepare_out_dir(out, names=OUTPUT_FILES, force=False):
    """Create ``out`` if needed and check that ``names`` can be written there.

    Parameters
    ----------
    out : str or path
        The output directory.
    names : sequence of str
        The files (or folders) the command will write in it.
    force : bool
        Allow them to exist already (they will be replaced).

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    UserError
        ``out`` is not a directory, cannot be created or written, or already holds one of
        ``names`` and ``force`` is False.
    """
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nndl-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"--out {out} is not writable ({exc.strerror or exc})") from None
    existing = [n for n in names if os.path.exists(os.path.join(out, n))]
    if existing and not force:
        raise UserError(f"--out {out} already holds {', '.join(existing)}; pass --force to overwrite "
                        f"or choose another --out")
    return out


def _score(model, X, y, label, predictions=None):
    """Print ``<label> accuracy: 0.xxxx (correct/total)`` and return the accuracy (None if y is empty).
    ``predictions`` are the model's on ``X`` when the caller has them already."""
    if not len(y):
        return None
    correct = int(np.sum((model.predict(X) if predictions is None else predictions) == y))
    print(f"{label} accuracy: {correct / len(y):.4f} ({correct}/{len(y)})")
    return correct / len(y)


# --------------------------------------------------------------------------- gradcheck

def add_gradcheck_arguments(parser):
    """The options of ``nndl gradcheck``."""
    parser.add_argument("--tolerance", type=_positive_float, default=1e-6,
                        help="largest relative error that passes (default: 1e-6); see docs/cli.md for the two "
                             "absolute-error rules that also pass a gradient")
    parser.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the random inputs (default: 0)")
    return parser


def run_gradcheck_command(args):
    """``nndl gradcheck``: a table of relative errors; exit 1 if any check fails."""
    from .gradient_check import check_all_gradients

    checks = check_all_gradients(seed=args.seed)
    width = max(len(c.name) for c in checks)
    print(f"{'function or model':<{width}}  {'wrt':<6}  {'rel. error':>10}  result")
    failed = 0
    for c in checks:
        ok, result = c.verdict(args.tolerance)
        failed += not ok
        print(f"{c.name:<{width}}  {c.wrt:<6}  {c.rel_error:>10.2e}  {result}")
    if failed:
        print(f"{failed} of {len(checks)} gradient checks exceed the tolerance {args.tolerance:g}")
        return 1
    print(f"all {len(checks)} gradient checks pass at tolerance {args.tolerance:g} (the result column says how)")
    return 0


# --------------------------------------------------------------------------- parser and main

def _unavailable(name, exc):
    def run(args):
        raise UserError(f"nndl {name} is unavailable: {exc}")

    return run


def build_parser():
    """The ``nndl`` argument parser with one subparser per entry of ``COMMANDS``."""
    from . import __version__

    parser = _Parser(prog="nndl", description="Train, evaluate and gradient-check fully-connected "
                                              "neural-network classifiers in NumPy.")
    parser.add_argument("--version", action="version", version=f"nndl {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    # Not required=True: main reports a missing COMMAND itself, after any unknown option.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = parser.commands = {}  # name -> subparser, so that main can report in its name
    for name, (module_name, help_text) in COMMANDS.items():
        if module_name == __name__:
            module = sys.modules[__name__]
        elif importlib.util.find_spec(module_name) is None:
            continue
        else:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                # No option prefix: every word after the name (--help included) is accepted, so
                # the user sees why the subcommand is unavailable rather than a usage error.
                sub = subparsers.add_parser(name, help=help_text, prefix_chars="\0", add_help=False)
                sub.add_argument("rest", nargs="*")
                sub.set_defaults(handler=_unavailable(name, exc))
                continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        getattr(module, f"add_{name}_arguments")(sub)
        # A command may say what to do after an interrupt (search: run it again to resume).
        sub.set_defaults(handler=getattr(module, f"run_{name}_command"),
                         interrupt_hint=getattr(module, "INTERRUPT_HINT", None))
        commands[name] = sub
    return parser


_USER_ERRORS = (UserError, ValueError, TypeError, OSError, FloatingPointError, ImportError)


def main(argv=None, command=None):
    """Run the ``nndl`` command; returns the exit status (see the module docstring).

    ``command`` runs one subcommand on its own, as ``python -m nndl.search`` does
    (``main(argv, command="search")``): ``argv`` are then its arguments, and its messages say
    ``nndl search: error: ...``. Every subcommand shares this one error and exit policy.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    prefix = "nndl"
    if command is not None:
        if command not in parser.commands:
            raise ValueError(f"command must be one of {', '.join(parser.commands)}, got {command!r}")
        argv, prefix = [command, *argv], f"nndl {command}"
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # Reported by the subcommand's parser, so that the message points at its --help.
            parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command is None:
            parser.error("the following arguments are required: COMMAND")
    except SystemExit as exc:  # --help, --version and usage errors: return the status, for main(argv) callers
        return exc.code if isinstance(exc.code, int) else 1
    return _run(args, prefix)


def _run(args, prefix):
    """Run the parsed subcommand under the one error policy; returns the exit status."""
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a reader that went away shows up here, where it can still be handled
    except BrokenPipeError:
        # `nndl evaluate m.npz | head`: not an error. Point stdout at devnull so that the
        # interpreter's last flush does not fail again, and exit as a process killed by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", None)
        print(f"{prefix}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        if args.traceback:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return 1
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
