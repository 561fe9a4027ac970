"""Shared fixtures and helpers for the nndl test suite."""

from pathlib import Path

import numpy as np
import pytest

from nndl import cli
from nndl.gradient_check import GradientCheck, eval_numerical_gradient, rel_error

REPO = Path(__file__).resolve().parents[1]
CIFAR_SUBSET = REPO.parent / "shared" / "data" / "cifar-10-subset"


def assert_model_gradients(model, X, y, tol=1e-6, atol=1e-9):
    """Compare every analytic gradient of ``model.loss(X, y)`` with a numeric one.

    The rule of ``nndl.gradient_check.GradientCheck.passed``: the elementwise relative error
    is below ``tol``, or the largest difference is below ``tol`` times the largest entry
    (round-off in entries far smaller than the rest), or both gradients are below ``atol``
    (e.g. a bias followed by batchnorm, whose gradient is exactly zero).
    """
    _, grads = model.loss(X, y)
    assert grads.keys() == model.params.keys()
    for name in sorted(grads):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
        assert grads[name].shape == model.params[name].shape, name
        diff = float(np.max(np.abs(num - grads[name])))
        scale = max(float(np.max(np.abs(num))), float(np.max(np.abs(grads[name]))))
        check = GradientCheck(type(model).__name__, name, rel_error(num, grads[name]), diff, scale)
        assert check.passed(tol, atol), check


@pytest.fixture(scope="session")
def cifar_subset_dir():
    """The shared real CIFAR-10 subset (present beside the repository, as in CI)."""
    if not (CIFAR_SUBSET / "data_batch_1").is_file():
        pytest.skip(f"shared CIFAR-10 subset not found at {CIFAR_SUBSET}")
    return CIFAR_SUBSET


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """One `nndl train` with every default (the first-run experience), shared by several tests.

    test_cli.py, test_train.py and test_evaluate.py use it; none of them writes to its directory."""
    out = tmp_path_factory.mktemp("digits")
    status = cli.main(["train", "--out", str(out), "--quiet"])
    assert status == 0
    return out
