"""Hyperparameter search for FullyConnectedNet classifiers, built on Optuna.

Contract
--------
A *search space* maps hyperparameter names (``HYPERPARAMETERS``) to a ``Range``, a
``Choices`` list or a ``Fixed`` value, read from the command line (``parse_spec``) or a TOML
file (``load_config``); bad input raises ``SearchError`` (a ``ValueError``) with one line that
names the hyperparameter, the value and what was expected.

A *study* lives in an Optuna storage (``open_storage``): a journal file ``<out>/study.journal``
by default, or a database URL that workers on several machines share. The process that creates
the study stores its whole configuration in it, so a worker that joins needs only ``--study``
and ``--storage``, and a search interrupted at any point resumes where it stopped. The budget
``trials`` counts trials that did not fail, however many workers share the study; the trials
of a worker that died are failed and run once more. Trial ``k`` is seeded from
``(seed, k)``, so the best one can be retrained exactly.

``search(...)`` runs a study (``jobs`` worker processes, each with ``cores // jobs`` BLAS
threads) and writes to ``out``: ``trials.csv``, ``best_value.png``, ``params.png``,
``summary.json`` and ``best_model.npz`` (the best configuration retrained, readable by
``nndl.checkpoint.load_model`` and ``nndl evaluate``). The command line is ``nndl search``;
``python -m nndl.search`` is the same command.

Modules, each importing only those above it:

``space``     hyperparameters, specs, parsing, the default space, grid points
``config``    the study configuration stored in the study; TOML search files
``training``  ``load_dataset`` and ``train_config``: the data and the training of one trial
``storage``   ``open_storage`` (journal or database), dead workers' trials failed and requeued
``study``     creating or joining a study, the budget, the trial objective, the worker loop
``results``   ``write_results``: trials.csv, plots, summary.json, the retrained best model
``runner``    ``search(...)`` and its worker processes
``command``   ``nndl search``: ``add_search_arguments``, ``run_search_command``, ``main``

Optuna is imported only when a search runs, so that the ``nndl`` command, which imports this
package for its options, starts without it.
"""

# Besides __all__, the module constants and the private names the tests use (the old single
# module's names, so that nndl.search.X keeps working).
from .command import INTERRUPT_HINT, add_search_arguments, main, run_search_command
from .config import DATASETS, PRUNERS, SAMPLERS, load_config  # noqa: F401
from .results import RESULT_FILES, SearchResult, _plot, write_results  # noqa: F401
from .runner import search
from .space import (DEFAULT_SPACE, HYPERPARAMETERS, Choices, Fixed, Range, SearchError,  # noqa: F401
                    _grid_points, make_space, parse_spec)
from .storage import DEFAULT_OUT, JOURNAL_NAME, MAX_RETRIES, open_storage  # noqa: F401
from .study import CONFIG_ATTR, DEFAULT_STUDY  # noqa: F401
from .training import DIGITS_NUM_TEST, load_dataset, train_config

__all__ = [
    "HYPERPARAMETERS", "DEFAULT_SPACE", "Range", "Choices", "Fixed", "SearchError",
    "SearchResult", "DIGITS_NUM_TEST", "parse_spec", "load_config", "make_space", "load_dataset", "train_config",
    "open_storage", "search", "write_results", "add_search_arguments", "run_search_command",
    "main",
]
