"""perfbench.execute.process_runs: a group timed in k fresh processes, its rows merged and re-judged
(issue 22). The processes are faked: `run_once` hands back rows as a worker would."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from perfbench.execute.process_runs import Processes, plan_processes, share_budget
from perfbench.measure.group import GroupTask
from perfbench.plan.sweep import ConfigError, check_processes
from perfbench.results.row import Row
from perfbench.stats.speedup import PairedEstimate
from perfbench.stats.two_level import estimate_record


def _rows(theta: float, control: float, step_ms: float = 0.02) -> list[Row]:
    """One process's rows: eager (with its A/A control) and compile at ln(speedup) = theta."""
    est = estimate_record(PairedEstimate(theta, 0.002, 10, 40))
    ctl = estimate_record(PairedEstimate(control, 0.002, 10, 40))
    lo, hi = math.exp(theta - 0.005), math.exp(theta + 0.005)
    return [
        Row.from_dict(
            {
                "point_id": 0,
                "backend": "eager",
                "status": "ok",
                "median_ms": step_ms,
                "contended": False,
                "extra": {"aa_control": {"speedup": math.exp(control), "estimate": ctl}},
            }
        ),
        Row.from_dict(
            {
                "point_id": 1,
                "backend": "compile",
                "status": "ok",
                "median_ms": step_ms / math.exp(theta),
                "contended": theta > 0.15,
                "speedup_vs_eager": math.exp(theta),
                "speedup_ci_low": lo,
                "speedup_ci_high": hi,
                "verdict": "faster",
                "extra": {"estimate": est, "changes": 2, "changes_what": "graphs captured"},
            }
        ),
    ]


TASK = GroupTask("s.py", "g", (), family_size=1)


def in_processes(task, first, k, why, delta, run_once):  # type: ignore[no-untyped-def]
    """One group's processes one after another, as the runner's passes run them."""
    procs = Processes.after_first(task, first, k, why)
    if procs is None:
        return first
    for _ in range(2, procs.k + 1):
        procs.add(*run_once(procs.rest))
    return procs.rows(delta)


def test_short_step_runs_three_processes_and_merges() -> None:
    later = iter([_rows(0.10, -0.01), _rows(0.16, 0.0)])
    calls: list[GroupTask] = []

    def run_once(task: GroupTask) -> tuple[list[Row], str]:
        calls.append(task)
        return next(later), ""

    rows = in_processes(TASK, _rows(0.04, 0.01), 3, "auto", 0.03, run_once)
    assert len(calls) == 2
    compile_row = rows[1]
    assert compile_row.speedup_vs_eager == pytest.approx(math.exp(0.10))
    procs = compile_row.extra["processes"]
    assert procs["count"] == 3 and procs["method"] == "between"
    assert [p["speedup"] for p in procs["per_process"]] == pytest.approx(
        [math.exp(v) for v in (0.04, 0.10, 0.16)]
    )
    assert compile_row.extra["estimate"]["df"] == 2
    low, high = compile_row.speedup_ci_low, compile_row.speedup_ci_high
    assert low < math.exp(0.04) and high > math.exp(0.16)  # t(2) on three spread estimates
    assert compile_row.verdict == "inconclusive"
    assert compile_row.contended is True  # one process was
    assert rows[0].verdict_reason.startswith("A/A control")
    assert rows[0].extra["aa_control"]["estimate"]["processes"] == 3


def test_one_process_keeps_its_own_verdict() -> None:
    def run_once(task: GroupTask) -> tuple[list[Row], str]:
        raise AssertionError("no second process when k = 1")

    rows = in_processes(TASK, _rows(0.1, 0.0, step_ms=5.0), 1, "quick", 0.03, run_once)
    assert rows[1].verdict == "faster"
    assert rows[1].extra["processes"] == {"count": 1, "why": "quick"}


def test_requested_processes_and_a_lost_process() -> None:
    outcomes = iter([(_rows(0.11, 0.0), ""), ([], "exceeded --timeout 5 s"), (_rows(0.09, 0), "")])
    rows = in_processes(
        TASK, _rows(0.1, 0.0, 5.0), 4, "--processes 4", 0.03, lambda task: next(outcomes)
    )
    procs = rows[1].extra["processes"]
    assert procs["count"] == 3 and procs["why"] == "--processes 4"
    assert procs["lost"] == ["process 3: exceeded --timeout 5 s"]


def test_failed_first_process_rows_stand() -> None:
    first = _rows(0.1, 0.0)
    first[1] = Row.from_dict(
        {"point_id": 1, "backend": "compile", "status": "failed", "error": "boom"}
    )
    first[0].extra.pop("aa_control")
    rows = in_processes(
        TASK, first, 3, "auto", 0.03, lambda task: pytest.fail("nothing to combine")
    )
    assert rows[1].status == "failed" and "processes" not in rows[1].extra
    assert "left nothing to combine" in rows[0].extra["processes"]["why"]


@pytest.mark.parametrize("k", [0, 2, -1])
def test_processes_flag_rejects_two_and_nonpositive(k: int) -> None:
    with pytest.raises(ConfigError, match="--processes must be 1 or >= 3"):
        check_processes(k, "local")


def test_processes_flag_is_local_only() -> None:
    check_processes(None, "ray")
    check_processes(1, "ray")
    with pytest.raises(ConfigError, match="Ray times each group once"):
        check_processes(3, "ray")


class FakeWorker:
    """Stands in for perfbench.execute.worker.Worker: each pass (a fresh process: `close` before
    it) gives compile another estimate; records which points ran, with what budget; `stop_at`
    raises Ctrl-C at that run, `model_error_group` fails that group's first process as a model
    no point can use."""

    def __init__(self, stop_at: int = -1, model_error_group: str = "") -> None:
        self.runs: list[tuple[int, ...]] = []
        self.budgets: list[float] = []
        self.closed = 0
        self.stop_at, self.model_error_group = stop_at, model_error_group

    def run(
        self, task, timeout_s, on_row=lambda row: None, on_phase=lambda text: None, timing=None
    ):  # type: ignore[no-untyped-def]
        from perfbench.execute.worker import WorkerResult

        if len(self.runs) == self.stop_at:
            raise KeyboardInterrupt
        theta = (0.05, 0.10, 0.15)[self.closed]
        self.runs.append(tuple(p.point_id for p in task.points))
        self.budgets.append(task.points[0].timing.budget_s)
        by_backend = {r.backend: r for r in _rows(theta, 0.0)}
        rows = []
        for p in task.points:
            mine = by_backend[p.point.backend]
            row = dataclasses.replace(mine, point_id=p.point_id, extra=dict(mine.extra))
            if task.group_id == self.model_error_group:
                row = Row.from_dict(
                    {"point_id": p.point_id, "backend": p.point.backend, "status": "failed"}
                )
                row.extra["model_error"] = True
            rows.append(row)
            on_row(row)
        return WorkerResult(status="done", rows=rows)

    def close(self) -> None:
        self.closed += 1

    def kill(self) -> None:
        pass


def _plan(write_scenario, *sets: str):  # type: ignore[no-untyped-def]
    from perfbench.plan.run_plan import RunRequest, plan_run
    from perfbench.scenario.loading import load_scenario
    from tests.conftest import TINY_MLP

    return plan_run(load_scenario(write_scenario(TINY_MLP)), RunRequest(sets=sets))


def _run_groups(plan, tmp_path, worker, record, phases=None):  # type: ignore[no-untyped-def]
    from perfbench.execute import runner
    from perfbench.execute.events import Phase
    from perfbench.results.rundir import RunDir

    def progress(event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, Phase) and phases is not None:
            phases.append(event.text)

    runner._run_groups(plan.groups, plan, RunDir(tmp_path / "r"), worker, record, progress)


def test_runner_times_a_short_step_group_in_fresh_workers(write_scenario, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The local executor's side: the group runs three times, the worker is closed (a fresh
    process) before the second and third, and one merged row per point is recorded."""
    plan = _plan(write_scenario, "backend=eager,compile", "batch_size=4")
    worker, recorded = FakeWorker(), []
    _run_groups(plan, tmp_path, worker, recorded.append)
    assert len(worker.runs) == 3 and worker.closed == 2
    # the three processes share the budget: each timed a third of it
    assert worker.budgets == [plan.timing.budget_s / 3] * 3
    assert [r.backend for r in recorded] == ["eager", "compile"]
    compile_row = recorded[1]
    assert compile_row.extra["processes"]["count"] == 3
    assert compile_row.speedup_vs_eager == pytest.approx(math.exp(0.10))


def test_later_processes_pass_over_every_group_in_one_fresh_worker(
    write_scenario, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Two groups: every group once, then a pass per later process, each pass in one fresh
    worker (three worker starts for the sweep, not three per group); rows are recorded per group
    once merged, each from three processes."""
    plan = _plan(write_scenario, "backend=eager,compile", "batch_size=4,8")
    ids = [tuple(p.point_id for p in g.points) for g in plan.groups]
    worker, recorded, phases = FakeWorker(), [], []
    _run_groups(plan, tmp_path, worker, recorded.append, phases)
    assert len(ids) == 2 and worker.runs == ids * 3
    assert worker.closed == 2  # before the second and the third pass, not per group
    assert [r.point_id for r in recorded] == [i for g in ids for i in g]
    assert all(r.extra["processes"]["count"] == 3 for r in recorded)
    assert [r.speedup_vs_eager for r in recorded if r.backend == "compile"] == pytest.approx(
        [math.exp(0.10)] * 2
    )
    again = [t for t in phases if "again in fresh process" in t]
    assert [t.split(" (")[0] for t in again] == [
        f"timing group {g}/2 again in fresh process {j} of 3" for j in (2, 3) for g in (1, 2)
    ]


def test_ctrl_c_between_passes_records_what_was_measured(write_scenario, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C in the second pass's second group: nothing measured is lost. Group 1 is merged
    from its two processes, group 2 keeps its first process's rows; both notes say so."""
    plan = _plan(write_scenario, "backend=eager,compile", "batch_size=4,8")
    worker, recorded = FakeWorker(stop_at=3), []
    with pytest.raises(KeyboardInterrupt):
        _run_groups(plan, tmp_path, worker, recorded.append)
    assert len(recorded) == 4
    notes = [r.extra["processes"] for r in recorded]
    assert [n["count"] for n in notes] == [2, 2, 1, 1]
    assert "interrupted after 2 of 3 processes" in notes[0]["why"]
    assert "interrupted after 1 of 3 processes" in notes[3]["why"]
    assert recorded[3].speedup_vs_eager == pytest.approx(math.exp(0.05))  # as process 1 judged


def test_a_model_stop_in_a_later_group_keeps_the_waiting_groups_rows(
    write_scenario, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The second group's model is unusable (the run stops there, runner.ModelStop): the first
    group, waiting for its later processes, is still recorded from the process it had."""
    from perfbench.execute.runner import ModelStop

    plan = _plan(write_scenario, "backend=eager,compile", "batch_size=4,8")
    worker, recorded = FakeWorker(model_error_group=plan.groups[1].group_id), []

    def record(row: Row) -> None:
        recorded.append(row)
        if row.extra.get("model_error"):
            raise ModelStop("no point can use this model")

    with pytest.raises(ModelStop):
        _run_groups(plan, tmp_path, worker, record)
    assert len(worker.runs) == 2  # no later pass
    first_ids = [p.point_id for p in plan.groups[0].points]
    assert [r.status for r in recorded] == ["failed", "ok", "ok"]
    assert [r.point_id for r in recorded[1:]] == first_ids
    assert all(r.extra["processes"]["count"] == 1 for r in recorded[1:])


def test_plan_refuses_two_processes_and_keeps_the_request(write_scenario) -> None:  # type: ignore[no-untyped-def]
    from perfbench.plan.run_plan import RunRequest, plan_run
    from perfbench.scenario.loading import load_scenario
    from tests.conftest import TINY_MLP

    scenario = load_scenario(write_scenario(TINY_MLP))
    with pytest.raises(ConfigError, match="covers about 88%"):
        plan_run(scenario, RunRequest(processes=2))
    assert plan_run(scenario, RunRequest(processes=4)).processes == 4
    assert plan_run(scenario, RunRequest()).processes is None


def test_processes_are_planned_before_the_first_and_share_the_budget(write_scenario) -> None:  # type: ignore[no-untyped-def]
    """k comes from the group and the budget, never from a measured ratio or step: three for a
    group with a backend to judge (measured at µs and ms steps, README), one for eager alone or
    a quick look; `--processes K` wins, and times a lone A/A control too."""
    from perfbench.execute.rows import record_skipped
    from perfbench.plan.run_plan import RunRequest, plan_run
    from perfbench.results.rundir import RunDir
    from perfbench.scenario.loading import load_scenario
    from tests.conftest import TINY_MLP

    scenario = load_scenario(write_scenario(TINY_MLP))

    def task(*sets: str, **request):  # type: ignore[no-untyped-def]
        plan = plan_run(scenario, RunRequest(sets=sets, **request))
        return record_skipped(plan.groups[0], plan, RunDir(Path("/nonexistent")), lambda r: None)

    judged = task("backend=eager,compile", "batch_size=4")
    k, why = plan_processes(judged, None)
    assert k == 3 and "1/3 of the budget" in why
    shared = share_budget(judged, k)
    assert [p.timing.budget_s for p in shared.points] == pytest.approx(
        [p.timing.budget_s / 3 for p in judged.points]
    )
    assert share_budget(judged, 1) is judged
    alone = task("backend=eager", "batch_size=4")
    assert plan_processes(alone, None)[0] == 1
    assert plan_processes(alone, 3) == (3, "--processes 3")
    quick = task("backend=eager,compile", "batch_size=4", budget_s=0.2)
    k, why = plan_processes(quick, None)
    assert k == 1 and "budget 0.2 s" in why
