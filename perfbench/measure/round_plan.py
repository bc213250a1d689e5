"""How many interleaved rounds to time, and at how many calls per sample, so that `--budget` bounds
the time a group takes and the planned time printed is the real one.

`interleave.plan_periods` fits whole periods of the order design into the budget, but never fewer
than `min_periods` (five blocks for the speedup's interval). With slow steps the minimum alone can
be many times the budget: three arms have six rounds a period, so five periods of a 0.5 s step are
45 s against a 3 s budget, and a user who was promised "about 3 s" waits a minute in silence. So
after the pilot period, where the minimum would exceed the budget by more than `OVER_BUDGET`:

1. fewer calls per sample first (down to a sample of `min_sample_s / 10`: the timer's own cost
   stays far below 1% of a sample), which costs nothing in blocks;
2. then fewer periods, as many as fit in `OVER_BUDGET` times the budget, down to
   `floor_periods` (three: the fewest blocks that still give an interval, with df = 2, so a
   wider one);
3. the plan says so (`note`), up front, and what to raise instead.

The plan depends only on the pilot's times, never on the ratios (no optional stopping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

OVER_BUDGET = 2.0  # the minimum may exceed the budget by this factor before the plan shrinks


class PlanSettings(Protocol):
    """What the plan reads of `interleave.InterleaveSettings`."""

    budget_s: float
    min_periods: int
    floor_periods: int
    max_rounds: int
    min_sample_s: float


@dataclass(frozen=True)
class RoundPlan:
    """The timed rounds of one group, fixed before the first timed round."""

    periods: int
    period: int  # rounds per period of the order design
    numbers: dict[str, int]  # calls per sample, per arm
    planned_s: float  # expected seconds of timed work, all arms
    budget_s: float
    note: str = ""  # why the plan departs from the budget ("" when it fits)

    @property
    def rounds(self) -> int:
        return self.periods * self.period

    def announce(self) -> str:
        """The progress line: what will be timed and for about how long."""
        arms = len(self.numbers)
        line = (
            f"timing {arms} arms: {self.rounds} rounds, about {self.planned_s:.3g} s of timed work"
        )
        return f"{line} ({self.note})" if self.note else line


def periods_in_budget(period_s: float, settings: PlanSettings, period: int) -> int:
    """Timed periods: as many as fit into the budget, at least min_periods, at most max_rounds."""
    cap = max(settings.min_periods, settings.max_rounds // period)
    if period_s <= 0 or not math.isfinite(period_s):
        return settings.min_periods
    return min(max(int(settings.budget_s / period_s), settings.min_periods), cap)


def _period_s(per_call: dict[str, float], numbers: dict[str, int], period: int) -> float:
    return sum(per_call[n] * numbers[n] for n in numbers) * period


def plan_rounds(
    per_call: dict[str, float], numbers: dict[str, int], settings: PlanSettings, period: int
) -> RoundPlan:
    """The plan from the pilot's seconds per call of each arm and the calibrated calls per sample
    (module docstring)."""
    budget = settings.budget_s
    period_s = _period_s(per_call, numbers, period)
    periods = periods_in_budget(period_s, settings, period)
    minimum_s = settings.min_periods * period_s
    if budget <= 0 or minimum_s <= OVER_BUDGET * budget or not math.isfinite(period_s):
        return RoundPlan(periods, period, dict(numbers), periods * period_s, budget)
    # 1. fewer calls per sample, no sample shorter than a tenth of min_sample_s
    factor = budget / minimum_s
    floor_s = settings.min_sample_s / 10
    fewer = {
        n: max(1, math.ceil(numbers[n] * factor), min(numbers[n], _calls(floor_s, per_call[n])))
        for n in numbers
    }
    period_s = _period_s(per_call, fewer, period)
    # 2. fewer periods, down to the floor
    floor = min(settings.floor_periods, settings.min_periods)
    periods = settings.min_periods
    if periods * period_s > OVER_BUDGET * budget:
        periods = max(floor, min(periods, int(OVER_BUDGET * budget / period_s)))
    planned_s = periods * period_s
    changes = []
    if fewer != numbers:
        changes.append("fewer calls per sample")
    if periods < settings.min_periods:
        changes.append(f"{periods} periods instead of {settings.min_periods} (a wider interval)")
    note = (
        f"the minimum of {settings.min_periods} periods ({settings.min_periods * period} rounds) "
        f"would take about {minimum_s:.3g} s, {minimum_s / budget:.0f}x the budget of "
        f"{budget:.3g} s: " + (" and ".join(changes) or "nothing left to cut")
    )
    if planned_s > OVER_BUDGET * budget:
        note += (
            f"; still about {planned_s / budget:.0f}x the budget: raise --budget or time fewer arms"
        )
    return RoundPlan(periods, period, fewer, planned_s, budget, note)


def _calls(seconds: float, per_call_s: float) -> int:
    """Calls that last at least `seconds` (1 for a step slower than that)."""
    if per_call_s <= 0 or not math.isfinite(per_call_s):
        return 1
    return max(1, math.ceil(seconds / per_call_s - 1e-9))  # 1e-4 / 1e-6 is 100.00000000000001
