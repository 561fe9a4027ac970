"""File helpers for commands that must not lose the user's files.

``write_atomically``: a temporary file in the target's directory, renamed over the target. A
crash or error mid-write leaves the previous file (if any) intact and no temporary file
behind. The new file gets the permissions an ordinary ``open(path, 'w')`` would give it
(``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.

``missing_paths``: what a run is about to create, so that a run that fails can remove it again
(and nothing that existed before it).
"""

import os
import tempfile


def _umask():
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def write_atomically(path, write, suffix=".tmp", text=False):
    """Write ``path`` by calling ``write(f)`` on a temporary file, then renaming it to ``path``.

    Parameters
    ----------
    path : str or path
    write : callable
        ``write(f)`` with ``f`` a file object opened for writing (binary unless ``text``).
    suffix : str
        Suffix of the temporary file's name.
    text : bool

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.
    IsADirectoryError
        ``path`` is a directory (it is left as it was).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a directory; give a file name in it")
    fd, tmp = tempfile.mkstemp(prefix=".nndl-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "w" if text else "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def missing_paths(path):
    """``path`` and those of its parent directories that do not exist yet, deepest first: what
    ``os.makedirs(path)`` (or creating the file ``path``) would create."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing
