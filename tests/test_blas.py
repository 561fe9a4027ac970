"""Tests for nndl._blas: the in-place ``c = alpha * a.T @ b + beta * c`` and its NumPy fallback."""

import numpy as np
import pytest

from nndl import _blas


def operands(dtype, k=7, m=5, n=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((k, m)).astype(dtype), rng.standard_normal((k, n)).astype(dtype),
            rng.standard_normal((m, n)).astype(dtype))


def test_numpys_own_blas_is_found_where_numpys_wheel_bundles_one():
    # A pip-installed NumPy (as in CI) ships OpenBLAS beside it: the fast path must not
    # silently fall back there. Other builds (conda, distributions) may use the fallback.
    if not _blas._library_paths():
        pytest.skip("this NumPy bundles no BLAS library")
    assert _blas.available()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("backend", ["blas", "numpy"])
def test_gemm_tn_update_matches_numpy(dtype, rtol, backend, monkeypatch):
    monkeypatch.setenv("NNDL_BLAS", backend)
    a, b, c = operands(dtype)
    expected = -0.3 * (a.T @ b) + 0.9 * c
    out = _blas.gemm_tn_update(a, b, c, -0.3, 0.9)
    assert out is c and c.dtype == dtype
    np.testing.assert_allclose(c, expected, rtol=rtol, atol=rtol)


def test_non_contiguous_operands_take_the_fallback_with_the_same_result():
    a, b, c = operands(np.float64)
    expected = 2.0 * (a.T @ b) + 0.5 * c
    c_f = np.asfortranarray(c)
    _blas.gemm_tn_update(np.asfortranarray(a), b[:, ::1], c_f, 2.0, 0.5)
    np.testing.assert_allclose(c_f, expected, rtol=1e-12)
    c_view = np.zeros((5, 8))[:, ::2]  # a strided view is updated where it lies
    c_view[...] = c
    _blas.gemm_tn_update(a, b, c_view, 2.0, 0.5)
    np.testing.assert_allclose(c_view, expected, rtol=1e-12)


def test_empty_batch_only_scales_c():
    a, b, c = operands(np.float32, k=0)
    expected = 0.5 * c
    _blas.gemm_tn_update(a, b, c, 1.0, 0.5)
    np.testing.assert_allclose(c, expected)


def test_mismatched_shapes_are_rejected():
    a, b, c = operands(np.float64)
    with pytest.raises(ValueError, match=r"a \(K, M\), b \(K, N\), c \(M, N\)"):
        _blas.gemm_tn_update(a, b, c.T, 1.0, 0.0)
