"""The `perfbench_ratio` gate as a pytest user sees it: every measured ratio is listed at the end
of the session (passing or not), and `--perfbench-max-half-width` fails a gate too noisy to see
the slowdown it guards. A deterministic timer keeps these fast and exact."""

from __future__ import annotations

import math

import pytest

from perfbench.measure.ab_ratio import Ratio

pytest_plugins = ["pytester"]

GATE_TESTS = """
import random

def _a():
    return None

def _b():
    return None

def _timer(jitter):
    rng = random.Random(0)
    def timer(fn, number):
        base = 3e-3 if fn is _a else 2e-3  # A is 1.5x B
        return base * (1 + rng.uniform(-jitter, jitter))
    return timer

def test_quiet_gate(perfbench_ratio):
    r = perfbench_ratio.measure(_a, _b, budget_s=0.0, min_pairs=40, label="quiet a/b",
                                timer=_timer(0.01))
    r.assert_at_most(1.6)

def test_noisy_gate(perfbench_ratio):
    r = perfbench_ratio.measure(_a, _b, budget_s=0.0, min_pairs=40, label="noisy a/b",
                                timer=_timer(0.9))
    r.assert_at_most(3.0)
"""


def test_passing_gates_print_their_ratio_and_interval(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ratio_gate_probe=GATE_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "perfbench ratios: 2 measured" in out
    quiet = next(line for line in out.splitlines() if "quiet a/b" in line)
    assert quiet.startswith("test_ratio_gate_probe.py::test_quiet_gate: quiet a/b: A/B 1.5")
    assert "(95% CI 1.50" in quiet and "40 rounds in 10 blocks" in quiet
    assert quiet.endswith("limit 1.600: passed")


def test_max_half_width_option_fails_a_noisy_gate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ratio_gate_probe=GATE_TESTS)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--perfbench-max-half-width=0.05"
    )
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "noisy a/b: too noisy to gate" in out and "wider than the ±5% this gate allows" in out
    assert "limit 3.000: too noisy" in out  # the summary lists the failed gate too


def test_max_half_width_from_ini_and_bad_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ratio_gate_probe=GATE_TESTS)
    pytester.makeini("[pytest]\nperfbench_max_half_width = 0.05\n")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    pytester.makeini("[pytest]\nperfbench_max_half_width = ten percent\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert "perfbench_max_half_width must be a number such as 0.10, got 'ten percent'" in (
        result.stdout.str() + result.stderr.str()
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--perfbench-max-half-width=0")
    assert "--perfbench-max-half-width must be > 0" in result.stdout.str() + result.stderr.str()


def test_assert_at_most_with_half_width_guard() -> None:
    """The guard fails before the limit is read; NaN half-widths (no interval) fail it too."""
    r = Ratio("x", 1.0, 0.0, 1.0, 1.0, 10, ci_low=1 / 1.118, ci_high=1.118)  # ±11.8%
    with pytest.raises(AssertionError, match=r"too noisy to gate.*±11.8%.*±10%"):
        r.assert_at_most(2.0, max_half_width=0.10)
    assert r.gate == "too noisy"
    r.assert_at_most(2.0, max_half_width=0.12)
    assert r.gate == "passed" and r.summary().endswith("max ±12%; limit 2.000: passed")
    blank = Ratio("y", math.nan, 0.0, 1.0, 1.0, 0)
    with pytest.raises(AssertionError, match="too noisy"):
        blank.assert_at_most(2.0, max_half_width=0.10)
