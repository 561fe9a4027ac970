"""Accuracy and time of nndl's training recipes on held-out test images (run by hand).

The split (the shared subset has no test batch, so part of it is held out as the test set):
load the five training batches in order (data_batch_1: 1,102 images, data_batch_2..5: 1,017
each; 5,170 in all); the last 1,017 (data_batch_5) are the test set, the 300 before them the
validation set, the first 3,853 the training set. Preprocessing (mean image or per-channel
standardisation) is computed on the training set only.

    python benchmarks/bench_recipes.py --data-dir ../shared/data/cifar-10-subset \\
        --recipe seed --recipe cifar10 --torch --overhead --out benchmarks/results/recipes.json

``--recipe NAME`` (repeatable) trains a recipe of ``nndl.recipes`` and scores the test set, as it
is and with test-time flips (``nndl evaluate --tta flip``); the ``digits`` recipe trains on the
built-in digits instead, split as ``nndl train --dataset digits`` splits them;
``--set KEY=VALUE`` changes a setting of every recipe run (JSON values: ``--set epochs=5``);
``--torch`` trains the same net with the same recipe in PyTorch (CPU, 2 threads) side by side,
checking the accuracy on a training sample and the validation set after every epoch as nndl's
Solver does (so both time the same work; PyTorch keeps its last epoch, nndl its best);
``--overhead`` times the augmentation and the update rule inside two epochs of the
3072-1024-512-10 net, as a fraction of the epoch, and what the recipe adds to a plain Adam run
(the augmentation, and AdamW's decoupled decay: its update's time over Adam's); with ``--torch``
also the shares of PyTorch's augmentation and ``AdamW.step`` in its own epoch. Each run prints the machine's load
(``os.getloadavg``) before it starts, as timings on a shared machine are noisy.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from nndl import recipes
from nndl.data import load_dataset
from nndl.data_utils import _preprocess, load_CIFAR10, load_CIFAR10_meta
from nndl.predict import class_probabilities
from nndl.solver import Solver

NUM_TEST = 1017
NUM_VALIDATION = 300


def load_split(data_dir, standardize, dtype=np.float32):
    """The benchmark's train/val/test split of the subset, preprocessed as a recipe asks."""
    X, y, _, _ = load_CIFAR10(data_dir, dtype=dtype, require_test=False)
    n_train = X.shape[0] - NUM_TEST - NUM_VALIDATION
    splits = {"train": (X[:n_train], y[:n_train]),
              "val": (X[n_train:n_train + NUM_VALIDATION], y[n_train:n_train + NUM_VALIDATION]),
              "test": (X[-NUM_TEST:], y[-NUM_TEST:])}
    return _preprocess(splits, True, "image", dtype, load_CIFAR10_meta(data_dir), standardize=standardize)


def load_digits_split(settings):
    """The built-in digits split as ``nndl train --dataset digits`` makes it (1,257 training,
    180 validation, 360 test images of 8x8), for the ``digits`` recipe."""
    data, _ = load_dataset("digits", num_validation=settings["num_validation"], num_test=settings["num_test"],
                           dtype=np.dtype(settings["dtype"]), standardize=settings["standardize"])
    return data


def run_nndl(settings, data, seed=0):
    """Train ``settings`` on ``data``; returns the figures of the run."""
    # Seeded as nndl train --seed seeds its run, so that the digits figures are nndl train's.
    model_rng, solver_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    image_shape = data["X_train"].shape[1:]
    model = recipes.build_model(settings, int(np.prod(image_shape)), 10, model_rng)
    solver = Solver(model, {k: data[k] for k in ("X_train", "y_train", "X_val", "y_val")}, verbose=False,
                    seed=solver_rng, **recipes.solver_options(settings, image_shape))
    start = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - start
    test_acc = float(np.mean(model.predict(data["X_test"]) == data["y_test"]))
    # Test-time flips (nndl evaluate/predict --tta flip), for the recipes that train with flips.
    flipped = class_probabilities(model, data["X_test"], tta="flip").argmax(1)
    return {"test_acc": test_acc, "test_acc_tta_flip": float(np.mean(flipped == data["y_test"])),
            "best_val_acc": solver.best_val_acc, "seconds": seconds,
            "epochs_run": solver.epoch, "final_train_acc": solver.train_acc_history[-1]}


def _torch_setup(settings, data, seed):
    """PyTorch's net, AdamW, one-cycle schedule and loss for ``settings`` (CPU, 2 threads)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    layers, width = [torch.nn.Flatten()], int(np.prod(data["X_train"].shape[1:]))
    for h in settings["hidden"]:
        layers += [torch.nn.Linear(width, h)]
        if settings["normalization"] == "batchnorm":
            layers += [torch.nn.BatchNorm1d(h)]
        layers += [torch.nn.ReLU()]
        if settings["dropout"]:
            layers += [torch.nn.Dropout(settings["dropout"])]
        width = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    if settings["update_rule"] != "adamw":
        raise SystemExit("--torch reproduces AdamW recipes only")
    opt = torch.optim.AdamW(net.parameters(), lr=settings["learning_rate"], weight_decay=settings["weight_decay"])
    steps = data["X_train"].shape[0] // settings["batch_size"]
    sched = None
    if settings["lr_schedule"] == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings["learning_rate"],
                                                    total_steps=settings["epochs"] * steps, cycle_momentum=False)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])
    return net, opt, sched, loss_fn


def _torch_epoch(settings, net, opt, sched, loss_fn, Xtr, ytr, spent=None):
    """One epoch of PyTorch training: permuted batches, nndl's flips and reflect crops, AdamW steps.
    With a dict ``spent``, the seconds of the augmentation and of ``opt.step`` are added to it."""
    import torch

    bs, pad = settings["batch_size"], settings["crop_padding"]
    net.train()
    order = torch.randperm(Xtr.shape[0])
    for i in range(Xtr.shape[0] // bs):
        idx = order[i * bs:(i + 1) * bs]
        xb = Xtr[idx]
        start = time.perf_counter()
        if settings["augment"]:
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(3)
            padded = torch.nn.functional.pad(xb, (pad,) * 4, mode="reflect")
            ox, oy = torch.randint(0, 2 * pad + 1, (2, len(idx)))
            xb = torch.stack([padded[j, :, oy[j]:oy[j] + 32, ox[j]:ox[j] + 32] for j in range(len(idx))])
        augmented = time.perf_counter()
        opt.zero_grad()
        loss_fn(net(xb), ytr[idx]).backward()
        stepping = time.perf_counter()
        opt.step()
        if spent is not None:
            spent["augment"] += augmented - start
            spent["update"] += time.perf_counter() - stepping
        if sched is not None:
            sched.step()


def run_torch(settings, data, seed=0):
    """The same net and recipe in PyTorch (only the recipes' features that torch has built in)."""
    import torch

    net, opt, sched, loss_fn = _torch_setup(settings, data, seed)
    Xtr, ytr = torch.tensor(data["X_train"]), torch.tensor(data["y_train"])
    Xval, yval = torch.tensor(data["X_val"]), torch.tensor(data["y_val"])
    start = time.perf_counter()
    for _ in range(settings["epochs"]):
        _torch_epoch(settings, net, opt, sched, loss_fn, Xtr, ytr)
        _torch_epoch_check(net, Xtr, ytr, Xval, yval, settings["num_train_samples"])
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        Xtest = torch.tensor(data["X_test"])
        probs = torch.softmax(net(Xtest), 1)
        flipped = (probs + torch.softmax(net(Xtest.flip(3)), 1)).argmax(1).numpy()
    y = data["y_test"]
    return {"test_acc": float(np.mean(probs.argmax(1).numpy() == y)), "test_acc_tta_flip": float(np.mean(flipped == y)),
            "seconds": seconds, "epochs_run": settings["epochs"]}


def measure_torch_overhead(settings, data, epochs=2):
    """PyTorch's side of ``measure_overhead``: the shares of its augmentation and of its AdamW step
    (``opt.step``) in ``epochs`` epochs of the same net, for comparison."""
    import torch

    settings = dict(settings, hidden=[1024, 512], epochs=epochs, lr_schedule=None)
    net, opt, sched, loss_fn = _torch_setup(settings, data, 0)
    Xtr, ytr = torch.tensor(data["X_train"]), torch.tensor(data["y_train"])
    spent = {"augment": 0.0, "update": 0.0}
    start = time.perf_counter()
    for _ in range(epochs):
        _torch_epoch(settings, net, opt, sched, loss_fn, Xtr, ytr, spent)
    total = time.perf_counter() - start
    steps = epochs * (Xtr.shape[0] // settings["batch_size"])
    return {"epochs": epochs, "seconds": total, "augment_fraction": spent["augment"] / total,
            "update_fraction": spent["update"] / total, "update_ms_per_step": 1e3 * spent["update"] / steps}


def _torch_epoch_check(net, Xtr, ytr, Xval, yval, num_train_samples):
    """The per-epoch work nndl's Solver does besides training (the accuracy on a sample of the
    training set and on the validation set), so that both sides time the same work."""
    import torch

    net.eval()
    with torch.no_grad():
        idx = torch.randint(0, Xtr.shape[0], (num_train_samples or Xtr.shape[0],))
        accuracies = [(net(Xtr[idx]).argmax(1) == ytr[idx]).float().mean().item(),
                      (net(Xval).argmax(1) == yval).float().mean().item()]
    net.train()
    return accuracies


def _timed_epochs(settings, data, epochs):
    """Seconds of ``epochs`` epochs of ``settings``, and of its augmentation and update rule in them."""
    from nndl import optim

    spent = {"augment": 0.0, "update": 0.0, "steps": 0}
    options = recipes.solver_options(settings, data["X_train"].shape[1:])
    rule = optim.get_update_rule(options["update_rule"])

    def timed(key, function):
        def wrapper(*args):
            start = time.perf_counter()
            out = function(*args)
            spent[key] += time.perf_counter() - start
            return out
        wrapper.__name__ = getattr(function, "__name__", key)
        return wrapper

    rng = np.random.default_rng(0)
    model = recipes.build_model(settings, 3072, 10, rng)
    timed_rule = timed("update", rule)

    def update(w, dw, config=None):
        spent["steps"] += w is model.params["W1"]  # one count per step: W1 is updated once in each
        return timed_rule(w, dw, config)

    update.__name__ = rule.__name__  # the Solver checks the config's keys against the rule's name
    options.update(update_rule=update)
    if options["augment"] is not None:
        options["augment"] = timed("augment", options["augment"])
    solver = Solver(model, {k: data[k] for k in ("X_train", "y_train", "X_val", "y_val")}, verbose=False,
                    seed=rng, num_val_samples=1, **{**options, "num_train_samples": 1})
    start = time.perf_counter()
    solver.train()
    return time.perf_counter() - start, spent["augment"], spent["update"], spent["steps"]


def measure_overhead(settings, data, epochs=2):
    """Seconds spent in the augmentation and in the update rule, against whole epochs, of the
    3072-1024-512-10 net; and what the recipe's additions cost: the augmentation, and AdamW's
    decoupled decay over plain Adam's update (the same epochs with update_rule 'adam')."""
    settings = dict(settings, hidden=[1024, 512], epochs=epochs, lr_schedule=None, patience=None)
    total, augment, update, steps = _timed_epochs(settings, data, epochs)
    plain = dict(settings, update_rule="adam", weight_decay=0.0, augment=None)
    plain_total, _, adam_update, _ = _timed_epochs(plain, data, epochs)
    added = augment + max(update - adam_update, 0.0)
    return {"epochs": epochs, "seconds": total, "augment_seconds": augment, "update_seconds": update,
            "steps": steps, "update_ms_per_step": 1e3 * update / steps,
            "augment_fraction": augment / total, "update_fraction": update / total,
            "augment_plus_update_fraction": (augment + update) / total,
            "adam_seconds": plain_total, "adam_update_seconds": adam_update,
            "added_fraction": added / total}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="the CIFAR-10 subset (for every recipe but digits, and --overhead)")
    parser.add_argument("--recipe", action="append", default=[], choices=list(recipes.RECIPES))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--torch", action="store_true")
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in recipes.SETTINGS:
            parser.error(f"--set: unknown setting {key!r}")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--set {item}: the value must be JSON (a string in quotes: {key}='\"{value}\"')")
    if args.data_dir is None and (args.overhead or any(r != "digits" for r in args.recipe)):
        parser.error("--data-dir (the CIFAR-10 subset) is needed for the CIFAR-10 recipes and --overhead")
    split = {"train": 5170 - NUM_TEST - NUM_VALIDATION, "val": NUM_VALIDATION, "test": NUM_TEST}
    if "digits" in args.recipe:
        split = {**(split if args.data_dir else {}), "digits": {"train": 1257, "val": 180, "test": 360}}
    results = {"split": split,
               "changes": changes, "runs": []}
    for name in args.recipe:
        settings = {**recipes.recipe_settings(name), **changes}
        # The digits recipe trains on the built-in digits (their own split); the others on CIFAR-10.
        data = load_digits_split(settings) if name == "digits" else load_split(args.data_dir, settings["standardize"])
        # The PyTorch side reproduces the AdamW recipes (what the comparison is about).
        with_torch = args.torch and settings["update_rule"] == "adamw"
        for impl in ["nndl"] + (["torch"] if with_torch else []):
            load = os.getloadavg()[0]
            run = (run_nndl if impl == "nndl" else run_torch)(settings, data, args.seed)
            run.update(recipe=name, impl=impl, load_before=load, settings=settings)
            results["runs"].append(run)
            print(f"{name:>8} {impl:>5}: test acc {run['test_acc']:.4f} (with test-time flips "
                  f"{run['test_acc_tta_flip']:.4f}) in {run['seconds']:.1f} s "
                  f"({run['epochs_run']} epochs; load {load:.2f})", flush=True)
    if args.overhead:
        settings = {**recipes.recipe_settings("cifar10"), **changes}
        data = load_split(args.data_dir, True)
        results["overhead"] = o = measure_overhead(settings, data)
        if args.torch:
            results["torch_overhead"] = t = measure_torch_overhead(settings, data)
            print(f"PyTorch overhead ({t['epochs']} epochs, {t['seconds']:.2f} s): augmentation "
                  f"{100 * t['augment_fraction']:.1f}%, AdamW step {100 * t['update_fraction']:.1f}% of the epoch")
        print(f"overhead (3072-1024-512-10, {o['epochs']} epochs, {o['seconds']:.2f} s): augmentation "
              f"{100 * o['augment_fraction']:.1f}%, update {100 * o['update_fraction']:.1f}%, together "
              f"{100 * o['augment_plus_update_fraction']:.1f}% of the epoch; added by the recipe (augmentation, "
              f"AdamW's decay over Adam's update of {o['adam_update_seconds']:.2f} s): "
              f"{100 * o['added_fraction']:.1f}%")
        print(f"AdamW update: {o['update_ms_per_step']:.1f} ms per step"
              + (f" (PyTorch's: {results['torch_overhead']['update_ms_per_step']:.1f} ms)" if args.torch else ""))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
