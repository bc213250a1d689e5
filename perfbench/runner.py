"""Run a planned sweep (perfbench.plan): record skipped points, measure the rest in the worker,
write each row as it ends.

Library code does not print: progress goes to a callback the CLI supplies.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from perfbench import __version__
from perfbench.environment import capture_environment
from perfbench.executor import Executor, ProgressFn, RecordFn
from perfbench.group import GroupTask
from perfbench.plan import ComparisonGroup, PlannedPoint, RunPlan
from perfbench.point import PointTask
from perfbench.process_runs import in_processes, processes_meta
from perfbench.profiling.instruments import note_row
from perfbench.profiling.instruments import run_meta as instruments_meta
from perfbench.repeat import repetition_plan, summarize
from perfbench.row import Row
from perfbench.rundir import RunDir
from perfbench.scenario import Scenario
from perfbench.worker import Worker


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
        "scenario": {"path": str(scenario.path), "name": scenario.name, "doc": scenario.doc},
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
    progress: ProgressFn = lambda event, data: None,
    executor: Executor | None = None,
) -> Counter[str]:
    """Measure every planned point with `executor` (default: `make_executor(plan)`); returns the
    count per status. Ctrl-C stops after keeping all rows; the executor is closed either way.
    Under `--repeat N` the sweep runs N times, each repetition with a fresh executor (fresh
    workers), its rows tagged with `repeat` (perfbench.repeat)."""
    executor = executor or make_executor(plan, run_dir.path)
    meta = run_meta(scenario, plan)
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

    def record(row: dict[str, Any]) -> None:
        nonlocal done
        planned, row["repeat"] = by_id[row["point_id"]]
        row["command"] = planned.command
        note_row(meta, row, planned.point.label(), scenario.name)
        run_dir.append_row(row)
        counts[row["status"]] += 1
        done += 1
        progress("done", {"index": done - 1, "total": total, "point": planned.point, "row": row})

    by_id = {p.point_id: (p, k) for k, rep in enumerate(repetitions) for p in rep.points}
    try:
        for k, rep in enumerate(repetitions):
            if k:  # a fresh worker per repetition: nothing carries over from the last one
                executor.close()
                executor = make_executor(rep, run_dir.path)
            if plan.repeat > 1:
                progress("repetition", {"number": k + 1, "of": plan.repeat})
            executor.run_groups(rep.groups, rep, run_dir, record, progress)
        meta["state"] = "complete"
    except KeyboardInterrupt:
        meta["state"] = "interrupted"
        progress("interrupted", {"done": sum(counts.values()), "total": total})
    finally:
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
    return counts


def _ceilings(sweep: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The device's cached ceilings for the report's roofline chart; they are measured only by
    `perfbench ceilings`, never inside a sweep (it would cost seconds and heat the device)."""
    from perfbench.ceilings import ceilings_for_run

    devices = [getattr(d, "value", d) for d in sweep.get("device", [])]
    return ceilings_for_run(devices, [int(t) for t in sweep.get("threads", [1])])


# --- executors (perfbench.executor): the local worker here, Ray in perfbench.ray_executor ------


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
        def here(row: dict[str, Any]) -> None:
            if row["status"] != "skipped":  # a skipped point never ran anywhere
                row["host"] = self._host
            record(row)

        for number, group in enumerate(groups, 1):
            progress("group", {"number": number, "groups": len(groups), "group": group})
            say = lambda text: progress("phase", {"text": text})  # noqa: E731
            _run_group(group, plan, run_dir, self._worker, here, say)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "host": self._host}

    def close(self) -> None:
        self._worker.close()


def make_executor(plan: RunPlan, run_path: Path | None = None) -> Executor:
    """The executor `plan.executor` names, started (`run_path`: where the run folder will be);
    raises ExecutorError when it cannot start."""
    if plan.executor == "ray":
        from perfbench.ray_executor import RayExecutor

        return RayExecutor(plan.ray_address).start(plan, run_path)
    return LocalExecutor(plan.worker_env)


def _run_group(
    group: ComparisonGroup,
    plan: RunPlan,
    run_dir: RunDir,
    worker: Worker,
    record: Callable[[dict[str, Any]], None],
    say: Callable[[str], None] = lambda text: None,
) -> None:
    """Skipped points are recorded at once; the rest go to the worker as one task (its phases go
    to `say`). A point that hangs or takes the worker down is recorded as such, and the group
    runs again without it. Then, where the step is short (or `--processes K`), the group is timed
    again in fresh workers and its rows merged (`perfbench.process_runs`) before they are
    recorded."""
    pending = record_skipped(group, plan, run_dir, record)
    first: list[dict[str, Any]] = []
    _run_first(pending, group, plan, worker, first.append, say)

    def fresh(task: GroupTask) -> tuple[list[dict[str, Any]], str]:
        worker.close()  # the next run starts a fresh worker process
        result = worker.run(task, plan.timeout_s, on_phase=say)
        if result.status != "done":
            worker.kill()
        return [_full(r, group) for r in result.rows], result.detail

    for row in in_processes(pending, first, plan.processes, plan.timing.margin, fresh, say):
        record(row)


def _run_first(
    pending: GroupTask,
    group: ComparisonGroup,
    plan: RunPlan,
    worker: Worker,
    record: Callable[[dict[str, Any]], None],
    say: Callable[[str], None],
) -> None:
    """The group in the worker, rerun without any point that hangs or crashes it."""
    while pending.points:
        result = worker.run(
            pending, plan.timeout_s, on_row=lambda row: record(_full(row, group)), on_phase=say
        )
        finished = {row["point_id"] for row in result.rows}
        if result.status == "done":
            return
        remaining = pending.without(*finished).points
        culprit = result.culprit if result.culprit is not None else remaining[0].point_id
        status = "timeout" if result.status == "timeout" else "failed"
        error = f"point stopped: {result.detail}" if status == "timeout" else result.detail
        culprit_task = next(t for t in remaining if t.point_id == culprit)
        base = Row.for_point(culprit, culprit_task.point, group_id=group.group_id)
        record({**base.as_dict(), "status": status, "error": error})
        pending = pending.without(*finished, culprit)


def record_skipped(
    group: ComparisonGroup,
    plan: RunPlan,
    run_dir: RunDir,
    record: Callable[[dict[str, Any]], None],
) -> GroupTask:
    """Record the group's skipped points now; the runnable rest as one GroupTask (for any
    executor: a skipped point never leaves this process)."""
    runnable = []
    for planned in group.points:
        if planned.skip_reason:
            base = Row.for_point(planned.point_id, planned.point, group_id=group.group_id)
            record({**base.as_dict(), "status": "skipped", "reason": planned.skip_reason})
        else:
            runnable.append(_point_task(planned, plan, run_dir))
    return GroupTask(
        plan.scenario_path, group.group_id, tuple(runnable), plan.control, plan.family_size
    )


def _full(row: dict[str, Any], group: ComparisonGroup) -> dict[str, Any]:
    """A row from the worker with every column present (the defaults under it)."""
    point = next(p.point for p in group.points if p.point_id == row["point_id"])
    base = Row.for_point(row["point_id"], point, group_id=group.group_id).as_dict()
    return {**base, **row}


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
