"""The pytest plugin: `perfbench_point` times a checked point inside benchmark.pedantic, and
`measure_ratio` returns the right ratio for callables of known duration."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from perfbench.axes import AxisError
from perfbench.backends import BACKENDS, Backend, Prepared
from perfbench.correctness import MismatchError
from perfbench.pytest_plugin import measure_ratio, prepare_point

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


def test_measure_ratio_logic_with_a_fake_clock() -> None:
    """Deterministic: A costs 3 units, B 2, and every 5th sample of either is hit by a 10x
    hiccup. The median of pair ratios ignores the hiccups; the mean would not."""
    calls = {"n": 0}

    def a() -> None:
        return None

    def b() -> None:
        return None

    def fake_timer(fn, number):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        base = 3e-3 if fn is a else 2e-3
        return base * (10 if calls["n"] % 5 == 0 else 1)

    r = measure_ratio(a, b, budget_s=0.0, min_pairs=40, label="a/b", timer=fake_timer)
    assert r.pairs == 40
    assert r.ratio == pytest.approx(1.5)
    assert r.median_a_s == pytest.approx(3e-3) and r.median_b_s == pytest.approx(2e-3)
    r.assert_at_most(1.5)
    with pytest.raises(AssertionError, match=re.escape("a/b: ratio 1.500 > allowed 1.400")):
        r.assert_at_most(1.4)


def test_measure_ratio_real_clock() -> None:
    # fixed CPU work: 2 ms against 1 ms. Loose bound on purpose: at load average 5.8 on these
    # 2 cores (other jobs), preemption pushed single runs' ratios to 2.9 and 5.8.
    r = measure_ratio(_busy(2e-3), _busy(1e-3), budget_s=0.3, min_pairs=20, label="2ms/1ms")
    assert r.ratio > 1.2 and r.noise >= 0


def test_ratio_fixture_on_two_points(perfbench_ratio, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    r = perfbench_ratio(tiny, {"batch_size": 64}, {"batch_size": 1}, budget_s=0.3, backend="eager")
    assert r.ratio > 0 and r.median_a_s > 0 and r.median_b_s > 0
    assert "eager_bs64" in r.label and "eager_bs1" in r.label
