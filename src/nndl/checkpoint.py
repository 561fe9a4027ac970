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

A Solver checkpoint (``save_solver_checkpoint``) is a model file plus the training state:
the epoch, every parameter's optimizer config (arrays as ``optim/...``, scalars such as the
decayed learning rate in the JSON), the histories, the best parameters so far (``best/<name>``)
and that epoch's batchnorm averages (``bestbn/<layer>/<key>``), the settings that shape the run
(batch size, sampling, lr decay and schedule, accuracy samples, patience), and the states of the
Solver's own ``np.random.Generator`` and of the model's dropout Generator (when they have one).
``restore_solver_checkpoint(solver, path)`` (what ``Solver(..., resume_from=path)`` calls) puts
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

__all__ = ["save_model", "load_model", "check_savable", "load_checkpoint", "save_solver_checkpoint",
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
        preprocessed as in training: subtract ``model.preprocessing["mean_image"]`` (when
        present) from raw images first, as ``nndl evaluate`` does.
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


def save_solver_checkpoint(solver, path, preprocessing=None, class_names=None, **extra):
    """Save the Solver's model, optimizer state, epoch and histories to ``path``.

    Parameters
    ----------
    solver : nndl.solver.Solver
    path : str or path
    preprocessing, class_names, **extra
        As for ``save_model``, so that the checkpoint is also a complete model file.
    """
    arrays = _model_arrays(solver.model, preprocessing)
    scalars = {}
    for name, config in solver.optim_configs.items():
        scalars[name] = {}
        for key, value in config.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{name}/{key}"] = value
            else:
                scalars[name][key] = value
    for name, value in solver.best_params.items():
        arrays[f"best/{name}"] = value
    # The best epoch's batchnorm averages go with its parameters (Solver.train restores both).
    for i, stats in enumerate(solver.best_bn_stats):
        for key, value in stats.items():
            arrays[f"bestbn/{i}/{key}"] = value
    meta = _meta(solver.model, class_names, solver=dict(
        epoch=solver.epoch, update_rule=solver.update_rule_name, optim_scalars=scalars,
        lr_decay=solver.lr_decay, batch_size=solver.batch_size, num_epochs=solver.num_epochs,
        sampling=solver.sampling, num_train_samples=solver.num_train_samples,
        num_val_samples=solver.num_val_samples, patience=solver.patience,
        model_rng_state=_generator_state(_dropout_generator(solver.model)),
        loss_history=[float(v) for v in solver.loss_history],
        train_acc_history=solver.train_acc_history, val_acc_history=solver.val_acc_history,
        best_val_acc=solver.best_val_acc, rng_state=_generator_state(solver.rng), lr_schedule=_schedule_spec(solver.lr_schedule)),
        **extra)
    arrays["__nndl__"] = np.array(_dumps(meta))
    _atomic_savez(path, arrays)


def _dropout_generator(model):
    """The Generator the model draws its dropout masks from, or None."""
    return (getattr(model, "dropout_param", None) or {}).get("rng")


def _generator_state(rng):
    """A private Generator's state (JSON-ready), or None for anything else (the global state)."""
    return rng.bit_generator.state if isinstance(rng, np.random.Generator) else None


def _set_generator_state(rng, state):
    """Put a saved state back into ``rng`` when both are of the same kind of generator."""
    if (state is not None and isinstance(rng, np.random.Generator)
            and state.get("bit_generator") == type(rng.bit_generator).__name__):
        rng.bit_generator.state = state


# Settings that change the run: a resume under other values would not continue it.
_RUN_SETTINGS = ("batch_size", "sampling", "lr_decay")


def _schedule_spec(spec):
    """A Solver's ``lr_schedule`` as its full JSON spec (defaults filled in), or None."""
    if spec is None:
        return None
    from .schedules import make_schedule

    # The run's length does not enter the spec; any consistent one will do to fill the defaults.
    return make_schedule(spec, 10**9, 1).spec


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
    if state["update_rule"] != solver.update_rule_name:
        raise CheckpointError(f"{path} was trained with update_rule {state['update_rule']!r}; "
                              f"the Solver uses {solver.update_rule_name!r}")
    for key in _RUN_SETTINGS:
        if key in state and state[key] != getattr(solver, key):
            raise CheckpointError(f"{path} was trained with {key} {state[key]!r}; the Solver uses "
                                  f"{getattr(solver, key)!r} (resume with the checkpoint's value)")
    if state.get("lr_schedule") != _schedule_spec(solver.lr_schedule):
        raise CheckpointError(f"{path} was trained with lr_schedule {state.get('lr_schedule')!r}; "
                              f"the Solver uses {_schedule_spec(solver.lr_schedule)!r}")

    # Everything is read before anything is changed, so a damaged file leaves the solver as it was.
    try:
        params = {name: arrays[f"param/{name}"].astype(model.dtype, copy=False) for name in model.params}
        configs = {}
        for name in model.params:
            configs[name] = dict(state["optim_scalars"][name])
            prefix = f"optim/{name}/"
            configs[name].update({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        history = {key: list(state[key]) for key in ("loss_history", "train_acc_history", "val_acc_history")}
        epoch, best_val_acc = int(state["epoch"]), float(state["best_val_acc"])
        best_params = {k[5:]: v.astype(model.dtype, copy=False) for k, v in arrays.items() if k.startswith("best/")}
        best_bn = {}
        for k, v in arrays.items():
            if k.startswith("bestbn/"):
                _, i, key = k.split("/", 2)
                best_bn.setdefault(int(i), {})[key] = v.astype(model.dtype, copy=False)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the training state is incomplete or damaged ({type(exc).__name__}: "
                              f"{exc})") from None
    wrong = [n for n in params if params[n].shape != model.params[n].shape]
    if best_params and set(best_params) != set(model.params):
        wrong.append(f"best-epoch set {sorted(best_params)} (the model has {sorted(model.params)})")
    wrong += [f"best {n}" for n, v in best_params.items() if n in model.params and v.shape != model.params[n].shape]
    # The best epoch's batchnorm averages: one entry per batchnorm layer (they are restored by
    # position), each of its layer's width.
    num_bn = len(getattr(model, "bn_params", []))
    if best_bn and sorted(best_bn) != list(range(num_bn)):
        wrong.append(f"best batchnorm layers {sorted(best_bn)} (the model has {num_bn})")
    for i, stats in best_bn.items():
        gamma = model.params.get(f"gamma{i + 1}")
        for key, value in stats.items():
            if gamma is None or key not in ("running_mean", "running_var") or value.shape != gamma.shape:
                wrong.append(f"best batchnorm {i}/{key}")
    if wrong:
        raise CheckpointError(f"{path}: parameter(s) {', '.join(wrong)} missing from the model or of the wrong shape")
    if epoch > solver.num_epochs:
        # train() would do nothing and report the checkpoint as the finished run.
        raise ValueError(f"num_epochs must be at least the {epoch} epochs {path} has already done "
                         f"(it counts them), got {solver.num_epochs}")
    model.params.update(params)
    for i, bn_param in enumerate(getattr(model, "bn_params", [])):
        for key in ("running_mean", "running_var"):
            if f"bn/{i}/{key}" in arrays:
                bn_param[key] = arrays[f"bn/{i}/{key}"].astype(model.dtype)
    solver.optim_configs = configs
    solver.epoch, solver.best_val_acc = epoch, best_val_acc
    for key, values in history.items():
        setattr(solver, key, values)
    solver.best_params = best_params
    solver.best_bn_stats = [best_bn[i] for i in sorted(best_bn)]
    _set_generator_state(solver.rng, state.get("rng_state"))
    # The dropout masks' generator too, so that a resumed run with dropout equals the whole one.
    _set_generator_state(_dropout_generator(model), state.get("model_rng_state"))
    return solver
