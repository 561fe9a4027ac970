"""Learning-rate schedules: the factor that multiplies the base learning rate at each iteration.

Contract
--------
``make_schedule(spec, num_iterations, iterations_per_epoch)`` turns a user's schedule (a name,
or a dict with ``name`` and options) into a ``Schedule``, checking it against the run it will
drive; ``schedule(t)`` is the factor for iteration ``t`` (0-based) of that run. A schedule is a
pure function of ``t``, so a run resumed at iteration ``t`` continues it exactly: the Solver
stores only the spec (``Schedule.spec``, JSON-ready) in its checkpoints.

=========  ============================================================================
name       factor at iteration t (T = num_iterations)
=========  ============================================================================
step       ``decay ** (t // iterations_per_epoch)``: the course's ``lr_decay`` per epoch
cosine     linear warmup from ``warmup_start`` to 1 over ``warmup_epochs``, then cosine
           annealing to ``final`` at T (``torch``'s LinearLR then CosineAnnealingLR)
onecycle   cosine rise from ``1 / div_factor`` to 1 over the first ``pct_start`` of the run,
           then cosine fall to ``1 / (div_factor * final_div_factor)`` at T - 1
           (``torch.optim.lr_scheduler.OneCycleLR`` without momentum cycling; a run
           too short to rise, ``pct_start * T <= 1``, starts at the peak)
=========  ============================================================================

Bad options are refused in one line naming them: an unknown name or key, a negative warmup, a
warmup as long as the run or longer, factors outside their range.
"""

import math
import numbers
from dataclasses import dataclass, field

__all__ = ["Schedule", "make_schedule", "SCHEDULES"]

SCHEDULES = {
    "step": {"decay": 0.9},
    "cosine": {"warmup_epochs": 0.0, "warmup_start": 0.1, "final": 0.0},
    "onecycle": {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4},
}
"""Schedule names and their options with defaults (the onecycle defaults are torch's)."""


@dataclass(frozen=True)
class Schedule:
    """A checked schedule for a run of ``num_iterations`` iterations; call it with ``t``."""

    name: str
    options: dict = field(hash=False)
    num_iterations: int
    iterations_per_epoch: int

    @property
    def spec(self):
        """The JSON-ready spec that rebuilds this schedule with ``make_schedule``."""
        return {"name": self.name, **self.options}

    def __call__(self, t):
        return getattr(self, f"_{self.name}")(t)

    def _step(self, t):
        return self.options["decay"] ** (t // self.iterations_per_epoch)

    def _cosine(self, t):
        o = self.options
        warmup = round(o["warmup_epochs"] * self.iterations_per_epoch)
        if t < warmup:
            return o["warmup_start"] + (1 - o["warmup_start"]) * t / warmup
        span = self.num_iterations - warmup
        return o["final"] + (1 - o["final"]) * (1 + math.cos(math.pi * (t - warmup) / span)) / 2

    def _onecycle(self, t):
        o = self.options
        start = 1 / o["div_factor"]
        end = start / o["final_div_factor"]
        peak = o["pct_start"] * self.num_iterations - 1  # torch's phase boundary
        if peak > 0 and t <= peak:
            return _cosine_between(start, 1.0, t / peak)
        # A run too short to rise (pct_start * iterations <= 1) starts at the peak.
        peak = max(peak, 0.0)
        span = self.num_iterations - 1 - peak
        return _cosine_between(1.0, end, (t - peak) / span) if span > 0 else 1.0


def _cosine_between(a, b, fraction):
    """From ``a`` at fraction 0 to ``b`` at 1 along half a cosine."""
    return b + (a - b) * (1 + math.cos(math.pi * fraction)) / 2


def _number(name, value, low, high, low_open=False, high_open=False):
    """``value`` as float if it lies in the interval, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"lr_schedule option {name} must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"lr_schedule option {name} must be in {interval}, got {value!r}")
    return float(value)


def _check_options(name, options, num_epochs):
    o = options
    if name == "step":
        o["decay"] = _number("decay", o["decay"], 0, 1, low_open=True)
    elif name == "cosine":
        o["warmup_epochs"] = _number("warmup_epochs", o["warmup_epochs"], 0, math.inf)
        if o["warmup_epochs"] >= num_epochs:
            raise ValueError(f"lr_schedule option warmup_epochs must be shorter than the run's "
                             f"{num_epochs} epochs, got {o['warmup_epochs']!r}")
        o["warmup_start"] = _number("warmup_start", o["warmup_start"], 0, 1)
        o["final"] = _number("final", o["final"], 0, 1)
    else:
        o["pct_start"] = _number("pct_start", o["pct_start"], 0, 1, low_open=True, high_open=True)
        o["div_factor"] = _number("div_factor", o["div_factor"], 1, math.inf)
        o["final_div_factor"] = _number("final_div_factor", o["final_div_factor"], 1, math.inf)


def make_schedule(spec, num_iterations, iterations_per_epoch):
    """Build and check a schedule for a run.

    Parameters
    ----------
    spec : str, dict or Schedule
        A name in ``SCHEDULES`` or ``{"name": ..., option: value, ...}``; a ``Schedule`` is
        rebuilt for this run from its spec.
    num_iterations : int
        Iterations in the whole run (every epoch, those already done included).
    iterations_per_epoch : int

    Returns
    -------
    Schedule
    """
    if isinstance(spec, Schedule):
        spec = spec.spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise TypeError(f"lr_schedule must be a name ({', '.join(SCHEDULES)}) or a dict with a "
                        f"'name', got {spec!r}")
    name = spec["name"]
    if name not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}; got {name!r}")
    unknown = sorted(set(spec) - {"name"} - set(SCHEDULES[name]))
    if unknown:
        raise ValueError(f"lr_schedule {name!r} has no option(s) {', '.join(unknown)}; its options are "
                         f"{', '.join(SCHEDULES[name])}")
    options = {**SCHEDULES[name], **{k: v for k, v in spec.items() if k != "name"}}
    _check_options(name, options, num_iterations / iterations_per_epoch)
    return Schedule(name, options, int(num_iterations), int(iterations_per_epoch))
