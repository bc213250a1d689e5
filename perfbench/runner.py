"""Run a planned sweep (perfbench.plan): record skipped points, measure the rest in the worker,
write each row as it ends.

Library code does not print: progress goes to a callback the CLI supplies.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from perfbench import __version__
from perfbench.environment import capture_environment
from perfbench.plan import PlannedPoint, RunPlan
from perfbench.point import PointTask
from perfbench.profiling.instruments import note_row
from perfbench.profiling.instruments import run_meta as instruments_meta
from perfbench.row import Row
from perfbench.rundir import RunDir
from perfbench.scenario import Scenario
from perfbench.worker import Worker

ProgressFn = Callable[[str, dict[str, Any]], None]


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
        "points_total": len(plan.points),
    }
    meta["profiling"] = instruments_meta(plan.profiling, plan.flamegraph, plan.native)
    meta.update(_ceilings(plan.sweep))
    return meta


def run_sweep(
    scenario: Scenario,
    plan: RunPlan,
    run_dir: RunDir,
    progress: ProgressFn = lambda event, data: None,
) -> Counter[str]:
    """Measure every planned point; returns the count per status. Ctrl-C stops after keeping
    all rows."""
    meta = run_meta(scenario, plan)
    run_dir.write_meta(meta)
    counts: Counter[str] = Counter()
    total = len(plan.points)
    worker = Worker(env=dict(plan.worker_env))
    recorder = None
    if plan.flamegraph:  # the parent's pid: workers replaced after a timeout stay covered
        from perfbench.profiling.flamegraph import FlameGraphRecorder

        recorder = FlameGraphRecorder(os.getpid(), run_dir.path, native=plan.native).start()
    try:
        for planned in plan.points:
            index, point = planned.point_id, planned.point
            progress("start", {"index": index, "total": total, "point": point})
            row = _run_one(planned, plan, run_dir, worker)
            row["command"] = planned.command
            note_row(meta, row, point.label(), scenario.name)
            run_dir.append_row(row)
            counts[row["status"]] += 1
            progress("done", {"index": index, "total": total, "point": point, "row": row})
        meta["state"] = "complete"
    except KeyboardInterrupt:
        meta["state"] = "interrupted"
        progress("interrupted", {"done": sum(counts.values()), "total": total})
    finally:
        worker.close()
        if recorder is not None:
            meta["flamegraph"] = recorder.stop()
            meta["flamegraph"]["note"] = "times in this run were taken while py-spy sampled them"
        meta["finished_at"] = _now()
        meta["counts"] = dict(counts)
        run_dir.write_meta(meta)
    return counts


def _ceilings(sweep: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The device's cached ceilings for the report's roofline chart; they are measured only by
    `perfbench ceilings`, never inside a sweep (it would cost seconds and heat the device)."""
    from perfbench.ceilings import cached_ceilings

    devices = [getattr(d, "value", d) for d in sweep.get("device", [])]
    device = "cuda" if "cuda" in devices and torch.cuda.is_available() else "cpu"
    found = cached_ceilings(device)
    if found:
        return {"ceilings": found}
    return {
        "ceilings_note": f"no ceilings cached for {device}: run `perfbench ceilings --device {device}` once"
    }


def _run_one(
    planned: PlannedPoint, plan: RunPlan, run_dir: RunDir, worker: Worker
) -> dict[str, Any]:
    point = planned.point
    base = Row.for_point(planned.point_id, point).as_dict()  # every column, at its default
    if planned.skip_reason:
        return {**base, "status": "skipped", "reason": planned.skip_reason}
    task = PointTask(
        scenario_path=plan.scenario_path,
        point=point,
        point_id=planned.point_id,
        seed=plan.seed,
        timing=plan.timing,
        run_dir=str(run_dir.path),
        profiling=plan.profiling.for_point(point),
    )
    result = worker.run(task, plan.timeout_s)
    if result.status == "done" and result.row is not None:
        return {**base, **result.row}
    if result.status == "timeout":
        return {**base, "status": "timeout", "error": f"point stopped: {result.detail}"}
    return {**base, "status": "failed", "error": result.detail}
