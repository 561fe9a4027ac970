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


@pytest.fixture
def blas_calls(monkeypatch):
    """Count the calls that reach the BLAS function."""
    calls = []

    def spy(*args):
        calls.append(args[0])
        return real(*args)

    real = _blas._call
    monkeypatch.setattr(_blas, "_call", spy)
    return calls


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("backend", ["blas", "numpy"])
@pytest.mark.parametrize("shape", [(7, 5, 4), (300, 310, 290)])  # the large one takes BLAS's blocked, threaded path
def test_gemm_tn_update_matches_numpy(dtype, rtol, backend, shape, monkeypatch, blas_calls):
    monkeypatch.setenv("NNDL_BLAS", backend)
    a, b, c = operands(dtype, *shape)
    expected = -0.3 * (a.T.astype(np.float64) @ b) + 0.9 * c
    out = _blas.gemm_tn_update(a, b, c, -0.3, 0.9)
    assert out is c and c.dtype == dtype
    np.testing.assert_allclose(c, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    if backend == "numpy" or not _blas.available():
        assert blas_calls == []
    else:
        assert len(blas_calls) == 1


def test_overlapping_operands_take_the_fallback(blas_calls):
    a = np.random.default_rng(0).standard_normal((6, 6))
    b = a.copy()
    expected = 0.5 * (a.T @ b) + 2.0 * a
    _blas.gemm_tn_update(a, b, a, 0.5, 2.0)  # c is a itself
    np.testing.assert_allclose(a, expected, rtol=1e-12)
    assert blas_calls == []


@pytest.mark.parametrize("alpha, beta", [(0.0, 1.0), (1.0, 0.0)])
def test_zero_alpha_or_beta_keeps_nan_as_numpy_does(alpha, beta):
    # BLAS skips a term whose factor is 0, and with it any NaN in it; NumPy's 0 * NaN is NaN.
    a, b, c = operands(np.float64)
    b[0, 0] = np.nan
    c[0, 0] = np.nan
    _blas.gemm_tn_update(a, b, c, alpha, beta)
    assert np.isnan(c[:, 0]).any()


def test_non_contiguous_operands_take_the_fallback_with_the_same_result():
    a, b, c = operands(np.float64)
    expected = 2.0 * (a.T @ b) + 0.5 * c
    c_f = np.asfortranarray(c)
    _blas.gemm_tn_update(np.asfortranarray(a), np.asfortranarray(b), c_f, 2.0, 0.5)
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
