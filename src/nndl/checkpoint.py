"""Save and load trained models (and Solver state) as one ``.npz`` file, without pickle.

Contract
--------
A checkpoint is an ``.npz`` archive of plain arrays plus one JSON document under the key
``__nndl__``: ``{"format": "nndl-model", "format_version": 1, "nndl_version", "model_class",
"config", "class_names", ...}``. Arrays are stored as ``param/<name>``, ``bn/<i>/<key>``
(batchnorm running averages), ``pre/<name>`` (preprocessing, e.g. the mean image) and
``optim/<param>/<key>`` (optimizer state). It is read with ``allow_pickle=False``, so loading
never runs code. Writes go to a temporary file in the target directory that is renamed over
the target only when complete: a crash mid-write leaves the previous file intact.

``load_model(path)`` rebuilds a model whose predictions equal the saved one's exactly.

A Solver checkpoint (``save_solver_checkpoint``) is a model file plus the training state of
``Solver.state_dict()`` (the Solver owns what its state is and checks it in
``Solver.load_state``; this module only lays it out in the file): the epoch, every parameter's optimizer config (arrays as ``optim/...``, scalars such as the
decayed learning rate in the JSON), the histories, the best parameters so far (``best/<name>``)
and that epoch's batchnorm averages (``bestbn/<layer>/<key>``), the settings that shape the run
(batch size, sampling, lr decay and schedule, accuracy samples, patience), and the states of the
Solver's own ``np.random.Generator`` and of the model's dropout Generator (when they have one).
``restore_solver_checkpoint(solver, path)`` (what ``Solver(..., resume_from=path)`` calls)
checks the file's model against the Solver's and hands the state to ``load_state``, which puts
all of it back, so training resumed from the checkpoint of epoch k continues exactly as the
uninterrupted run would have, dropout masks included when the model draws them from a
Generator; a Solver whose batch size, sampling, lr decay or schedule differs from the
checkpoint's is refused by name.
"""

import json
import os
import zipfile

import numpy as np

from ._files import write_atomically
from ._validation import _short, check_seed
from .fc_net import FullyConnectedNet, TwoLayerNet

__all__ = ["save_model", "load_model", "preprocess", "check_savable", "load_checkpoint", "save_solver_checkpoint",
           "restore_solver_checkpoint", "CheckpointError", "FORMAT_VERSION"]

FORMAT = "nndl-model"
FORMAT_VERSION = 1
_MODEL_CLASSES = {"FullyConnectedNet": FullyConnectedNet, "TwoLayerNet": TwoLayerNet}


class CheckpointError(ValueError):
    """A file that is not an nndl checkpoint, or one this version cannot read."""


def _version():
    from . import __version__

    return __version__


def _plain_array(name, value):
    """``value`` as an array of numbers, booleans or strings, else ``TypeError`` naming ``name``.

    ``np.savez`` would pickle anything else (a dict, arrays of different shapes in a list),
    and ``load_model`` refuses pickles, so such a value is refused before anything is written.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        array = None
    if array is None or array.dtype.hasobject:
        shown = f"an ndarray of dtype {value.dtype}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise TypeError(f"{name} must be an array of numbers, booleans or strings (files are written "
                        f"without pickle), got {shown}")
    return array


def _atomic_savez(path, arrays):
    """Write ``arrays`` to ``path`` via a temporary file and a rename (no pickled objects)."""
    arrays = {key: _plain_array(key, value) for key, value in arrays.items()}
    write_atomically(path, lambda f: np.savez(f, **arrays), suffix=".npz.tmp")


def check_savable(model):
    """Raise ``TypeError`` unless ``model`` is a class ``save_model`` can write and ``load_model``
    rebuild: exactly nndl.fc_net's FullyConnectedNet or TwoLayerNet (the file names the class,
    and ``load_model`` knows only these two)."""
    if type(model) not in _MODEL_CLASSES.values():
        kind = type(model)
        raise TypeError(f"save_model supports nndl.fc_net.FullyConnectedNet and nndl.fc_net.TwoLayerNet, "
                        f"got {kind.__module__}.{kind.__qualname__}")


def _model_arrays(model, preprocessing=None):
    check_savable(model)
    arrays = {f"param/{k}": np.asarray(v) for k, v in model.params.items()}
    for i, bn_param in enumerate(getattr(model, "bn_params", [])):
        for key in ("running_mean", "running_var"):
            if bn_param.get(key) is not None:
                arrays[f"bn/{i}/{key}"] = np.asarray(bn_param[key])
    for k, v in (preprocessing or {}).items():
        arrays[f"pre/{k}"] = _plain_array(f"preprocessing[{k!r}]", v)
    return arrays


def _json_default(value):
    """NumPy scalars and small arrays in metadata (np.float32(0.9), np.int64(5)) as Python values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def _dumps(meta):
    return json.dumps(meta, default=_json_default)


def _class_names(class_names):
    """``class_names`` as a list of str (``str()`` of each name: labels may be numbers), or
    None; ``TypeError`` naming it for a single string or a non-iterable."""
    if class_names is None:
        return None
    try:
        if isinstance(class_names, str):
            raise TypeError
        return [str(name) for name in class_names]
    except TypeError:
        raise TypeError(f"class_names must be a sequence of names or None, got {_short(class_names)}") from None


def _meta(model, class_names=None, **extra):
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "nndl_version": _version(),
        "model_class": type(model).__name__, "config": model.config(),
        "class_names": _class_names(class_names), **extra,
    }


def save_model(path, model, preprocessing=None, class_names=None, **extra):
    """Save a FullyConnectedNet / TwoLayerNet to ``path`` atomically.

    Parameters
    ----------
    path : str or path
        Target file (``.npz`` is conventional).
    model : FullyConnectedNet or TwoLayerNet
    preprocessing : dict of str -> ndarray, optional
        E.g. ``{"mean_image": ...}``, restored as ``model.preprocessing``.
    class_names : sequence, optional
        One name per class, stored as str (numbers become "0", "1", ...).
    **extra
        More JSON-serialisable metadata (e.g. ``dataset="digits"``).
    """
    arrays = _model_arrays(model, preprocessing)
    arrays["__nndl__"] = np.array(_dumps(_meta(model, class_names, **extra)))
    _atomic_savez(path, arrays)


def load_checkpoint(path):
    """Read a checkpoint into ``(meta, arrays)``; raise ``CheckpointError`` if it is not one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a model file (e.g. {os.path.join(path, 'model.npz')})")
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} is not a regular file, so not an nndl model file")
    # Checked first: for a file that is not a zip, np.load's own error talks about pickles.
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not an nndl model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{path} is not an nndl model file ({exc})") from None
    raw = arrays.pop("__nndl__", None)
    try:
        meta = json.loads(str(raw)) if raw is not None else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nndl model file (no nndl metadata)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version} (written by nndl {meta.get('nndl_version')}); "
            f"this nndl {_version()} reads format {FORMAT_VERSION}")
    return meta, arrays


def _rebuild(path, meta):
    """The model described by ``meta`` (fresh weights), or ``CheckpointError`` naming ``path``."""
    cls = _MODEL_CLASSES.get(meta.get("model_class"))
    if cls is None:
        raise CheckpointError(f"{path}: unknown model class {meta.get('model_class')!r}")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model file has no 'config' entry describing the model "
                              f"(got {_short(config)}); it is damaged or was not written by nndl")
    config = dict(config)
    if cls is TwoLayerNet:
        hidden = config.get("hidden_dims")
        if not isinstance(hidden, list) or len(hidden) != 1:
            raise CheckpointError(f"{path}: a TwoLayerNet has one hidden layer, but its config says "
                                  f"hidden_dims={hidden!r}")
        config["hidden_dims"] = hidden[0]
    try:
        # seed=0 avoids touching the global random state; the weights are overwritten below.
        return cls(**config, seed=0)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model ({exc})") from None


def _checked_params(path, arrays, model):
    """The file's parameters in the model's dtype, after checking that they are exactly the
    model's (names and shapes), numeric and finite; else ``CheckpointError`` naming the entry."""
    stored = {k[len("param/"):] for k in arrays if k.startswith("param/")}
    extra = sorted(stored - set(model.params))
    if extra:
        raise CheckpointError(f"{path}: parameter(s) {', '.join(extra)} do not belong to the model its config "
                              f"describes ({type(model).__name__} with {', '.join(sorted(model.params))})")
    params = {}
    for name, current in model.params.items():
        value = arrays.get(f"param/{name}")
        if value is None or value.shape != current.shape:
            raise CheckpointError(f"{path}: parameter {name} is missing or has the wrong shape")
        params[name] = _finite_numbers(path, f"parameter {name}", value).astype(model.dtype, copy=False)
    return params


def _finite_numbers(path, what, value):
    """``value`` if it is an array of finite numbers, else ``CheckpointError`` naming ``what``."""
    if value.dtype.kind not in "fiu":
        raise CheckpointError(f"{path}: {what} holds {value.dtype} values, not numbers")
    if not np.isfinite(value).all():
        raise CheckpointError(f"{path}: {what} holds NaN or inf (the run that saved it diverged, or the "
                              f"file was changed)")
    return value


def load_model(path, seed=None):
    """Rebuild the model saved at ``path``.

    Parameters
    ----------
    path : str or path
    seed : None, int or numpy.random.Generator
        Source of the dropout masks if the model is trained further: None draws them from
        NumPy's global random state (as a model built with ``seed=None`` does), an int or a
        Generator from ``np.random.default_rng(seed)``. Either way every step gets a fresh mask.

    Returns
    -------
    model : FullyConnectedNet or TwoLayerNet
        With ``model.preprocessing`` (dict of arrays), ``model.class_names`` and
        ``model.metadata`` (the JSON metadata) set. ``predict`` and ``loss`` take inputs
        preprocessed as in training: pass raw images through ``preprocess(model, X)`` first
        (the mean image subtracted and, for a standardised model, the per-channel std divided
        out), as ``nndl evaluate`` and ``nndl predict`` do.
    """
    seed = check_seed(seed)  # the models' own check: None, an int >= 0 or a Generator
    meta, arrays = load_checkpoint(path)
    model = _rebuild(path, meta)
    model.params.update(_checked_params(path, arrays, model))
    for i, bn_param in enumerate(model.bn_params):
        for key in ("running_mean", "running_var"):
            if f"bn/{i}/{key}" in arrays:
                bn_param[key] = _finite_numbers(path, f"batchnorm {i} {key}", arrays[f"bn/{i}/{key}"])
    if model.dropout_param:
        # The seed=0 above would fix the dropout mask (what gradient checks want); a loaded
        # model trains on with fresh masks.
        model.dropout_param.pop("seed", None)
        model.dropout_param.pop("rng", None)
        if seed is not None:
            model.dropout_param["rng"] = (seed if isinstance(seed, np.random.Generator)
                                          else np.random.default_rng(seed))
    model.preprocessing = {k[4:]: _finite_numbers(path, f"preprocessing {k[4:]}", v)
                           for k, v in arrays.items() if k.startswith("pre/")}
    model.class_names = meta.get("class_names")
    model.metadata = meta
    return model


def preprocess(model, X):
    """Raw inputs ``X`` (N, *shape) as ``model`` saw them in training: the model file's mean image
    subtracted and, when it has one, divided by its per-channel std (what ``nndl evaluate`` and
    ``nndl predict`` apply). Without a mean image ``X`` is returned as it is. A float ``X`` keeps
    its dtype."""
    mean = model.preprocessing.get("mean_image")
    if mean is None:
        return X
    if mean.size != int(np.prod(X.shape[1:])):
        raise ValueError(f"the model's mean image has shape {mean.shape}; inputs of shape {X.shape[1:]} do not fit it")
    X = X - mean.reshape(X.shape[1:]).astype(X.dtype, copy=False)
    std = model.preprocessing.get("std_image")
    if std is not None:
        X /= std.reshape(X.shape[1:]).astype(X.dtype, copy=False)
    return X


def save_solver_checkpoint(solver, path, preprocessing=None, class_names=None, **extra):
    """Save the Solver's model, optimizer state, epoch and histories to ``path``.

    Parameters
    ----------
    solver : nndl.solver.Solver
    path : str or path
    preprocessing, class_names, **extra
        As for ``save_model``, so that the checkpoint is also a complete model file.
    """
    state = solver.state_dict()
    arrays = _model_arrays(solver.model, preprocessing)  # the model's params and batchnorm averages
    scalars = {}
    for name, config in state.pop("optim_configs").items():
        scalars[name] = {}
        for key, value in config.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{name}/{key}"] = value
            else:
                scalars[name][key] = value
    for name, value in state.pop("best_params").items():
        arrays[f"best/{name}"] = value
    # The best epoch's batchnorm averages go with its parameters (Solver.train restores both).
    for i, stats in enumerate(state.pop("best_bn_stats")):
        for key, value in stats.items():
            arrays[f"bestbn/{i}/{key}"] = value
    del state["params"], state["bn_stats"]  # stored above, as in a model file
    meta = _meta(solver.model, class_names, solver=dict(state, optim_scalars=scalars), **extra)
    arrays["__nndl__"] = np.array(_dumps(meta))
    _atomic_savez(path, arrays)


def restore_solver_checkpoint(solver, path):
    """Put the training state saved by ``save_solver_checkpoint`` back into ``solver``.

    The solver's model must have the architecture of the saved one and the solver the same
    update rule; the model's parameters and batchnorm averages, the optimizer state (including
    the decayed learning rate), the epoch, the histories and the best parameters are replaced.
    The batch-sampling generator is restored when both the checkpoint and the solver have a
    private ``np.random.Generator`` (a Solver with ``seed=None`` keeps drawing from NumPy's
    global state, which is not saved).

    Parameters
    ----------
    solver : nndl.solver.Solver
    path : str or path
        A file written by ``save_solver_checkpoint`` (``Solver(checkpoint_name=...)``).

    Raises
    ------
    CheckpointError
        The file is not a Solver checkpoint or does not fit this solver and model.
    ValueError
        The solver's ``num_epochs`` is smaller than the epochs the checkpoint has done.
    """
    path = os.fspath(path)
    meta, arrays = load_checkpoint(path)
    state = meta.get("solver")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is a model file, not a Solver checkpoint (it has no training state)")
    model = solver.model
    saved = f"{meta.get('model_class')}({meta.get('config')})"
    current = f"{type(model).__name__}({model.config() if hasattr(model, 'config') else '?'})"
    if saved != current:
        if meta.get("model_class") == type(model).__name__ and hasattr(model, "config"):
            # Same class: name only what differs, not two whole configurations.
            there, here = meta.get("config") or {}, model.config()
            differ = sorted(k for k in set(there) | set(here) if there.get(k) != here.get(k))
            if not differ:  # equal values that print differently (np.float64 vs float)
                raise CheckpointError(f"{path} was saved from {saved}; the Solver's model is {current}")
            raise CheckpointError(f"{path} was saved from a {type(model).__name__} with "
                                  + ", ".join(f"{k}={there.get(k)!r}" for k in differ)
                                  + "; the Solver's model has "
                                  + ", ".join(f"{k}={here.get(k)!r}" for k in differ))
        raise CheckpointError(f"{path} was saved from {saved}; the Solver's model is {current}")
    return solver.load_state(_file_state(path, state, arrays, model), source=path, error=CheckpointError)


def _file_state(path, state, arrays, model):
    """The ``Solver.state_dict()`` stored in a checkpoint's metadata ``state`` and ``arrays``."""
    try:
        configs = {}
        for name in model.params:  # a parameter without its optimizer state is a damaged file
            prefix = f"optim/{name}/"
            configs[name] = {**state["optim_scalars"][name],
                             **{k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}}
        params = {name: arrays[f"param/{name}"] for name in model.params}
        bn = _indexed(arrays, "bn/")
        best_params = {k[len("best/"):]: v for k, v in arrays.items() if k.startswith("best/")}
        best_bn = _indexed(arrays, "bestbn/")
        fields = {key: state[key] for key in ("update_rule", "epoch", "best_val_acc", "loss_history",
                                             "train_acc_history", "val_acc_history")}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the training state is incomplete or damaged ({type(exc).__name__}: "
                              f"{exc})") from None
    num_bn = len(getattr(model, "bn_params", []))
    if best_bn and sorted(best_bn) != list(range(num_bn)):
        raise CheckpointError(f"{path}: parameter(s) best batchnorm layers {sorted(best_bn)} (the model has "
                              f"{num_bn}) missing from the model or of the wrong shape")
    others = {k: v for k, v in state.items() if k not in fields and k != "optim_scalars"}
    return dict(others, **fields, optim_configs=configs, params=params, bn_stats=[bn[i] for i in sorted(bn)],
                best_params=best_params, best_bn_stats=[best_bn[i] for i in sorted(best_bn)])


def _indexed(arrays, prefix):
    """``{i: {key: array}}`` of the arrays named ``<prefix><i>/<key>``."""
    out = {}
    for k, v in arrays.items():
        if k.startswith(prefix):
            i, key = k[len(prefix):].split("/", 1)
            out.setdefault(int(i), {})[key] = v
    return out
