"""Test helpers for the ``nndl`` command's tests: run it in-process, read its output, make a CIFAR-10 directory."""

import re

from cifar_files import write_batch

from nndl import cli
from nndl.data_utils import CIFAR10_TRAIN_FILES

PLOTS = ("loss.png", "accuracy.png", "weights.png")


def run(argv, capsys):
    """``nndl ARGV`` in-process -> (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, pattern, code=1):
    assert status == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]


def accuracy_line(out, label="test"):
    return re.search(rf"^{label} accuracy: (\d\.\d{{4}}) \((\d+)/(\d+)\)$", out, re.M)


def cifar_dir(tmp_path, n=4):
    """``tmp_path/cifar`` holding the five training batches (``n`` images each), no test batch."""
    directory = tmp_path / "cifar"
    directory.mkdir()
    for i, name in enumerate(CIFAR10_TRAIN_FILES):
        write_batch(directory / name, n=n, seed=i)
    return directory
