"""nndl.sklearn.MLPClassifier against sklearn.neural_network.MLPClassifier, side by side (run by hand).

Both estimators sit in the same ``Pipeline`` after a ``StandardScaler``, get the same float32
data, the same hidden sizes, epochs and batch size, and are fitted one after the other in one
process; the figures are test accuracy and fit time (wall clock, 2 BLAS threads for both).

- digits: the built-in 1,797 digits, a fixed shuffle (seed 0), 1,437 to fit and 360 to test;
  one hidden layer of 100, 100 epochs, batches of 64. scikit-learn stops earlier when its
  training loss stops improving (its ``tol``/``n_iter_no_change`` defaults).
- cifar10: the split of ``benchmarks/bench_recipes.py`` (the first 4,153 images of the shared
  subset to fit, the last 1,017 to test); hidden (1024, 512), 30 epochs, batches of 128.
  nndl runs its ``cifar10`` recipe's options (batchnorm, AdamW with decoupled decay, one-cycle,
  label smoothing, flips and crops); scikit-learn its own defaults (Adam, L2 ``alpha=1e-4``).

    python benchmarks/bench_sklearn.py --data-dir ../shared/data/cifar-10-subset \\
        --out benchmarks/results/sklearn.json

``--only digits`` or ``--only cifar10`` runs one dataset; ``--seeds N`` repeats each fit with
seeds 0..N-1 and reports the mean and the range.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

NUM_CIFAR_TEST = 1017


def digits_split():
    from nndl.data_utils import load_digits

    X, y = load_digits(np.float32)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X.reshape(len(y), -1)[order], y[order]
    return X[:-360], y[:-360], X[-360:], y[-360:]


def cifar_split(data_dir):
    from nndl.data_utils import load_CIFAR10

    X, y, _, _ = load_CIFAR10(data_dir, dtype=np.float32, require_test=False)
    # load_CIFAR10 gives (N, 32, 32, 3); the estimators get rows in (3, 32, 32) order, the
    # image_shape nndl's augmentation is told.
    X = X.transpose(0, 3, 1, 2).reshape(len(y), -1) / np.float32(255)
    return X[:-NUM_CIFAR_TEST], y[:-NUM_CIFAR_TEST], X[-NUM_CIFAR_TEST:], y[-NUM_CIFAR_TEST:]


def estimators(dataset, seed):
    """``{name: unfitted estimator}`` for ``dataset``, each a Pipeline after a StandardScaler."""
    from sklearn.neural_network import MLPClassifier as SklearnMLP
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nndl.sklearn import MLPClassifier

    if dataset == "digits":
        shared = dict(hidden_layer_sizes=(100,), batch_size=64)
        nndl = MLPClassifier(max_epochs=100, random_state=seed, **shared)
        sk = SklearnMLP(max_iter=100, random_state=seed, **shared)
    else:
        shared = dict(hidden_layer_sizes=(1024, 512), batch_size=128)
        nndl = MLPClassifier(max_epochs=30, normalization="batchnorm", learning_rate=2e-3, weight_decay=0.05,
                             lr_schedule="onecycle", label_smoothing=0.1, image_shape=(3, 32, 32),
                             augment="flip-crop", random_state=seed, **shared)
        sk = SklearnMLP(max_iter=30, random_state=seed, **shared)
    return {"nndl": make_pipeline(StandardScaler(), nndl), "sklearn": make_pipeline(StandardScaler(), sk)}


def run(dataset, split, seeds):
    X_fit, y_fit, X_test, y_test = split
    results = {}
    for seed in range(seeds):
        for name, estimator in estimators(dataset, seed).items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning at max_iter
                estimator.fit(X_fit, y_fit)
            seconds = time.perf_counter() - start
            accuracy = float(estimator.score(X_test, y_test))
            results.setdefault(name, []).append({"seed": seed, "test_acc": accuracy, "fit_seconds": seconds})
            print(f"{dataset:8s} {name:8s} seed {seed}: test {accuracy:.4f}  fit {seconds:6.1f} s  "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    summary = {}
    for name, runs in results.items():
        acc = [r["test_acc"] for r in runs]
        sec = [r["fit_seconds"] for r in runs]
        summary[name] = {"test_acc_mean": float(np.mean(acc)), "test_acc_range": [min(acc), max(acc)],
                         "fit_seconds_mean": float(np.mean(sec)), "runs": runs}
    return {"n_fit": int(len(y_fit)), "n_test": int(len(y_test)), "results": summary}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "cifar-10-subset"))
    parser.add_argument("--only", choices=("digits", "cifar10"))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        sys.exit("bench_sklearn needs threadpoolctl and scikit-learn: pip install -e '.[bench,sklearn]'")
    import sklearn

    report = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                          "sklearn": sklearn.__version__, "cpus": os.cpu_count(),
                          "load_before": os.getloadavg()[0]}}
    with threadpool_limits(2):
        if args.only in (None, "digits"):
            report["digits"] = run("digits", digits_split(), args.seeds)
        if args.only in (None, "cifar10"):
            report["cifar10"] = run("cifar10", cifar_split(args.data_dir), args.seeds)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
