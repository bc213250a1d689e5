"""Timing statistics: exact on known samples, and right on a workload of known duration."""

from __future__ import annotations

import statistics
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfbench.measure.timing import (
    Measurement,
    TimingSettings,
    measure,
    median_ci,
    timer_overhead_s,
)


def test_statistics_on_known_samples():
    m = Measurement(times_s=[1.0, 2.0, 3.0, 4.0, 100.0], number=1, timer="perf_counter")
    assert m.median == 3.0
    assert m.quantile(0.25) == 2.0 and m.quantile(0.75) == 4.0
    assert m.iqr == 2.0
    assert m.noise == pytest.approx(2 / 3)
    assert "noisy" in m.noise_warning()
    tight = Measurement(times_s=[1.0, 1.01, 0.99, 1.0], number=1, timer="perf_counter")
    assert tight.noise_warning() is None


@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=200))
def test_median_ci_brackets_the_median(values):
    lo, hi = median_ci(values)
    assert lo <= statistics.median(values) <= hi
    assert min(values) <= lo and hi <= max(values)


def test_known_duration_is_measured():
    """A 5 ms sleep must read as 5 ms (sleep overshoots by scheduler slack, never undershoots)."""
    m = measure(lambda: time.sleep(0.005), settings=TimingSettings(budget_s=0.3, min_reps=5))
    assert 0.005 <= m.median < 0.0075
    assert m.number == 1  # 5 ms already exceeds the minimum sample length
    assert m.timer == "perf_counter"
    assert m.stop_reason in ("ci_tight", "budget")


def test_fast_calls_are_batched_per_sample_and_divided():
    calls = 0

    def fn():
        nonlocal calls
        calls += 1

    m = measure(fn, settings=TimingSettings(budget_s=0.05, min_sample_s=1e-3, max_reps=20))
    assert m.number > 1
    assert m.median < 1e-4  # per call, not per sample
    assert calls >= m.number * len(m.times_s)


def test_budget_stops_a_noisy_workload():
    durations = iter([0.001, 0.004] * 10_000)
    m = measure(
        lambda: time.sleep(next(durations)),
        settings=TimingSettings(
            budget_s=0.15, min_reps=3, target_ci=1e-9, warmup_s=0.0, min_warmup=1
        ),
    )
    assert m.stop_reason == "budget"
    assert 0.15 <= sum(m.times_s) * m.number < 0.5


def test_before_timing_runs_between_warmup_and_timing():
    events = []
    measure(
        lambda: events.append("call"),
        settings=TimingSettings(budget_s=0.01, warmup_s=0.0, min_warmup=3, max_reps=5),
        before_timing=lambda: events.append("reset"),
    )
    first_reset = events.index("reset")
    assert first_reset >= 3 and events.count("reset") == 1


def test_timer_overhead_is_small_and_positive():
    overhead = timer_overhead_s("cpu")
    assert 0 < overhead < 1e-4
