"""The environment variables nndl reads, in one table.

Contract
--------
``SWITCHES`` maps each ``NNDL_*`` variable to its default (used when it is unset or empty) and
what it changes; ``get(name)`` returns the variable's value or that default. Every module
reads its variable through ``get``, so this table is the complete list (``docs/install.md``
shows it to users). Adding a switch: add its row here and read it with ``get``.
"""

import os

SWITCHES = {
    "NNDL_DATA_DIR": ("~/.cache/nndl", "where datasets are found and downloaded (nndl.data_utils)"),
    "NNDL_NUM_THREADS": ("1", "threads of the elementwise kernels for large arrays (nndl._parallel)"),
    "NNDL_BLAS": ("", "'numpy' turns off the direct BLAS calls and uses NumPy's matmul (nndl._blas)"),
    "NNDL_KEEP_MEMORY": ("1", "'0' lets malloc return freed blocks to the system during training (nndl._memory)"),
}
"""Variable -> (default, what it changes)."""


def get(name):
    """``$name`` if set and not empty, else its default in ``SWITCHES`` (``~`` expanded)."""
    default, _ = SWITCHES[name]  # a KeyError here is a switch missing from the table
    return os.environ.get(name) or os.path.expanduser(default)
