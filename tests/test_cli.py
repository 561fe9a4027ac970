"""Tests of the ``nndl`` command framework (``nndl.cli``): ``main`` in-process and as a subprocess
(``python -m nndl``, the console script, a closed output pipe), the subcommand registry and help,
usage errors (exit 2), the one error and exit policy every subcommand shares, ``--traceback``,
``nndl gradcheck``, and the ``load_dataset`` re-export. ``nndl train`` and ``nndl evaluate`` have
their own test files, test_train.py and test_evaluate.py."""

import os
import re
import subprocess
import sys

import pytest
from cli_helpers import PLOTS, accuracy_line, assert_one_line_error, run

from nndl import cli, layers
from nndl import train as train_command


# --------------------------------------------------------------------------- subprocess

def _nndl(*args, cwd):
    return subprocess.run([sys.executable, "-m", "nndl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_python_m_nndl_runs_evaluate_and_help_as_a_subprocess(digits_run, tmp_path):
    result = _nndl("evaluate", digits_run / "model.npz", cwd=tmp_path)
    assert result.returncode == 0 and accuracy_line(result.stdout)
    result = _nndl("--help", cwd=tmp_path)
    assert result.returncode == 0 and all(c in result.stdout for c in ("train", "evaluate", "gradcheck"))
    result = _nndl("evaluate", tmp_path / "missing.npz", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "model file not found" in result.stderr and "Traceback" not in result.stderr


def test_a_closed_output_pipe_is_not_reported_as_an_error(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "nndl", "gradcheck"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()  # like `nndl gradcheck | head -0`: nobody reads the table
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b""


def test_console_script_trains_as_a_subprocess(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "nndl")
    if not os.path.isfile(script):
        pytest.skip(f"console script not installed next to {sys.executable}")
    result = subprocess.run([script, "train", "--epochs", "1", "--out", "run", "-q"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "run")) == sorted(("history.json", "model.npz") + PLOTS)


# --------------------------------------------------------------------------- gradcheck and help

def test_load_dataset_names_an_unknown_dataset():
    # The library function behind --dataset (whose argparse choices stop the command earlier).
    with pytest.raises(ValueError, match="dataset must be one of digits, cifar10; got 'mnist'"):
        cli.load_dataset("mnist")


def test_gradcheck_prints_a_passing_table(capsys):
    status, out, _ = run(["gradcheck"], capsys)
    assert status == 0
    assert re.search(r"^affine\s+w\s+\d\.\d\de-\d\d\s+ok$", out, re.M)
    assert re.search(r"^FullyConnectedNet batchnorm\s+gamma1\s", out, re.M)
    assert re.search(r"^all \d+ gradient checks pass", out, re.M)


def test_gradcheck_fails_on_a_wrong_backward(monkeypatch, capsys):
    monkeypatch.setattr(layers, "swish_backward", lambda dout, cache: 2 * dout)
    status, out, _ = run(["gradcheck"], capsys)
    assert status == 1 and re.search(r"^swish\s+x\s+\S+\s+FAILED$", out, re.M)


@pytest.mark.parametrize("command, flag", [("train", "--hidden"), ("evaluate", "--split"),
                                           ("gradcheck", "--tolerance")])
def test_every_subcommand_has_help(command, flag, capsys):
    status, out, _ = run([command, "--help"], capsys)
    assert status == 0 and flag in out


def test_a_module_can_add_a_subcommand_and_a_broken_one_does_not_break_the_others(tmp_path, monkeypatch, capsys):
    (tmp_path / "nndl_test_hello.py").write_text(
        "def add_hello_arguments(parser):\n"
        "    parser.add_argument('--name', default='world')\n\n"
        "def run_hello_command(args):\n"
        "    print(f'hello {args.name}')\n"
        "    return 0\n")
    (tmp_path / "nndl_test_broken.py").write_text("import nndl_test_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(tmp_path)
    monkeypatch.setitem(cli.COMMANDS, "hello", ("nndl_test_hello", "say hello"))
    monkeypatch.setitem(cli.COMMANDS, "broken", ("nndl_test_broken", "needs a missing extra"))
    monkeypatch.setitem(cli.COMMANDS, "absent", ("nndl_test_module_that_does_not_exist", "not offered"))
    assert run(["hello", "--name", "nndl"], capsys)[:2] == (0, "hello nndl\n")
    status, _, err = run(["broken", "--anything"], capsys)
    assert_one_line_error(status, err, "nndl broken is unavailable: No module named "
                                       "'nndl_test_dependency_that_is_not_installed'")
    assert run(["gradcheck", "--help"], capsys)[0] == 0
    status, _, err = run(["absent"], capsys)
    assert_one_line_error(status, err, "invalid choice: 'absent'", code=2)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv, pattern", [
    (["train", "--frobnicate"], r"^nndl train: error: unrecognized arguments: --frobnicate \(see nndl train --help\)$"),
    (["--frobnicate", "evaluate", "m.npz"], r"^nndl evaluate: error: unrecognized arguments: --frobnicate"),
    (["--frobnicate"], r"^nndl: error: unrecognized arguments: --frobnicate \(see nndl --help\)$"),
    ([], r"^nndl: error: the following arguments are required: COMMAND"),
    (["train", "--learning-rate", "-1"], r"argument --learning-rate/--lr: expected a number > 0, got '-1'"),
    (["train", "--hidden", "100", "0"], "argument --hidden: expected a positive integer, got '0'"),
    (["train", "--dropout", "1.5"], r"expected a number in \[0, 1\), got '1.5'"),
    (["train", "--activation", "tanh"], "argument --activation: invalid choice: 'tanh'"),
    (["train", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    (["evaluate"], "the following arguments are required: MODEL"),
    (["fly"], "argument COMMAND: invalid choice: 'fly'"),
    (["train", "--download-md5", "zz"], "argument --download-md5: expected an MD5 of 32 hexadecimal digits, got 'zz'"),
])
def test_usage_errors_are_one_line_with_exit_2(argv, pattern, capsys):
    status, _, err = run(argv, capsys)
    assert_one_line_error(status, err, pattern, code=2)


def test_traceback_flag_shows_the_exception(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        cli.main(["--traceback", "evaluate", str(tmp_path / "missing.npz")])


def test_every_subcommand_shares_one_error_and_exit_policy(monkeypatch, capsys):
    import nndl.search
    from nndl import cli

    def interrupted(args):
        raise KeyboardInterrupt

    def refused(args):
        raise ValueError("the value\nis bad")

    monkeypatch.setattr(nndl.search, "run_search_command", interrupted)
    monkeypatch.setattr(train_command, "run_train_command", refused)
    assert nndl.search.main(["--trials", "1"]) == 130  # python -m nndl.search
    assert capsys.readouterr().err == "nndl search: interrupted; run the same command again to resume\n"
    assert cli.main(["search", "--trials", "1"]) == 130
    assert capsys.readouterr().err == "nndl: interrupted; run the same command again to resume\n"
    assert cli.main(["train"]) == 1
    assert capsys.readouterr().err == "nndl: error: the value is bad\n"
    assert cli.main(["--trials", "0"], command="search") == 2
    assert capsys.readouterr().err.startswith("nndl search: error: argument --trials")
