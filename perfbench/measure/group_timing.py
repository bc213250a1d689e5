"""Measure a comparison group interleaved: every arm prepared in one process, then timed in
alternating rounds (`perfbench.measure.interleave`), each backend judged against eager from the paired
rounds (`perfbench.stats.speedup`, `perfbench.stats.verdict`), with an A/A control (a second, independently
built eager) calibrating the method on the machine as it was during those rounds.

Order of work, and why:

1. Diagnoses first (`perfbench.measure.diagnose`): eager must agree with itself and leave its batch alone;
   otherwise the group fails once with that diagnosis instead of every backend failing against a
   reference that was never stable (docs/design.md rule 9).
2. Each arm is built, checked and run a few steps in its own pass (cold start and peak memory are
   per arm; a failing arm is recorded at once and the rest of the group goes on). Nothing is torn
   down between arms, and inside `compile_variants.shared_dynamo` (the compile backends'
   `Backend.group_scope`) only the first compiled arm's prepare resets dynamo: a later reset
   would throw away an earlier arm's compiled code, which would recompile after its build (and
   `compile-freezing`, without freezing). Compile facts cover the whole point: its own pass's,
   then what the warm-up and rounds compiled and whether dynamo's recompile limit was hit
   (`perfbench.measure.compile_watch`).
3. With a DataLoader with worker processes, all arms read one shared loader, so no idle arm's
   workers prefetch while another arm is timed; each arm counts its own data wait.
4. The rounds run at the point's thread count (checked after every sample). An arm whose step
   raises, or that changes the thread count, is recorded as failed and the rounds run again
   without it. Anything else that goes wrong fails the points that have no row yet, with its
   message.
5. Rows: each arm keeps its own measurement (median, IQR, quantiles, raw samples); non-eager
   arms get `speedup_vs_eager`, its interval, `verdict` and `verdict_reason`; the eager row
   carries the control's interval in `extra["aa_control"]`. The family for the multiple-comparison
   correction is the whole sweep (`GroupTask.family_size`): each group's comparisons are tested by
   Holm at α·k/m (k comparisons here, m in the sweep), so the sweep's chance of any false
   `faster`/`slower` stays at most α while every row is final the moment it is written.
6. Contention (`perfbench.measure.contention`) is measured over the timed rounds and flags every arm;
   an oversubscribed group makes no call, every row carries its caveat (`perfbench.measure.caveat`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from perfbench.backends import BACKENDS
from perfbench.measure.after_rounds import changed_outputs
from perfbench.measure.caveat import apply_load_rule
from perfbench.measure.compile_watch import caveat_verdicts, merge_after_rounds, watching
from perfbench.measure.contention import judge_contention, snapshot
from perfbench.measure.diagnose import fail_on_diagnosis
from perfbench.measure.group_judge import judge_arms
from perfbench.measure.group_sharing import group_scopes, share_loader, shared_weights
from perfbench.measure.interleave import Interleaved, InterleaveSettings, ThreadsChanged, interleave
from perfbench.measure.point import (
    CpuPeakMemory,
    PointTask,
    error_columns,
    peak_memory,
    record_ok,
)
from perfbench.measure.quiet import wait_before_group
from perfbench.measure.worker_output import TimedOutput
from perfbench.measure.workload import Workload, build_workload
from perfbench.profiling.gpu_throttle import clocks_for, mark_throttled, throttle_facts
from perfbench.profiling.instruments import PointInstruments
from perfbench.results import facts
from perfbench.results.row import Row
from perfbench.scenario.loading import Scenario

CONTROL = "eager (A/A control)"
# what backends/compile_facts.py tracks
COMPILE_FACTS = (facts.COMPILES, facts.RECOMPILES, facts.COMPILE_IDS, facts.INDUCTOR_CACHE)
OWN_PASS_STEPS = 3  # steps each arm runs alone after its build: peak memory, first warm-up


@dataclass
class Arm:
    """One backend of the group (or the control), prepared and waiting for the rounds."""

    name: str
    task: PointTask
    workload: Workload
    inst: PointInstruments
    peak: tuple[str, int]
    cold_wall_s: float
    control: bool = False
    wait_s: float = 0.0
    compile_facts: dict[str, Any] = field(default_factory=dict)  # as its own pass left them
    row: Row = field(init=False)

    def __post_init__(self) -> None:
        self.row = Row.for_point(self.task.point_id, self.task.point)


class ArmFailed(Exception):
    """An arm's step raised during the rounds; the rounds run again without it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


Emit = Callable[[Row], None]
Begin = Callable[..., None]  # Activity.begin(point_id, phase='')


def measure_interleaved(
    scenario: Scenario,
    tasks: tuple[PointTask, ...],
    control: bool,
    family_size: int,
    emit: Emit,
    begin: Begin,
) -> None:
    """Measure the group (its first task is eager); every task's row goes to `emit` exactly once,
    whatever happens: an unexpected error fails the points that have no row yet, with its
    message, and the rows already emitted stand."""
    emitted: set[int] = set()

    def once(row: Row) -> None:
        emitted.add(row.point_id)
        emit(row)

    try:
        if not fail_on_diagnosis(scenario, tasks, once, begin):
            with watching() as watch:  # compiles and dynamo's recompile limit, rounds included
                _measure(scenario, tasks, control, family_size, once, watch.follow(begin))
    except Exception as err:
        for t in tasks:
            if t.point_id not in emitted:
                once(Row.for_point(t.point_id, t.point, **_failure(scenario, err)))


def _measure(
    scenario: Scenario,
    tasks: tuple[PointTask, ...],
    control: bool,
    family_size: int,
    emit: Emit,
    begin: Begin,
) -> None:
    eager_task = tasks[0]
    arms: list[Arm] = []
    try:
        with group_scopes(t.point.backend for t in tasks):  # Backend.group_scope
            for t in tasks:
                _build_arm(scenario, t, t.point.label(), False, arms, emit, begin)
                if t is eager_task and control:
                    _build_arm(scenario, t, CONTROL, True, arms, emit, begin)
        share_loader(arms)
        # a copy: an arm dropped from the rounds is still closed below (its DataLoader may
        # be the one the others read)
        _time_and_record(scenario, list(arms), family_size, emit, begin)
    finally:
        for arm in arms:
            arm.workload.close()
        for name in {t.point.backend for t in tasks}:
            BACKENDS[name].teardown()


def _build_arm(
    scenario: Scenario,
    task: PointTask,
    name: str,
    control: bool,
    arms: list[Arm],
    emit: Emit,
    begin: Begin,
) -> None:
    """Build, check and run one arm alone; a failure is emitted at once (not for the control)."""
    point = task.point
    begin(task.point_id, f"preparing {name} (build, backend prepare, first call, check)")
    cpu_memory = CpuPeakMemory() if point.device.value == "cpu" else None
    if point.device.value == "cuda":
        torch.cuda.reset_peak_memory_stats()
    inst = PointInstruments(
        task.profiling, point.label(), task.point_id, Path(task.run_dir), point.device.value
    )
    started = time.perf_counter()
    try:
        with inst.phase("build"):
            workload = build_workload(scenario, point, task.seed, shared_weights(point, arms))
        for _ in range(OWN_PASS_STEPS):
            workload.step()
        workload.sync()
    except Exception as err:
        if not control:
            row = Row.for_point(task.point_id, point, **_failure(scenario, err))
            row.wall_s = time.perf_counter() - started
            emit(row)
        return
    peak = peak_memory(cpu_memory)
    arm = Arm(name, task, workload, inst, peak, time.perf_counter() - started, control)
    # its own compiles: the trackers of compiled arms stay registered and see later arms' too
    arm.compile_facts = {k: workload.info[k] for k in COMPILE_FACTS if k in workload.info}
    arms.append(arm)


def _failure(scenario: Scenario, err: BaseException) -> dict[str, Any]:
    columns = error_columns(scenario.path, err)
    extra = columns.pop("extra", None)
    return {**columns, **({"extra": extra} if extra else {})}


def _time_and_record(
    scenario: Scenario, arms: list[Arm], family_size: int, emit: Emit, begin: Begin
) -> None:
    """Rounds until no arm fails in them, then one row per non-control arm."""
    built = _graphs_compiled()
    quiet = wait_before_group(arms[0].task, begin)  # --wait-quiet: before the group's first rounds
    while arms:
        first = arms[0].task
        budget = first.timing.budget_s * len(arms)
        begin(
            first.point_id,
            f"warming up {len(arms)} arms, then timing them in alternating rounds "
            f"(budget {budget:g} s of timed work)",
        )
        try:
            inter, shared = _rounds(arms, begin, built)
            break
        except ArmFailed as failed:
            _drop(arms, failed.name, _failure(scenario, failed.__cause__ or failed), emit)
        except ThreadsChanged as changed:  # measuring threads, not the backend: that arm alone
            _drop(arms, changed.arm, {"status": "failed", "error": str(changed)}, emit)
    else:
        return
    for name, why in changed_outputs(arms):  # state carried across calls: no time shown
        _drop(arms, name, {"status": "failed", "error": why}, emit)
    merge_after_rounds(arms)
    for arm in arms:
        if not arm.control:  # the control only calibrates: no row, no profile pass
            # flops count, --profile pass: a hang here is this arm's
            begin(arm.task.point_id, f"recording {arm.name} (flop count, profiling passes)")
            _record_arm(scenario, arm, inter, shared)
            if quiet is not None:
                arm.row.extra[facts.QUIET_WAIT] = quiet.as_dict()
    judge_arms(arms, inter, family_size)
    caveat_verdicts(arms)  # hit dynamo's recompile limit: the timed code was partly eager
    rows = [arm.row for arm in arms if not arm.control]
    apply_load_rule(
        rows, shared["contention"], arms[0].task.point.threads
    )  # perfbench.measure.caveat
    for arm in arms:
        if not arm.control:
            emit(arm.row)


def _drop(arms: list[Arm], name: str, columns: dict[str, Any], emit: Emit) -> None:
    """Take the arm out of the rounds; its row (not the control's) says why."""
    arm = next(a for a in arms if a.name == name)
    arms.remove(arm)
    if not arm.control:
        arm.row.update(**columns)
        emit(arm.row)


def _rounds(arms: list[Arm], begin: Begin, built: int) -> tuple[Interleaved, dict[str, Any]]:
    """The interleaved rounds over `arms`, with the facts every arm shares (contention, output
    printed while timed, graphs compiled since the arms were built (`built`: dynamo's count
    then) and inside the timed rounds)."""
    first = arms[0].task
    settings = InterleaveSettings(
        budget_s=first.timing.budget_s * len(arms),
        warmup_s=first.timing.warmup_s,
        min_warmup=first.timing.min_warmup,
        min_sample_s=first.timing.min_sample_s,
    )
    printed = TimedOutput()
    marks: dict[str, Any] = {}

    def before_timing() -> None:
        for arm in arms:
            arm.wait_s = 0.0
            arm.workload.feed.wait_s = 0.0
            arm.inst.before_timing()
        printed.start()
        marks["graphs"] = _graphs_compiled()
        marks["cpu"] = snapshot()
        marks["gpu"] = clocks_for(first.point.device.value)

    steps = {arm.name: _guarded(arm, begin) for arm in arms}
    for arm in arms:
        arm.inst.start_warmup(arm.workload.prepared.model, arm.task.point.backend)
    try:
        inter = interleave(
            steps,
            sync=arms[0].workload.sync,
            device=first.point.device.value,
            threads=first.point.threads,
            settings=settings,
            before_timing=before_timing,
            on_plan=lambda plan: begin(first.point_id, plan.announce()),  # the real plan
        )
    finally:
        printed.stop()
        for arm in arms:
            arm.inst.after_timing()
    contention = judge_contention(marks["cpu"], snapshot(), float(first.point.threads))
    graphs = _graphs_compiled()
    shared = {
        "contention": contention,
        "printed": printed.facts(),
        "recompiled_during_timing": graphs != marks["graphs"],
        "compiled_after_build": graphs - built,
        "gpu": throttle_facts(marks.get("gpu"), clocks_for(first.point.device.value)),
    }
    return inter, shared


def _guarded(arm: Arm, begin: Begin) -> Callable[[], Any]:
    """The arm's step, saying which point runs (for --timeout's blame) and naming the arm when
    its step raises."""
    step = arm.inst.wrap_step(arm.workload.step)
    point_id = arm.task.point_id

    def run() -> Any:
        begin(point_id)
        try:
            return step()
        except Exception as err:
            raise ArmFailed(arm.name) from err

    return run


def _graphs_compiled() -> int:
    """How many graphs dynamo has compiled in this process so far (never reset)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _record_arm(scenario: Scenario, arm: Arm, inter: Interleaved, shared: dict[str, Any]) -> None:
    row, workload = arm.row, arm.workload
    m = inter.measurement(arm.name)
    if workload.feed.uses_loader and arm.task.point.num_workers > 0:
        workload.feed.wait_s = arm.wait_s
    record_ok(row, scenario, arm.task.point, workload, m, arm.peak)
    contention = shared["contention"]
    row.contended = contention.contended
    row.extra.update(contention.as_dict())
    row.extra.update(shared["printed"])
    mark_throttled(row, shared["gpu"])  # SM clock and throttle reasons around the rounds (CUDA)
    row.extra.update(arm.compile_facts)
    row.extra[facts.RECOMPILED_DURING_TIMING] = shared["recompiled_during_timing"]
    row.extra[facts.COMPILED_AFTER_BUILD] = shared["compiled_after_build"]
    row.extra[facts.INTERLEAVED] = inter.summary()
    row.extra[facts.CHANGES] = workload.prepared.changes
    row.extra[facts.CHANGES_WHAT] = workload.prepared.changes_what
    row.wall_s = arm.cold_wall_s + inter.wall_s
    # GPU summary, input-bound hint, NVTX cost, --profile pass: after every arm is timed
    arm.inst.finish(workload, m.median, row.extra, row.data_wait_frac)
