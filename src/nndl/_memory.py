"""Ask the C allocator to keep freed memory for reuse during training.

Each training step allocates and frees arrays of the size of the weight matrices (gradients,
update-rule scratch). glibc's malloc serves blocks above its mmap threshold (128 KiB to
32 MiB, adapting) with fresh ``mmap`` calls and returns them to the system on ``free``, so
every step pays page faults to touch new pages: measured at ~450k faults (1.5 s of system
time) per epoch of a 3072-1024-512-10 net. Raising the mmap and trim thresholds makes malloc
keep and reuse that memory instead.

This is a process-wide setting of glibc (a no-op elsewhere): memory freed after training is
kept by the process rather than returned to the system. Set ``NNDL_KEEP_MEMORY=0`` to
disable it.
"""

import ctypes
import ctypes.util

from . import _env

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc caps the mmap threshold at 32 MiB on 64-bit systems (HEAP_MAX_SIZE / 2).
_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 1024 * 1024 * 1024

_done = False


def keep_freed_memory():
    """Tell glibc's malloc to reuse freed blocks of up to 32 MiB instead of unmapping them.

    Returns True if the setting was applied (glibc, not disabled by ``NNDL_KEEP_MEMORY=0``).
    Called by ``Solver.train``; call it yourself before a hand-written training loop.
    """
    global _done
    if _done:
        return True
    if _env.get("NNDL_KEEP_MEMORY") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (macOS, musl, Windows): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok
    _done = ok
    return ok
