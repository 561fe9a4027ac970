"""Tests for nndl._parallel: blocked (and threaded) elementwise kernels give exactly the
result of one call over the whole arrays."""

import numpy as np
import pytest

from nndl import _parallel
from nndl.optim import UPDATE_RULES


def _run(name, w0, dws, weight_decay=0.0):
    w, config = w0.copy(), {"learning_rate": 1e-2, "weight_decay": weight_decay}
    for dw in dws:
        w, config = UPDATE_RULES[name](w, dw, config)
    return w


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_update_rules_are_identical_blocked_threaded_and_whole(name, weight_decay, monkeypatch):
    rng = np.random.default_rng(0)
    n = _parallel.PARALLEL_MIN + 3 * _parallel.BLOCK + 7  # many blocks, the last one short
    w0 = rng.standard_normal((n, 1)).astype(np.float32)
    dws = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(3)]
    results = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("NNDL_NUM_THREADS", threads)
        results[threads] = _run(name, w0, dws, weight_decay)
    # A column of a wider array is not contiguous: the kernel then runs once on whole arrays.
    wide = np.zeros((n, 2), np.float32)
    wide[:, :1] = w0
    whole = _run(name, wide[:, :1], [np.repeat(dw, 2, axis=1)[:, :1] for dw in dws], weight_decay)
    np.testing.assert_array_equal(results["1"], results["3"])
    np.testing.assert_array_equal(results["1"], whole)
    assert not np.array_equal(results["1"], w0)


def test_non_contiguous_arrays_are_processed_whole():
    out = np.zeros((3 * _parallel.BLOCK, 2))[:, 0]  # a strided view
    _parallel.add_scaled(out, np.ones(out.shape), 2.0)
    assert (out == 2.0).all()


def test_add_scaled_over_blocks():
    out = np.arange(2 * _parallel.BLOCK + 3, dtype=np.float32)
    x = np.ones_like(out)
    _parallel.add_scaled(out, x, 0.5)
    np.testing.assert_array_equal(out, np.arange(out.size, dtype=np.float32) + 0.5)


def test_thread_count_defaults_to_one(monkeypatch):
    monkeypatch.delenv("NNDL_NUM_THREADS", raising=False)
    assert _parallel.num_threads() == 1
    monkeypatch.setenv("NNDL_NUM_THREADS", "2")
    assert _parallel.num_threads() == 2


@pytest.mark.parametrize("value", ["many", "0", "-1"])
def test_bad_thread_count_is_named(value, monkeypatch):
    monkeypatch.setenv("NNDL_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"NNDL_NUM_THREADS must be a positive integer, got '{value}'"):
        _parallel.num_threads()
