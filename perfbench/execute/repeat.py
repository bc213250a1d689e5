"""`perfbench run --repeat N`: the whole sweep N times, each repetition in fresh workers, and the
run-to-run spread per point.

Why: the interleaved rounds of one run (`perfbench.measure.interleave`) pair eager and a backend moments
apart, so their speedup interval covers the noise *within* a run. What they cannot show is how
much a point moves *between* runs: a fresh process allocates differently, inductor may pick other
kernels, the machine is in another state. Repetitions in fresh workers measure that, and they are
the unit `perfbench compare` needs to put an interval on a change between two runs (it cannot pair
rounds across runs).

How the repetitions are kept apart in one run folder: repetition k (0-based) of a sweep of n points
is the same plan with point ids k·n + i (`repetition_plan`), so every row, log
(`logs/group-<id>.log`), trace and GPU timeline named by point id stays distinct, and the `repeat`
column says which repetition a row belongs to. Group ids are not changed: the same settings keep
the same group id in every repetition (and in every run), which is what matching needs.

Merging: each repetition keeps its own rows and raw samples (`Row.times_ms`, per call,
already divided by the calls per sample). The merged measurement of a point concatenates the raw
samples of its ok repetitions, as torch.utils.benchmark's `Measurement.merge` does for one task
measured in several processes; nothing is averaged away, so the merge stays exact. The summary
(`summarize`, run.json["repeat"]) gives per point the median of the per-repetition medians, their
min–max and relative range, the merged median and IQR, and for backends the per-repetition
speedups against eager (each from its own repetition's paired rounds) with their min–max and
verdicts.

Comparing two runs: `perfbench.stats.runs_ratio` (repetitions as the unit, Welch's interval).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from perfbench.measure.caveat import caveat_of, shown_verdict
from perfbench.measure.timing import Measurement
from perfbench.results import facts
from perfbench.results.axes import AXES, point_label
from perfbench.stats.two_level import combine, from_record

if TYPE_CHECKING:
    from perfbench.plan.run_plan import RunPlan
    from perfbench.results.row import Row


def repetition_plan(plan: RunPlan, k: int) -> RunPlan:
    """Repetition `k` of the sweep: the same plan, point ids shifted by k·n (module docstring)."""
    from perfbench.plan.run_plan import ComparisonGroup

    if not 0 <= k < plan.repeat:
        raise ValueError(f"repetition {k} is outside 0..{plan.repeat - 1}")
    shift = k * len(plan.points)

    def moved(points: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(dataclasses.replace(p, point_id=p.point_id + shift) for p in points)

    groups = tuple(ComparisonGroup(g.group_id, moved(g.points)) for g in plan.groups)
    return dataclasses.replace(plan, points=moved(plan.points), groups=groups)


def merge_samples(rows: Sequence[Row]) -> Measurement | None:
    """One measurement from the raw samples of every ok row (`Measurement.merge`'s rule): the
    per-call times concatenated in repetition order; None when no row has samples."""
    times: list[float] = []
    for row in rows:
        if row.status == "ok":
            times += [float(t) / 1e3 for t in row.times_ms]
    if not times:
        return None
    return Measurement(times_s=times, number=1, timer=rows[0].timer, stop_reason="merged")


def _point_key(row: Row) -> tuple[str, ...]:
    return tuple(str(getattr(row, axis)) for axis in AXES)


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and (max - min) / median of per-repetition values."""
    mid = statistics.median(values)
    return {
        "median": mid,
        "min": min(values),
        "max": max(values),
        "range": (max(values) - min(values)) / mid if mid > 0 else math.nan,
    }


def point_summary(rows: Sequence[Row]) -> dict[str, Any]:
    """The run-to-run spread of one point over its repetitions' rows (in repetition order)."""
    first = rows[0]
    out: dict[str, Any] = {
        "label": point_label(_axes(first), " "),
        "group_id": first.group_id,
        "backend": first.backend,
        "repetitions": len(rows),
        "statuses": [r.status for r in rows],
        "medians_ms": [r.median_ms if r.status == "ok" else None for r in rows],
    }
    medians = _finite(out["medians_ms"])
    out["ok"] = len(medians)
    if medians:
        s = _spread(medians)
        out.update(median_ms=s["median"], min_ms=s["min"], max_ms=s["max"], range=s["range"])
    merged = merge_samples(rows)
    if merged is not None:
        out["merged"] = {
            "samples": len(merged.times_s),
            "median_ms": merged.median * 1e3,
            "iqr_ms": merged.iqr * 1e3,
            "p05_ms": merged.quantile(0.05) * 1e3,
            "p95_ms": merged.quantile(0.95) * 1e3,
        }
    if first.backend != "eager":
        out["speedups"] = [r.speedup_vs_eager if r.status == "ok" else None for r in rows]
        # a caveated call reads "faster (too noisy)" here too (perfbench.measure.caveat)
        out["verdicts"] = [shown_verdict(r.verdict, caveat_of(r.as_dict())) for r in rows]
        speedups = _finite(out["speedups"])
        if speedups:
            s = _spread(speedups)
            out.update(speedup_min=s["min"], speedup_max=s["max"])
            out["speedup_geomean"] = math.exp(statistics.fmean(math.log(v) for v in speedups))
        combined = combined_speedup(rows)
        if combined is not None:
            out["speedup_combined"] = combined
    else:
        controls = [(r.extra or {}).get(facts.AA_CONTROL, {}).get("speedup") for r in rows]
        if _finite(controls):
            out["control_speedups"] = controls
    return out


def combined_speedup(rows: Sequence[Row], level: float = 0.95) -> dict[str, Any] | None:
    """The repetitions' speedup estimates (`extra.estimate`) combined as a run combines its
    processes (`perfbench.stats.two_level.combine`: each repetition is one more set of fresh
    processes), so the interval means what a run's means; None when no repetition has one."""
    recs = [(r.extra or {}).get(facts.ESTIMATE) for r in rows if r.status == "ok"]
    estimates = [from_record(rec) for rec in recs if rec]
    if not estimates:
        return None
    c = combine(estimates)
    low, high = c.interval(level)
    method = getattr(c, "method", "single")
    return {
        "speedup": c.speedup,
        "ci_low": low,
        "ci_high": high,
        "level": level,
        "repetitions": len(estimates),
        "df": c.df,
        "method": method,
    }


def _axes(row: Row) -> dict[str, Any]:
    return {axis: getattr(row, axis) for axis in AXES}


def summarize(rows: Sequence[Row], count: int) -> dict[str, Any]:
    """run.json["repeat"]: per point (in first-seen order) its `point_summary`; skipped points
    are left out (they never ran)."""
    by_point: dict[tuple[str, ...], list[Row]] = {}
    for row in sorted(rows, key=lambda r: (r.repeat or 0, r.point_id or 0)):
        if row.status != "skipped":
            by_point.setdefault(_point_key(row), []).append(row)
    done = {r.repeat or 0 for r in rows}
    return {
        "count": count,
        "repetitions_written": len(done),
        "merge": "raw samples of the ok repetitions concatenated (Measurement.merge)",
        "points": [point_summary(group) for group in by_point.values()],
    }


def _ms(value: float) -> str:
    return f"{value * 1e3:.1f} µs" if value < 1 else f"{value:.3f} ms"


def format_summary(summary: dict[str, Any]) -> list[str]:
    """The terminal's lines for run.json["repeat"] (the CLI prints them)."""
    n = summary.get("count", 0)
    lines = [
        f"run-to-run spread over {n} repetitions (median of the repetitions' medians, min–max, "
        "range; speedup vs eager per repetition, each from its own paired rounds):"
    ]
    points = summary.get("points") or []
    width = max((len(p["label"]) for p in points), default=0)
    for p in points:
        head = f"  {p['label']:<{width}}  "
        if not p.get("ok"):
            lines.append(head + f"no result in any repetition ({', '.join(p['statuses'])})")
            continue
        text = (
            f"{_ms(p['median_ms'])}  ({_ms(p['min_ms'])}–{_ms(p['max_ms'])}, "
            f"range {p['range']:.1%})"
        )
        if p["ok"] < p["repetitions"]:
            text += f"  ok in {p['ok']} of {p['repetitions']}"
        if "speedup_min" in p:
            verdicts = Counter(v or "no verdict" for v in p["verdicts"])
            said = ", ".join(f"{k} {v}" for v, k in verdicts.most_common())
            text += (
                f"  speedup {p['speedup_geomean']:.2f}× "
                f"({p['speedup_min']:.2f}–{p['speedup_max']:.2f}; {said})"
            )
        if "speedup_combined" in p:
            c = p["speedup_combined"]
            text += f"; combined {c['speedup']:.2f}× (95% CI {c['ci_low']:.2f}–{c['ci_high']:.2f})"
        lines.append(head + text)
    return lines
