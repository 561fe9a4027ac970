"""The ``nndl search`` command (and ``python -m nndl.search``, the same command on its own).

Contract
--------
``add_search_arguments(parser)`` adds the command's options to an argparse parser (the
``nndl`` command's subparser, or ``main``'s own); ``run_search_command(args)`` runs a search
from the parsed arguments and returns the exit status: 0, or 1 when the study is not finished
(no ``--timeout``, not ``--report-only``, not a worker). A bad ``--param`` is a usage error
(exit 2, one line); other bad input raises ``SearchError``, which ``main`` (like the ``nndl``
command) prints as one line with exit status 1. Options override the ``[search]`` settings of a
``--config`` file, and ``--param`` its ``[space]`` entries.
"""

import argparse

from .._validation import NONNEGATIVE_INT, POSITIVE, POSITIVE_INT
from .config import _SETTINGS, DATASETS, PRUNERS, SAMPLERS, load_config
from .results import _print_summary
from .runner import search
from .space import DEFAULT_SPACE, HYPERPARAMETERS, SearchError, parse_spec
from .storage import DEFAULT_OUT, JOURNAL_NAME
from .study import DEFAULT_STUDY

INTERRUPT_HINT = "run the same command again to resume"
"""What ``nndl search`` prints after an interrupt (read by ``nndl.cli``)."""


# The command line's number types: the domains of nndl._validation, as nndl train's.
_nonneg_int = NONNEGATIVE_INT.argument_type()
_positive_float = POSITIVE.argument_type()
_positive_int = POSITIVE_INT.argument_type()


def _param_arg(text):
    """``--param NAME=SPEC`` parsed by argparse, so that a bad spec is a usage error (exit 2)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=SPEC (e.g. learning_rate=1e-4:1e-1:log), got {text!r}")
    name, spec = text.split("=", 1)
    name = name.strip()
    try:
        return name, parse_spec(name, spec)
    except SearchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_search_arguments(parser):
    """Add the ``nndl search`` options to an argparse parser."""
    parser.add_argument("--config", metavar="FILE", help="TOML file with [space] and [search] tables")
    parser.add_argument("--param", "-p", metavar="NAME=SPEC", action="append", type=_param_arg, default=[],
                        help="search NAME over SPEC: LOW:HIGH[:log][:N], A,B,C or a fixed value "
                             "(repeatable; see --list-params)")
    parser.add_argument("--list-params", action="store_true", help="list the hyperparameters and their defaults")
    parser.add_argument("--trials", type=_positive_int, help="trials that do not fail, in total over all workers (default 30)")
    parser.add_argument("--epochs", type=_positive_int, help="training epochs per trial (default 10)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="tpe (default), random or grid")
    parser.add_argument("--pruner", choices=PRUNERS, help="median (default), halving (successive halving) or none")
    parser.add_argument("--seed", type=_nonneg_int, help="study seed (default 0)")
    parser.add_argument("--dataset", choices=DATASETS, help="digits (built in, default) or cifar10")
    parser.add_argument("--data-dir", help="CIFAR-10 directory")
    parser.add_argument("--num-validation", type=_positive_int, help="validation examples (CIFAR-10 default 1000)")
    parser.add_argument("--num-training", type=_positive_int, help="training examples (default: all the rest)")
    parser.add_argument("--jobs", "-j", type=_positive_int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--storage", help=f"journal file or database URL (default OUT/{JOURNAL_NAME}); "
                                          "postgresql://... lets several machines join one study")
    parser.add_argument("--study", default=DEFAULT_STUDY, help=f"study name (default {DEFAULT_STUDY})")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--timeout", type=_positive_float, help="start no trial after this many seconds")
    parser.add_argument("--threads", type=_positive_int, help="BLAS threads per worker (default: cores // jobs)")
    parser.add_argument("--heartbeat", type=_positive_int, default=10, help="seconds between database heartbeats (default 10)")
    parser.add_argument("--no-retrain", action="store_true", help="do not retrain and save the best model")
    parser.add_argument("--report-only", action="store_true", help="run no trials; write the results of the stored study")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    return parser


def _list_params():
    lines = [f"{'hyperparameter':16s} {'default':28s} domain"]
    for name, spec in DEFAULT_SPACE.items():
        lines.append(f"{name:16s} {spec.describe():28s} {HYPERPARAMETERS[name].expected}")
    return "\n".join(lines)


def run_search_command(args):
    """Run ``nndl search`` from parsed arguments; returns the exit code.

    Raises
    ------
    SearchError
        On bad input or storage; the caller prints it as one line and exits nonzero.
    """
    if args.list_params:
        print(_list_params())
        return 0
    space, settings = ({}, {})
    if args.config:
        try:
            space, settings = load_config(args.config)
        except SearchError as exc:
            raise SearchError(f"--config: {exc}") from None
    for name, spec in args.param:
        space[name] = spec  # parsed by argparse (_param_arg)
    for key in _SETTINGS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    result = search(space, **settings, data_dir=args.data_dir, jobs=args.jobs, storage=args.storage,
                    study_name=args.study, out=args.out, timeout=args.timeout, heartbeat=args.heartbeat,
                    threads=args.threads,
                    retrain=not args.no_retrain, report_only=args.report_only,
                    verbose=not args.quiet, _worker_index=args.worker_index)
    if args.quiet and args.worker_index is None:
        _print_summary(result)
    if args.worker_index is None and not result.complete and not args.report_only and args.timeout is None:
        return 1
    return 0


def main(argv=None):
    """``python -m nndl.search``: the ``nndl search`` command on its own, under the ``nndl``
    command's one error and exit policy (``nndl.cli.main``)."""
    from ..cli import main as nndl_main  # imported here: nndl.cli imports this package

    return nndl_main(argv, command="search")
