"""Tests for nndl._parallel: chunked elementwise kernels give exactly the single-thread result."""

import numpy as np
import pytest

from nndl import _parallel
from nndl.optim import UPDATE_RULES


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_update_rules_are_identical_chunked_and_whole(name, monkeypatch):
    rng = np.random.default_rng(0)
    n = 5 * _parallel.MIN_CHUNK + 7  # several chunks, the last one uneven
    w0 = rng.standard_normal((n,)).astype(np.float32).reshape(-1, 1)
    dws = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(3)]
    results = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("NNDL_NUM_THREADS", threads)
        w, config = w0.copy(), {"learning_rate": 1e-2}
        for dw in dws:
            w, config = UPDATE_RULES[name](w, dw, config)
        results[threads] = w
    np.testing.assert_array_equal(results["1"], results["3"])
    assert not np.array_equal(results["1"], w0)


def test_non_contiguous_arrays_are_processed_whole(monkeypatch):
    monkeypatch.setenv("NNDL_NUM_THREADS", "4")
    out = np.zeros((4 * _parallel.MIN_CHUNK, 2))[:, 0]  # a strided view
    _parallel.add_scaled(out, np.ones(out.shape), 2.0)
    assert (out == 2.0).all()


def test_bad_thread_count_is_named(monkeypatch):
    monkeypatch.setenv("NNDL_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="NNDL_NUM_THREADS must be a positive integer, got 'many'"):
        _parallel.num_threads()
