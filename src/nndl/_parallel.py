"""Run elementwise kernels on large arrays in parallel, one flat chunk per core.

NumPy's elementwise ufuncs use one core, while the matrix products around them use all of
them; on a weight matrix of millions of entries an update rule (Adam: about ten ufuncs) then
costs as much as the products. The ufuncs release the GIL, so running the same kernel on
disjoint chunks from a few threads uses every core. Kernels must be elementwise and work in
place on the chunks they are given (``out=`` arguments and in-place operators), so that
writing to a chunk writes to the caller's array.

The thread count is ``$NNDL_NUM_THREADS`` if set, else the number of cores this process may
run on. Worker processes that each get one core (parallel hyperparameter search) should set
``NNDL_NUM_THREADS=1``, as they do for the BLAS.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Below this many elements per chunk, handing work to a thread costs more than it saves
# (measured: a 3072x100 weight updated in two threads was slower than in one).
MIN_CHUNK = 1 << 19

_pool = None
_pool_pid = None


def num_threads():
    """Threads for elementwise kernels: ``$NNDL_NUM_THREADS`` or the usable cores."""
    value = os.environ.get("NNDL_NUM_THREADS")
    if value:
        try:
            return max(int(value), 1)
        except ValueError:
            raise ValueError(f"NNDL_NUM_THREADS must be a positive integer, got {value!r}") from None
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _get_pool(threads):
    global _pool, _pool_pid
    # A pool inherited through fork() has no live threads in the child: make a new one.
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < threads:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="nndl")
        _pool_pid = os.getpid()
    return _pool


def elementwise(kernel, *arrays, **scalars):
    """Call ``kernel(*chunks, **scalars)`` on matching chunks of ``arrays``.

    Parameters
    ----------
    kernel : callable
        Elementwise and in place: it must write its results into the chunks it is given.
    *arrays : ndarray
        Arrays of the same size. They are split only when all are C-contiguous and large;
        otherwise ``kernel`` is called once on the whole arrays.
    **scalars
        Passed to every call unchanged.
    """
    n = arrays[0].size
    chunks = min(num_threads(), n // MIN_CHUNK)
    if chunks < 2 or not all(a.flags.c_contiguous and a.size == n for a in arrays):
        kernel(*arrays, **scalars)
        return
    flat = [a.reshape(-1) for a in arrays]
    bounds = np.linspace(0, n, chunks + 1).astype(int)
    pool = _get_pool(chunks)
    futures = [pool.submit(kernel, *(f[lo:hi] for f in flat), **scalars)
               for lo, hi in zip(bounds[:-1], bounds[1:])]
    for future in futures:
        future.result()


def _add_scaled_kernel(out, x, scale):
    out += scale * x


def add_scaled(out, x, scale):
    """``out += scale * x`` in place, in parallel chunks for large arrays."""
    elementwise(_add_scaled_kernel, out, x, scale=scale)
