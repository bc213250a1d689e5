"""Run a planned sweep (perfbench.plan.run_plan): record skipped points, measure the rest in the worker,
write each row as it ends.

Library code does not print: progress goes to a callback the CLI supplies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from perfbench import __version__
from perfbench.execute.events import (
    GroupStarted,
    Interrupted,
    Phase,
    PointDone,
    ProgressFn,
    RecordFn,
    RepetitionStarted,
    ignore,
)
from perfbench.execute.executor import Executor
from perfbench.execute.process_runs import (
    Processes,
    plan_processes,
    processes_meta,
    share_budget,
)
from perfbench.execute.repeat import repetition_plan, summarize
from perfbench.execute.rows import record_skipped
from perfbench.execute.worker import Worker
from perfbench.measure.group import GroupTask
from perfbench.plan.rerun_defaults import scenario_defaults
from perfbench.plan.run_plan import ComparisonGroup, RunPlan
from perfbench.profiling.instruments import note_row
from perfbench.profiling.instruments import run_meta as instruments_meta
from perfbench.results import facts
from perfbench.results.environment import capture_environment
from perfbench.results.row import Row
from perfbench.results.run_claim import scenario_sha256, start_append
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import Scenario


class ModelStop(Exception):
    """build_model() returned what no point can use (perfbench.scenario.loading.ModelError): the run
    stops at the first such row, which is kept, and the command exits 2 with the error."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def default_run_dir(scenario: Scenario, root: Path = Path("reports")) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{scenario.name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{scenario.name}-{stamp}-{n}"
    return path


def run_meta(scenario: Scenario, plan: RunPlan) -> dict[str, Any]:
    """run.json as the run starts: what runs (scenario, sweep, settings, seed, worker
    environment, the command as typed), where (environment), and the device's ceilings."""
    meta: dict[str, Any] = {
        "perfbench_version": __version__,
        "scenario": {
            "path": str(scenario.path),
            "name": scenario.name,
            "doc": scenario.doc,
            # what a flagless rerun sweeps: the advisor's short `try:` commands drop these
            "sweep": scenario_defaults(scenario),
            "sha256": scenario_sha256(scenario.path),  # what --append and compare check
        },
        "sweep": plan.sweep_record(),
        "argv": list(plan.argv),
        "command": " ".join(plan.argv),
        "cwd": os.getcwd(),
        "seed": plan.seed,
        "started_at": _now(),
        "finished_at": None,
        "state": "running",
        "settings": plan.settings_record(),
        # set in the measuring worker; each point's rerun command carries it in front
        "worker_env": dict(plan.worker_env),
        "rerun_args": list(plan.rerun_args),
        "environment": capture_environment(scenario.path.parent),
        "points_total": len(plan.points) * plan.repeat,
    }
    if plan.repeat > 1:
        meta["repeat"] = {"count": plan.repeat}
    meta["profiling"] = instruments_meta(plan.profiling, plan.flamegraph, plan.native)
    meta.update(_ceilings(plan.sweep))
    return meta


def run_sweep(
    scenario: Scenario,
    plan: RunPlan,
    run_dir: RunDir,
    progress: ProgressFn = ignore,
    executor: Executor | None = None,
) -> Counter[str]:
    """Measure every planned point with `executor` (default: `make_executor(plan)`); returns the
    count per status. Ctrl-C stops after keeping all rows; the executor is closed either way.
    Under `--repeat N` the sweep runs N times, each repetition with a fresh executor (fresh
    workers), its rows tagged with `repeat` (perfbench.execute.repeat).

    The folder must be the run's own (perfbench.results.run_claim): claimed here unless the caller did
    (`RunDir.claim`), and checked against the run it holds when `run_dir.append`; a refusal
    raises RunFolderError before anything is written."""
    own = run_dir.lock is None  # a library caller: the same rules as the command line
    if own:
        run_dir = RunDir.claim(run_dir.path, run_dir.append, " ".join(plan.argv))
    try:
        meta = run_meta(scenario, plan)
        start = run_dir.appending  # checked by the caller already, or checked here
        if start is None and run_dir.append:
            start = start_append(run_dir.path, meta, plan)
        if start is not None:  # fresh point ids and repeat numbers after the folder's own
            run_dir.appending, plan = start, shifted_plan(plan, start.first_point_id)
            meta["first_point_id"] = start.first_point_id
            meta["next_point_id"] = start.first_point_id + len(plan.points) * plan.repeat
        first_repeat = start.first_repeat if start else 0
        return _measure(scenario, plan, run_dir, meta, progress, executor, first_repeat)
    finally:
        if own:
            run_dir.release()


def _measure(
    scenario: Scenario,
    plan: RunPlan,
    run_dir: RunDir,
    meta: dict[str, Any],
    progress: ProgressFn,
    executor: Executor | None,
    first_repeat: int,
) -> Counter[str]:
    executor = executor or make_executor(plan, run_dir.path)
    meta["executor"] = executor.describe()
    run_dir.write_meta(meta)
    counts: Counter[str] = Counter()
    total = len(plan.points) * plan.repeat
    repetitions = [repetition_plan(plan, k) for k in range(plan.repeat)]
    recorder = None
    if plan.flamegraph:  # the parent's pid: workers replaced after a timeout stay covered
        from perfbench.profiling.flamegraph import FlameGraphRecorder

        recorder = FlameGraphRecorder(os.getpid(), run_dir.path, native=plan.native).start()
    done = 0

    def record(row: Row) -> None:
        nonlocal done
        planned, k = by_id[row.point_id]
        row.repeat = first_repeat + k
        row.command = planned.command
        note_row(meta, row, planned.point.label(), scenario.name)
        run_dir.append_row(row)
        counts[row.status] += 1
        done += 1
        progress(PointDone(done - 1, total, planned.point, row))
        if row.extra.get(facts.MODEL_ERROR):  # no point can use this model: stop
            raise ModelStop(row.error)

    by_id = {p.point_id: (p, k) for k, rep in enumerate(repetitions) for p in rep.points}
    try:
        for k, rep in enumerate(repetitions):
            if k:  # a fresh worker per repetition: nothing carries over from the last one
                executor.close()
                executor = make_executor(rep, run_dir.path)
            if plan.repeat > 1:
                progress(RepetitionStarted(k + 1, plan.repeat))
            executor.run_groups(rep.groups, rep, run_dir, record, progress)
        meta["state"] = "complete"
    except KeyboardInterrupt:
        meta["state"] = "interrupted"
        progress(Interrupted(sum(counts.values()), total))
    except ModelStop as stop:
        meta["state"], meta["problem"] = "stopped", f"scenario error: {stop}"
        raise
    finally:
        _wrap_up(meta, executor, recorder, counts, plan, run_dir)
    return counts


def _wrap_up(
    meta: dict[str, Any],
    executor: Executor,
    recorder: Any,
    counts: Counter[str],
    plan: RunPlan,
    run_dir: RunDir,
) -> None:
    """However the sweep ended: close the executor, stop py-spy, write run.json's last state."""
    executor.close()
    meta["executor"] = executor.describe()
    if recorder is not None:
        meta["flamegraph"] = recorder.stop()
        meta["flamegraph"]["note"] = "times in this run were taken while py-spy sampled them"
    meta["finished_at"] = _now()
    meta["counts"] = dict(counts)
    meta["processes"] = processes_meta(run_dir.read_rows(), plan.processes)
    if plan.repeat > 1:
        meta["repeat"] = summarize(run_dir.read_rows(), plan.repeat)
    run_dir.write_meta(meta)


def _ceilings(sweep: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The device's cached ceilings for the report's roofline chart; they are measured only by
    `perfbench ceilings`, never inside a sweep (it would cost seconds and heat the device)."""
    from perfbench.measure.ceilings import ceilings_for_run

    devices = [getattr(d, "value", d) for d in sweep.get("device", [])]
    return ceilings_for_run(devices, [int(t) for t in sweep.get("threads", [1])])


# --- executors (perfbench.execute.executor): the local worker here, Ray in perfbench.execute.ray.executor ------


class LocalExecutor:
    """Today's executor: the groups one after another in one replaceable worker process here."""

    name = "local"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._worker = Worker(env=dict(env or {}))
        self._host = socket.gethostname()

    def run_groups(
        self,
        groups: Sequence[ComparisonGroup],
        plan: RunPlan,
        run_dir: RunDir,
        record: RecordFn,
        progress: ProgressFn,
    ) -> None:
        def here(row: Row) -> None:
            if row.status != "skipped":  # a skipped point never ran anywhere
                row.host = self._host
            record(row)

        _run_groups(groups, plan, run_dir, self._worker, here, progress)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "host": self._host}

    def close(self) -> None:
        self._worker.close()


def make_executor(plan: RunPlan, run_path: Path | None = None) -> Executor:
    """The executor `plan.executor` names, started (`run_path`: where the run folder will be);
    raises ExecutorError when it cannot start."""
    if plan.executor == "ray":
        from perfbench.execute.ray.executor import RayExecutor

        return RayExecutor(plan.ray_address).start(plan, run_path)
    return LocalExecutor(plan.worker_env)


def _run_groups(
    groups: Sequence[ComparisonGroup],
    plan: RunPlan,
    run_dir: RunDir,
    worker: Worker,
    record: RecordFn,
    progress: ProgressFn,
) -> None:
    """Every group once in the worker (skipped points recorded at once; a point that hangs or
    takes the worker down is recorded as such and its group runs again without it). A group
    with a backend to judge (or `--processes K`) is timed in k processes that share its budget
    (`perfbench.execute.process_runs`): after the first pass, each further pass runs every such
    group again in one fresh worker, so a sweep starts k workers, not k per group; their rows
    are merged, then recorded. Ctrl-C (or a model no point can use) records what was measured so
    far before it stops."""
    say = lambda text: progress(Phase(text))  # noqa: E731
    waiting: list[tuple[int, Processes]] = []
    first: list[Row] = []
    try:
        for number, group in enumerate(groups, 1):
            progress(GroupStarted(number, len(groups), group))
            pending = record_skipped(group, plan, run_dir, record)
            k, why = plan_processes(pending, plan.processes)
            pending = share_budget(pending, k)
            _run_first(pending, group, plan, worker, first.append, say)
            procs = Processes.after_first(pending, first, k, why)
            done, first = first, []
            if procs is None:  # final: recorded at once
                for row in done:
                    record(row)
            else:
                waiting.append((number, procs))
        _later_processes(waiting, len(groups), plan, worker, say)
    except (KeyboardInterrupt, ModelStop):  # keep what was measured, then stop
        for row in first:
            record(row)
        _record_waiting(waiting, plan, record, interrupted=True)
        raise
    _record_waiting(waiting, plan, record)


def _later_processes(
    waiting: Sequence[tuple[int, Processes]],
    groups: int,
    plan: RunPlan,
    worker: Worker,
    say: Callable[[str], None],
) -> None:
    """Process j = 2..k of every waiting group: one fresh worker per pass over the groups (a
    worker that hangs or dies is replaced and its group's process left out, `Processes.add`)."""
    passes = max((procs.k for _, procs in waiting), default=1)
    for j in range(2, passes + 1):
        worker.close()  # the next run starts a fresh worker process
        for number, procs in waiting:
            if procs.k < j:
                continue
            say(
                f"timing group {number}/{groups} again in fresh process {j} of {procs.k} ({procs.why})"
            )
            result = worker.run(procs.rest, plan.timeout_s, on_phase=say, timing=plan.timing)
            if result.status != "done":
                worker.kill()
            procs.add(result.rows, result.detail)


def _record_waiting(
    waiting: list[tuple[int, Processes]], plan: RunPlan, record: RecordFn, interrupted: bool = False
) -> None:
    """Each waiting group's merged rows, recorded (and taken off the list, so an interrupt while
    recording does not record a group twice)."""
    while waiting:
        _, procs = waiting.pop(0)
        for row in procs.rows(plan.timing.margin, interrupted):
            record(row)


def _run_first(
    pending: GroupTask,
    group: ComparisonGroup,
    plan: RunPlan,
    worker: Worker,
    record: RecordFn,
    say: Callable[[str], None],
) -> None:
    """The group in the worker, rerun without any point that hangs or crashes it."""
    while pending.points:
        result = worker.run(
            pending,
            plan.timeout_s,
            on_row=record,
            on_phase=say,
            timing=plan.timing,  # the default step limit without --timeout (step_limit)
        )
        finished = {row.point_id for row in result.rows}
        if result.status == "done":
            return
        remaining = pending.without(*finished).points
        culprit = result.culprit if result.culprit is not None else remaining[0].point_id
        status = "timeout" if result.status == "timeout" else "failed"
        error = f"point stopped: {result.detail}" if status == "timeout" else result.detail
        culprit_task = next(t for t in remaining if t.point_id == culprit)
        record(
            Row.for_point(
                culprit, culprit_task.point, group_id=group.group_id, status=status, error=error
            )
        )
        pending = pending.without(*finished, culprit)


def shifted_plan(plan: RunPlan, first_point_id: int) -> RunPlan:
    """The plan with point ids starting at `first_point_id` (an appended run's fresh ids)."""
    if not first_point_id:
        return plan

    def moved(points: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(dataclasses.replace(p, point_id=p.point_id + first_point_id) for p in points)

    groups = tuple(ComparisonGroup(g.group_id, moved(g.points)) for g in plan.groups)
    return dataclasses.replace(plan, points=moved(plan.points), groups=groups)
