"""perfbench.stats.two_level: per-process speedup estimates combined so the interval holds across
processes (issue 22)."""

from __future__ import annotations

import math
import random

import pytest

from perfbench.stats.speedup import PairedEstimate, estimate_speedup
from perfbench.stats.two_level import (
    BETWEEN,
    DEFAULT_PROCESSES,
    WITHIN,
    CombinedEstimate,
    choose_processes,
    combine,
    estimate_record,
    from_record,
    group_alpha,
)

TRUE_RATIO = 1.10  # the backend is 10% faster: t_eager / t_backend


class FakeClock:
    """Per-call times of two arms in one process: the backend's ratio carries an offset drawn
    once per process (where its allocations and weights landed), each round a small noise."""

    def __init__(self, rng: random.Random, between_sd: float, within_sd: float) -> None:
        self.rng = rng
        self.offset = rng.gauss(0.0, between_sd)
        self.within_sd = within_sd

    def rounds(self, n: int) -> tuple[list[float], list[float]]:
        base, arm = [], []
        for _ in range(n):
            eager = 20e-6 * math.exp(self.rng.gauss(0.0, 0.05))  # both arms drift alike
            noise = self.rng.gauss(0.0, self.within_sd)
            base.append(eager)
            arm.append(eager / TRUE_RATIO * math.exp(self.offset + noise))
        return base, arm


def _process(rng: random.Random, between_sd: float, within_sd: float) -> PairedEstimate:
    base, arm = FakeClock(rng, between_sd, within_sd).rounds(40)
    return estimate_speedup(base, arm, period=2)


def _covers(est: PairedEstimate) -> bool:
    low, high = est.interval(0.95)
    return low <= TRUE_RATIO <= high


def test_combined_interval_covers_across_processes_where_one_process_does_not() -> None:
    """Between-process offset (2%) well above the within-process noise of one estimate (~0.3%):
    1000 simulated runs of k = 3 processes. The combined interval covers the true ratio at about
    the nominal 95%; the interval of one process alone (what a run used to report) far less."""
    rng = random.Random(22)
    runs, combined_hits, single_hits = 1000, 0, 0
    for _ in range(runs):
        per = [_process(rng, between_sd=0.02, within_sd=0.01) for _ in range(DEFAULT_PROCESSES)]
        combined_hits += _covers(combine(per))
        single_hits += _covers(per[0])
    assert 0.92 <= combined_hits / runs <= 0.98, combined_hits
    assert single_hits / runs < 0.5, single_hits


def test_no_between_part_keeps_nominal_coverage_and_width() -> None:
    """No offset between processes: the combination neither under-covers nor blows up."""
    rng = random.Random(7)
    hits, widths = 0, []
    for _ in range(200):
        per = [_process(rng, 0.0, 0.01) for _ in range(3)]
        c = combine(per)
        hits += _covers(c)
        widths.append(c.half_width() / per[0].half_width())
    assert hits / 200 >= 0.92
    assert sorted(widths)[100] < 1.5  # median width comparable to one process's


def test_combine_branches_and_df() -> None:
    agree = [PairedEstimate(0.1 + d, 0.01, 10, 40) for d in (-0.001, 0.0, 0.001)]
    c = combine(agree)
    assert isinstance(c, CombinedEstimate) and c.method == WITHIN
    assert c.df == 2 and c.se == pytest.approx(0.01 / math.sqrt(3))  # t(k - 1) either way
    spread = [PairedEstimate(0.1 + d, 0.001, 10, 40) for d in (-0.05, 0.0, 0.05)]
    c = combine(spread)
    assert c.method == BETWEEN and c.df == 2
    assert c.se == pytest.approx(0.05 / math.sqrt(3))
    assert c.log_speedup == pytest.approx(0.1)
    assert c.between_sd > 0.04
    assert c.interval()[0] < math.exp(0.1) < c.interval()[1]


def test_combine_edge_cases() -> None:
    one = PairedEstimate(0.2, 0.01, 10, 40)
    assert combine([one]) is one
    with pytest.raises(ValueError, match="at least one"):
        combine([])
    with pytest.raises(ValueError, match="out of range"):
        combine([one, PairedEstimate(math.nan, 0.01, 10, 40)])
    no_interval = combine([one, PairedEstimate(0.1, math.inf, 1, 2)])
    assert math.isinf(no_interval.se) and no_interval.p_value() == 1.0


def test_choose_processes() -> None:
    # every step size: the between-process part was measured at µs and ms steps (README)
    k, why = choose_processes(True)
    assert k == DEFAULT_PROCESSES and f"1/{DEFAULT_PROCESSES} of the budget" in why
    assert choose_processes(False)[0] == 1
    k, why = choose_processes(True, budget_s=0.05)
    assert k == 1 and "budget 0.05 s" in why
    assert choose_processes(True, requested=3, budget_s=0.05)[0] == 3
    assert choose_processes(False, requested=5) == (5, "--processes 5")
    with pytest.raises(ValueError, match="--processes"):
        choose_processes(True, requested=0)


def test_record_round_trip_and_group_alpha() -> None:
    single = PairedEstimate(0.2, 0.01, 10, 40)
    assert from_record(estimate_record(single)) == single
    c = combine([PairedEstimate(v, 0.001, 10, 40) for v in (0.1, 0.2, 0.3)])
    back = from_record(estimate_record(c))
    assert back == c and back.df == 2
    with pytest.raises(ValueError, match="not an estimate record"):
        from_record({"log_speedup": "x"})
    assert group_alpha(2, 4, 0.05) == pytest.approx(0.025)
    assert group_alpha(1, 0, 0.05) == pytest.approx(0.05)
