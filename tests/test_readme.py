"""The README's quick start runs as written."""

import re

from conftest import REPO


def test_quick_start_runs_and_learns(capsys):
    text = (REPO / "README.md").read_text()
    code = re.search(r"## Quick start\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace = {}
    exec(compile(code, "README quick start", "exec"), namespace)
    assert namespace["solver"].best_val_acc > 0.8
    assert "best val acc" in capsys.readouterr().out
