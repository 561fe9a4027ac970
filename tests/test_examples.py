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
        # The checks ran (a failing one exits nonzero above): layers, and the notebook's
        # gradient check of the fixed TwoLayerNet at both regularisation strengths.
        for name in ("affine_backward db error", "relu_backward dx error", "affine_relu dx error",
                     "TwoLayerNet scores difference", "Running numeric gradient check with reg = 0.7"):
            assert name in result.stdout, name
    else:
        assert "final training loss: 0.017149607938732093" in result.stdout  # CS231n's number
        for label in ("ECE C147", "CS231n"):
            for name in ("scores difference", "loss difference", "W1 max relative error",
                         "final training loss (CS231n's notebook: below 0.2)"):
                assert f"[{label}] {name}: " in result.stdout, (label, name)
