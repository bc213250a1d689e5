"""Run a sweep: skip what makes no sense, measure the rest in the worker, write each row as it ends.

Library code does not print: progress goes to a callback the CLI supplies.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfbench import __version__
from perfbench.axes import Point
from perfbench.environment import capture_environment
from perfbench.point import PointTask
from perfbench.profiling.instruments import ProfileOptions, note_row, run_meta
from perfbench.rundir import RunDir
from perfbench.scenario import Scenario
from perfbench.sweep import rerun_command
from perfbench.timing import TimingSettings
from perfbench.worker import Worker
from perfbench.workload import skip_reason

ProgressFn = Callable[[str, dict[str, Any]], None]


@dataclass
class RunOptions:
    seed: int = 0
    timeout_s: float | None = None
    timing: TimingSettings = field(default_factory=TimingSettings)
    argv: list[str] = field(default_factory=list)
    # extra flags appended to each point's rerun command (e.g. --budget), so it reruns the same way
    rerun_args: list[str] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    profiling: ProfileOptions = field(default_factory=ProfileOptions)
    flamegraph: bool = False  # py-spy on this process and its workers (--subprocesses)
    native: bool = False


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


def run_sweep(
    scenario: Scenario,
    sweep: dict[str, list[Any]],
    points: list[Point],
    run_dir: RunDir,
    options: RunOptions,
    progress: ProgressFn = lambda event, data: None,
) -> Counter[str]:
    """Measure every point; returns the count per status. Ctrl-C stops after keeping all rows."""
    meta: dict[str, Any] = {
        "perfbench_version": __version__,
        "scenario": {"path": str(scenario.path), "name": scenario.name, "doc": scenario.doc},
        "sweep": {
            k: [v.value if hasattr(v, "value") else v for v in vs] for k, vs in sweep.items()
        },
        "argv": options.argv,
        "command": " ".join(options.argv),
        "cwd": os.getcwd(),
        "seed": options.seed,
        "started_at": _now(),
        "finished_at": None,
        "state": "running",
        "settings": {
            **{k: getattr(options.timing, k) for k in options.timing.__dataclass_fields__},
            "timeout_s": options.timeout_s,
        },
        "environment": capture_environment(scenario.path.parent),
        "points_total": len(points),
    }
    meta["profiling"] = run_meta(options.profiling, options.flamegraph, options.native)
    meta.update(_ceilings(sweep))
    run_dir.write_meta(meta)
    counts: Counter[str] = Counter()
    worker = Worker(env=options.worker_env)
    scenario_path = str(scenario.path)
    recorder = None
    if options.flamegraph:  # the parent's pid: workers replaced after a timeout stay covered
        from perfbench.profiling.flamegraph import FlameGraphRecorder

        recorder = FlameGraphRecorder(os.getpid(), run_dir.path, native=options.native).start()
    try:
        for index, point in enumerate(points):
            progress("start", {"index": index, "total": len(points), "point": point})
            row = _run_one(scenario, scenario_path, point, index, run_dir, options, worker)
            row["command"] = rerun_command(scenario_path, point, options.rerun_args)
            note_row(meta, row, point.label(), scenario.name)
            run_dir.append_row(row)
            counts[row["status"]] += 1
            progress("done", {"index": index, "total": len(points), "point": point, "row": row})
        meta["state"] = "complete"
    except KeyboardInterrupt:
        meta["state"] = "interrupted"
        progress("interrupted", {"done": sum(counts.values()), "total": len(points)})
    finally:
        worker.close()
        if recorder is not None:
            meta["flamegraph"] = recorder.stop()
            meta["flamegraph"]["note"] = "times in this run were taken while py-spy sampled them"
        meta["finished_at"] = _now()
        meta["counts"] = dict(counts)
        run_dir.write_meta(meta)
    return counts


def _ceilings(sweep: dict[str, list[Any]]) -> dict[str, Any]:
    """The device's cached ceilings for the report's roofline chart; they are measured only by
    `perfbench ceilings`, never inside a sweep (it would cost seconds and heat the device)."""
    from perfbench.ceilings import ceilings_for_run

    devices = [getattr(d, "value", d) for d in sweep.get("device", [])]
    return ceilings_for_run(devices, [int(t) for t in sweep.get("threads", [1])])


def _run_one(
    scenario: Scenario,
    scenario_path: str,
    point: Point,
    index: int,
    run_dir: RunDir,
    options: RunOptions,
    worker: Worker,
) -> dict[str, Any]:
    base: dict[str, Any] = {"point_id": index, **point.as_dict()}
    reason = skip_reason(point, scenario)
    if reason:
        return {**base, "status": "skipped", "reason": reason}
    task = PointTask(
        scenario_path=scenario_path,
        point=point,
        point_id=index,
        seed=options.seed,
        timing=options.timing,
        run_dir=str(run_dir.path),
        profiling=options.profiling.for_point(point),
    )
    result = worker.run(task, options.timeout_s)
    if result.status == "done" and result.row is not None:
        return {**base, **result.row}
    if result.status == "timeout":
        return {**base, "status": "timeout", "error": f"point stopped: {result.detail}"}
    return {**base, "status": "failed", "error": result.detail}
