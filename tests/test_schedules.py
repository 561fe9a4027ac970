"""Tests for nndl.schedules: hand-worked factors, equality with PyTorch's schedulers, bad input."""

import math

import numpy as np
import pytest

from nndl.schedules import make_schedule


def test_step_is_lr_decay_per_epoch():
    s = make_schedule({"name": "step", "decay": 0.5}, num_iterations=12, iterations_per_epoch=4)
    assert [s(t) for t in range(12)] == [1.0] * 4 + [0.5] * 4 + [0.25] * 4


def test_cosine_hand_worked():
    # 2 epochs of warmup from 0.1, then a cosine from 1 to 0 over the remaining 8 iterations.
    s = make_schedule({"name": "cosine", "warmup_epochs": 2}, num_iterations=12, iterations_per_epoch=2)
    assert s(0) == pytest.approx(0.1) and s(2) == pytest.approx(0.55)
    assert s(4) == pytest.approx(1.0) and s(8) == pytest.approx(0.5) and s(11) == pytest.approx(
        (1 + math.cos(math.pi * 7 / 8)) / 2)


def _torch_factors(make, base_lr, steps):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make(torch, opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"] / base_lr)
        opt.step()
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("total, pct", [(100, 0.3), (37, 0.25), (1000, 0.1)])
def test_onecycle_equals_torch(total, pct):
    ours = make_schedule({"name": "onecycle", "pct_start": pct}, total, 10)
    ref = _torch_factors(lambda torch, opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=total, pct_start=pct, cycle_momentum=False), 0.1, total)
    # torch starts the optimizer at max_lr / div_factor; its factor relative to max_lr is ours.
    np.testing.assert_allclose([ours(t) for t in range(total)], ref, rtol=1e-12, atol=1e-15)


def test_cosine_equals_torch_linear_warmup_then_cosine():
    ipe, epochs, warm = 5, 8, 2
    total, warmup = ipe * epochs, ipe * warm
    ours = make_schedule({"name": "cosine", "warmup_epochs": warm, "warmup_start": 0.2, "final": 0.01},
                         total, ipe)
    ref_warm = _torch_factors(lambda torch, opt: torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=0.2, end_factor=1.0, total_iters=warmup), 0.5, warmup)
    ref_cos = _torch_factors(lambda torch, opt: torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=total - warmup, eta_min=0.5 * 0.01), 0.5, total - warmup)
    np.testing.assert_allclose([ours(t) for t in range(total)], np.concatenate([ref_warm, ref_cos]),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec, message", [
    ({"name": "cosine", "warmup_epochs": -1}, r"warmup_epochs must be in \[0, inf\], got -1"),
    ({"name": "cosine", "warmup_epochs": 10}, "warmup_epochs must be shorter than the run's 10.0 epochs, got 10"),
    ({"name": "cosine", "final": 2}, r"final must be in \[0, 1\], got 2"),
    ({"name": "onecycle", "pct_start": 1.0}, r"pct_start must be in \(0, 1\), got 1.0"),
    ({"name": "step", "decay": 0}, r"decay must be in \(0, 1\], got 0"),
    ({"name": "cosine", "warmup": 1}, "lr_schedule 'cosine' has no option.s. warmup; its options are"),
    ("linear", "lr_schedule must be one of step, cosine, onecycle; got 'linear'"),
    ({"warmup_epochs": 1}, "lr_schedule must be a name"),
])
def test_bad_schedules_are_named(spec, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_schedule(spec, num_iterations=100, iterations_per_epoch=10)


def test_spec_round_trips():
    s = make_schedule("onecycle", 50, 5)
    assert s.spec == {"name": "onecycle", "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4}
    again = make_schedule(s.spec, 50, 5)
    assert [again(t) for t in range(50)] == [s(t) for t in range(50)]


@pytest.mark.parametrize("total", [1, 2, 3])
def test_onecycle_on_runs_too_short_to_rise_starts_at_the_peak(total):
    s = make_schedule("onecycle", total, 1)
    factors = [s(t) for t in range(total)]
    assert factors[0] == 1.0 and all(0 < f <= 1 for f in factors)
    assert factors == sorted(factors, reverse=True)
