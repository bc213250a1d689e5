"""A backend's speedup over eager, with an honest 95% confidence interval, from interleaved rounds.

Input: per round r of one interleaved run (`perfbench.measure.interleave`), the eager time e_r and the
backend time b_r, measured moments apart on the same batch. Per round d_r = ln(b_r / e_r); the
estimate is θ = -mean(d) on the log scale, and the speedup exp(θ) = t_eager / t_backend (above 1:
the backend is faster). The method, in four steps, and the pitfall each step answers:

1. **Preempted samples: winsorize.** One sample stretched by a descheduling would otherwise
   widen the whole interval. d is clipped to median ± 3 · 1.4826 · MAD (about ±3 standard
   deviations for normal noise, so quiet data are left alone). Under the null both arms are
   exchangeable, so d is symmetric about the true shift and symmetric clipping keeps the
   estimate centred; a stretched sample hits either arm alike.
2. **First-after-switch cache effects: average whole periods.** The arm that runs right after
   another pays for the caches that arm evicted; an arm that runs twice in a row runs warm. The
   interleaving orders arms by a Williams design chained so that no arm repeats across a round
   boundary (two arms: ABBA, each arm repeats once per period), drops warm-up rounds, and runs
   whole periods; here d is averaged per period, so any effect of position or predecessor that
   repeats with the period cancels inside each period mean instead of adding to the spread.
3. **Rounds are not independent: batch means.** Clock drift, a neighbour's load and steal time
   come in bursts that last many rounds, so neighbouring d_r are correlated, and anything that
   treats rounds as independent (a paired t-test over rounds, a plain bootstrap over rounds)
   gives an interval that is too narrow (`tests/stats/test_speedup.py` shows one covering 70% instead
   of 95%). The period means are cut into `blocks` (up to 10) contiguous blocks of whole periods;
   block means are close to independent when the correlation dies out within a block, and the
   t-interval over them (df = blocks - 1) carries the remaining correlation in its width. Ten
   blocks keep the t quantile reasonable (2.26 at df 9; 2.78 at df 4 with the minimum of five).
   Limitation, stated: a drift that hits one arm and not the other and lasts as long as a block
   is not covered at the nominal rate; drift that hits both arms alike cancels inside d_r, and
   the A/A control (`perfbench.stats.verdict`) is the empirical check on the machine at hand.
4. **Optional stopping: a fixed number of rounds.** Stopping as soon as an interval looks tight
   makes intervals too narrow exactly when the noise happened to look small.
   `perfbench.measure.interleave` fixes the number of rounds before the first timed round, from the time
   budget and the warm-up rounds' duration, never from the ratios; this module then sees a
   fixed-size sample.

**Multiplicity across a sweep.** Twenty comparisons at 95% each make about one false call by
chance. `holm_levels` gives each comparison of a sweep the level Holm's step-down procedure tests
it at, and its interval is computed at that level (see `perfbench.stats.verdict`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from perfbench.stats.student_t import t_cdf, t_ppf, t_sf

DEFAULT_BLOCKS = 10
WINSOR_MADS = 3.0  # clip d at median ± this many robust standard deviations (1.4826 · MAD)


def log_ratios(t_base: Sequence[float], t_arm: Sequence[float]) -> list[float]:
    """d_r = ln(t_arm / t_base) per round; both sequences come from the same rounds, in order."""
    if len(t_base) != len(t_arm):
        raise ValueError(
            f"paired rounds differ in length: baseline {len(t_base)}, arm {len(t_arm)}"
        )
    bad = [i for i, (a, b) in enumerate(zip(t_base, t_arm, strict=True)) if not (a > 0 and b > 0)]
    if bad:
        i = bad[0]
        raise ValueError(f"round {i}: times must be > 0, got baseline {t_base[i]}, arm {t_arm[i]}")
    return [math.log(b / a) for a, b in zip(t_base, t_arm, strict=True)]


def winsorize(values: Sequence[float], mads: float = WINSOR_MADS) -> list[float]:
    """Clip values to median ± mads · 1.4826 · MAD (unchanged when the MAD is zero)."""
    med = statistics.median(values)
    spread = 1.4826 * statistics.median(abs(v - med) for v in values)
    if spread == 0.0:
        return list(values)
    lo, hi = med - mads * spread, med + mads * spread
    return [min(max(v, lo), hi) for v in values]


def period_means(values: Sequence[float], period: int) -> list[float]:
    """Mean of each whole period of `period` consecutive values (a trailing partial one is left
    out: it would not be balanced over the order design)."""
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    whole = len(values) // period
    return [statistics.fmean(values[k * period : (k + 1) * period]) for k in range(whole)]


def block_means(values: Sequence[float], blocks: int) -> list[float]:
    """Cut `values` into `blocks` contiguous blocks (sizes differ by at most one, longer first)
    and return each block's mean. Fewer values than blocks: one block per value."""
    n = len(values)
    blocks = max(1, min(blocks, n))
    size, extra = divmod(n, blocks)
    out: list[float] = []
    start = 0
    for k in range(blocks):
        stop = start + size + (1 if k < extra else 0)
        out.append(statistics.fmean(values[start:stop]))
        start = stop
    return out


@dataclass(frozen=True)
class PairedEstimate:
    """ln(speedup) = θ with its standard error from batch statistics (df = blocks - 1)."""

    log_speedup: float
    se: float  # inf when there are fewer than two blocks: nothing can be said
    blocks: int
    rounds: int

    @property
    def speedup(self) -> float:
        return math.exp(self.log_speedup)

    @property
    def df(self) -> int:
        return self.blocks - 1

    def _quantile(self, level: float) -> float:
        if not 0.0 < level < 1.0:
            raise ValueError(f"confidence level must lie in (0, 1), got {level}")
        if self.df < 1 or math.isinf(self.se):
            return math.inf
        return t_ppf(0.5 + level / 2.0, self.df)

    def log_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided interval for θ at `level`."""
        h = self._quantile(level) * self.se if self.se > 0 else 0.0
        return (self.log_speedup - h, self.log_speedup + h)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided interval for the speedup t_eager / t_backend at `level`."""
        lo, hi = self.log_interval(level)
        return (math.exp(lo), math.exp(hi))

    def half_width(self, level: float = 0.95) -> float:
        """Relative half-width exp(h) - 1 of the interval: 0.02 reads "±2%"."""
        lo, hi = self.log_interval(level)
        return math.expm1((hi - lo) / 2.0)

    def p_value(self, null_log: float = 0.0) -> float:
        """Two-sided t-test p-value of H0: θ = null_log (the dynamo runner prints this one)."""
        if self.df < 1 or math.isinf(self.se):
            return 1.0
        if self.se == 0.0:
            return 1.0 if self.log_speedup == null_log else 0.0
        return min(1.0, 2.0 * t_sf(abs(self.log_speedup - null_log) / self.se, self.df))

    def p_value_margin(self, delta: float) -> float:
        """p-value of H0: |θ| <= ln(1 + delta), "no practically relevant difference".

        Two one-sided t-tests against the nearer margin, doubled: p <= α exactly when the
        (1 - α) two-sided interval lies entirely above 1 + δ or entirely below 1 / (1 + δ), so a
        Holm rejection at level α_k is the same event as a `faster`/`slower` interval at 1 - α_k.
        """
        margin = math.log1p(delta)
        if self.df < 1 or math.isinf(self.se):
            return 1.0
        if self.se == 0.0:
            return 0.0 if abs(self.log_speedup) > margin else 1.0
        p_above = t_sf((self.log_speedup - margin) / self.se, self.df)
        p_below = t_cdf((self.log_speedup + margin) / self.se, self.df)
        return min(1.0, 2.0 * min(p_above, p_below))


def estimate_speedup(
    t_base: Sequence[float],
    t_arm: Sequence[float],
    period: int = 1,
    blocks: int = DEFAULT_BLOCKS,
) -> PairedEstimate:
    """Speedup of the arm over the baseline (t_base / t_arm) from paired rounds: winsorized log
    ratios, averaged per period of the order design, batch means over `blocks` blocks of whole
    periods, t-interval (see the module docstring for why each step)."""
    d = log_ratios(t_base, t_arm)
    if len(d) < period or not d:
        raise ValueError(f"{len(d)} paired rounds: need at least one whole period of {period}")
    means = block_means(period_means(winsorize(d), period), blocks)
    b = len(means)
    theta = -statistics.fmean(means)
    se = statistics.stdev(means) / math.sqrt(b) if b >= 2 else math.inf
    return PairedEstimate(log_speedup=theta, se=se, blocks=b, rounds=len(d) // period * period)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the comparison is rejected at family level α exactly
    when its adjusted p-value is <= α. Sorted ascending, p_(i) becomes the running maximum of
    min(1, (m - i + 1) p_(i)) (i from 1), so adjusted values keep the order of the raw ones."""
    m = len(p_values)
    order = sorted(range(m), key=lambda k: p_values[k])
    adjusted = [0.0] * m
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[k]))
        adjusted[k] = running
    return adjusted


def holm_levels(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Per comparison, the significance level at which Holm's step-down procedure tests it.

    The i-th smallest p-value (i from 1) is tested at α / (m - i + 1) while every smaller one was
    rejected; at the first one that is not rejected the procedure stops, and it and every later
    one keep that step's level. So the strongest effect is judged at Bonferroni's α / m, and a
    lone comparison at α. `p_k <= level_k` exactly when `holm_adjust(p)[k] <= α`.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda k: p_values[k])
    levels = [alpha] * m
    stopped: float | None = None
    for i, k in enumerate(order):
        level = alpha / (m - i)
        if stopped is None and p_values[k] > level:
            stopped = level
        levels[k] = stopped if stopped is not None else level
    return levels
