"""The verdicts of one interleaved group (perfbench.measure.group_timing): every backend arm against
eager from the paired rounds, and the A/A control's check on the eager row. Apart from the
timing so that the statistics a group's rows carry are read in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from perfbench.results import facts
from perfbench.stats.two_level import estimate_record, group_alpha
from perfbench.stats.verdict import (
    DEFAULT_ALPHA,
    ComparisonInput,
    check_control,
    format_comparison,
    format_control,
    judge,
    no_change_reason,
)

if TYPE_CHECKING:
    from perfbench.measure.interleave import Interleaved
    from perfbench.results.row import Row


class JudgedArm(Protocol):
    """What judging reads of an arm (perfbench.measure.group_timing.Arm; named here, not imported, so
    the two modules do not import each other)."""

    name: str
    control: bool
    task: Any  # PointTask: its point's backend and the timing margin
    workload: Any  # Workload: whether the backend changed anything
    row: Row


def judge_arms(arms: list[JudgedArm], inter: Interleaved, family_size: int) -> None:
    """Speedup, interval and verdict of every non-eager arm against eager; the control's check
    on the eager row."""
    eager = next((a for a in arms if a.task.point.backend == "eager" and not a.control), None)
    if eager is None:
        return
    delta = eager.task.timing.margin
    control_arm = next((a for a in arms if a.control), None)
    check = None
    if control_arm is not None:
        check = check_control(inter.estimate(control_arm.name, eager.name), delta, DEFAULT_ALPHA)
        eager.row.extra[facts.AA_CONTROL] = {
            "speedup": check.estimate.speedup,
            "ci_low": check.low,
            "ci_high": check.high,
            "ok": check.ok,
            "reason": check.reason,
            facts.ESTIMATE: estimate_record(check.estimate),  # the parent combines processes' (#22)
        }
        eager.row.verdict_reason = format_control(check)
    others = [a for a in arms if not a.control and a is not eager]
    inputs = [
        ComparisonInput(
            backend=a.task.point.backend,
            estimate=inter.estimate(a.name, eager.name),
            changes=a.workload.prepared.changes,
            no_change_reason=no_change_reason(a.workload.prepared.changes_what),
            control=check,
        )
        for a in others
    ]
    alpha = group_alpha(len(inputs), family_size, DEFAULT_ALPHA)
    for arm, c in zip(others, judge(inputs, delta, alpha), strict=True):
        arm.row.update(
            speedup_vs_eager=c.speedup,
            speedup_ci_low=c.low,
            speedup_ci_high=c.high,
            verdict=c.verdict.value if c.verdict is not None else "",
            verdict_reason=format_comparison(c, delta),
        )
        arm.row.extra[facts.SPEEDUP_CI_LEVEL] = c.level
        arm.row.extra[facts.TOO_NOISY] = c.too_noisy
        if c.estimate is not None:
            arm.row.extra[facts.ESTIMATE] = estimate_record(c.estimate)
