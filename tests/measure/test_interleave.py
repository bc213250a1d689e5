"""Interleaved timing: the order design is balanced, the number of rounds is fixed from the budget
and a pilot, warm-up rounds are dropped, thread counts are enforced, and a known ratio comes out."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from perfbench.measure.interleave import (
    InterleaveSettings,
    balanced_orders,
    interleave,
    plan_periods,
)
from perfbench.measure.timing import Timer


class Arm:
    """A step that counts its calls; `FakeTimer` reports `seconds` per call for it."""

    last: Arm | None = None  # the arm called most recently (the timer may see it wrapped)

    def __init__(self, seconds: float, sleep: float = 0.0, threads: int | None = None) -> None:
        self.seconds, self.sleep, self.threads, self.calls = seconds, sleep, threads, 0

    def __call__(self) -> None:
        self.calls += 1
        Arm.last = self
        if self.sleep:
            time.sleep(self.sleep)
        if self.threads is not None:
            torch.set_num_threads(self.threads)


class FakeTimer(Timer):
    """Runs the calls (so they are counted) and reports the arm's nominal time: the planning
    and bookkeeping are then tested without depending on this busy machine's clock."""

    name = "fake"

    def __call__(self, fn: Any, number: int) -> float:
        for _ in range(number):
            fn()
        assert Arm.last is not None
        return Arm.last.seconds


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@given(st.integers(1, 9))
def test_orders_are_a_williams_design_without_repeats(n: int) -> None:
    rows = balanced_orders(n)
    assert len(rows) == (2 * n if n % 2 and n > 1 else n)
    assert all(sorted(r) == list(range(n)) for r in rows)
    positions = Counter((arm, i) for r in rows for i, arm in enumerate(r))
    assert len(set(positions.values())) == 1 and len(positions) == n * n  # every arm everywhere
    after = Counter((r[i], r[i + 1]) for r in rows for i in range(n - 1))
    assert len(set(after.values())) <= 1 and len(after) == n * (
        n - 1
    )  # every arm after every other
    # across round boundaries (cyclically, period after period): no arm runs twice in a row,
    # except with two arms, where ABBA repeats each arm exactly once per period
    seq = [a for r in rows for a in r]
    repeats = Counter(seq[i] for i in range(len(seq)) if seq[i - 1] == seq[i])
    assert repeats == (
        Counter({0: 1, 1: 1}) if n == 2 else Counter({0: len(rows)}) if n == 1 else Counter()
    )


def test_three_arms_are_balanced_across_boundaries_too() -> None:
    """Eager, control, backend: every arm follows every other exactly 3 times per period, round
    boundaries included (an unchained order gave eager and control a warm repeat each, the
    backend none: a bias against the backend)."""
    seq = [a for r in balanced_orders(3) for a in r]
    pairs = Counter((seq[i - 1], seq[i]) for i in range(len(seq)))
    assert set(pairs.values()) == {3} and len(pairs) == 6


@given(st.floats(1e-4, 2.0), st.sampled_from([2, 4, 6]), st.floats(0.1, 10.0))
def test_planned_periods_fit_the_budget(period_s: float, period: int, budget: float) -> None:
    s = InterleaveSettings(budget_s=budget, max_rounds=1000)
    k = plan_periods(period_s, s, period)
    assert s.min_periods <= k <= max(s.min_periods, 1000 // period)
    assert k == s.min_periods or k * period_s <= budget  # over budget only by the minimum


def test_rounds_rotate_and_warmup_is_dropped() -> None:
    arms = {"eager": Arm(2e-3), "control": Arm(2e-3), "compile": Arm(1e-4)}
    seen: dict[str, int] = {}
    s = InterleaveSettings(budget_s=0.6, warmup_s=0.0, min_warmup=2)
    res = interleave(
        arms,
        timer=FakeTimer(),
        settings=s,
        before_timing=lambda: seen.update({n: a.calls for n, a in arms.items()}),
    )
    # 3 arms -> 6 orders per period; a round "takes" 2 + 2 + 16 x 0.1 ms, a period 33.6 ms
    assert res.period == 6 and res.rounds % 6 == 0
    assert res.rounds == plan_periods(6 * 5.6e-3, s, 6) * 6 == res.planned_rounds == 102
    assert res.numbers == {"eager": 1, "control": 1, "compile": 16}
    firsts = Counter(order[0] for order in res.orders)
    assert set(firsts.values()) == {res.rounds // 3}
    for name, arm in arms.items():
        assert len(res.times_s[name]) == res.rounds
        assert res.measurement(name).median == pytest.approx(arm.seconds)
        # everything before the timed rounds is warm-up, counted as such, and not in the samples
        assert seen[name] == res.warmup_calls[name]
        assert arm.calls == res.warmup_calls[name] + res.rounds * res.numbers[name]
    assert res.stop_reason == "planned" and res.timer == "fake"
    est = res.estimate("compile")
    assert est.speedup == pytest.approx(20.0) and est.blocks == 10


def test_a_deadline_stops_between_whole_units() -> None:
    """The fake timer claims 1 µs per call, so the plan is max_rounds; the real 2 ms sleeps blow
    the (tiny) deadline, and the run stops after whole periods, no fewer than min_periods."""
    arms = {"a": Arm(1e-6, sleep=2e-3), "b": Arm(1e-6, sleep=2e-3)}
    s = InterleaveSettings(
        budget_s=0.01, deadline_factor=1.0, max_rounds=500, warmup_s=0.0, min_sample_s=1e-6
    )
    res = interleave(arms, timer=FakeTimer(), settings=s)
    assert res.planned_rounds == 500
    assert res.stop_reason == "deadline"
    assert res.rounds % 2 == 0 and 10 <= res.rounds < 500  # 5 periods of AB, BA at least
    assert "deadline" in res.measurement("a").stop_reason


def test_thread_count_is_set_and_enforced() -> None:
    before = torch.get_num_threads()
    try:
        res = interleave(
            {"a": Arm(2e-3)},
            timer=FakeTimer(),
            threads=1,
            settings=InterleaveSettings(budget_s=0.05, warmup_s=0.0),
        )
        assert res.threads == 1 and torch.get_num_threads() == 1

        rogue = Arm(2e-3, threads=2)
        with pytest.raises(RuntimeError, match="arm 'rogue' changed torch's thread count"):
            interleave(
                {"ok": Arm(2e-3), "rogue": rogue},
                timer=FakeTimer(),
                threads=1,
                settings=InterleaveSettings(budget_s=0.05, warmup_s=0.0),
            )
    finally:
        torch.set_num_threads(before)


def test_no_arms_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one arm"):
        interleave({})


def test_a_known_ratio_on_the_real_clock() -> None:
    """Busy-wait steps of 0.4 and 0.6 ms, timed for real, interleaved: the slow one's speedup is
    2/3. On this shared 2-core machine (load average 5 while this was written) a neighbour
    preempts samples for whole milliseconds, and more often the longer ones, so the steps are
    kept short and the check is 2/3 within 25%: it still catches swapped arms (1.5), a mix-up
    (1.0) or a sample not divided by its calls."""
    res = interleave(
        {"fast": lambda: spin(4e-4), "slow": lambda: spin(6e-4)},
        settings=InterleaveSettings(budget_s=0.4, warmup_s=0.02, min_sample_s=1e-4),
    )
    est = res.estimate("slow", baseline="fast")
    assert est.speedup == pytest.approx(2 / 3, rel=0.25)
    assert res.timer == "perf_counter" and res.numbers == {"fast": 1, "slow": 1}
    assert math.isfinite(est.half_width())
