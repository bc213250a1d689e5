"""The pytest plugin: `perfbench_point` times a checked point inside benchmark.pedantic, and
`measure_ratio` times interleaved (perfbench.measure.interleave) and gates on the interval
(perfbench.stats.speedup), with the right ratio for callables of known duration."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from perfbench.backends import BACKENDS, Backend, Prepared
from perfbench.measure.correctness import MismatchError
from perfbench.pytest_plugin import Ratio, measure_ratio, prepare_point
from perfbench.results.axes import AxisError

TINY = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

def make_batch(batch_size):
    return torch.randn(batch_size, 16)
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(TINY, encoding="utf-8")
    return path


def test_point_runs_inside_pedantic(perfbench_point, benchmark, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    prepared = perfbench_point(benchmark, tiny, rounds=7, backend="eager", batch_size=8)
    assert prepared.label.startswith("eager_bs8")
    assert benchmark.extra_info["rel_err"] == 0.0
    if benchmark.stats is not None:  # None under --benchmark-disable
        assert benchmark.stats.stats.rounds == 7
        assert benchmark.stats.stats.median > 0


def test_point_that_makes_no_sense_here_is_skipped(tiny: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="fp16"):
        prepare_point(tiny, backend="eager", amp="fp16", device="cpu")


def test_axis_typo_names_valid_values(tiny: Path) -> None:
    with pytest.raises(AxisError, match="eager"):
        prepare_point(tiny, backend="eagr")


def test_backend_teardown_runs_on_close_and_on_failure(tiny: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The plugin builds through the sweep's build_workload and cleans up through the backend."""
    torn: list[str] = []

    def spy(name: str, factor: float) -> Backend:
        def prepare(model, point, batch, scenario) -> Prepared:  # type: ignore[no-untyped-def]
            return Prepared(model=lambda x: model(x) * factor)

        return Backend(name, "test only", prepare=prepare, teardown=lambda: torn.append(name))

    monkeypatch.setitem(BACKENDS, "same", spy("same", 1.0))
    monkeypatch.setitem(BACKENDS, "wrong", spy("wrong", 1.5))
    prepared = prepare_point(tiny, backend="same", batch_size=4)
    assert prepared.info["rel_err"] == 0.0 and torn == []
    prepared.close()
    assert torn == ["same"]
    with pytest.raises(MismatchError, match="exceeds tolerance"):
        prepare_point(tiny, backend="wrong", batch_size=4)
    assert torn == ["same", "wrong"]


def _busy(seconds: float):  # type: ignore[no-untyped-def]
    def run() -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    return run


class FakeClock:
    """Deterministic timer: A costs 3 units, B 2, each sample off by a fixed pseudo-random ±2%,
    and every 7th sample hit by a 10x hiccup (a preemption). Records the order of the samples."""

    def __init__(self, a, b) -> None:  # type: ignore[no-untyped-def]
        self.a, self.b, self.n, self.order = a, b, 0, []
        self.rng = random.Random(0)

    def __call__(self, fn, number):  # type: ignore[no-untyped-def]
        self.n += 1
        self.order.append("A" if fn is self.a else "B")
        base = 3e-3 if fn is self.a else 2e-3
        return base * (1 + self.rng.uniform(-0.02, 0.02)) * (10 if self.n % 7 == 0 else 1)


def _noop() -> None:
    return None


def _other() -> None:
    return None


def test_measure_ratio_with_a_fake_clock() -> None:
    """The rounds come from perfbench.measure.interleave (ABBA, not a loop of its own), the hiccups are
    winsorized away, and the interval covers the true ratio 1.5 and is narrow."""
    clock = FakeClock(_noop, _other)
    r = measure_ratio(_noop, _other, budget_s=0.0, min_pairs=40, label="a/b", timer=clock)
    assert r.pairs == 40 and r.blocks == 10
    assert r.ci_low <= 1.5 <= r.ci_high and r.half_width < 0.03
    timed = clock.order[-80:]  # the timed rounds: A B | B A | A B | ...
    assert timed[:8] == ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert r.median_a_s == pytest.approx(3e-3, rel=0.03)
    assert r.median_b_s == pytest.approx(2e-3, rel=0.03)
    r.assert_at_most(1.5)
    with pytest.raises(AssertionError, match=re.escape("a/b: A/B 1.5")) as err:
        r.assert_at_most(1.4)
    assert "above the allowed 1.400 with 95% confidence" in str(err.value)


@given(
    ratio=st.floats(0.5, 2.0),
    half=st.floats(0.0, 0.5),
    limit=st.floats(0.5, 2.5),
)
def test_assert_at_most_fails_only_when_the_whole_interval_is_above(
    ratio: float, half: float, limit: float
) -> None:
    """ "At most `limit` with 95% confidence": a ratio above the limit whose interval reaches
    below it passes (the measurement cannot show that slowdown); a whole interval above fails."""
    r = Ratio("x", ratio, 0.0, 1.0, 1.0, 10, ci_low=ratio / (1 + half), ci_high=ratio * (1 + half))
    if r.ci_low > limit:
        with pytest.raises(AssertionError, match="with 95% confidence"):
            r.assert_at_most(limit)
    else:
        r.assert_at_most(limit)


def test_a_side_that_changes_the_thread_count_is_refused() -> None:
    """The rounds run at the point's threads; a side that changes them would make the ratio
    measure threads, so it raises naming the side (perfbench.measure.interleave's guard)."""
    before = torch.get_num_threads()

    def changes_threads() -> None:
        torch.set_num_threads(2)

    try:
        with pytest.raises(RuntimeError, match="arm 'B' changed torch's thread count from 1"):
            measure_ratio(_noop, changes_threads, budget_s=0.0, threads=1)
    finally:
        torch.set_num_threads(before)


def test_measure_ratio_real_clock() -> None:
    # fixed CPU work: 2 ms against 1 ms. Loose bound on purpose: at load average 5.8 on these
    # 2 cores (other jobs), preemption pushed single runs' ratios to 2.9 and 5.8.
    r = measure_ratio(_busy(2e-3), _busy(1e-3), budget_s=0.3, min_pairs=20, label="2ms/1ms")
    assert r.ratio > 1.2 and r.noise >= 0 and r.ci_low <= r.ratio <= r.ci_high


def test_ratio_fixture_on_two_points(perfbench_ratio, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    r = perfbench_ratio(tiny, {"batch_size": 64}, {"batch_size": 1}, budget_s=0.3, backend="eager")
    assert r.ratio > 0 and r.median_a_s > 0 and r.median_b_s > 0
    assert 0 < r.ci_low <= r.ratio <= r.ci_high
    assert "eager_bs64" in r.label and "eager_bs1" in r.label
