"""Tests for nndl.search: search-space parsing, bad input, a small search on the built-in digits,
worker processes sharing a journal file (one of them killed mid-trial), and two workers joining
one study on a real PostgreSQL server started here."""

import csv
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="the search extra (optuna) is not installed")

from nndl import search as S  # noqa: E402
from nndl.checkpoint import load_model  # noqa: E402
from nndl.data_utils import get_digits_data  # noqa: E402

FINISHED = ("COMPLETE", "PRUNED")

# A fixed, small architecture: the tests exercise the search machinery, not accuracy.
SMALL = ["num_layers=1", "hidden_size=32", "dropout=0", "use_batchnorm=false", "batch_size=64",
         "update_rule=adam", "lr_decay=1", "weight_scale=0.01"]


def small_space(**extra):
    space = dict(p.split("=", 1) for p in SMALL)
    space.update(extra)
    return space


def cli_args(*params):
    out = []
    for p in params:
        out += ["-p", p]
    return out


def run_cli(args, timeout=120, **kw):
    """``python -m nndl.search ARGS`` with one BLAS thread (the machine has two cores)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "nndl.search", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def load_trials(storage, study="nndl-search"):
    return optuna.load_study(study_name=study, storage=S.open_storage(storage)).get_trials()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- space and input

@pytest.mark.parametrize("name, text, expected", [
    ("learning_rate", "1e-4:1e-1:log", S.Range(1e-4, 1e-1, log=True)),
    ("dropout", "0:0.5", S.Range(0.0, 0.5)),
    ("num_layers", "1:3", S.Range(1, 3)),
    ("hidden_size", "64, 128", S.Choices((64, 128))),
    ("use_batchnorm", "true,false", S.Choices((True, False))),
    ("update_rule", "adam", S.Fixed("adam")),
    ("batch_size", "1e2", S.Fixed(100)),
    ("reg", "0.1:0.2:3", S.Choices((0.1, 0.15000000000000002, 0.2))),
])
def test_parse_spec_forms(name, text, expected):
    assert S.parse_spec(name, text) == expected


def test_log_points_reproduce_seed_learning_rate_grid():
    # The course's grid is 10**-arange(3.0, 4.1, 0.1): 11 rates from 1e-3 down to 1e-4.
    spec = S.parse_spec("learning_rate", "1e-4:1e-3:log:11")
    course = np.sort(10.0 ** -np.arange(3.0, 4.1, 0.1))
    np.testing.assert_allclose(spec.values, course, rtol=1e-12)


def test_grid_is_nested_loop_order_of_the_space():
    space = S.make_space(small_space(reg="0.1,0.2", learning_rate="1e-3,1e-4,1e-5"))
    points = S._grid_points(space)
    assert [(p["learning_rate"], p["reg"]) for p in points] == [
        (1e-3, 0.1), (1e-3, 0.2), (1e-4, 0.1), (1e-4, 0.2), (1e-5, 0.1), (1e-5, 0.2)]


def test_grid_over_a_float_range_is_refused():
    with pytest.raises(S.SearchError, match="grid sampler needs a list of values for learning_rate"):
        S._grid_points(S.make_space({"learning_rate": "1e-4:1e-2:log"}))


@pytest.mark.parametrize("name, text, message", [
    ("lerning_rate", "1e-3", "unknown hyperparameter 'lerning_rate'; known ones are learning_rate"),
    ("learning_rate", "1e-2:1e-4", "learning_rate range 0.01:0.0001 is inverted"),
    ("reg", "0.1:0.1", "reg range 0.1:0.1 is empty"),
    ("hidden_size", ",", "hidden_size list of values is empty"),
    ("hidden_size", "", "hidden_size has an empty value"),
    ("dropout", "0:1", "dropout must be a number in [0, 1), got '1'"),
    ("reg", "0:1:log", "reg log range must start above 0"),
    ("update_rule", "adamx", "update_rule must be one of sgd"),
    ("batch_size", "12.5", "batch_size must be an int >= 1, got '12.5'"),
    ("use_batchnorm", "0:1", "use_batchnorm takes a list of values, not a range"),
])
def test_bad_specs_name_the_value(name, text, message):
    with pytest.raises(S.SearchError) as info:
        S.parse_spec(name, text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_toml_config(tmp_path):
    path = tmp_path / "search.toml"
    path.write_text('[search]\ntrials = 7\nsampler = "random"\n\n[space]\n'
                    'learning_rate = { low = 1e-4, high = 1e-2, log = true }\n'
                    'hidden_size = [32, 64]\nuse_batchnorm = true\n'
                    'reg = { low = 0.1, high = 0.2, num = 3 }\n')
    space, settings = S.load_config(path)
    assert settings == {"trials": 7, "sampler": "random"}
    assert space == {"learning_rate": S.Range(1e-4, 1e-2, log=True), "hidden_size": S.Choices((32, 64)),
                     "use_batchnorm": S.Fixed(True), "reg": S.parse_spec("reg", "0.1:0.2:3")}


@pytest.mark.parametrize("text, message", [
    ("[space]\nmomentum = 0.9\n", "unknown hyperparameter 'momentum'"),
    ("[search]\ntrails = 3\n", "unknown [search] key(s) trails"),
    ("[space]\nreg = { low = 1, high = 0.5 }\n", "reg range 1:0.5 is inverted"),
    ("[space\n", "is not valid TOML"),
    ('[search]\nsampler = "sobol"\n', "sampler must be one of tpe, random, grid; got 'sobol'"),
    ('[search]\ndataset = "mnist"\n', "dataset must be one of digits, cifar10; got 'mnist'"),
])
def test_bad_toml_config(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(S.SearchError, match=None) as info:
        S.load_config(path)
    assert message in str(info.value)


def test_load_dataset_names_an_unknown_dataset():
    with pytest.raises(S.SearchError, match="dataset must be one of digits, cifar10; got 'mnist'"):
        S.load_dataset("mnist")


@pytest.mark.parametrize("args, message", [
    (["-p", "lerning_rate=1e-3"], "unknown hyperparameter 'lerning_rate'"),
    (["-p", "learning_rate=1e-1:1e-3:log"], "learning_rate range 0.1:0.001 is inverted"),
    (["-p", "reg=1e-3:1e-3:log"], "reg range 0.001:0.001 is empty"),
    (["--trials", "0"], "argument --trials: expected a positive integer, got '0'"),
    (["--heartbeat", "0"], "argument --heartbeat: expected a positive integer, got '0'"),
    (["--timeout", "-5"], "argument --timeout: expected a number > 0, got '-5'"),
    (["--sampler", "grid"], "the grid sampler needs a list of values for learning_rate"),
])
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, capsys, args, message):
    code = S.main(args + ["--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "study.journal").exists()  # nothing touched before the check


@pytest.mark.parametrize("param, message", [
    ("learning_rate=abc", "argument --param/-p: learning_rate must be a number > 0, got 'abc'"),
    ("dropout=0:1.5", "argument --param/-p: dropout must be a number in [0, 1), got '1.5'"),
    ("lerning_rate=1e-3", "argument --param/-p: unknown hyperparameter 'lerning_rate'"),
])
def test_a_bad_param_value_is_a_usage_error_with_exit_2(tmp_path, capsys, param, message):
    assert S.main(["-p", param, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("nndl search: error: ")
    assert not (tmp_path / "out").exists()


def test_a_missing_config_file_names_the_flag(tmp_path, capsys):
    assert S.main(["--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"--config: search file {tmp_path / 'nope.toml'} not found" in err and err.count("\n") == 1
    (tmp_path / "cdir").mkdir()
    assert S.main(["--config", str(tmp_path / "cdir"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"--config: cannot read search file {tmp_path / 'cdir'}: Is a directory" in err and err.count("\n") == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[search]\ntrials = 0\n")
    assert S.main(["--config", str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"--config: {bad}: trials must be an int >= 1, got 0" in err


def test_storage_that_is_not_a_journal_is_refused_untouched(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my precious notes\n")
    code = S.main(["--storage", str(notes), "--trials", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1
    assert f"storage {notes} exists and is not an Optuna journal" in err
    assert notes.read_text() == "my precious notes\n"


def test_an_empty_file_or_an_existing_journal_is_accepted_as_storage(tmp_path):
    empty = tmp_path / "empty.journal"
    empty.touch()
    S.open_storage(str(empty))
    journal = tmp_path / "study.journal"
    S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, storage=str(journal),
             out=str(tmp_path / "out"), retrain=False, verbose=False)
    assert len(load_trials(str(journal))) == 1


def test_cli_unreachable_storage_as_a_subprocess(tmp_path):
    url = f"postgresql://nndl:secret@127.0.0.1:{free_port()}/nndl"  # nothing listens there
    proc = run_cli(["--storage", url, "--out", str(tmp_path), "--trials", "1"], timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open storage postgresql://nndl:***@127.0.0.1" in lines[0]
    assert "secret" not in proc.stderr and "Traceback" not in proc.stderr


def test_out_that_is_a_file_or_holds_nothing_to_report_is_refused_untouched(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert S.main(["--out", str(tmp_path / "afile"), "--trials", "1"]) == 1
    assert "--out " + str(tmp_path / "afile") + " exists and is not a directory" in capsys.readouterr().err
    assert S.main(["--report-only", "--out", str(tmp_path / "nosuch")]) == 1
    assert "there is no study to report on" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_another_study_may_not_overwrite_the_results_in_out(tmp_path):
    S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(tmp_path), retrain=False,
             verbose=False)
    before = (tmp_path / "summary.json").read_bytes()
    with pytest.raises(S.SearchError, match="already holds the results of study 'nndl-search'"):
        S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(tmp_path),
                 study_name="other", retrain=False, verbose=False)
    assert (tmp_path / "summary.json").read_bytes() == before


def test_files_no_search_left_in_out_are_not_overwritten(tmp_path, capsys):
    (tmp_path / "trials.csv").write_text("mine\n")
    (tmp_path / "best_model.npz").write_bytes(b"mine")
    assert S.main(["--out", str(tmp_path), "--trials", "1", "--epochs", "1", "--no-retrain"]) == 1
    err = capsys.readouterr().err
    assert (f"--out {tmp_path} already holds trials.csv, best_model.npz, which no search left there "
            f"(no summary.json or study.journal); move them away or give another --out") in err
    assert sorted(os.listdir(tmp_path)) == ["best_model.npz", "trials.csv"]
    assert (tmp_path / "trials.csv").read_text() == "mine\n"


def test_a_search_stopped_while_writing_results_resumes_with_the_same_command(tmp_path, monkeypatch):
    # With the study stored outside --out, only summary.json tells that --out is this study's:
    # it is written first, so a run stopped after trials.csv can be resumed.
    out, storage = tmp_path / "out", str(tmp_path / "elsewhere.journal")
    plot = S._plot

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(S.results, "_plot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(out), storage=storage,
                 retrain=False, verbose=False)
    assert sorted(os.listdir(out)) == ["summary.json", "trials.csv"]
    monkeypatch.setattr(S.results, "_plot", plot)
    result = S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(out), storage=storage,
                      retrain=False, verbose=False)
    assert result.complete and json.loads((out / "summary.json").read_text())["complete"] is True


def test_joining_with_a_different_configuration_is_refused(tmp_path):
    S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(tmp_path), retrain=False,
             verbose=False)
    with pytest.raises(S.SearchError, match="already exists with epochs=1, not 2"):
        S.search(trials=1, epochs=2, out=str(tmp_path), verbose=False)


@pytest.mark.parametrize("settings, message", [
    (dict(num_validation=5000), "num_validation must be less than 1437 for digits (the 1797 digits less the 360"),
    (dict(num_training=1400), "num_training + num_validation must be at most 1437 for digits"),
    (dict(dataset="cifar10", data_dir="/nonexistent/cifar"), "CIFAR-10 directory not found: /nonexistent/cifar"),
])
@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_dataset_settings_leave_no_study_behind(tmp_path, settings, message, jobs):
    # The data is loaded before the study (or its journal and folders) is created: otherwise
    # the corrected command would meet the bad settings as the stored ones. With jobs=2 it
    # fails once, in this process, before any worker starts.
    out = tmp_path / "runs" / "search"
    with pytest.raises((S.SearchError, FileNotFoundError, ValueError), match=re.escape(message)):
        S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(out), jobs=jobs,
                 verbose=False, **settings)
    assert os.listdir(tmp_path) == []  # nor the folders the run created
    result = S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, out=str(out), retrain=False,
                      verbose=False)
    assert result.counts["complete"] == 1


def test_a_run_that_cannot_load_its_data_writes_nothing_to_a_shared_journal(tmp_path, monkeypatch):
    journal = tmp_path / "study.journal"
    S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, storage=str(journal), out=str(tmp_path),
             retrain=False, verbose=False)
    before = journal.read_bytes()

    def broken(*args, **kwargs):
        raise S.SearchError("this machine's copy of the data is broken")

    monkeypatch.setattr(S.runner, "load_dataset", broken)
    # A new study beside the existing one: the data is loaded before the study is created,
    # so the journal is untouched.
    with pytest.raises(S.SearchError, match="broken"):
        S.search(small_space(learning_rate="1e-3"), trials=1, epochs=1, storage=str(journal),
                 out=str(tmp_path / "x"), study_name="other", retrain=False, verbose=False)
    assert journal.read_bytes() == before
    # A joiner of the existing study loads the stored split after opening it; failing then, it
    # leaves the study and its trial as they were (Optuna logs only its refused create).
    with pytest.raises(S.SearchError, match="broken"):
        S.search(small_space(learning_rate="1e-3"), trials=2, epochs=1, storage=str(journal),
                 out=str(tmp_path / "x"), retrain=False, verbose=False)
    assert journal.read_bytes().startswith(before)
    assert [s.study_name for s in optuna.get_all_study_summaries(S.open_storage(str(journal)))] == ["nndl-search"]
    stored = optuna.load_study(study_name="nndl-search", storage=S.open_storage(str(journal))).user_attrs
    assert stored[S.CONFIG_ATTR]["trials"] == 1  # its --trials 2 was not applied either
    assert len(load_trials(str(journal))) == 1
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- searches

def test_small_search_on_digits_prunes_and_its_best_model_evaluates(tmp_path):
    out = tmp_path / "out"
    space = small_space(learning_rate="1e-5:1:log", reg="1e-6:1e-1:log", hidden_size="16,64",
                        use_batchnorm="false,true")
    result = S.search(space, trials=10, epochs=4, out=str(out), verbose=False, threads=1)
    assert result.complete
    assert result.counts["complete"] + result.counts["pruned"] == 10 and result.counts["fail"] == 0
    assert result.counts["pruned"] >= 1

    with open(result.csv_path) as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["number"]) for r in rows) == list(range(10))
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert any(int(r["epochs"]) < 4 for r in pruned)  # stopped before the last epoch
    for png in result.plots:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert {os.path.basename(p) for p in result.plots} == {"best_value.png", "params.png"}

    # The saved model is the best trial's configuration, and scores what the trial scored.
    model = load_model(result.model_path)
    data = get_digits_data(dtype=np.float32)
    val_acc = np.mean(model.predict(data["X_val"]) == data["y_val"])
    assert val_acc == pytest.approx(result.best_value, abs=1e-12)
    assert result.best_value == max(float(r["val_acc"]) for r in rows if r["state"] == "COMPLETE")
    assert model.metadata["search"]["params"] == result.best_params
    assert np.allclose(model.preprocessing["mean_image"], data["mean_image"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_trial"] == result.best_trial
    # Written with the run's final state, not the placeholders of an unfinished one.
    assert summary["complete"] is True and summary["seconds"] == pytest.approx(result.seconds, rel=0.5)
    assert summary["seconds"] > 0


def test_nndl_search_and_evaluate_through_the_nndl_command(tmp_path, capsys):
    cli = pytest.importorskip("nndl.cli")
    out = str(tmp_path / "out")
    code = cli.main(["search", "--trials", "3", "--epochs", "2", "--out", out, "-q",
                     *cli_args(*SMALL, "learning_rate=1e-3:1e-2:log", "reg=1e-5")])
    assert code == 0
    best = json.loads((tmp_path / "out" / "summary.json").read_text())["best_value"]
    capsys.readouterr()
    assert cli.main(["evaluate", os.path.join(out, "best_model.npz"), "--split", "val"]) == 0
    printed = capsys.readouterr().out
    correct, total = map(int, printed.split("validation accuracy: ")[1].split("(")[1].split(")")[0].split("/"))
    assert correct / total == pytest.approx(best, abs=1e-12)

    assert cli.main(["search", "-p", "lerning_rate=1e-3", "--out", out]) != 0
    err = capsys.readouterr().err
    assert "unknown hyperparameter 'lerning_rate'" in err and err.count("\n") == 1


def test_two_worker_processes_share_a_journal_and_resume(tmp_path):
    out = str(tmp_path / "out")
    args = ["--out", out, "--jobs", "2", "--sampler", "grid", "--epochs", "2", "--no-retrain",
            *cli_args(*SMALL, "learning_rate=1e-3,3e-3,1e-2", "reg=1e-4,1e-2")]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr
    trials = load_trials(os.path.join(out, "study.journal"))
    finished = [t for t in trials if t.state.name in FINISHED]
    placeholders = [t for t in trials if t.user_attrs.get("nndl_surplus")]
    assert len(finished) == 6 and len(trials) == 6 + len(placeholders)
    # Every grid point ran exactly once, each trial number once.
    assert sorted((t.params["learning_rate"], t.params["reg"]) for t in finished) == sorted(
        (lr, r) for lr in (1e-3, 3e-3, 1e-2) for r in (1e-4, 1e-2))
    assert len({t.number for t in trials}) == len(trials)
    assert all(t.user_attrs["nndl_worker"]["pid"] not in (os.getpid(),) for t in finished)

    again = run_cli(args)  # resuming a finished study runs nothing more
    assert again.returncode == 0 and "joined" in again.stdout
    assert len(load_trials(os.path.join(out, "study.journal"))) == len(trials)


def test_a_killed_worker_neither_stalls_the_study_nor_loses_trials(tmp_path):
    out = str(tmp_path / "out")
    journal = os.path.join(out, "study.journal")
    # Trials of about a second each, so that one can be caught mid-training.
    args = ["--out", out, "--jobs", "2", "--sampler", "grid", "--epochs", "20", "--pruner", "none",
            "--no-retrain", "--threads", "1",
            *cli_args("num_layers=2", "hidden_size=256", "dropout=0", "use_batchnorm=false",
                      "batch_size=16", "update_rule=adam", "lr_decay=1", "weight_scale=0.01",
                      "learning_rate=1e-3,2e-3", "reg=1e-4,1e-3")]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    parent = subprocess.Popen([sys.executable, "-m", "nndl.search", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            running = [t for t in load_trials(journal) if t.state.name == "RUNNING"]
        except Exception:  # noqa: BLE001 - the study may not exist yet
            continue
        for t in running:
            owner = t.user_attrs.get("nndl_worker")
            if owner and t.intermediate_values:  # mid-training
                os.kill(owner["pid"], signal.SIGKILL)
                victim = t
                break
    stdout, stderr = parent.communicate(timeout=120)
    assert victim is not None, "no trial was caught running"
    assert parent.returncode == 0, stderr
    assert f"(pid {victim.user_attrs['nndl_worker']['pid']}) exited with code -9" in stderr

    trials = {t.number: t for t in load_trials(journal)}
    killed = trials[victim.number]
    assert killed.state.name == "FAIL" and killed.user_attrs["nndl_note"] == "worker died"
    finished = [t for t in trials.values() if t.state.name in FINISHED]
    points = sorted((t.params["learning_rate"], t.params["reg"]) for t in finished)
    assert points == sorted((lr, r) for lr in (1e-3, 2e-3) for r in (1e-4, 1e-3))
    retry = [t for t in finished if t.user_attrs.get("nndl_retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].params == victim.params
    # The other worker's results were kept as they were.
    assert all(t.user_attrs["nndl_worker"]["pid"] != victim.user_attrs["nndl_worker"]["pid"] for t in finished)


# --------------------------------------------------------------------------- PostgreSQL

def _postgres_bindir():
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.isfile(os.path.join(candidate, "initdb")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _missing(reason):
    if os.environ.get("NNDL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"NNDL_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1, in a temporary directory."""
    bindir = _postgres_bindir()
    if bindir is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql package")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _missing("psycopg2 is not installed (pip install 'nndl[search]')")
    prefix = []
    base = tempfile.mkdtemp(prefix="nndl-pg-")
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as 'postgres'
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            _missing("running as root and there is no 'postgres' user to run the server as")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), free_port()
    subprocess.run(prefix + [f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "nndl", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(prefix + [f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", f"{base}/log",
                             "-w", "-t", "60", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://nndl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_join_one_study_on_postgresql(postgres_url, tmp_path):
    # As on two machines: the same command twice, each with its own output directory.
    args = ["--study", "shared", "--storage", postgres_url, "--trials", "8", "--epochs", "2",
            "--no-retrain", *cli_args(*SMALL, "learning_rate=1e-4:1e-1:log", "reg=1e-6:1e-1:log")]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "nndl.search", *args, "--out", str(tmp_path / f"m{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr
    joined = "".join(o[0] for o in outputs)
    assert joined.count("created in") == 1 and joined.count("joined in") == 1

    trials = load_trials(postgres_url, "shared")
    finished = [t for t in trials if t.state.name in FINISHED]
    assert len(finished) == 8
    assert all(t.state.name in FINISHED or t.user_attrs.get("nndl_surplus") for t in trials)
    assert len({t.number for t in trials}) == len(trials)
    pids = {t.user_attrs["nndl_worker"]["pid"] for t in finished}
    assert pids <= {p.pid for p in procs}
    # Both result tables hold the whole study, not just their own trials.
    for i in range(2):
        with open(tmp_path / f"m{i}" / "trials.csv") as f:
            assert len(list(csv.DictReader(f))) == 8


def test_shipped_seed_grid_file_is_the_seed_grid():
    space, settings = S.load_config(os.path.join(os.path.dirname(__file__), "..", "examples", "seed000_grid.toml"))
    assert settings["sampler"] == "grid"
    points = S._grid_points(S.make_space(space))
    lrs = sorted({p["learning_rate"] for p in points})
    np.testing.assert_allclose(lrs, np.sort(10.0 ** -np.arange(3.0, 4.1, 0.1)), rtol=1e-12)
    assert sorted({p["reg"] for p in points}) == pytest.approx(list(np.arange(0.1, 0.25, 0.05)))
    assert len(points) == 33


def test_search_plots_leave_pyplot_and_the_backend_alone(tmp_path):
    # As nndl.vis_utils: a search run from a notebook must not switch its matplotlib backend.
    code = (
        "import sys, matplotlib; matplotlib.use('svg')\n"
        "from nndl import search as S\n"
        f"r = S.search({small_space(learning_rate='1e-3')!r}, trials=2, epochs=1, out={str(tmp_path)!r}, "
        "verbose=False, retrain=False, threads=1)\n"
        "assert len(r.plots) == 2, r.plots\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["svg", "False"]
    for name in ("best_value.png", "params.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
