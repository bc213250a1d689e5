"""The interleaved A/B ratio: time(A) / time(B) of two callables timed side by side in one
process, with a confidence interval from the same code as the sweep's verdicts
(`perfbench.measure.interleave`, `perfbench.stats.speedup`). The `perfbench_ratio` pytest gate and
`perfbench.measure_ratio` both use it; no pytest here, so the Python API does not import it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ratio:
    """time(A) / time(B) from interleaved rounds, with its confidence interval.

    `ratio` is exp(mean of the per-round log ratios) and [`ci_low`, `ci_high`] its interval at
    `level`, both from `perfbench.stats.speedup` (the estimator the sweep's verdicts use: winsorized log
    ratios, averaged per period of the ABBA order, batch means over `blocks` blocks, t-interval).
    `noise` is the IQR/median of the per-round ratios, for reading only."""

    label: str
    ratio: float
    noise: float
    median_a_s: float
    median_b_s: float
    pairs: int  # timed rounds (one sample of each side per round)
    pair_ratios: list[float] = field(repr=False, default_factory=list)
    ci_low: float = math.nan
    ci_high: float = math.nan
    level: float = 0.95
    blocks: int = 0
    limit: float | None = None  # the gate's limit once `assert_at_most` checked it
    max_half_width: float | None = None  # its noise guard (the fixture's option sets it)
    gate: str = ""  # "passed", "too noisy" or "above the limit" once checked

    @property
    def half_width(self) -> float:
        """Relative half-width of the interval on the log scale: 0.02 reads "±2%"."""
        return math.expm1(math.log(self.ci_high / self.ci_low) / 2.0)

    def assert_at_most(self, limit: float, max_half_width: float | None = None) -> None:
        """Fail when A is slower than `limit` × B with confidence `level` (95%): only when the
        whole interval lies above `limit`. An interval that reaches below it passes: the
        measurement could not show a slowdown that large. With `max_half_width` (0.10 = ±10%;
        default: the one this Ratio carries, from `--perfbench-max-half-width`), also fail an
        interval wider than that: a gate that noisy could not see the slowdown it
        guards, and says so instead of passing. Every number is in the message."""
        self.limit = limit
        if max_half_width is not None:
            self.max_half_width = max_half_width
        widest = self.max_half_width
        if widest is not None and not self.half_width <= widest:
            self.gate = "too noisy"
            raise AssertionError(
                f"{self.label}: too noisy to gate: the {self.level:.0%} interval "
                f"{self.ci_low:.3f}-{self.ci_high:.3f} (±{self.half_width:.1%}) is wider than the "
                f"±{widest:.0%} this gate allows; run it on a quieter machine "
                f"({self.pairs} rounds, per-round ratio IQR/median {self.noise:.1%})"
            )
        if self.ci_low > limit:
            self.gate = "above the limit"
            raise AssertionError(
                f"{self.label}: A/B {self.ratio:.3f} ({self.level:.0%} CI "
                f"{self.ci_low:.3f}-{self.ci_high:.3f}) is above the allowed {limit:.3f} with "
                f"{self.level:.0%} confidence (A {self.median_a_s * 1e3:.3f} ms, B "
                f"{self.median_b_s * 1e3:.3f} ms, {self.pairs} rounds in {self.blocks} blocks, "
                f"per-round ratio IQR/median {self.noise:.1%})"
            )
        self.gate = "passed"

    def summary(self) -> str:
        """One line: the ratio, its interval and half-width, rounds, and the gate if checked."""
        text = (
            f"{self.label}: A/B {self.ratio:.3f} ({self.level:.0%} CI {self.ci_low:.3f}-"
            f"{self.ci_high:.3f}, ±{self.half_width:.1%}), {self.pairs} rounds in {self.blocks} "
            f"blocks, A {self.median_a_s * 1e3:.3f} ms, B {self.median_b_s * 1e3:.3f} ms"
        )
        if self.max_half_width is not None:
            text += f"; max ±{self.max_half_width:.0%}"
        if self.limit is not None:
            text += f"; limit {self.limit:.3f}: {self.gate}"
        return text


class _CallableTimer:
    """A plain `timer(fn, number) -> s per call` as the interleaver's Timer (it needs a name)."""

    name = "custom"

    def __init__(self, fn: Callable[[Callable[[], Any], int], float]) -> None:
        self.fn = fn

    def __call__(self, fn: Callable[[], Any], number: int) -> float:
        return self.fn(fn, number)


def measure_ratio(
    fn_a: Callable[[], Any],
    fn_b: Callable[[], Any],
    device: str = "cpu",
    budget_s: float = 3.0,
    min_pairs: int = 10,
    label: str = "A/B",
    timer: Callable[[Callable[[], Any], int], float] | None = None,
    level: float = 0.95,
    threads: int | None = None,
) -> Ratio:
    """Time two callables interleaved with `perfbench.measure.interleave` and estimate A/B with
    `perfbench.stats.speedup`: the same code, and the same interval, as the sweep's verdicts.

    Interleaving is the point: frequency changes, a neighbour's load or thermal drift hit both
    sides of a round alike and cancel in the round's ratio, where two back-to-back measurements
    would each see a different machine. Each side is warmed up and calibrated (a sample lasts
    >= 1 ms, so timer resolution does not enter), then the rounds run in ABBA order (the side
    that runs first after a switch pays for cold caches; over a period both do equally), one
    warm-up period dropped, as many whole periods as fit in `budget_s` (at least `min_pairs`
    rounds and five periods), fixed before the first timed round (no optional stopping).
    `timer(fn, number) -> s per call` defaults to the harness's timer for `device` (CUDA events
    on CUDA). Preempted samples on an oversubscribed machine are winsorized, and the batch-means
    interval carries the rest: a noisy machine gives a wide interval, not a false result.
    `threads`: torch's thread count for the rounds, checked after every sample (a side that
    changes it raises: the ratio would measure threads); None leaves it alone.
    """
    from perfbench.measure.interleave import InterleaveSettings, interleave

    periods = max(InterleaveSettings.min_periods, math.ceil(min_pairs / 2))
    # a gate asked for min_pairs: never fewer periods, whatever the budget (round_plan)
    settings = InterleaveSettings(budget_s=budget_s, min_periods=periods, floor_periods=periods)
    inter = interleave(
        {"A": fn_a, "B": fn_b},
        device=device,
        threads=threads,
        settings=settings,
        timer=_CallableTimer(timer) if timer is not None else None,
    )
    est = inter.estimate("A", baseline="B")  # speedup of A over B = t_B / t_A
    low, high = est.interval(level)
    a_times, b_times = inter.times_s["A"], inter.times_s["B"]
    ratios = sorted(x / y for x, y in zip(a_times, b_times, strict=True))
    med = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return Ratio(
        label=label,
        ratio=1.0 / est.speedup,
        noise=(q3 - q1) / med if med > 0 else math.inf,
        median_a_s=statistics.median(a_times),
        median_b_s=statistics.median(b_times),
        pairs=len(ratios),
        pair_ratios=ratios,
        ci_low=1.0 / high,
        ci_high=1.0 / low,
        level=level,
        blocks=est.blocks,
    )
