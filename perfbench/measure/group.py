"""One comparison group as a unit of work: the points that differ only in backend, measured in one
process, so that the verdict work can time them interleaved and an executor (the local worker,
or a Ray task) can ship them as one task.

`measure_group` runs in the measuring process and never raises: every point gets a row. While it
works on a point it says which one through `Activity`, so the parent that enforces `--timeout`
(the local worker, or the Ray driver) knows which point hung and can rerun the rest of the group
without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfbench.measure.point import PointTask, measure_point
from perfbench.measure.worker_output import OutputCapture
from perfbench.results.row import Row
from perfbench.scenario.loading import Scenario

RowSink = Callable[[Row], None]


@dataclass(frozen=True)
class GroupTask:
    """What an executor sends a measuring process for one comparison group: its runnable points
    (skipped points never leave the parent)."""

    scenario_path: str
    group_id: str
    points: tuple[PointTask, ...]
    # eager timed against a second instance of itself in the same rounds (the A/A control)
    control: bool = True
    # comparisons against eager in the whole sweep: the family of the multiple-test correction
    family_size: int = 1

    def without(self, *point_ids: int) -> GroupTask:
        """The same group less these points (finished, or the one that hung or crashed)."""
        rest = tuple(p for p in self.points if p.point_id not in point_ids)
        return GroupTask(self.scenario_path, self.group_id, rest, self.control, self.family_size)


class Activity:
    """Which point the measuring process works on, and since when (CLOCK_MONOTONIC, which is
    system-wide on Linux, so the parent can compare it with its own clock); whether that is a
    step (a `begin` without a phase) and the slowest step of the group so far, for the default
    limit (`perfbench.measure.step_limit`).

    Backed by a shared-memory array of four doubles when one is given (the local worker), else a
    plain list (in-process use, tests, a Ray task whose driver uses its own deadline)."""

    IDLE = -1.0
    SLOTS = 4  # point id, since, is_step, slowest step (s)

    def __init__(self, shared: Any | None = None) -> None:
        self._slots = shared if shared is not None else [self.IDLE, 0.0, 0.0, 0.0]
        # where phases of a long group are told (the local worker sends them to the terminal)
        self.say: Callable[[str], None] = lambda text: None
        # the writer's own copy of its slots: a shared-memory read costs ~0.2 µs, and `begin`
        # runs before every timed call
        self._step, self._since, self._slowest = False, 0.0, 0.0

    def begin(self, point_id: int, phase: str = "") -> None:
        """Work on `point_id` starts now; `phase` (preparing ..., timing ...) goes to `say`.
        Without a phase this is one step: the step before it (if any) was that long."""
        now = time.monotonic()
        slots = self._slots
        if phase:
            self._step = False
            slots[2] = 0.0
        elif self._step:  # any arm's step: the arms alternate
            if now - self._since > self._slowest:
                self._slowest = slots[3] = now - self._since
        else:
            self._step = True
            slots[2] = 1.0
        self._since = slots[1] = now
        slots[0] = float(point_id)
        if phase:
            self.say(phase)

    def idle(self) -> None:
        self._slots[0] = self.IDLE
        self._slots[2] = self._slots[3] = 0.0  # the next group's steps are its own
        self._step, self._slowest = False, 0.0

    def current(self) -> tuple[int | None, float]:
        """(point id or None when idle, monotonic time it began)."""
        pid, since = self._slots[0], self._slots[1]
        return (None if pid == self.IDLE else int(pid)), since

    def step_facts(self) -> tuple[bool, float]:
        """(is the work now a step, the slowest step so far in seconds; 0 before any)."""
        return bool(self._slots[2]), float(self._slots[3])


def measure_group(
    scenario: Scenario,
    task: GroupTask,
    emit: RowSink,
    activity: Activity | None = None,
    output: OutputCapture | None = None,
) -> None:
    """Measure every point of the group; each row goes to `emit` as soon as it is final.

    A group with an eager point and something to compare it with (another backend, or the A/A
    control) is timed interleaved (`perfbench.measure.group_timing`); otherwise each point is timed
    alone. Either way the eager model is diagnosed first (`diagnose.fail_on_diagnosis`). `output` (the worker's captured stdout/stderr) is logged per point, or per group when
    interleaved (its arms run in alternation, so their output cannot be told apart)."""
    activity = activity or Activity()
    eager = [p for p in task.points if p.point.backend == "eager"]
    others = [p for p in task.points if p.point.backend != "eager"]
    if eager and (others or task.control):
        _measure_interleaved(scenario, task, (eager[0], *others), emit, activity, output)
        return
    if task.points and _model_at_fault(scenario, task, emit, activity):
        return
    for point_task in task.points:
        activity.begin(point_task.point_id)
        if output is not None:
            output.begin(point_task.run_dir, point_task.point_id)
        row = measure_point(scenario, point_task)
        if output is not None:
            output.end().annotate(row)
        row.group_id = task.group_id
        activity.idle()
        emit(row)


def _model_at_fault(scenario: Scenario, task: GroupTask, emit: RowSink, activity: Activity) -> bool:
    """The interleaved path's diagnoses for points timed alone (eager with --no-control, a
    backend's rerun command): a model that changes its input or is not deterministic fails the
    group once with that diagnosis, not every point against the reference."""
    from perfbench.measure.diagnose import fail_on_diagnosis

    def tagged(row: Row) -> None:
        row.group_id = task.group_id
        emit(row)

    try:
        return fail_on_diagnosis(scenario, task.points, tagged, activity.begin)
    finally:
        activity.idle()


def _measure_interleaved(
    scenario: Scenario,
    task: GroupTask,
    ordered: tuple[PointTask, ...],
    emit: RowSink,
    activity: Activity,
    output: OutputCapture | None,
) -> None:
    from perfbench.measure.group_timing import measure_interleaved

    log = f"group-{ordered[0].point_id}"
    # the group's rows wait for its end: its arms run in alternation, so the output they printed
    # is one log, and each row gets that log's facts. Nothing is lost by waiting: a worker that
    # dies first makes the runner rerun the group without the culprit.
    rows: list[Row] = []
    if output is not None:
        output.begin(ordered[0].run_dir, log)
    try:
        measure_interleaved(
            scenario, ordered, task.control, task.family_size, rows.append, activity.begin
        )
    finally:
        activity.idle()
        captured = output.end() if output is not None else None
    for row in rows:
        row.group_id = task.group_id
        if captured is not None:
            captured.annotate(row)
        emit(row)
