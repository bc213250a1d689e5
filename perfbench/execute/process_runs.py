"""A comparison group timed in k fresh worker processes, and its rows merged into one per point
(issue 22; the statistics are `perfbench.stats.two_level`'s, this module is the executor side).

Before the group's first process the runner chooses k (`plan_processes`: three for a group with
a backend to judge, one under a quick-look budget, or `--processes K`) and gives every process
1/k of each point's budget (`share_budget`); for k > 1 the same group (its ok points, without
profiling passes: those ran in the first process) runs k - 1 more times, each in a fresh worker
(`Processes` holds a group's processes so far: the local executor runs every group once, then
one pass over the waiting groups per later process, each pass in one fresh worker, so a sweep
starts k workers rather than k per group). Then per point one row: the first process's
measurement (median, IQR, samples, cold start, profile), and from all processes the combined
speedup, interval and verdict, re-judged exactly as the worker judges (A/A control check, Holm
level of the group), plus `extra.processes`: k, why, the combination's branch and each
process's own speedup and interval. A process that hangs or dies leaves its points out of the combination (said in
`extra.processes.lost`); the first process's failures stand as they were recorded.

Not here: the Ray executor times each group in one task (k = 1, README "Running on a cluster").
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from perfbench.measure.group import GroupTask
from perfbench.profiling.instruments import ProfileOptions
from perfbench.results import facts
from perfbench.results.row import Row
from perfbench.stats.two_level import (
    choose_processes,
    combine,
    estimate_record,
    from_record,
    group_alpha,
)
from perfbench.stats.verdict import (
    DEFAULT_ALPHA,
    ComparisonInput,
    check_control,
    format_comparison,
    format_control,
    judge,
    no_change_reason,
)

Rows = list[Row]


def plan_processes(task: GroupTask, requested: int | None) -> tuple[int, str]:
    """k for this group and why, before its first process runs (they share its budget): by
    default k > 1 only for a group with a backend to judge; `--processes K` times a lone A/A
    control too."""
    judged = any(p.point.backend != "eager" for p in task.points)
    budget = task.points[0].timing.budget_s if task.points else math.inf
    return choose_processes(judged or (requested is not None and task.control), requested, budget)


def share_budget(task: GroupTask, k: int) -> GroupTask:
    """The task each of k processes runs: every point with 1/k of its budget of timed work."""
    if k <= 1:
        return task
    points = tuple(
        dataclasses.replace(p, timing=dataclasses.replace(p.timing, budget_s=p.timing.budget_s / k))
        for p in task.points
    )
    return dataclasses.replace(task, points=points)


@dataclasses.dataclass
class Processes:
    """One group's processes so far, while the executor runs its later ones (round by round
    over the sweep's groups: a fresh worker per round, not per group and round)."""

    rest: GroupTask  # what each later process runs: ok points, no profiling passes
    k: int
    why: str
    per_process: list[Rows]
    lost: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def after_first(cls, task: GroupTask, first: Rows, k: int, why: str) -> Processes | None:
        """The group's later processes, or None when `first` is final: k = 1, or the first
        process left nothing to combine (eager or every backend failed); its ok rows then say
        so. `task` is what the first process ran (`share_budget`'s)."""
        ok = [r for r in first if r.status == "ok"]
        eager = any(r.backend == "eager" for r in ok)
        backends = eager and any(r.backend != "eager" for r in ok)
        control = any(facts.AA_CONTROL in r.extra for r in ok)
        if k > 1 and not (backends or control):
            k, why = 1, f"{why}; the first process left nothing to combine: one process"
        if k == 1:
            _one_process(first, why)
            return None
        rest = _quiet(task.without(*[r.point_id for r in first if r.status != "ok"]))
        return cls(rest, k, why, [first])

    def add(self, rows: Rows, problem: str) -> None:
        """The next process's rows; `problem` ("" or what went wrong) leaves its points out."""
        self.per_process.append(rows)
        if problem:
            self.lost.append(f"process {len(self.per_process)}: {problem}")

    def rows(self, delta: float, interrupted: bool = False) -> Rows:
        """The group's final rows, merged from the processes so far (all k unless
        `interrupted`: then the note says how many of k ran)."""
        why = self.why
        if interrupted:
            why = f"{why}; interrupted after {len(self.per_process)} of {self.k} processes"
        if len(self.per_process) == 1:  # the first process's rows as it judged them
            return _one_process(self.per_process[0], why)
        return merge(self.per_process, why, delta, self.rest.family_size, self.lost)


def _one_process(rows: Rows, why: str) -> Rows:
    """`rows` as one process judged them; each ok row's note says one process, and why."""
    for row in rows:
        if row.status == "ok":
            row.extra[facts.PROCESSES] = {"count": 1, "why": why}
    return rows


def _quiet(task: GroupTask) -> GroupTask:
    """The task without profiling passes (the first process ran them)."""
    points = tuple(dataclasses.replace(p, profiling=ProfileOptions()) for p in task.points)
    return dataclasses.replace(task, points=points)


def merge(
    per_process: Sequence[Rows], why: str, delta: float, family_size: int, lost: Sequence[str]
) -> Rows:
    """One row per point of the first process, re-judged from every process's estimates."""
    first = per_process[0]
    own = copy.deepcopy(list(first))  # the first process's own figures, before the merge
    by_id = [{r.point_id: r for r in rows if r.status == "ok"} for rows in (own, *per_process[1:])]
    eager = next((r for r in first if r.backend == "eager" and r.status == "ok"), None)
    check = None
    if eager is not None and facts.AA_CONTROL in eager.extra:
        controls = _estimates(by_id, eager.point_id, lambda e: e.get(facts.AA_CONTROL) or {})
        check = check_control(combine(controls), delta, DEFAULT_ALPHA)
        control = eager.extra[facts.AA_CONTROL]
        control.update(speedup=check.estimate.speedup, ci_low=check.low, ci_high=check.high)
        control.update(ok=check.ok, reason=check.reason)
        control[facts.ESTIMATE] = estimate_record(check.estimate)
        eager.verdict_reason = format_control(check)
    others = [r for r in first if r is not eager and r.status == "ok" and facts.ESTIMATE in r.extra]
    inputs = [_input(r, by_id, check) for r in others]
    alpha = group_alpha(len(inputs), family_size, DEFAULT_ALPHA)
    for row, c in zip(others, judge(inputs, delta, alpha), strict=True):
        row.update(
            speedup_vs_eager=c.speedup,
            speedup_ci_low=c.low,
            speedup_ci_high=c.high,
            verdict=c.verdict.value if c.verdict is not None else "",
            verdict_reason=format_comparison(c, delta),
        )
        row.extra.update({facts.SPEEDUP_CI_LEVEL: c.level, facts.TOO_NOISY: c.too_noisy})
        row.extra[facts.ESTIMATE] = estimate_record(c.estimate)  # type: ignore[arg-type]
    for row in first:
        if row.status == "ok":
            _note(row, by_id, why, lost)
    return list(first)


def _estimates(
    by_id: Sequence[dict[int, Row]], point_id: int, where: Callable[[dict], dict]
) -> list[Any]:
    """The point's per-process estimates (processes without an ok row are left out)."""
    recs = [where(rows[point_id].extra).get(facts.ESTIMATE) for rows in by_id if point_id in rows]
    return [from_record(r) for r in recs if r]


def _input(row: Row, by_id: Sequence[dict[int, Row]], check: Any) -> ComparisonInput:
    extra = row.extra
    return ComparisonInput(
        backend=row.backend,
        estimate=combine(_estimates(by_id, row.point_id, lambda e: e)),
        changes=extra.get(facts.CHANGES),
        no_change_reason=no_change_reason(extra.get(facts.CHANGES_WHAT) or ""),
        control=check,
    )


def _note(row: Row, by_id: Sequence[dict[int, Row]], why: str, lost: Sequence[str]) -> None:
    """extra.processes: k, why, the branch, and each process's own figures; contended if any
    process was."""
    mine = [rows[row.point_id] for rows in by_id if row.point_id in rows]
    control = row.extra.get(facts.AA_CONTROL) or {}
    est = row.extra.get(facts.ESTIMATE) or control.get(facts.ESTIMATE)
    row.contended = any(bool(r.contended) for r in mine)
    row.extra[facts.PROCESSES] = {
        "count": len(mine),
        "why": why,
        "method": (est or {}).get("method", ""),
        "between_sd": (est or {}).get("between_sd"),
        "per_process": [
            {
                "median_ms": r.median_ms,
                "speedup": r.speedup_vs_eager,
                "ci_low": r.speedup_ci_low,
                "ci_high": r.speedup_ci_high,
                "contended": r.contended,
            }
            for r in mine
        ],
        **({"lost": list(lost)} if lost else {}),
    }


def processes_meta(rows: Sequence[Row], requested: int | None) -> dict[str, Any]:
    """run.json's `processes`: what was asked, and per group how many processes timed it and
    why (from the rows' `extra.processes`)."""
    groups: dict[str, Any] = {}
    for row in rows:
        procs = row.extra.get(facts.PROCESSES)
        if procs and row.group_id not in groups:
            groups[row.group_id] = {"count": procs.get("count"), "why": procs.get("why")}
    return {
        "requested": requested if requested is not None else "auto (perfbench/stats/two_level.py)",
        "groups": groups,
    }
