"""Run elementwise kernels over large arrays block by block, optionally on several threads.

An update rule is a chain of about ten NumPy operations over each weight matrix. Run one after
another over a whole 3072x1024 matrix, every operation streams 12 MiB through main memory;
run over blocks of ``BLOCK`` elements, the whole chain works on data that is still in the
core's cache, and only the first read and the last write of each block go to memory. That is
what this module does for ``nndl.optim`` and the L2 term of ``nndl.fc_net``.

Contract
--------
``elementwise(kernel, *arrays, **scalars)`` calls ``kernel(*blocks, tmp=(t1, t2), **scalars)``
on matching flat blocks of ``arrays``. Kernels must be elementwise and write their results
in place into the blocks they are given (``out=`` arguments and in-place operators), so that
writing to a block writes to the caller's array. ``t1`` and ``t2`` are scratch arrays of the
block's size and dtype, reused between calls: kernels may overwrite them freely and must not
keep them. Arrays must share one shape (else ``ValueError``); those that are not all
C-contiguous of one dtype are passed whole, with fresh scratch arrays.

Threads: ``$NNDL_NUM_THREADS`` (default 1) threads share the blocks of arrays of at least
``PARALLEL_MIN`` elements. The default is one because on a 2-core machine the BLAS's worker
thread keeps spinning on the second core for a while after every matrix product, so a second
elementwise thread mostly waits for it (measured: ``benchmarks/README.md``). Started with
``OPENBLAS_THREAD_TIMEOUT=4`` (read by OpenBLAS when NumPy loads it), the BLAS workers sleep
at once instead, and ``NNDL_NUM_THREADS=2`` pays off for large nets: docs/speed.md's
section gives the recipe and its measurements.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _env

# 64Ki float32 elements = 256 KiB per array: a kernel's few blocks plus its two scratch
# blocks fit in a 1 MiB L2 cache, and a block is long enough that NumPy's per-call overhead
# (about a microsecond) is small next to the work. Measured on Adam for a 3072-1024-512-10
# net: 16Ki 12.6 ms, 64Ki 10.9 ms, 256Ki 10.2 ms, unblocked 12.3 ms per step (same run).
BLOCK = 1 << 16

# Below this many elements handing blocks to other threads costs more than it saves.
PARALLEL_MIN = 1 << 20

_pool = None
_pool_pid = None
_local = threading.local()


def num_threads():
    """Threads for elementwise kernels: ``$NNDL_NUM_THREADS``, default 1."""
    value = _env.get("NNDL_NUM_THREADS")
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"NNDL_NUM_THREADS must be a positive integer, got {value!r}")
    return threads


def _get_pool(threads):
    global _pool, _pool_pid
    # A pool inherited through fork() has no live threads in the child: make a new one.
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < threads:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="nndl")
        _pool_pid = os.getpid()
    return _pool


def _scratch(dtype):
    """Two scratch blocks of ``dtype`` owned by the calling thread (so threads never share)."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    pair = buffers.get(dtype)
    if pair is None:
        pair = buffers[dtype] = (np.empty(BLOCK, dtype), np.empty(BLOCK, dtype))
    return pair


def _run_blocks(kernel, flat, starts, scalars):
    t1, t2 = _scratch(flat[0].dtype)
    for lo in starts:
        blocks = [f[lo:lo + BLOCK] for f in flat]
        n = blocks[0].size
        kernel(*blocks, tmp=(t1[:n], t2[:n]), **scalars)


def elementwise(kernel, *arrays, **scalars):
    """Call ``kernel(*blocks, tmp=(t1, t2), **scalars)`` over matching blocks of ``arrays``.

    Parameters
    ----------
    kernel : callable
        Elementwise and in place: it must write its results into the blocks it is given.
    *arrays : ndarray
        Arrays of one shape (else ``ValueError``). They are split into blocks only when all are C-contiguous
        and of one dtype; otherwise ``kernel`` is called once on the whole arrays.
    **scalars
        Passed to every call unchanged.
    """
    first = arrays[0]
    n = first.size
    if any(a.shape != first.shape for a in arrays):
        # Flat blocks of equal size would pair up the wrong elements without a word.
        raise ValueError(f"elementwise arrays must share one shape, got {', '.join(str(a.shape) for a in arrays)}")
    if not all(a.flags.c_contiguous and a.dtype == first.dtype for a in arrays):
        kernel(*arrays, tmp=(np.empty(first.shape, first.dtype), np.empty(first.shape, first.dtype)),
               **scalars)
        return
    flat = [a.reshape(-1) for a in arrays]
    if n <= BLOCK:
        # One block (biases, small layers): straight to the kernel, no block bookkeeping.
        t1, t2 = _scratch(first.dtype)
        kernel(*flat, tmp=(t1[:n], t2[:n]), **scalars)
        return
    starts = range(0, n, BLOCK)
    threads = min(num_threads(), len(starts)) if n >= PARALLEL_MIN else 1
    if threads < 2:
        _run_blocks(kernel, flat, starts, scalars)
        return
    # Interleaved blocks: every thread gets work from every array, and the shares differ by
    # at most one block.
    pool = _get_pool(threads)
    futures = [pool.submit(_run_blocks, kernel, flat, starts[i::threads], scalars)
               for i in range(threads)]
    for future in futures:
        future.result()


def _add_scaled_kernel(out, x, scale, tmp):
    np.multiply(x, scale, out=tmp[0])
    out += tmp[0]


def add_scaled(out, x, scale):
    """``out += scale * x`` in place, block by block."""
    elementwise(_add_scaled_kernel, out, x, scale=scale)
