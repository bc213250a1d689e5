"""The speedup interval: exact on known data, near-nominal coverage on simulated paired rounds with
drift, wider than a naive per-round interval where rounds are dependent, robust to a preempted
sample, order effects cancelled per period, and Holm's properties."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.stats.speedup import (
    PairedEstimate,
    block_means,
    estimate_speedup,
    holm_adjust,
    holm_levels,
    log_ratios,
    period_means,
    winsorize,
)


def simulate(
    rng: random.Random,
    rounds: int,
    log_speedup: float,
    rho: float,
    noise_sd: float,
    outlier_p: float,
) -> tuple[list[float], list[float]]:
    """Paired (eager, backend) times per round. A slow machine-wide drift hits both arms of a
    round alike (AR(1), rho 0.95); an arm-specific AR(1) drift with correlation `rho` from round
    to round does not cancel; every sample gets its own lognormal noise, and with probability
    `outlier_p` a sample is stretched 20-100% (a descheduling)."""
    common = own = 0.0
    innovation = noise_sd * math.sqrt(1.0 - rho * rho)
    eager, backend = [], []
    for _ in range(rounds):
        common = 0.95 * common + 0.03 * rng.gauss(0, 1)
        own = rho * own + innovation * rng.gauss(0, 1)
        e = math.exp(common + noise_sd * rng.gauss(0, 1))
        b = math.exp(common - log_speedup + own + noise_sd * rng.gauss(0, 1))
        e *= 1 + rng.uniform(0.2, 1.0) if rng.random() < outlier_p else 1
        b *= 1 + rng.uniform(0.2, 1.0) if rng.random() < outlier_p else 1
        eager.append(e)
        backend.append(b)
    return eager, backend


def coverage(
    rng: random.Random, trials: int, rounds: int, blocks: int, period: int = 1, **kw: float
) -> float:
    hits = 0
    for _ in range(trials):
        eager, backend = simulate(rng, rounds, **kw)  # type: ignore[arg-type]
        est = estimate_speedup(eager, backend, period=period, blocks=blocks)
        lo, hi = est.log_interval()
        hits += lo <= kw["log_speedup"] <= hi
    return hits / trials


def test_known_ratio_is_recovered_exactly() -> None:
    eager = [0.010, 0.012, 0.011, 0.013] * 5
    backend = [t / 1.25 for t in eager]
    est = estimate_speedup(eager, backend)
    assert est.speedup == pytest.approx(1.25)
    assert est.se == pytest.approx(0.0, abs=1e-12)
    assert est.interval() == pytest.approx((1.25, 1.25))
    assert est.blocks == 10 and est.rounds == 20


def test_log_ratios_refuse_unpaired_or_non_positive_times() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        log_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="round 1: times must be > 0"):
        log_ratios([1.0, 0.0], [1.0, 1.0])


@given(st.lists(st.floats(-1, 1), min_size=1, max_size=60), st.integers(1, 15))
def test_blocks_are_contiguous_and_even(values: list[float], blocks: int) -> None:
    means = block_means(values, blocks)
    assert len(means) == min(blocks, len(values))
    size = len(values) // len(means)
    # the longer blocks come first, so the first block mean is over size or size + 1 values
    first = len(values) - size * len(means) > 0
    assert means[0] == pytest.approx(sum(values[: size + first]) / (size + first))


def test_period_means_cancel_an_alternating_order_effect() -> None:
    """ABBA: the arm that runs second in a round gains 5%; per period it cancels exactly."""
    d = [0.1 + (0.05 if r % 2 else -0.05) for r in range(21)]
    assert period_means(d, 2) == pytest.approx([0.1] * 10)  # the odd round 21 is left out
    assert estimate_speedup([1.0] * 21, [math.exp(v) for v in d], period=2).se < 1e-12
    # blocks of 3 rounds that ignore the period keep the effect in their spread
    assert estimate_speedup([1.0] * 21, [math.exp(v) for v in d], period=1, blocks=7).se > 0.005
    with pytest.raises(ValueError, match="period must be >= 1"):
        period_means(d, 0)


@given(st.lists(st.floats(-1, 1), min_size=3, max_size=60))
def test_winsorizing_only_pulls_values_towards_the_median(values: list[float]) -> None:
    clipped = winsorize(values)
    med = statistics.median(values)
    for v, c in zip(values, clipped, strict=True):
        assert abs(c - med) <= abs(v - med) + 1e-12 and (c - med) * (v - med) >= 0
    assert sorted(clipped) == sorted(winsorize(sorted(values)))  # order does not matter


def test_winsorizing_on_known_values() -> None:
    """Median 2, MAD 1: the bounds are 2 ± 3 · 1.4826 = [-2.45, 6.45]."""
    assert winsorize([0.0, 1.0, 2.0, 3.0, 4.0]) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert winsorize([0.0, 1.0, 2.0, 3.0, 100.0])[-1] == pytest.approx(2 + 3 * 1.4826)
    assert winsorize([1.0, 1.0, 1.0, 5.0]) == [1.0, 1.0, 1.0, 5.0]  # MAD 0: nothing to scale by


def test_one_round_says_nothing() -> None:
    est = estimate_speedup([1.0], [0.5])
    assert est.speedup == pytest.approx(2.0)
    assert est.interval() == (0.0, math.inf)
    assert est.p_value() == 1.0 and est.p_value_margin(0.03) == 1.0
    with pytest.raises(ValueError, match="need at least one whole period of 2"):
        estimate_speedup([1.0], [0.5], period=2)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    rounds=st.sampled_from([20, 60, 200]),
    period=st.sampled_from([1, 2]),
    rho=st.floats(0.0, 0.5),
    noise_sd=st.floats(0.002, 0.05),
    log_speedup=st.floats(-0.7, 0.7),
    outlier_p=st.sampled_from([0.0, 0.05]),
    seed=st.integers(0, 2**32 - 1),
)
def test_interval_covers_the_true_ratio_at_about_the_nominal_rate(
    rounds: int,
    period: int,
    rho: float,
    noise_sd: float,
    log_speedup: float,
    outlier_p: float,
    seed: int,
) -> None:
    """95% intervals cover the true speedup in 89-99.5% of 400 simulated runs (binomial sd ~1.1%
    at 95%; the bounds sit ~3 sd out). The regime is the one batch means is made for: the
    arm-specific drift forgets itself within a block (rho <= 0.5, <= 0.3 with only 20 rounds);
    the next test shows what happens without blocks."""
    rng = random.Random(seed)
    rho = min(rho, 0.3) if rounds == 20 else rho
    cov = coverage(
        rng,
        400,
        rounds,
        10,
        period,
        log_speedup=log_speedup,
        rho=rho,
        noise_sd=noise_sd,
        outlier_p=outlier_p,
    )
    assert 0.89 <= cov <= 0.995


def test_dependent_rounds_need_blocks() -> None:
    """The first pitfall: with rounds correlated (rho 0.8), an interval that treats every round as
    independent (one block per round) covers far below 95%; ten blocks of 20 rounds stay close."""
    kw = {"log_speedup": 0.1, "rho": 0.8, "noise_sd": 0.01, "outlier_p": 0.0}
    naive = coverage(random.Random(1), 400, 200, 200, **kw)
    blocked = coverage(random.Random(1), 400, 200, 10, **kw)
    assert naive < 0.85 < 0.89 < blocked


def test_winsorizing_shrugs_off_a_preempted_sample() -> None:
    """One eager sample stretched 3x: the clipped estimate moves a tenth of what the plain batch
    mean of the same rounds moves, and the interval stays narrow."""
    eager, backend = simulate(random.Random(3), 40, 0.05, 0.0, 0.01, 0.0)
    clean = estimate_speedup(eager, backend)
    eager[17] *= 3.0
    hit = estimate_speedup(eager, backend)
    plain = -sum(block_means(log_ratios(eager, backend), 10)) / 10
    assert abs(hit.log_speedup - clean.log_speedup) < 0.1 * abs(plain - clean.log_speedup)
    assert hit.half_width() < 2 * clean.half_width()


@given(st.floats(-1, 1), st.floats(1e-4, 0.2), st.integers(2, 30), st.floats(0.001, 0.3))
def test_margin_p_value_agrees_with_the_interval(
    theta: float, se: float, blocks: int, alpha: float
) -> None:
    """p_margin <= α exactly when the (1 - α) interval clears 1 + δ or 1 / (1 + δ)."""
    est = PairedEstimate(log_speedup=theta, se=se, blocks=blocks, rounds=blocks * 3)
    lo, hi = est.log_interval(1 - alpha)
    margin = math.log1p(0.03)
    clears = lo > margin or hi < -margin
    p = est.p_value_margin(0.03)
    if abs(p - alpha) > 1e-7:  # away from the boundary, where rounding decides
        assert (p < alpha) == clears


p_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=25)


@given(p_lists, st.floats(0.001, 0.2))
def test_holm_levels_reject_exactly_what_adjusted_p_values_reject(
    p: list[float], alpha: float
) -> None:
    adjusted = holm_adjust(p)
    levels = holm_levels(p, alpha)
    for raw, adj, level in zip(p, adjusted, levels, strict=True):
        assert raw <= adj <= 1.0
        assert alpha / len(p) - 1e-15 <= level <= alpha
        assert (raw <= level) == (adj <= alpha)


@given(p_lists)
def test_holm_adjustment_keeps_the_order_of_p_values(p: list[float]) -> None:
    adjusted = holm_adjust(p)
    for i in range(len(p)):
        for j in range(len(p)):
            if p[i] < p[j]:
                assert adjusted[i] <= adjusted[j]


@given(p_lists, st.data())
def test_holm_is_monotone(p: list[float], data: st.DataObject) -> None:
    """Lowering any one p-value never withdraws a rejection."""
    k = data.draw(st.integers(0, len(p) - 1))
    lower = list(p)
    lower[k] = data.draw(st.floats(0.0, p[k]))
    before = {i for i, a in enumerate(holm_adjust(p)) if a <= 0.05}
    after = {i for i, a in enumerate(holm_adjust(lower)) if a <= 0.05}
    assert before <= after


def test_holm_on_a_known_family() -> None:
    """m = 4, by hand: sorted p 0.01, 0.02, 0.03, 0.5 adjust to 4*.01 = .04, max(.04, 3*.02) = .06,
    max(.06, 2*.03) = .06 and max(.06, .5) = .5; only 0.01 is rejected at α = 0.05."""
    p = [0.03, 0.01, 0.5, 0.02]
    assert holm_adjust(p) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    # 0.01 <= .0125 rejected; 0.02 > .05/3 stops: it and all later keep .05/3
    assert holm_levels(p) == pytest.approx([0.05 / 3, 0.0125, 0.05 / 3, 0.05 / 3])
    assert holm_levels([0.2]) == [0.05]
