"""The rows both executors build in the driver (the local runner and the Ray driver): skipped
points are recorded before anything is measured (a row from a worker arrives complete: a `Row`
with every column). Its own module so that `perfbench.execute.ray.driver` need not import the runner (which imports
the Ray executor: a cycle)."""

from __future__ import annotations

from collections.abc import Callable

from perfbench.measure.group import GroupTask
from perfbench.measure.point import PointTask
from perfbench.plan.run_plan import ComparisonGroup, PlannedPoint, RunPlan
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir


def record_skipped(
    group: ComparisonGroup,
    plan: RunPlan,
    run_dir: RunDir,
    record: Callable[[Row], None],
) -> GroupTask:
    """Record the group's skipped points now; the runnable rest as one GroupTask (for any
    executor: a skipped point never leaves this process)."""
    runnable = []
    for planned in group.points:
        if planned.skip_reason:
            record(
                Row.for_point(
                    planned.point_id,
                    planned.point,
                    group_id=group.group_id,
                    status="skipped",
                    reason=planned.skip_reason,
                )
            )
        else:
            runnable.append(_point_task(planned, plan, run_dir))
    return GroupTask(
        plan.scenario_path, group.group_id, tuple(runnable), plan.control, plan.family_size
    )


def _point_task(planned: PlannedPoint, plan: RunPlan, run_dir: RunDir) -> PointTask:
    point = planned.point
    return PointTask(
        scenario_path=plan.scenario_path,
        point=point,
        point_id=planned.point_id,
        seed=plan.seed,
        timing=plan.timing,
        run_dir=str(run_dir.path),
        profiling=plan.profiling.for_point(point),
    )
