"""The change between two runs, with repetitions as the unit (`perfbench compare`; the
repetitions come from `perfbench run --repeat N`, perfbench.execute.repeat). Pure: no torch, no rows.

Comparing two runs (`runs_ratio`, used by `perfbench compare`): rounds of two runs cannot be
paired (they ran at different times, maybe on different days), so the unit is the repetition.
Per side, the log of each repetition's median; the change B/A is exp(mean log B - mean log A)
(the ratio of the geometric means of the per-repetition medians), and its interval is Welch's
t-interval on the log scale (unequal variances, Welch-Satterthwaite degrees of freedom). Why Welch
and not a bootstrap over repetitions: with 2-5 repetitions a side a bootstrap has a handful of
distinct resamples and its intervals are far too narrow. Simulated (log-normal run-to-run noise of
3% and 5%, no true change, 2,000 trials each): the 95% Welch interval covered the truth in 97.0%,
95.5% and 95.9% of trials at 2, 3 and 5 repetitions a side, a 95% percentile bootstrap in 67%, 80%
and 87% (`tests/analysis/test_compare.py` checks Welch's). With 2 a side the t quantile is 4-13, so the
interval is wide: that is what two runs can tell; use 3 or more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perfbench.stats.student_t import t_ppf
from perfbench.stats.two_level import difference, from_log_values


@dataclass(frozen=True)
class RunsRatio:
    """ln(B / A) from per-repetition medians, with Welch's standard error and degrees of freedom."""

    log_ratio: float
    se: float
    df: float
    n_a: int
    n_b: int

    @property
    def ratio(self) -> float:
        return math.exp(self.log_ratio)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided interval for B / A at `level`."""
        h = t_ppf(0.5 + level / 2.0, self.df) * self.se if self.se > 0 else 0.0
        return (math.exp(self.log_ratio - h), math.exp(self.log_ratio + h))


def runs_ratio(medians_a: Sequence[float], medians_b: Sequence[float]) -> RunsRatio:
    """B / A with repetitions as the unit (module docstring); needs >= 2 medians a side."""
    if len(medians_a) < 2 or len(medians_b) < 2:
        raise ValueError(
            f"runs as the unit need >= 2 repetitions a side, got {len(medians_a)} and "
            f"{len(medians_b)}"
        )
    if not all(m > 0 for m in (*medians_a, *medians_b)):
        raise ValueError("medians must be > 0")
    # each side as `perfbench.stats.two_level` combines processes (its between branch: the medians
    # carry no within-run standard error), then Welch-Satterthwaite on the difference
    side_a = from_log_values([math.log(m) for m in medians_a])
    side_b = from_log_values([math.log(m) for m in medians_b])
    d = difference(side_a, side_b)
    return RunsRatio(d.log_ratio, d.se, d.df, len(medians_a), len(medians_b))
