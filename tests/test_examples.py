"""The example scripts (the seed notebooks' flows) run end to end on real CIFAR-10 images."""

import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("script", ["fc_nets.py", "two_layer_net.py"])
def test_example_runs_quick(script, cifar_subset_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), "--data-dir", str(cifar_subset_dir),
         "--out", str(tmp_path), "--quick"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs, "the example wrote no plots"
    if script == "fc_nets.py":
        assert "overfit: training accuracy after the last epoch 1.00" in result.stdout
        # The FullyConnectedNet cell reproduces the CS231n notebook's seed-231 initial losses.
        assert "Initial loss: 2.3004790897684924" in result.stdout
        assert "Initial loss: 7.052114776533016" in result.stdout
    else:
        assert "final training loss: 0.017149607938732093" in result.stdout  # CS231n's number
