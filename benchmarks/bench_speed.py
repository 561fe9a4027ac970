#!/usr/bin/env python
"""Speed benchmark (issue 4): nndl against PyTorch (CPU) and scikit-learn, and against the
matrix-product lower bound, for fully-connected ReLU classifiers.

Run by hand, never by the test suite::

    python benchmarks/bench_speed.py              # full run (~30 min on 2 cores)
    python benchmarks/bench_speed.py --quick      # a smaller run to iterate on (~2-3 min)

What is measured (see benchmarks/README.md for the full description):

* Training rows ``train <arch> <rule>``: the wall time of ONE training epoch, 49,000
  synthetic float32 examples of 3,072 features, 10 classes, batch 200 (245 steps), softmax
  loss, L2 ``0.5 * reg * sum(W**2)`` over weight matrices, for 3072-100-10 and
  3072-1024-512-10 with SGD and Adam.
* Prediction rows ``predict <arch>``: class predictions for the 49,000 examples.
* Each (row, implementation) runs in its own fresh subprocess with the same BLAS thread count
  (threadpoolctl on every BLAS/OpenMP pool loaded, plus ``torch.set_num_threads``). The
  implementations of a row are interleaved: every round, each one runs one epoch in turn, so
  that a noisy neighbour slows them alike. ``--warmup`` rounds are discarded, then ``--reps``
  rounds are timed; the table shows the median. Run-queue wait (time our threads were ready
  but had no CPU) is recorded to flag a contended run.
* The FLOP bound of a row is the time its matrix products take at the best float32 GEMM rate
  NumPy reached at exactly those shapes (forward, weight gradient, and input gradient of every
  layer but the first), times the number of steps.
* The peak memory of nndl training on a full 50,000 x 3,072 float32 array, in a fresh
  subprocess, as a multiple of the array's size.

Results are printed as a table and written as JSON (``--out``).
"""

import argparse
import datetime
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE.parent / "src"

D, C, BATCH = 3072, 10, 200
ARCHS = {"3072-100-10": [100], "3072-1024-512-10": [1024, 512]}
RULES = ("sgd", "adam")
LEARNING_RATE = {"sgd": 1e-3, "adam": 1e-4}
REG = 1e-3
WEIGHT_SCALE = 1e-2
# Prediction's bound takes, per layer, the best forward rate over these chunk sizes, so it
# does not depend on how an implementation splits the 49,000 examples.
PREDICT_CHUNKS = (1024, 4096, 10000)

TRAIN_IMPLS = ("nndl_solver", "nndl_solver_perm", "nndl_solver_2t", "nndl_lowlevel", "products", "torch",
               "torch_mallopt", "sklearn")
PREDICT_IMPLS = ("nndl_solver", "nndl_lowlevel", "torch", "sklearn")  # same column names
COLUMN_TITLES = {
    "nndl_solver": "nndl Solver", "nndl_solver_perm": "Solver perm", "nndl_solver_2t": "Solver 2thr",
    "nndl_lowlevel": "nndl low", "products": "products", "torch": "torch", "torch_mallopt": "torch malloc",
    "sklearn": "sklearn",
}
# glibc settings equal to what nndl's Solver asks of malloc (nndl._memory.keep_freed_memory):
# keep freed blocks up to 32 MiB for reuse instead of unmapping them after every step.
MALLOPT_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
               "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024)}
# The recipe docs/speed.md gives for large nets: OpenBLAS's idle workers go to sleep at once
# instead of spinning on the other core, so a second elementwise thread of nndl's has it.
TWO_THREAD_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4", "NNDL_NUM_THREADS": "2"}
TARGET_VS_TORCH, TARGET_VS_BOUND, TARGET_MEMORY = 0.8, 1.3, 1.5


# =============================================================================== helpers

def dims_of(arch):
    return [D] + ARCHS[arch] + [C]


def num_weights(arch):
    dims = dims_of(arch)
    return sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def step_gemms(arch, batch=BATCH):
    """The matrix products of one training step, as (label, m, k, n, form).

    form 'nn': (m,k) @ (k,n); 'tn': (k,m).T @ (k,n) (weight gradient x.T @ dout);
    'nt': (m,k) @ (n,k).T (input gradient dout @ W.T). The first layer's input gradient is
    left out: no one needs it.
    """
    dims = dims_of(arch)
    gemms = []
    for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        gemms.append((f"fwd L{i}", batch, din, dout, "nn"))
        gemms.append((f"dW L{i}", din, batch, dout, "tn"))
        if i > 1:
            gemms.append((f"dX L{i}", batch, dout, din, "nt"))
    return gemms


def predict_gemms(arch, batch):
    dims = dims_of(arch)
    return [(f"fwd L{i}", batch, din, dout, "nn")
            for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:]), start=1)]


def gemm_key(m, k, n, form):
    return f"{form} {m}x{k}x{n}"


def make_data(n, seed=0):
    """Synthetic float32 inputs (standard normal) and random labels in [0, 10)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D), dtype=np.float32)
    y = rng.integers(0, C, size=n)
    return X, y


def limit_threads(threads):
    """Limit every BLAS/OpenMP pool loaded so far (import the libraries first)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    global _THREAD_LIMITS  # keep the limiter alive for the whole worker
    _THREAD_LIMITS = threadpool_limits(limits=threads)
    return [{k: lib.get(k) for k in ("internal_api", "prefix", "version", "num_threads",
                                     "threading_layer", "architecture")}
            for lib in threadpool_info()]


def rusage():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"utime": r.ru_utime, "stime": r.ru_stime, "minflt": r.ru_minflt}


def run_queue_wait():
    """Seconds this process's threads have spent runnable but waiting for a CPU (Linux
    schedstat), summed over threads: the sign that another process took our cores."""
    total = 0
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total / 1e9


def steal_seconds():
    """CPU time the hypervisor gave to other machines, summed over CPUs (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


class Mark:
    """Wall time, CPU time, page faults, run-queue wait and steal at one instant."""

    def __init__(self):
        self.wall = time.perf_counter()
        self.usage = rusage()
        self.wait = run_queue_wait()
        self.steal = steal_seconds()

    def since(self, start, threads):
        seconds = self.wall - start.wall
        cpu = {k: self.usage[k] - start.usage[k] for k in self.usage}
        wait = self.wait - start.wait
        return {"seconds": seconds, **cpu,
                "cpu_per_thread": (cpu["utime"] + cpu["stime"]) / (seconds * threads),
                "runqueue_wait_per_thread": wait / (seconds * threads),
                "steal_per_cpu": (self.steal - start.steal) / (seconds * (os.cpu_count() or 1)),
                "loadavg1": os.getloadavg()[0]}


def summarize(epochs, warmup):
    timed = epochs[warmup:]
    secs = [e["seconds"] for e in timed]

    def med(key):
        return statistics.median(e[key] for e in timed)
    return {
        "median": statistics.median(secs), "min": min(secs), "max": max(secs),
        "times": secs, "warmup_times": [e["seconds"] for e in epochs[:warmup]],
        "median_stime": med("stime"), "median_utime": med("utime"), "median_minflt": med("minflt"),
        "median_cpu_per_thread": med("cpu_per_thread"),
        "median_runqueue_wait": med("runqueue_wait_per_thread"),
        "median_steal": med("steal_per_cpu") if all("steal_per_cpu" in e for e in timed) else None,
        "epochs": epochs,
    }


class Channel:
    """A worker's side of the protocol: JSON lines on stdout (prefixed, so that stray prints
    are ignored), commands ('go' / 'stop') on stdin."""

    PREFIX = "@@bench "

    def __init__(self, threads):
        self.threads = threads

    def send(self, obj):
        sys.stdout.write(self.PREFIX + json.dumps(obj) + "\n")
        sys.stdout.flush()

    def command(self):
        return sys.stdin.readline().strip() or "stop"

    def serve(self, run_once):
        """Announce readiness, then run ``run_once`` once per 'go' and report its cost."""
        self.send({"ready": True})
        while self.command() == "go":
            start = Mark()
            run_once()
            self.send({"epoch": Mark().since(start, self.threads)})


class _Stop(Exception):
    pass


def solver_callback(chan):
    """An ``epoch_callback`` that drives ``Solver.train()`` one epoch per 'go': it runs after
    each accuracy check, reports the epoch just finished and blocks until the next command
    ('stop' raises ``_Stop`` out of ``train()``)."""
    state = {}

    def callback(_):
        if "start" in state:
            chan.send({"epoch": Mark().since(state["start"], chan.threads)})
        else:
            chan.send({"ready": True})  # after step 1 and the epoch-0 accuracy check
        if chan.command() != "go":
            raise _Stop
        state["start"] = Mark()
    return callback


def build_nndl_model(arch, seed=0):
    import numpy as np
    from nndl.fc_net import FullyConnectedNet

    return FullyConnectedNet(ARCHS[arch], input_dim=D, num_classes=C, reg=REG,
                             weight_scale=WEIGHT_SCALE, dtype=np.float32, seed=seed)


def dtype_report(model, configs=None):
    """dtypes of parameters (and optimizer state arrays): float32 must stay float32."""
    import numpy as np

    kinds = {str(v.dtype) for v in model.params.values()}
    if configs:
        for cfg in configs.values():
            kinds |= {str(v.dtype) for v in cfg.values() if isinstance(v, np.ndarray)}
    return sorted(kinds)


def build_torch_model(arch, nndl_model):
    """nn.Sequential with nndl's initial weights (W (D, M) -> Linear.weight (M, D))."""
    import torch

    dims = dims_of(arch)
    layers = []
    for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        lin = torch.nn.Linear(din, dout, dtype=torch.float32)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(nndl_model.params[f"W{i}"].T.copy()))
            lin.bias.copy_(torch.from_numpy(nndl_model.params[f"b{i}"]))
        layers.append(lin)
        if i < len(dims) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_optimizer(model, rule):
    """torch.optim.SGD / Adam with weight decay on weight matrices only.

    Coupled weight decay adds ``reg * W`` to the gradient before the update, which is exactly
    the gradient of nndl's ``0.5 * reg * sum(W**2)`` (for Adam too: torch's Adam, unlike
    AdamW, folds weight_decay into the gradient that feeds the moments, as nndl does).
    """
    import torch

    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    groups = [{"params": weights, "weight_decay": REG}, {"params": biases, "weight_decay": 0.0}]
    cls = torch.optim.SGD if rule == "sgd" else torch.optim.Adam
    return cls(groups, lr=LEARNING_RATE[rule])


def sklearn_model(arch, rule, seed=0):
    from sklearn.neural_network import MLPClassifier

    # sklearn's penalty is 0.5 * alpha * sum(W**2) / batch_size: alpha = reg * batch_size
    # gives nndl's 0.5 * reg * sum(W**2). Plain SGD needs momentum switched off.
    kwargs = dict(hidden_layer_sizes=tuple(ARCHS[arch]), activation="relu", solver=rule,
                  alpha=REG * BATCH, batch_size=BATCH, learning_rate_init=LEARNING_RATE[rule],
                  shuffle=True, random_state=seed)
    if rule == "sgd":
        kwargs.update(learning_rate="constant", momentum=0.0, nesterovs_momentum=False)
    return MLPClassifier(**kwargs)


# =============================================================================== workers
# Each worker runs in its own fresh subprocess. Timed workers (train, predict) set up, say
# 'ready', then run one epoch (or one prediction) per 'go' from the orchestrator, which
# interleaves the implementations of a row so that a noisy neighbour slows them alike.
# Every worker ends by sending {'final': {...}}.

def worker_gemm(spec, chan):
    """float32 GEMM rates with NumPy (and torch if spec['torch']) at the benchmark's shapes."""
    import numpy as np

    use_torch = spec.get("torch", False)
    if use_torch:
        import torch
    info = limit_threads(spec["threads"])
    if use_torch:
        torch.set_num_threads(spec["threads"])
    rng = np.random.default_rng(0)
    shapes = {}
    for arch in ARCHS:
        gemms = step_gemms(arch) + [g for c in PREDICT_CHUNKS for g in predict_gemms(arch, c)]
        for _, m, k, n, form in gemms:
            shapes[gemm_key(m, k, n, form)] = (m, k, n, form)
    results = {}
    for key, (m, k, n, form) in shapes.items():
        a = rng.standard_normal((k, m) if form == "tn" else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if form == "nt" else (k, n), dtype=np.float32)
        A = a.T if form == "tn" else a
        B = b.T if form == "nt" else b
        out = np.empty((m, n), dtype=np.float32)
        if use_torch:
            tA, tB, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
            tA = tA.T if form == "tn" else tA
            tB = tB.T if form == "nt" else tB

            def product():
                torch.mm(tA, tB, out=tout)
        else:
            def product():
                np.matmul(A, B, out=out)
        flops = 2.0 * m * k * n
        product()
        t0 = time.perf_counter()
        product()
        once = max(time.perf_counter() - t0, 1e-6)
        inner = max(1, int(spec["gemm_seconds"] / once))
        rates, waits = [], []
        for _ in range(spec["gemm_reps"]):
            start = Mark()
            for _ in range(inner):
                product()
            stats = Mark().since(start, spec["threads"])
            rates.append(flops * inner / stats["seconds"])
            waits.append(stats["runqueue_wait_per_thread"])
        results[key] = {"median_gflops": statistics.median(rates) / 1e9, "max_gflops": max(rates) / 1e9,
                        "median_runqueue_wait": statistics.median(waits)}
    chan.send({"final": {"rates": results, "threadpools": info}})


def worker_train(spec, chan):
    import numpy as np

    impl, arch, rule = spec["impl"], spec["arch"], spec["rule"]
    if impl in ("torch", "torch_mallopt"):
        import torch
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier  # noqa: F401  (loads scipy's BLAS)
    import nndl
    from nndl import optim
    from nndl.solver import Solver

    info = limit_threads(spec["threads"])
    X, y = make_data(spec["samples"])
    steps = spec["samples"] // BATCH
    final = {"nndl_file": nndl.__file__, "threadpools": info, "steps_per_epoch": steps}

    if impl in ("nndl_solver", "nndl_solver_perm", "nndl_solver_2t"):
        model = build_nndl_model(arch)
        n_check = min(200, spec["samples"])
        data = {"X_train": X, "y_train": y, "X_val": X[:n_check], "y_val": y[:n_check]}
        sampling = "permutation" if impl == "nndl_solver_perm" else "replacement"
        final["env"] = {k: os.environ.get(k) for k in TWO_THREAD_ENV}
        solver = Solver(model, data, update_rule=rule,
                        optim_config={"learning_rate": LEARNING_RATE[rule]}, batch_size=BATCH,
                        num_epochs=spec["warmup"] + spec["reps"] + 1, verbose=False,
                        num_train_samples=n_check, num_val_samples=n_check, sampling=sampling,
                        seed=0, epoch_callback=solver_callback(chan))
        try:
            solver.train()
        except _Stop:
            pass
        final.update(dtypes=dtype_report(model, solver.optim_configs),
                     solver_shares_X_train=bool(np.shares_memory(solver.X_train, X)),
                     final_loss=float(solver.loss_history[-1]),
                     what_is_timed=(f"Solver(sampling={sampling!r}).train(): one epoch of {steps} steps "
                                    f"plus its accuracy check on {n_check} train + {n_check} val samples"))

    elif impl == "products":
        # The floor of any NumPy implementation: gather each batch and run the step's matrix
        # products (forward, weight gradients, input gradients but the first layer's) and
        # nothing else: no bias, activation, loss or update.
        model = build_nndl_model(arch)
        weights = [model.params[f"W{i}"] for i in range(1, model.num_layers + 1)]
        rng = np.random.default_rng(0)
        dscores = (1e-3 * rng.standard_normal((BATCH, weights[-1].shape[1]))).astype(np.float32)

        def epoch():
            order = rng.permutation(X.shape[0])
            for s in range(steps):
                acts = [X[order[s * BATCH:(s + 1) * BATCH]]]
                for w in weights:
                    acts.append(acts[-1] @ w)
                d = dscores
                for i in range(len(weights) - 1, -1, -1):
                    acts[i].T @ d
                    if i:
                        d = d @ weights[i].T
        chan.serve(epoch)
        final["what_is_timed"] = ("rng.permutation per epoch, X[idx] and the step's matrix products "
                                  "(forward, weight gradients, input gradients but the first "
                                  "layer's) on each batch; nothing else")

    elif impl == "nndl_lowlevel":
        final["keep_freed_memory"] = call_keep_freed_memory()
        model = build_nndl_model(arch)
        rng = np.random.default_rng(0)
        update = optim.get_update_rule(rule)
        configs = {name: {"learning_rate": LEARNING_RATE[rule]} for name in model.params}
        params = model.params
        losses = []
        # The fast L2 path of nndl versions that have it: the rule adds reg * W (weight_decay).
        fused = hasattr(model, "penalized_params")
        if fused:
            for name in model.penalized_params:
                configs[name]["weight_decay"] = model.reg
        loss_kwargs = {"penalty_grads": False} if fused else {}
        # Plain SGD in nndl versions that have sgd_steps: the weights step inside model.loss.
        if fused and rule == "sgd" and "sgd_steps" in inspect.signature(model.loss).parameters:
            loss_kwargs["sgd_steps"] = {name: (configs[name]["learning_rate"], model.reg)
                                        for name in model.penalized_params}

        def epoch():
            order = rng.permutation(X.shape[0])
            for s in range(steps):
                idx = order[s * BATCH:(s + 1) * BATCH]
                loss, grads = model.loss(X[idx], y[idx], **loss_kwargs)
                for name, g in grads.items():
                    params[name], configs[name] = update(params[name], g, configs[name])
            losses.append(loss)
        chan.serve(epoch)
        final.update(dtypes=dtype_report(model, configs), final_loss=float(losses[-1]) if losses else None,
                     what_is_timed=("hand loop (after nndl's keep_freed_memory() if it has one): "
                                    "rng.permutation per epoch, model.loss(X[idx], y[idx]) (with "
                                    "penalty_grads=False and weight_decay=reg in the rule, if the "
                                    "nndl version has them; for sgd, sgd_steps for the weights if it "
                                    "has them), then the nndl.optim rule on every returned gradient"))

    elif impl in ("torch", "torch_mallopt"):
        torch.set_num_threads(spec["threads"])
        torch.manual_seed(0)
        final["malloc_env"] = {k: os.environ.get(k) for k in MALLOPT_ENV}
        final["equivalence"] = torch_equivalence(arch, rule, build_nndl_model(arch), X, y)
        model = build_torch_model(arch, build_nndl_model(arch))
        opt = torch_optimizer(model, rule)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        losses = []

        def epoch():
            order = torch.randperm(X.shape[0])
            for s in range(steps):
                idx = order[s * BATCH:(s + 1) * BATCH]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                last = loss.item()  # nndl records every step's loss too
            losses.append(last)
        chan.serve(epoch)
        final.update(final_loss=losses[-1] if losses else None, torch_threads=torch.get_num_threads(),
                     what_is_timed=("hand loop: torch.randperm per epoch, index the X, y tensors, "
                                    "zero_grad, CrossEntropyLoss, backward, optimizer.step, loss.item()"))

    elif impl == "sklearn":
        clf = sklearn_model(arch, rule)
        classes = np.arange(C)
        chan.serve(lambda: clf.partial_fit(X, y, classes=classes))
        final.update(coef_dtype=str(clf.coefs_[0].dtype) if hasattr(clf, "coefs_") else None,
                     final_loss=float(getattr(clf, "loss_", float("nan"))),
                     what_is_timed=(f"MLPClassifier.partial_fit(X, y): one pass over X in shuffled "
                                    f"minibatches of {BATCH}, its input validation included; "
                                    "the first call also initialises (it is the warm-up)"))
    else:
        raise ValueError(f"unknown training implementation {impl!r}")
    chan.send({"final": final})


def call_keep_freed_memory():
    """What nndl tells hand-written training loops to call first (Solver.train calls it),
    if this version of nndl has it; returns its result, or None when absent."""
    import importlib

    for module in ("nndl", "nndl._memory"):
        try:
            fn = getattr(importlib.import_module(module), "keep_freed_memory", None)
        except ImportError:
            continue
        if fn is not None:
            return bool(fn())
    return None


def torch_equivalence(arch, rule, nndl_model, X, y):
    """Check that the torch setup computes nndl's loss and update from the same start."""
    import numpy as np
    import torch
    from nndl import optim

    tmodel = build_torch_model(arch, nndl_model)
    opt = torch_optimizer(tmodel, rule)
    xb, yb = X[:BATCH], y[:BATCH]
    loss, grads = nndl_model.loss(xb, yb)
    update = optim.get_update_rule(rule)
    for name, w in nndl_model.params.items():
        nndl_model.params[name], _ = update(w, grads[name], {"learning_rate": LEARNING_RATE[rule]})
    linears = [m for m in tmodel if isinstance(m, torch.nn.Linear)]
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb)), torch.from_numpy(yb))
    penalty = sum(float((lin.weight.double() ** 2).sum()) for lin in linears)
    opt.zero_grad()
    tloss.backward()
    opt.step()
    diffs = []
    for i, lin in enumerate(linears, start=1):
        for name, tp in ((f"W{i}", lin.weight.detach().numpy().T), (f"b{i}", lin.bias.detach().numpy())):
            p = nndl_model.params[name]
            diffs.append(float(np.max(np.abs(p - tp)) / (np.max(np.abs(p)) + 1e-30)))
    return {"nndl_loss": float(loss), "torch_loss_plus_l2": float(tloss) + 0.5 * REG * penalty,
            "max_rel_param_diff_after_one_step": max(diffs)}


def worker_predict(spec, chan):
    import numpy as np

    impl, arch = spec["impl"], spec["arch"]
    if impl == "torch":
        import torch
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier  # noqa: F401
    info = limit_threads(spec["threads"])
    X, _ = make_data(spec["samples"], seed=1)
    model = build_nndl_model(arch)
    final = {"threadpools": info}
    reference = None
    if impl == "nndl_solver":
        predict = lambda: model.predict(X)  # noqa: E731
        import inspect
        chunk = inspect.signature(model.predict).parameters.get("batch_size")
        final["what_is_timed"] = (f"model.predict(X) (default batch_size="
                                  f"{chunk.default if chunk else '?'})")
    elif impl == "nndl_lowlevel":
        predict = lambda: np.argmax(model.loss(X), axis=1)  # noqa: E731
        final["what_is_timed"] = "np.argmax(model.loss(X), axis=1) on the whole array"
    elif impl == "torch":
        torch.set_num_threads(spec["threads"])
        tmodel = build_torch_model(arch, model)
        Xt = torch.from_numpy(X)

        def predict():
            with torch.inference_mode():
                return tmodel(Xt).argmax(dim=1).numpy()
        final["what_is_timed"] = "with torch.inference_mode(): model(X).argmax(1) on the whole array"
        reference = model.predict(X)
    elif impl == "sklearn":
        clf = sklearn_model(arch, "sgd")
        clf.partial_fit(X[:BATCH], np.arange(BATCH) % C, classes=np.arange(C))
        clf.coefs_ = [model.params[f"W{i}"].copy() for i in range(1, model.num_layers + 1)]
        clf.intercepts_ = [model.params[f"b{i}"].copy() for i in range(1, model.num_layers + 1)]
        predict = lambda: clf.predict(X)  # noqa: E731
        final["what_is_timed"] = "MLPClassifier.predict(X) with nndl's (float32) weights"
        final["coef_dtype"] = str(clf.coefs_[0].dtype)
        reference = model.predict(X)
    else:
        raise ValueError(f"unknown prediction implementation {impl!r}")
    last = {}
    chan.serve(lambda: last.__setitem__("pred", predict()))
    if reference is not None and "pred" in last:
        final["agreement_with_nndl"] = float(np.mean(np.asarray(last["pred"]) == reference))
    chan.send({"final": final})


def _current_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker_memory(spec, chan):
    """Peak memory of one Solver epoch on a (50000, 3072) float32 array, in a fresh process."""
    import gc
    import resource

    import numpy as np
    from nndl.solver import Solver

    info = limit_threads(spec["threads"])
    method = spec["method"]
    n = spec["memory_samples"]
    gc.collect()
    if method == "tracemalloc":
        import tracemalloc
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    else:
        base = _current_rss_bytes()
    X, y = make_data(n, seed=2)
    array_bytes = X.nbytes
    model = build_nndl_model(spec["arch"])
    data = {"X_train": X, "y_train": y, "X_val": X[:1000], "y_val": y[:1000]}
    solver = Solver(model, data, update_rule=spec["rule"],
                    optim_config={"learning_rate": LEARNING_RATE[spec["rule"]]},
                    batch_size=BATCH, num_epochs=1, verbose=False)
    solver.train()
    if method == "tracemalloc":
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        detail = {}
    else:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = maxrss - base
        detail = {"baseline_rss_bytes": base, "maxrss_bytes": maxrss}
    chan.send({"final": {
        "method": method, "array_bytes": array_bytes, "peak_bytes": peak,
        "ratio": peak / array_bytes, "samples": n, "arch": spec["arch"], "rule": spec["rule"],
        "solver_shares_X_train": bool(np.shares_memory(solver.X_train, X)),
        "threadpools": info, **detail}})


def worker_profile(spec, chan):
    """Where one nndl epoch spends its time: per-phase timers around a hand loop that does
    what the Solver's step does (replacement sampling), then cProfile of one Solver epoch."""
    import cProfile
    import io
    import pstats

    import numpy as np
    from nndl import optim
    from nndl.solver import Solver

    info = limit_threads(spec["threads"])
    arch, rule = spec["arch"], spec["rule"]
    X, y = make_data(spec["samples"])
    steps = spec["samples"] // BATCH
    call_keep_freed_memory()  # as Solver.train does
    model = build_nndl_model(arch)
    update = optim.get_update_rule(rule)
    configs = {name: {"learning_rate": LEARNING_RATE[rule]} for name in model.params}
    rng = np.random.default_rng(0)
    phases = []
    for _ in range(spec["warmup"] + spec["reps"]):
        t_sample = t_loss = t_update = 0.0
        start = Mark()
        for _ in range(steps):
            t0 = time.perf_counter()
            idx = rng.choice(X.shape[0], BATCH)
            xb, yb = X[idx], y[idx]
            t1 = time.perf_counter()
            loss, grads = model.loss(xb, yb)
            t2 = time.perf_counter()
            for name, w in model.params.items():
                model.params[name], configs[name] = update(w, grads[name], configs[name])
            t3 = time.perf_counter()
            t_sample += t1 - t0
            t_loss += t2 - t1
            t_update += t3 - t2
        stats = Mark().since(start, spec["threads"])
        phases.append({"total": stats["seconds"], "sample_and_gather": t_sample, "model_loss": t_loss,
                       "update_rule": t_update, "stime": stats["stime"], "minflt": stats["minflt"],
                       "runqueue_wait_per_thread": stats["runqueue_wait_per_thread"]})
    timed = phases[spec["warmup"]:]
    median_phases = {k: statistics.median(p[k] for p in timed) for k in timed[0]}

    profiler = cProfile.Profile()

    def callback(s):
        # Epoch 0's check comes after step 1: profile epoch 2 (epoch 1 warms the Solver up).
        if s.epoch == 1:
            profiler.enable()
    data = {"X_train": X, "y_train": y, "X_val": X[:200], "y_val": y[:200]}
    solver = Solver(model, data, update_rule=rule, optim_config={"learning_rate": LEARNING_RATE[rule]},
                    batch_size=BATCH, num_epochs=2, verbose=False, num_train_samples=200,
                    epoch_callback=callback)
    solver.train()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
    text = stream.getvalue().replace(str(Path(spec["src"]).resolve()) + "/", "")
    chan.send({"final": {"arch": arch, "rule": rule, "steps_per_epoch": steps,
                         "phases_median": median_phases, "phases": phases,
                         "cprofile_solver_epoch": text, "threadpools": info}})


WORKERS = {"gemm": worker_gemm, "train": worker_train, "predict": worker_predict,
           "memory": worker_memory, "profile": worker_profile}


# =============================================================================== orchestration

class WorkerError(RuntimeError):
    pass


class Worker:
    """The orchestrator's handle on one worker subprocess."""

    def __init__(self, spec, args):
        env = dict(os.environ)
        # nndl's own elementwise threads: its default unless --nndl-threads asks otherwise.
        env.pop("NNDL_NUM_THREADS", None)
        if args.nndl_threads:
            env["NNDL_NUM_THREADS"] = str(args.nndl_threads)
        if spec.get("impl") == "torch_mallopt":
            env.update(MALLOPT_ENV)
        if spec.get("impl") == "nndl_solver_2t":
            env.update(TWO_THREAD_ENV)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve())] +
                                            ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.stderr = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        self.started = time.perf_counter()

    def read(self):
        for line in self.proc.stdout:
            if line.startswith(Channel.PREFIX):
                return json.loads(line[len(Channel.PREFIX):])
        self.proc.wait()
        self.stderr.seek(0)
        tail = self.stderr.read().strip().splitlines()[-15:]
        raise WorkerError("\n".join(tail) or f"worker exited with code {self.proc.returncode}")

    def command(self, cmd):
        try:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def run_oneshot(spec, args):
    """Run a worker that only sends its final result; return it or {'error': ...}."""
    wait_for_quiet(args, spec["kind"])
    worker = Worker(spec, args)
    try:
        result = worker.read()["final"]
        result["wall"] = time.perf_counter() - worker.started
        return result
    except WorkerError as err:
        return {"error": str(err)}
    finally:
        worker.close()


def run_interleaved(specs, args, n_runs, label):
    """Start one worker per implementation, then run ``n_runs`` rounds; in each round every
    implementation runs one epoch in turn (the order rotates between rounds)."""
    workers, results = {}, {}
    for impl, spec in specs.items():
        workers[impl] = Worker(spec, args)
    for impl, worker in workers.items():
        try:
            worker.read()  # 'ready'
            results[impl] = {"epochs": []}
        except WorkerError as err:
            results[impl] = {"error": str(err)}
    live = [impl for impl in specs if "error" not in results[impl]]
    for r in range(n_runs):
        wait_for_quiet(args, f"{label}, round {r + 1}")
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for impl in order:
            if "error" in results[impl]:
                continue
            time.sleep(args.settle)  # let the previous worker's BLAS/OpenMP threads go idle
            workers[impl].command("go")
            try:
                results[impl]["epochs"].append(workers[impl].read()["epoch"])
            except WorkerError as err:
                results[impl] = {"error": str(err)}
    for impl, worker in workers.items():
        if "error" not in results[impl]:
            worker.command("stop")
            try:
                final = worker.read()["final"]
                epochs = results[impl]["epochs"]
                results[impl] = {**summarize(epochs, args.warmup), **final}
            except WorkerError as err:
                results[impl] = {"error": str(err)}
        worker.close()
        log(f"{label:32s} {impl:18s} " + describe(results[impl]))
    return results


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def busy_fraction(interval=1.0):
    """Fraction of all CPUs busy over ``interval`` seconds (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle
    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(args, what):
    """With --wait-quiet, wait (at most that many seconds) until no other process uses more
    than --quiet-threshold of the CPUs; returns the seconds waited. Call it when no worker
    of ours is running."""
    if not args.wait_quiet:
        return 0.0
    start = time.perf_counter()
    busy = busy_fraction()
    announced = False
    while busy > args.quiet_threshold and time.perf_counter() - start < args.wait_quiet:
        if not announced:
            log(f"  machine busy ({100 * busy:.0f}% of the CPUs) before {what}; waiting ...")
            announced = True
        time.sleep(5)
        busy = busy_fraction()
    waited = time.perf_counter() - start
    if busy > args.quiet_threshold:
        log(f"  still busy ({100 * busy:.0f}%) after {waited:.0f} s; going on")
    return waited


def best_rates(gemm_results, lib="numpy"):
    """Per shape, the best rate of any GEMM run of ``lib`` (noise only ever slows a GEMM
    down, so the best run is the right one for a lower bound)."""
    rates = {}
    for name in (lib, f"{lib}_end"):
        for key, r in gemm_results.get(name, {}).get("rates", {}).items():
            rates[key] = max(rates.get(key, 0.0), r["max_gflops"])
    return rates


def apply_bounds(results):
    """FLOP bound of every row: its GEMMs' time at the best measured NumPy rates."""
    rates = best_rates(results["gemm"])

    def seconds(gemm):
        _, m, k, n, form = gemm
        return 2.0 * m * k * n / (rates[gemm_key(m, k, n, form)] * 1e9)
    for entry in results["rows"].values():
        if entry["kind"] == "train":
            entry["bound_seconds"] = entry["steps"] * sum(seconds(g) for g in step_gemms(entry["arch"]))
        else:
            # Per layer, the best chunk size, scaled to all the samples.
            per_layer = zip(*[[seconds(g) * entry["samples"] / c for g in predict_gemms(entry["arch"], c)]
                              for c in PREDICT_CHUNKS])
            entry["bound_seconds"] = sum(min(times) for times in per_layer)
        entry["bound_gflops"] = entry["flops"] / entry["bound_seconds"] / 1e9


def run_all(args):
    common = {"threads": args.threads, "samples": args.samples, "warmup": args.warmup,
              "reps": args.reps, "src": args.src}
    results = {"meta": meta(args), "gemm": {}, "rows": {}, "memory": {}}

    log("GEMM rates (numpy, torch) ...")
    gemm_spec = {"kind": "gemm", "threads": args.threads, "gemm_seconds": args.gemm_seconds,
                 "gemm_reps": args.gemm_reps}
    results["gemm"]["numpy"] = run_oneshot(gemm_spec, args)
    results["gemm"]["torch"] = run_oneshot({**gemm_spec, "torch": True}, args)
    if "rates" not in results["gemm"]["numpy"]:
        raise SystemExit(f"GEMM worker failed:\n{results['gemm']['numpy'].get('error')}")

    archs = [a for a in ARCHS if not args.archs or a in args.archs]
    impls = [i for i in TRAIN_IMPLS if not args.impls or i in args.impls]
    for arch in archs:
        for rule in RULES:
            if args.rules and rule not in args.rules:
                continue
            row = f"train {arch} {rule}"
            steps = args.samples // BATCH
            flops = sum(2.0 * m * k * n for _, m, k, n, _ in step_gemms(arch)) * steps
            entry = {"kind": "train", "arch": arch, "rule": rule, "samples": steps * BATCH,
                     "steps": steps, "flops": flops,
                     "flops_formula": 6 * num_weights(arch) * steps * BATCH
                                      - 2 * D * ARCHS[arch][0] * steps * BATCH}
            specs = {impl: {**common, "kind": "train", "impl": impl, "arch": arch, "rule": rule}
                     for impl in impls}
            entry["impls"] = run_interleaved(specs, args, args.warmup + args.reps, row)
            results["rows"][row] = entry
            apply_bounds(results)
            save(results, args)

    if not args.rules or args.predict:
        predict_impls = [i for i in PREDICT_IMPLS if i in impls]
        reps = max(args.reps, 5)
        for arch in archs:
            row = f"predict {arch}"
            entry = {"kind": "predict", "arch": arch, "samples": args.samples,
                     "flops": 2.0 * num_weights(arch) * args.samples}
            specs = {impl: {**common, "kind": "predict", "impl": impl, "arch": arch, "reps": reps}
                     for impl in predict_impls}
            entry["impls"] = run_interleaved(specs, args, args.warmup + reps, row)
            results["rows"][row] = entry
            apply_bounds(results)
            save(results, args)

    log("GEMM rates again (numpy, torch) ...")
    results["gemm"]["numpy_end"] = run_oneshot(gemm_spec, args)
    results["gemm"]["torch_end"] = run_oneshot({**gemm_spec, "torch": True}, args)
    apply_bounds(results)

    if not args.skip_memory:
        for method in ("rss", "tracemalloc"):
            res = run_oneshot({"kind": "memory", "threads": args.threads, "method": method,
                               "memory_samples": args.memory_samples,
                               "arch": "3072-1024-512-10", "rule": "adam"}, args)
            results["memory"][method] = res
            log(f"peak memory ({method}): " + (f"{res['ratio']:.3f}x the array" if "ratio" in res
                                               else "ERROR " + res["error"]))
        save(results, args)

    if args.profile:
        log("profiling one nndl epoch ...")
        results["profile"] = run_oneshot({**common, "kind": "profile", "arch": args.profile_arch,
                                          "rule": args.profile_rule, "reps": min(args.reps, 3)}, args)
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    save(results, args)
    return results


def describe(res):
    if "error" in res:
        return "ERROR: " + res["error"].splitlines()[-1]
    return (f"median {res['median']:.3f} s  (min {res['min']:.3f}, max {res['max']:.3f}; "
            f"sys {res['median_stime']:.2f} s, {res['median_minflt']:.0f} minor faults, "
            f"run-queue wait {100 * res['median_runqueue_wait']:.0f}%)")


def meta(args):
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=args.src, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "torch", "sklearn", "threadpoolctl"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name] + sys.argv), "note": args.note,
        "threads": args.threads, "nndl_threads": args.nndl_threads or "nndl's default",
        "samples": args.samples, "batch": BATCH, "warmup": args.warmup,
        "reps": args.reps, "reg": REG, "weight_scale": WEIGHT_SCALE, "learning_rate": LEARNING_RATE,
        "src": str(Path(args.src).resolve()), "git_head": git("rev-parse", "HEAD"),
        "git_dirty_src": bool(git("status", "--porcelain", "--", ".")),
        "python": platform.python_version(), "cpu": cpu, "cpu_count": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(), "versions": versions,
    }


def save(results, args):
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(out)


# =============================================================================== report

def fmt_s(res):
    if res is None:
        return "-"
    if "error" in res:
        return "ERR"
    return f"{res['median']:.3f}"


def ratio(a, b):
    if a is None or b is None or "error" in a or (isinstance(b, dict) and "error" in b):
        return None
    bval = b if isinstance(b, float) else b["median"]
    return a["median"] / bval


def fmt_r(value, target=None):
    if value is None:
        return "-"
    mark = "" if target is None else (" ok" if value <= target else " !!")
    return f"{value:.2f}{mark}"


def report(results):
    lines = []
    meta_ = results["meta"]
    if meta_.get("note"):
        lines.append(meta_["note"])
    lines.append(f"nndl speed benchmark: {meta_['samples']} samples x {D} float32 features, batch {BATCH}, "
                 f"{meta_['threads']} BLAS thread(s), median of {meta_['reps']} after {meta_['warmup']} "
                 f"warm-up (seconds; FLOP bound from NumPy's measured sgemm rate at each shape)")
    head = (f"{'row':30s}" + "".join(f"{COLUMN_TITLES[i]:>13s}" for i in TRAIN_IMPLS)
            + f"{'FLOP bound':>13s}{'nndl/torch':>13s}{'nndl/bound':>13s}")
    lines.append(head)
    lines.append("-" * len(head))
    for row, entry in results["rows"].items():
        impls = entry["impls"]
        nndl = impls.get("nndl_solver")
        cells = [fmt_s(impls.get(i)) if i in impls else "-" for i in TRAIN_IMPLS]
        vs_torch = ratio(nndl, impls.get("torch"))
        target_bound = TARGET_VS_BOUND if entry["kind"] == "train" else None
        vs_bound = ratio(nndl, float(entry["bound_seconds"]))
        lines.append(f"{row:30s}" + "".join(f"{c:>13s}" for c in cells)
                     + f"{entry['bound_seconds']:>13.3f}"
                     + f"{fmt_r(vs_torch, TARGET_VS_TORCH):>13s}{fmt_r(vs_bound, target_bound):>13s}")
    mem = results.get("memory", {})
    for method, res in mem.items():
        label = f"peak memory ({method})"
        value = "ERR" if "error" in res else f"{res['ratio']:.2f}x"
        ok = "" if "error" in res else (" ok" if res["ratio"] < TARGET_MEMORY else " !!")
        lines.append(f"{label:30s}{value + ok:>13s}   (of the {res.get('array_bytes', 0) / 2**20:.0f} MiB "
                     f"{res.get('samples', '?')}x{D} float32 array; target < {TARGET_MEMORY}x)")
    lines.append("")
    lines.append("columns: nndl Solver = Solver(sampling='replacement', the default); Solver perm = "
                 "sampling='permutation';")
    lines.append("  Solver 2thr = nndl Solver with OPENBLAS_THREAD_TIMEOUT=4 NNDL_NUM_THREADS=2 (docs/speed.md's "
                 "recipe for large nets)")
    lines.append("  nndl low = hand loop of model.loss + nndl.optim rules (prediction: model.loss(X) in one call); "
                 "nndl/* ratios use the nndl Solver column")
    lines.append("  products = gather each batch and run only its matrix products (no bias, activation, "
                 "loss or update): the floor for NumPy code")
    lines.append("  torch malloc = torch with glibc told to keep freed memory (MALLOC_MMAP_THRESHOLD_=32 MiB, "
                 "MALLOC_TRIM_THRESHOLD_=1 GiB), as nndl's Solver does for itself")
    lines.append(f"  targets: nndl/torch <= {TARGET_VS_TORCH} (train and predict), train nndl/bound <= "
                 f"{TARGET_VS_BOUND}, peak memory < {TARGET_MEMORY}x; 'ok' met, '!!' not met")

    # All nndl variants against torch and the bound.
    lines.append("")
    head2 = f"{'ratios':30s}" + "".join(f"{h:>14s}" for h in (
        "Solver/torch", "perm/torch", "2thr/torch", "low/torch", "Solver/t.mal", "Solver/bound", "perm/bound",
        "low/bound", "prod/bound", "torch/bound", "t.mal/bound", "sklearn/torch"))
    lines.append(head2)
    lines.append("-" * len(head2))
    for row, entry in results["rows"].items():
        impls = entry["impls"]
        torch_ = impls.get("torch")
        bound = float(entry["bound_seconds"])
        vals = [ratio(impls.get("nndl_solver"), torch_), ratio(impls.get("nndl_solver_perm"), torch_),
                ratio(impls.get("nndl_solver_2t"), torch_), ratio(impls.get("nndl_lowlevel"), torch_),
                ratio(impls.get("nndl_solver"), impls.get("torch_mallopt")),
                ratio(impls.get("nndl_solver"), bound),
                ratio(impls.get("nndl_solver_perm"), bound), ratio(impls.get("nndl_lowlevel"), bound),
                ratio(impls.get("products"), bound), ratio(torch_, bound), ratio(impls.get("torch_mallopt"), bound),
                ratio(impls.get("sklearn"), torch_)]
        lines.append(f"{row:30s}" + "".join(f"{fmt_r(v):>14s}" for v in vals))

    # GEMM rates.
    lines.append("")
    lines.append("float32 GEMM rate at the benchmark's shapes, GFLOP/s (nn: A@B, tn: A.T@B, nt: A@B.T; "
                 "best of runs at start and end; the bound uses numpy's)")
    np_rates = best_rates(results["gemm"])
    t_rates = best_rates(results["gemm"], "torch")
    lines.append(f"{'shape (form m x k x n)':30s}{'numpy':>10s}{'torch':>10s}")
    for key, rate in np_rates.items():
        t = t_rates.get(key)
        lines.append(f"{key:30s}{rate:>10.1f}" + (f"{t:>10.1f}" if t is not None else f"{'-':>10s}"))
    for row, entry in results["rows"].items():
        if entry["kind"] == "train":
            lines.append(f"  {row}: {entry['flops'] / 1e9:.1f} GFLOP per epoch, bound rate "
                         f"{entry['bound_gflops']:.1f} GFLOP/s")

    lines.append("")
    lines.append("checks:")
    # Other processes slow every implementation of a row alike (they are interleaved), so the
    # row's smallest run-queue wait measures them; an implementation waiting much more than
    # that has more busy threads than cores of its own.
    noisy, self_wait = [], []
    for row, entry in results["rows"].items():
        waits = {impl: res["median_runqueue_wait"] for impl, res in entry["impls"].items()
                 if "median_runqueue_wait" in res}
        if not waits:
            continue
        floor = min(waits.values())
        if floor > 0.05:
            noisy.append(f"{row} ({100 * floor:.0f}%)")
        self_wait += [f"{row} / {impl} ({100 * w:.0f}%)" for impl, w in waits.items() if w - floor > 0.05]
    lines.append(f"  load average {results['meta']['loadavg_at_start'][0]:.2f} at start, "
                 f"{results['meta'].get('loadavg_at_end', [float('nan')])[0]:.2f} at end; "
                 + ("NOISY rows (another process took CPU time from every implementation; rerun on a "
                    "quiet machine or with --wait-quiet): " + ", ".join(noisy) if noisy
                    else "no row was slowed by other processes (run-queue wait <= 5% for some implementation)"))
    steals = [res["median_steal"] for entry in results["rows"].values() for res in entry["impls"].values()
              if res.get("median_steal") is not None]
    if steals:
        lines.append(f"  hypervisor steal (CPU time given to other machines): median per epoch at most "
                     f"{100 * max(steals):.1f}% of the CPUs" + ("  -- NOISY" if max(steals) > 0.05 else ""))
    if self_wait:
        lines.append("  threads waiting for a core inside one implementation (more runnable threads than "
                     f"--threads cores; median run-queue wait per thread): {', '.join(self_wait)}")
    for row, entry in results["rows"].items():
        eq = entry["impls"].get("torch", {}).get("equivalence")
        if eq:
            lines.append(f"  torch = nndl ({row}): first-batch loss {eq['nndl_loss']:.6f} vs "
                         f"{eq['torch_loss_plus_l2']:.6f}, parameters after one step differ by "
                         f"{eq['max_rel_param_diff_after_one_step']:.1e} (relative)")
    for row, entry in results["rows"].items():
        for impl, res in entry["impls"].items():
            if "dtypes" in res and res["dtypes"] != ["float32"]:
                lines.append(f"  !! {row} / {impl}: parameter/optimizer dtypes {res['dtypes']}")
            if "coef_dtype" in res and entry["kind"] == "train":
                lines.append(f"  sklearn ({row}) trains in {res['coef_dtype']}")
                break

    errors = [(row, impl, res["error"]) for row, entry in results["rows"].items()
              for impl, res in entry["impls"].items() if "error" in res]
    if errors:
        lines.append("")
        lines.append("errors:")
        for row, impl, err in errors:
            lines.append(f"  {row} / {impl}: {err.splitlines()[-1]}")

    prof = results.get("profile")
    if prof and "error" not in prof:
        lines.append("")
        p = prof["phases_median"]
        lines.append(f"profile of one nndl epoch, {prof['arch']} {prof['rule']} (hand loop with "
                     f"replacement sampling, median of {len(prof['phases']) - results['meta']['warmup']}):")
        for key in ("sample_and_gather", "model_loss", "update_rule"):
            lines.append(f"  {key:20s}{p[key]:8.3f} s  {100 * p[key] / p['total']:5.1f}%")
        lines.append(f"  {'total':20s}{p['total']:8.3f} s  (sys {p['stime']:.2f} s, {p['minflt']:.0f} minor faults)")
        row = results["rows"].get(f"train {prof['arch']} {prof['rule']}")
        if row:
            lines.append(f"  matrix products at the measured rate (FLOP bound): {row['bound_seconds']:.3f} s")
        lines.append("cProfile of one Solver epoch (default sampling), top functions by own time:")
        lines.extend("  " + ln for ln in prof["cprofile_solver_epoch"].splitlines() if ln.strip())
    elif prof:
        lines.append(f"profile: ERROR {prof['error']}")
    return "\n".join(lines)


# =============================================================================== main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads for every implementation (default 2)")
    p.add_argument("--nndl-threads", type=int,
                   help="NNDL_NUM_THREADS for nndl's own elementwise threads (default: unset, nndl's default)")
    p.add_argument("--quick", action="store_true",
                   help="quick run to iterate: 9,800 samples (49 steps), 3 reps, shorter GEMM timing")
    p.add_argument("--samples", type=int, help="training/prediction samples (default 49000; 9800 with --quick)")
    p.add_argument("--reps", type=int, help="timed repetitions (default 5; 3 with --quick)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up repetitions (default 1)")
    p.add_argument("--archs", nargs="+", choices=list(ARCHS), help="only these architectures")
    p.add_argument("--rules", nargs="+", choices=RULES, help="only these training rows (skips prediction "
                   "unless --predict)")
    p.add_argument("--predict", action="store_true", help="with --rules, still run the prediction rows")
    p.add_argument("--impls", nargs="+", choices=TRAIN_IMPLS, help="only these implementations")
    p.add_argument("--skip-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--memory-samples", type=int, default=50000,
                   help="rows of the array for the peak-memory run (default 50000)")
    p.add_argument("--profile", action="store_true",
                   help="also profile one nndl epoch (per-phase timers + cProfile)")
    p.add_argument("--profile-arch", default="3072-1024-512-10", choices=list(ARCHS))
    p.add_argument("--profile-rule", default="adam", choices=RULES)
    p.add_argument("--src", default=str(DEFAULT_SRC),
                   help="directory holding the nndl package to benchmark (default: this checkout's src/)")
    p.add_argument("--note", help="free text stored in the JSON and printed above the table "
                   "(e.g. which commit --src holds)")
    p.add_argument("--out", help="JSON output (default benchmarks/results/speed.json, speed_quick.json "
                   "with --quick)")
    p.add_argument("--from-json", help="only print the table of an existing JSON result")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each round and each one-shot measurement, wait up to SECONDS for "
                   "other processes to leave the CPUs idle (default 0: do not wait)")
    p.add_argument("--quiet-threshold", type=float, default=0.10,
                   help="busy fraction of all CPUs that counts as quiet (default 0.10)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="seconds of pause before each timed run (lets other workers' threads go idle)")
    args = p.parse_args(argv)
    if args.samples is None:
        args.samples = 9800 if args.quick else 49000
    if args.reps is None:
        args.reps = 3 if args.quick else 5
    args.gemm_seconds = 0.1 if args.quick else 0.3
    args.gemm_reps = 3 if args.quick else 5
    if args.out is None:
        args.out = str(HERE / "results" / ("speed_quick.json" if args.quick else "speed.json"))
    if args.samples < BATCH:
        p.error(f"--samples must be at least the batch size {BATCH}, got {args.samples}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        WORKERS[spec["kind"]](spec, Channel(spec.get("threads", 1)))
        return
    if args.from_json:
        print(report(json.loads(Path(args.from_json).read_text())))
        return
    results = run_all(args)
    text = report(results)
    print(text)
    Path(args.out).with_suffix(".txt").write_text(text + "\n")
    log(f"\nwrote {args.out} and {Path(args.out).with_suffix('.txt')}")


if __name__ == "__main__":
    main()
