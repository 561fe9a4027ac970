"""Seed 000's hand-written grid against `nndl search` (TPE + median pruning) on one time budget.

Three arms run *at the same time*, each as one `nndl search` worker with one BLAS thread, so
they share the machine equally whatever else it is doing:

- ``grid``: seed 000's grid, learning rates ``10**-arange(3.0, 4.1, 0.1)`` x regularisation
  ``arange(0.1, 0.25, 0.05)`` (33 points) for its two-layer net (hidden 50, plain SGD, weights
  drawn with std 1e-4, batch 200, no pruning). The seed trains each point for 2,000
  iterations with the learning rate decayed by 0.95 per epoch of 49,000 images; here each point
  gets the same 2,000 iterations and the same total decay, spread over the epochs of the smaller
  training split.
- ``tpe-same-net``: TPE over learning rate, L2, batch size, update rule, lr decay and weight
  scale for the same hidden-50 network, 20 epochs per trial, median pruning.
- ``tpe-default``: TPE over nndl's default space (depth, width, dropout, batchnorm, ...), 20
  epochs per trial, median pruning.

Each arm may start trials until the budget ends; only trials *completed* within the budget
count. The result is a Markdown table (printed and written to ``OUT/results.md``).

Usage::

    python benchmarks/search_vs_grid.py --data-dir ../shared/data/cifar-10-subset --budget 600
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

SEED_ITERATIONS = 2000       # per grid point in seed 000
SEED_BATCH = 200
SEED_EPOCH_IMAGES = 49000    # the seed's training split, for its per-epoch decay
SEED_DECAY = 0.95


def seed_grid():
    """Seed 000's learning rates and regularisation strengths, in its order."""
    learning_rates = 10.0 ** -np.arange(3.0, 4.1, 0.1)
    regs = np.arange(0.1, 0.25, 0.05)
    return learning_rates, regs


def arms(num_train):
    """name -> extra `nndl search` arguments."""
    lrs, regs = seed_grid()
    iters_per_epoch = num_train // SEED_BATCH
    epochs = max(1, round(SEED_ITERATIONS / iters_per_epoch))
    # Same total decay as the seed's 2,000 iterations over epochs of 49,000 images.
    seed_epochs = SEED_ITERATIONS * SEED_BATCH / SEED_EPOCH_IMAGES
    decay = SEED_DECAY ** (seed_epochs / epochs)
    same_net = ["num_layers=1", "hidden_size=50", "dropout=0", "use_batchnorm=false"]
    grid = ["--sampler", "grid", "--pruner", "none", "--epochs", str(epochs),
            "-p", "learning_rate=" + ",".join(repr(float(v)) for v in lrs),
            "-p", "reg=" + ",".join(repr(float(v)) for v in regs),
            "-p", "batch_size=200", "-p", "update_rule=sgd", "-p", f"lr_decay={decay!r}",
            "-p", "weight_scale=1e-4"]
    for p in same_net:
        grid += ["-p", p]
    tpe_same = ["--sampler", "tpe", "--pruner", "median", "--epochs", "20", "--trials", "10000",
                "-p", "learning_rate=1e-5:1e-1:log", "-p", "reg=1e-4:1:log",
                "-p", "update_rule=sgd,sgd_momentum,adam", "-p", "weight_scale=1e-4:1e-1:log"]
    for p in same_net:
        tpe_same += ["-p", p]
    tpe_default = ["--sampler", "tpe", "--pruner", "median", "--epochs", "20", "--trials", "10000"]
    return {"grid": grid, "tpe-same-net": tpe_same, "tpe-default": tpe_default}, epochs, decay


def read_trials(journal):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="nndl-search", storage=JournalStorage(JournalFileBackend(journal)))
    return study.get_trials()


def summarise(trials, start, budget):
    """Trials completed within ``budget`` seconds of ``start`` (a wall-clock timestamp)."""
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED") and t.datetime_complete is not None
            and t.datetime_complete.timestamp() - start <= budget]
    complete = [t for t in done if t.state.name == "COMPLETE"]
    if not complete:
        return len(done), 0, None, None, None
    best = max(complete, key=lambda t: t.value)
    return (len(done), len(done) - len(complete), best.value,
            (best.datetime_complete.timestamp() - start) / 60, best.params)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "cifar-10-subset"))
    parser.add_argument("--num-validation", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per arm (all run at once)")
    parser.add_argument("--out", default="bench-search-vs-grid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from nndl.search import load_dataset

    data = load_dataset("cifar10", args.data_dir, args.num_validation)
    num_train, num_val = len(data["y_train"]), len(data["y_val"])
    del data
    plans, grid_epochs, grid_decay = arms(num_train)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs, logs = {}, {}
    start = time.time()
    for name, extra in plans.items():
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        cmd = [sys.executable, "-m", "nndl.search", "--dataset", "cifar10", "--data-dir", args.data_dir,
               "--num-validation", str(args.num_validation), "--out", out, "--timeout", str(args.budget),
               "--seed", str(args.seed), "--threads", "1", "--no-retrain", "--quiet", *extra]
        logs[name] = open(os.path.join(out, "log.txt"), "w")
        procs[name] = subprocess.Popen(cmd, stdout=logs[name], stderr=subprocess.STDOUT, env=env)
    for name, p in procs.items():
        p.wait()
        logs[name].close()
    wall = (time.time() - start) / 60

    lines = [f"CIFAR-10 subset: {num_train} training / {num_val} validation images; budget "
             f"{args.budget / 60:.1f} min per arm, 3 arms at once on {os.cpu_count()} cores, 1 BLAS thread each. "
             f"Grid points: {grid_epochs} epochs (2,000 iterations of 200), lr decay {grid_decay:.5f} per epoch.",
             "",
             "| arm | trials finished in budget (pruned) | best val acc | minutes to best | best configuration |",
             "|---|---|---|---|---|"]
    for name in plans:
        trials = read_trials(os.path.join(args.out, name, "study.journal"))
        n, pruned, best, minutes, params = summarise(trials, start, args.budget)
        shown = "-" if best is None else f"{best:.3f}"
        when = "-" if minutes is None else f"{minutes:.1f}"
        conf = "-" if params is None else ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        lines.append(f"| {name} | {n} ({pruned}) | {shown} | {when} | {conf} |")
    lines.append("")
    lines.append(f"wall time {wall:.1f} min")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
