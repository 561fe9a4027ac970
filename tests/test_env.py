"""nndl._env: the one table of environment switches, complete and documented."""

import os
import re

import pytest

from conftest import REPO
from nndl import _env
from nndl.data_utils import default_data_dir


def test_every_switch_the_sources_name_is_in_the_table_and_read_only_through_it():
    named = set()
    for path in (REPO / "src" / "nndl").rglob("*.py"):
        text = path.read_text()
        named |= set(re.findall(r"NNDL_[A-Z_]+", text))
        if path.name != "_env.py":
            assert not re.search(r"(environ\.get|getenv)\(\s*[\"']NNDL_", text), f"{path} reads an NNDL_ variable itself"
    assert named == set(_env.SWITCHES)


def test_every_switch_is_documented():
    install = (REPO / "docs" / "install.md").read_text()
    for name in _env.SWITCHES:
        assert f"`{name}`" in install


def test_get_returns_the_value_or_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("NNDL_DATA_DIR", raising=False)
    assert default_data_dir() == os.path.join(os.path.expanduser("~"), ".cache", "nndl")
    monkeypatch.setenv("NNDL_DATA_DIR", "")  # empty counts as unset
    assert _env.get("NNDL_DATA_DIR") == os.path.join(os.path.expanduser("~"), ".cache", "nndl")
    monkeypatch.setenv("NNDL_DATA_DIR", str(tmp_path))
    assert default_data_dir() == str(tmp_path)
    with pytest.raises(KeyError):
        _env.get("NNDL_NOT_A_SWITCH")
