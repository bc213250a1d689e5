"""Verdict rules: classification boundaries, `no change`, the A/A control, Holm across a sweep, and
the formatted lines the terminal and report show."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfbench.stats.speedup import PairedEstimate, holm_levels
from perfbench.stats.verdict import (
    ComparisonInput,
    Verdict,
    check_control,
    classify,
    format_comparison,
    format_control,
    judge,
)

UP, DOWN = 1.03, 1 / 1.03


def estimate(speedup: float, rel_se: float = 0.005, blocks: int = 10) -> PairedEstimate:
    return PairedEstimate(log_speedup=math.log(speedup), se=rel_se, blocks=blocks, rounds=30)


@given(st.floats(0.2, 5.0), st.floats(0.0, 1.0))
def test_classification_follows_the_interval(low: float, width: float) -> None:
    high = low + width
    v = classify(low, high)
    if v is Verdict.FASTER:
        assert low > UP
    elif v is Verdict.SLOWER:
        assert high < DOWN
    elif v is Verdict.SAME:
        assert DOWN <= low and high <= UP
    else:
        assert v is Verdict.INCONCLUSIVE
        assert low <= UP and high >= DOWN and (low < DOWN or high > UP)


def test_classification_at_the_boundaries() -> None:
    assert classify(1.0301, 1.2) is Verdict.FASTER
    assert classify(1.03, 1.2) is Verdict.INCONCLUSIVE  # touching 1 + δ is not above it
    assert classify(0.5, 0.97) is Verdict.SLOWER  # 0.97 < 1/1.03 = 0.9709
    assert classify(DOWN, UP) is Verdict.SAME  # the margin itself counts as inside
    assert classify(0.99, 1.031) is Verdict.INCONCLUSIVE
    assert classify(1.0, 1.0, delta=0.0) is Verdict.SAME
    assert classify(1.06, 1.2, delta=0.05) is Verdict.FASTER
    assert classify(1.04, 1.2, delta=0.05) is Verdict.INCONCLUSIVE
    with pytest.raises(ValueError, match="out of order"):
        classify(1.2, 1.1)


@given(st.floats(0.3, 3.0), st.floats(1e-4, 0.1), st.floats(0.0, 0.2))
def test_verdict_is_symmetric_in_direction(speedup: float, se: float, delta: float) -> None:
    """A backend s× faster than eager reads exactly as eager s× faster than it, mirrored."""
    lo, hi = estimate(speedup, se).interval()
    mirrored = classify(1 / hi, 1 / lo, delta)
    swap = {Verdict.FASTER: Verdict.SLOWER, Verdict.SLOWER: Verdict.FASTER}
    v = classify(lo, hi, delta)
    if min(abs(lo - (1 + delta)), abs(hi - 1 / (1 + delta))) > 1e-9:
        assert mirrored is swap.get(v, v)


def test_no_change_wins_over_any_timing_and_leaves_the_family() -> None:
    """A backend that changed nothing is `no change` even when its interval says 1.46× faster,
    and it does not count in Holm's family (the other comparison keeps the plain 95%)."""
    inputs = [
        ComparisonInput("fx", estimate(1.46), changes=0, no_change_reason="fx made 0 rewrites"),
        ComparisonInput("compile", estimate(1.31), changes=3),
    ]
    fx, comp = judge(inputs)
    assert fx.verdict is Verdict.NO_CHANGE and fx.reason == "fx made 0 rewrites"
    assert format_comparison(fx) == "fx no change: fx made 0 rewrites"
    assert comp.level == pytest.approx(0.95)
    assert comp.verdict is Verdict.FASTER


def test_a_failed_point_gets_no_verdict() -> None:
    [c] = judge([ComparisonInput("int8", None)])
    assert c.verdict is None and math.isnan(c.low) and math.isnan(c.speedup)
    assert "failed" in format_comparison(c)


def test_holm_widens_the_intervals_of_a_sweep() -> None:
    """Three calls in one sweep: each interval is at the level Holm tests it at (α/3, α/2, α for
    the last step), never narrower than the lone 95% interval."""
    ests = [estimate(1.3), estimate(1.2), estimate(0.8, 0.01)]
    judged = judge([ComparisonInput(f"b{i}", e, changes=None) for i, e in enumerate(ests)])
    levels = holm_levels([e.p_value_margin(0.03) for e in ests])
    for c, e, level in zip(judged, ests, levels, strict=True):
        assert c.level == pytest.approx(1 - level)
        assert c.level >= 0.95 - 1e-12
        assert c.low <= e.interval(0.95)[0] and c.high >= e.interval(0.95)[1]
    assert sorted(c.level for c in judged) == pytest.approx([0.95, 1 - 0.05 / 2, 1 - 0.05 / 3])
    assert [c.verdict for c in judged] == [Verdict.FASTER, Verdict.FASTER, Verdict.SLOWER]


def test_holm_can_turn_a_lone_call_inconclusive() -> None:
    """1.045 ± ~1.1% is `faster` alone (low 1.034) but not among 20 comparisons, 19 of them null."""
    lone = judge([ComparisonInput("b", estimate(1.045))])[0]
    assert lone.verdict is Verdict.FASTER
    crowd = [ComparisonInput("b", estimate(1.045))] + [
        ComparisonInput(f"n{i}", estimate(1.0)) for i in range(19)
    ]
    assert judge(crowd)[0].verdict is Verdict.INCONCLUSIVE


def test_control_must_cover_one_and_fit_the_margin() -> None:
    ok = check_control(estimate(1.0, 0.004))
    assert ok.ok and format_control(ok).startswith("A/A control 0.99–1.01 ok")
    biased = check_control(estimate(1.02, 0.004))
    assert not biased.ok and "does not cover 1" in biased.reason
    wide = check_control(estimate(1.0, 0.03))
    assert not wide.ok and "wider than the ±3% margin" in wide.reason


def test_a_too_noisy_group_calls_only_what_clears_the_control() -> None:
    """A ±6% control: 1.5× faster survives (its interval widened by the control's), a 1.00 that
    would read `same` and a 1.05 that would read `faster` become inconclusive, all flagged with
    the control's reason; `no change` stays, being a fact about the backend."""
    noisy = check_control(estimate(1.0, 0.03))
    assert not noisy.ok
    inputs = [
        ComparisonInput("compile", estimate(1.5, 0.002), changes=2, control=noisy),
        ComparisonInput("int8", estimate(1.0, 0.001), changes=4, control=noisy),
        ComparisonInput("fx", estimate(1.05, 0.001), changes=1, control=noisy),
        ComparisonInput(
            "triton", estimate(0.5), changes=0, no_change_reason="0 ops", control=noisy
        ),
    ]
    compile_, int8, fx, triton = judge(inputs, alpha=0.05)
    assert compile_.verdict is Verdict.FASTER and compile_.too_noisy
    raw_low, raw_high = compile_.estimate.interval(compile_.level)  # type: ignore[union-attr]
    assert compile_.low == pytest.approx(raw_low / noisy.high)
    assert compile_.high == pytest.approx(raw_high / noisy.low)
    for c in (int8, fx):
        assert c.verdict is Verdict.INCONCLUSIVE and c.too_noisy
        assert c.reason.startswith("too noisy: A/A control")
    assert triton.verdict is Verdict.NO_CHANGE and not triton.too_noisy
    line = format_comparison(compile_)
    assert line.startswith("compile 1.50× faster (")
    assert "widened by the noisy A/A control); too noisy: A/A control" in line


@given(st.floats(0.3, 3.0), st.floats(1e-4, 0.1), st.floats(0.8, 1.2), st.floats(0.001, 0.1))
def test_widening_only_removes_calls(speedup: float, se: float, ctl: float, ctl_se: float) -> None:
    """Whatever the control, a too-noisy comparison's interval contains the raw one, so it can
    lose a faster/slower/same call but never gain or flip one."""
    control = check_control(estimate(ctl, ctl_se))
    [raw] = judge([ComparisonInput("b", estimate(speedup, se))])
    [c] = judge([ComparisonInput("b", estimate(speedup, se), control=control)])
    assert c.low <= raw.low + 1e-12 and c.high >= raw.high - 1e-12
    if c.verdict is not Verdict.INCONCLUSIVE:
        assert c.verdict is raw.verdict


def test_formatted_lines() -> None:
    def line(lo: float, hi: float, speedup: float, level: float = 0.95) -> str:
        from perfbench.stats.verdict import Comparison

        est = PairedEstimate(math.log(speedup), 0.01, 10, 30)
        return format_comparison(
            Comparison("compile", est, level, lo, hi, classify(lo, hi), "", False)
        )

    assert line(1.22, 1.40, 1.31) == "compile 1.31× faster (95% CI 1.22–1.40)"
    assert line(0.98, 1.02, 1.0) == "compile same within ±3% (0.98–1.02)"
    assert line(0.93, 1.08, 1.0) == "compile inconclusive (0.93–1.08)"
    assert line(0.76, 0.85, 0.8) == "compile 1.25× slower (speedup 0.80, 95% CI 0.76–0.85)"
    assert line(1.2, 1.4, 1.3, level=1 - 0.05 / 3) == "compile 1.30× faster (98.33% CI 1.20–1.40)"
