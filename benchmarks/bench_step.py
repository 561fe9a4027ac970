#!/usr/bin/env python
"""Per-step cost of nndl's Solver, for A/B runs of two nndl trees (run by hand).

A digits-sized net (64-100-10, batch 50) shows the Python work of a step, since its matrix
products take a few microseconds; 3072-100-10 (batch 200, 49,000 synthetic examples) is the
small row of ``bench_speed.py``. Each ``--src`` tree runs in its own fresh process, the trees
alternating, ``--rounds`` times; each process reports the best of 5 timed runs::

    git archive <commit> src | tar -x -C /tmp/old      # and likewise /tmp/new
    python benchmarks/bench_step.py --src /tmp/old/src /tmp/new/src

Prints microseconds per step (digits-sized) or seconds per 245-step epoch (3072-100-10) for
every tree, rule and round.
"""

import argparse
import subprocess
import sys
import time

SIZES = {
    # name: (input_dim, hidden, examples, batch, steps timed)
    "64-100-10": (64, 100, 1257, 50, 2000),
    "3072-100-10": (3072, 100, 49000, 200, 245),
}


def worker(src, size, rule):
    """Time ``Solver._step`` in this process; print one line."""
    sys.path.insert(0, src)
    import numpy as np

    from nndl._memory import keep_freed_memory
    from nndl.fc_net import FullyConnectedNet
    from nndl.solver import Solver

    input_dim, hidden, n, batch, steps = SIZES[size]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, input_dim), dtype=np.float32)
    y = rng.integers(0, 10, n)
    model = FullyConnectedNet([hidden], input_dim=input_dim, num_classes=10, reg=1e-3, weight_scale=1e-2,
                              dtype=np.float32, seed=0)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X[:100], "y_val": y[:100]},
                    update_rule=rule, optim_config={"learning_rate": 1e-3 if rule == "sgd" else 1e-4},
                    batch_size=batch, verbose=False)
    keep_freed_memory()  # as Solver.train does
    for t in range(50):
        solver._step(t)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):  # as Solver.train does
            for t in range(steps):
                solver._step(t)
        best = min(best, time.perf_counter() - start)
    if size == "64-100-10":
        print(f"{size} {rule:4s} {src}: {best / steps * 1e6:.1f} us/step")
    else:
        print(f"{size} {rule:4s} {src}: {best:.4f} s/epoch")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", nargs="+", required=True, help="nndl source trees (directories holding nndl/)")
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    parser.add_argument("--rules", nargs="+", choices=("sgd", "adam"), default=["sgd", "adam"])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--worker", nargs=3, metavar=("SRC", "SIZE", "RULE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    for size in args.sizes:
        for rule in args.rules:
            for _ in range(args.rounds):
                for src in args.src:
                    subprocess.run([sys.executable, __file__, "--src", src, "--worker", src, size, rule],
                                   check=True)


if __name__ == "__main__":
    main()
