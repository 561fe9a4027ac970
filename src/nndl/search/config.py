"""The configuration of a study: what every worker of one study must agree on.

Contract
--------
A ``_StudyConfig`` holds the space, the budget (``trials``), ``epochs``, ``sampler`` (one of
``SAMPLERS``), ``pruner`` (``PRUNERS``), ``seed``, ``dataset`` (``DATASETS``) and the split
sizes. The process that creates a study stores it there as JSON (``to_json``/``from_json``),
so a worker that joins reads it instead of being told. ``_check_settings`` validates the
study-level settings that are given; ``load_config(path)`` reads them, with a space, from a
TOML search file. Bad values raise ``SearchError`` with one line that names the file, the key,
the value and what was expected.
"""

import os
from dataclasses import asdict, dataclass

from ..data import DATASET_NAMES
from .space import SearchError, _space_from_json, _space_to_json, _spec_from_toml


SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
DATASETS = DATASET_NAMES  # the datasets of nndl's one loader (nndl.data)


@dataclass
class _StudyConfig:
    """Everything that must be the same for every worker of a study (stored in the study)."""
    space: dict
    trials: int = 30
    epochs: int = 10
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    dataset: str = "digits"
    num_validation: object = None
    num_training: object = None

    def to_json(self):
        d = asdict(self)
        d["space"] = _space_to_json(self.space)
        return d

    @classmethod
    def from_json(cls, obj):
        obj = dict(obj)
        obj["space"] = _space_from_json(obj["space"])
        return cls(**obj)


_SETTINGS = ("trials", "epochs", "sampler", "pruner", "seed", "dataset", "num_validation", "num_training")


def _check_settings(settings):
    """Validate the study-level settings that are given (None means not given)."""
    for key in ("trials", "epochs"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"{key} must be an int >= 1, got {v!r}")
    for key in ("num_validation", "num_training"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"{key} must be an int >= 1, got {v!r}")
    seed = settings.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SearchError(f"seed must be an int >= 0, got {seed!r}")
    for key, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("dataset", DATASETS)):
        v = settings.get(key)
        if v is not None and v not in choices:
            raise SearchError(f"{key} must be one of {', '.join(choices)}; got {v!r}")


def load_config(path):
    """Read a TOML search file.

    The file may hold a ``[space]`` table (hyperparameter -> ``{low, high, log, num}``, an
    array of values, or one value) and a ``[search]`` table with any of ``trials``, ``epochs``,
    ``sampler``, ``pruner``, ``seed``, ``dataset``, ``num_validation``, ``num_training``.

    Returns
    -------
    space : dict of str -> spec
    settings : dict
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise SearchError("reading a TOML search file on Python 3.10 needs tomli "
                              "(pip install 'nndl[search]')") from None
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise SearchError(f"search file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SearchError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:  # a directory, no permission, ...
        raise SearchError(f"cannot read search file {path}: {exc.strerror or exc}") from None
    unknown = sorted(set(doc) - {"space", "search"})
    if unknown:
        raise SearchError(f"{path}: unknown table(s) {', '.join(unknown)}; expected [space] and [search]")
    space_doc, settings = doc.get("space", {}), dict(doc.get("search", {}))
    if not isinstance(space_doc, dict) or not isinstance(settings, dict):
        raise SearchError(f"{path}: [space] and [search] must be tables")
    bad = sorted(set(settings) - set(_SETTINGS))
    if bad:
        raise SearchError(f"{path}: unknown [search] key(s) {', '.join(bad)}; known ones are {', '.join(_SETTINGS)}")
    space = {}
    for name, value in space_doc.items():
        try:
            space[name] = _spec_from_toml(name, value)
        except SearchError as exc:
            raise SearchError(f"{path}: {exc}") from None
    try:
        _check_settings(settings)
    except SearchError as exc:
        raise SearchError(f"{path}: {exc}") from None
    return space, settings
