"""Tests for nndl._files (atomic writes, what a run would create) and nndl._memory (glibc's
malloc thresholds): the helpers the CLI, checkpoints and the Solver rely on to lose nothing."""

import os
import stat
import subprocess
import sys

import pytest

from nndl._files import missing_paths, write_atomically


def test_write_atomically_replaces_the_file_with_ordinary_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    write_atomically(target, lambda f: f.write("new"), text=True)
    assert target.read_text() == "new"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0o600
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"precious")

    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt  # the user gives up mid-write

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, fail)
    assert target.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_write_atomically_refuses_a_directory_or_a_missing_folder_by_name(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a directory; give a file name in it"):
        write_atomically(tmp_path / "d", lambda f: f.write(b"x"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_atomically(tmp_path / "nope" / "f.bin", lambda f: f.write(b"x"))
    assert os.listdir(tmp_path / "d") == []


def test_missing_paths_lists_what_would_be_created_deepest_first(tmp_path):
    (tmp_path / "a").mkdir()
    target = tmp_path / "a" / "b" / "c" / "f.txt"
    assert missing_paths(target) == [str(target), str(tmp_path / "a" / "b" / "c"), str(tmp_path / "a" / "b")]
    assert missing_paths(tmp_path / "a") == []


MALLOPT_PROBE = """
import ctypes
calls = []

class FakeMallopt:  # a ctypes function stand-in: callable, takes argtypes
    def __call__(self, option, value):
        calls.append((option, value))
        return 1

class FakeLibc:
    mallopt = FakeMallopt()

ctypes.CDLL = lambda name: FakeLibc()  # record what nndl asks of glibc, change nothing
from nndl._memory import keep_freed_memory as k
first, second = k(), k()
print(first, second, calls)
"""


@pytest.mark.parametrize("env", ["1", "0"])
def test_keep_freed_memory_sets_both_thresholds_once_unless_disabled(env):
    # In a fresh process: the setting is process-wide and remembered.
    result = subprocess.run([sys.executable, "-c", MALLOPT_PROBE], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, NNDL_KEEP_MEMORY=env))
    assert result.returncode == 0, result.stderr
    if env == "1":
        # M_MMAP_THRESHOLD (-3) to 32 MiB and M_TRIM_THRESHOLD (-1) to 1 GiB, once for both calls.
        assert result.stdout.strip() == f"True True [(-3, {32 << 20}), (-1, {1 << 30})]"
    else:
        assert result.stdout.strip() == "False False []"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_is_accepted_by_the_real_glibc():
    result = subprocess.run([sys.executable, "-c", "from nndl._memory import keep_freed_memory as k; print(k())"],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, NNDL_KEEP_MEMORY="1"))
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
