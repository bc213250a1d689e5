"""Speedup intervals that hold across processes (issue 22): per-process estimates combined by a
two-level model. Pure: no torch, no I/O.

Why: the interval of one process (`perfbench.stats.speedup`: batch means over its interleaved rounds)
covers the noise *within* that process. A fresh process lands its allocations, address layout
and weights elsewhere, and at microsecond steps that moves the ratio by more than the within
interval allows (issue 22: three runs of a ~15 µs step, intervals that did not overlap). Users read
the interval as "rerun it and you will land in here", so it has to carry the between-process part.

The model, per process i of k (each timed with the same share of the budget):

    θ_i = θ + u_i + e_i,   u_i ~ (0, τ²) between processes,   e_i ~ (0, σ_i²) within,

where θ_i is that process's ln(speedup) and se_i its batch-means standard error (an estimate of
σ_i, df_i = blocks_i - 1). The combined estimate is the plain mean θ̄ (every process had the same
budget, so equal weights). Its variance (τ² + mean σ_i²) / k is estimated by the method of
moments: the sample variance s² of the θ_i estimates τ² + σ², W = mean(se_i²) estimates σ², so
τ̂² = max(0, s² - W) and

- **between** (s² > W, the usual case at µs steps): se² = s² / k, df = k - 1. This is the
  t-interval on the per-process estimates, exact under normality whatever τ is, and the reason
  k is small-sample safe: with k = 3 the quantile is t(2) = 4.30, with k = 4 t(3) = 3.18.
- **within** (s² <= W: the processes agree at least as well as their own noise predicts):
  se² = W / k, so the variance is never taken below what each process's own rounds say; the
  quantile stays t(k - 1). Until the quiet audit this branch used the pooled df (Σ df_i, a
  quantile near 2): with k = 3 the test s² <= W rests on a variance of 2 degrees of freedom, so
  it picked "within" by chance where processes differ, and where the machine shifted between
  runs the agreeing processes' narrow intervals missed (4 of the 5 misses of compile at a 21 ms
  step; README "Intervals across processes").

Simulated (`tests/stats/test_two_level.py`, and once, outside the repo, for k = 2..6, τ/σ = 0..4,
40,000 normal trials each, with the pooled df in the within branch): at k >= 3 the 95%
interval covered the truth in 93-97% of trials (t(k - 1) in both branches only widens the
within case); at k = 2 in 88% when τ >> σ (the "within" branch fires too often by chance), so processes come in threes or more, never two
(`MIN_PROCESSES`). A single process's interval covered 66% at τ = 2σ and 40% at τ = 4σ.

How many processes (`choose_processes`): the between part was measured to matter at both step
sizes audited on a quiet machine (`scripts/process_audit.py`, README "Intervals across
processes"): at a ~20 µs step one process's 95% interval covered the median of 20 reruns 9-14
times in 20, and at a 21 ms step 8-19 times in 20 (fx's ratio moved 0.90-0.98 between processes
against ±1.5% within one). So every group with a backend to judge is timed in
`DEFAULT_PROCESSES` fresh processes whatever its step, and they share its budget (each times
1/k of `--budget`: the sweep costs k - 1 more worker starts and each group k - 1 more
compiles, not k times the timing); only a budget under `QUICK_BUDGET_S` (a smoke run: said so
in the row) keeps one. `--processes K` overrides all of it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from perfbench.stats.speedup import PairedEstimate

DEFAULT_PROCESSES = 3  # processes per group with a backend to judge (k = 2 under-covers)
MIN_PROCESSES = 3  # the fewest that make a between-process interval (module docstring)
QUICK_BUDGET_S = 0.5  # a budget per point below this is a quick look: one process
BETWEEN, WITHIN, SINGLE = "between", "within", "single"
PROCESSES_HELP = (
    "time each comparison group in K fresh worker processes (1, or 3 and more) and combine their "
    f"speedup estimates; default: 3 (1 under a {QUICK_BUDGET_S:g} s budget)"
)


@dataclass(frozen=True)
class CombinedEstimate(PairedEstimate):
    """ln(speedup) over k processes; `df` is the model's (k - 1, in both branches), so
    every interval, p-value and verdict of `PairedEstimate` applies unchanged."""

    dof: float = 0.0
    processes: int = 1
    method: str = SINGLE  # "between" | "within" | "single" (module docstring)
    between_sd: float = 0.0  # τ̂: the between-process standard deviation of ln(speedup)

    @property
    def df(self) -> float:  # type: ignore[override]
        return self.dof


def combine(estimates: Sequence[PairedEstimate]) -> PairedEstimate:
    """The two-level combination of per-process estimates (module docstring). One estimate is
    returned unchanged; an estimate with no interval (se = inf) makes the combination have none."""
    if not estimates:
        raise ValueError("combine needs at least one per-process estimate")
    if len(estimates) == 1:
        return estimates[0]
    bad = [e for e in estimates if not math.isfinite(e.log_speedup) or e.se < 0]
    if bad:
        raise ValueError(f"per-process estimate out of range: {bad[0]}")
    k = len(estimates)
    thetas = [e.log_speedup for e in estimates]
    mean = statistics.fmean(thetas)
    blocks = sum(e.blocks for e in estimates)
    rounds = sum(e.rounds for e in estimates)
    if any(math.isinf(e.se) for e in estimates):
        return CombinedEstimate(mean, math.inf, blocks, rounds, 0.0, k, WITHIN)
    s2 = statistics.variance(thetas)
    w = statistics.fmean(e.se**2 for e in estimates)
    tau = math.sqrt(max(0.0, s2 - w))
    if s2 > w:
        return CombinedEstimate(mean, math.sqrt(s2 / k), blocks, rounds, k - 1.0, k, BETWEEN, tau)
    # df stays k - 1: whether three processes "agree" rests on a variance of 2 df (docstring)
    return CombinedEstimate(mean, math.sqrt(w / k), blocks, rounds, k - 1.0, k, WITHIN, tau)


def from_log_values(values: Sequence[float]) -> PairedEstimate:
    """The combination of per-repetition log values that carry no within-run standard error
    (per-repetition log medians: `perfbench.analysis.compare`): `combine` with se = 0 each, so the
    between branch, a t-interval on them (se = s / sqrt(n), df = n - 1)."""
    if not values:
        raise ValueError("from_log_values needs at least one value")
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"log values must be finite, got {list(values)}")
    per = [PairedEstimate(v, 0.0, 2, 1) for v in values]  # one "block" of df 1 each
    return combine(per) if len(per) > 1 else per[0]


@dataclass(frozen=True)
class Difference:
    """est_b - est_a on the log scale, Welch-Satterthwaite df from the two sides' own df."""

    log_ratio: float
    se: float
    df: float


def difference(a: PairedEstimate, b: PairedEstimate) -> Difference:
    """B - A of two independent combined estimates (two runs: nothing pairs them)."""
    va, vb = a.se**2, b.se**2
    if va + vb > 0:
        df = (va + vb) ** 2 / (va**2 / a.df + vb**2 / b.df)
    else:  # both sides exactly repeatable: the df of the pooled sides (the interval is a point)
        df = float(a.df + b.df)
    return Difference(b.log_speedup - a.log_speedup, math.sqrt(va + vb), df)


def choose_processes(
    to_combine: bool, requested: int | None = None, budget_s: float = math.inf
) -> tuple[int, str]:
    """How many processes time a group, and why in words (for run.json and the terminal);
    decided before the group's first process, since the processes share its budget.

    `to_combine`: the group has something whose estimates combine (a backend to judge against
    eager; with `--processes K`, an A/A control alone counts too). `requested`: `--processes K`,
    which wins. `budget_s`: the timed work per point, over all its processes; below
    `QUICK_BUDGET_S` the user asked for a quick look (a smoke run, a test), and three processes
    would each get too little to time: one process, said so."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--processes must be >= 1, got {requested}")
        return requested, f"--processes {requested}"
    if not to_combine:
        return 1, "no backend to judge against eager: one process"
    if budget_s < QUICK_BUDGET_S:
        return 1, (
            f"budget {budget_s:g} s < {QUICK_BUDGET_S:g} s: one process (its interval holds "
            "within this process only)"
        )
    return DEFAULT_PROCESSES, (
        f"{DEFAULT_PROCESSES} fresh processes, each with 1/{DEFAULT_PROCESSES} of the budget "
        "(where a process lands its allocations moves the ratio beyond one process's interval)"
    )


def group_alpha(comparisons: int, family_size: int, alpha: float) -> float:
    """The level a group's comparisons are tested at: α·k/m (k here, m in the sweep), as
    `perfbench.measure.group_timing` does in the worker and the parent does after combining."""
    return alpha * comparisons / max(family_size, comparisons, 1)


def estimate_record(est: PairedEstimate) -> dict[str, float | int | str]:
    """What a row keeps of an estimate (`extra.estimate`), enough to combine it again later."""
    rec: dict[str, float | int | str] = {
        "log_speedup": est.log_speedup,
        "se": est.se,
        "blocks": est.blocks,
        "rounds": est.rounds,
        "df": est.df,
    }
    if isinstance(est, CombinedEstimate):
        rec.update(processes=est.processes, method=est.method, between_sd=est.between_sd)
    return rec


def from_record(rec: dict[str, object]) -> PairedEstimate:
    """The estimate `estimate_record` wrote (a combined one stays combined, with its df)."""
    try:
        theta, se = float(rec["log_speedup"]), float(rec["se"])  # type: ignore[arg-type]
        blocks, rounds = int(rec["blocks"]), int(rec["rounds"])  # type: ignore[call-overload]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"not an estimate record: {rec!r} ({err})") from err
    if "processes" in rec:
        return CombinedEstimate(
            theta,
            se,
            blocks,
            rounds,
            float(rec["df"]),  # type: ignore[arg-type]
            int(rec["processes"]),  # type: ignore[call-overload]
            str(rec.get("method", BETWEEN)),
            float(rec.get("between_sd", 0.0)),  # type: ignore[arg-type]
        )
    return PairedEstimate(theta, se, blocks, rounds)
