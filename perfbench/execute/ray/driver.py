"""The Ray driver's loop for `--executor ray` (perfbench.execute.ray.executor): one streaming Ray task per
comparison group, its messages (perfbench.execute.ray.task) turned into rows as they arrive.

Faults, as the local worker handles them, plus one retry: a point past `--timeout` is stopped from
here (Ray has no per-task timeout: `ray.cancel(force=True)`), recorded as timeout and never retried,
and the rest of its group is resubmitted. A worker that dies is blamed on the point it was
measuring; its group's unfinished points are retried once, on another node where there is one
(soft node affinity); a point whose worker dies a second time is recorded as failed with both
deaths, and the rest of the group goes on without it. Rows already recorded are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfbench.execute.events import (
    Active,
    FilesReady,
    GroupStarted,
    ProgressFn,
    RecordFn,
    RowReady,
    WorkerFacts,
    WorkerMessage,
)
from perfbench.execute.ray.task import GroupPayload, group_task, versions
from perfbench.execute.rows import record_skipped
from perfbench.measure.group import GroupTask
from perfbench.plan.run_plan import ComparisonGroup, RunPlan
from perfbench.results import facts
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir

SLOT = "perfbench_timing_slot"  # a custom resource each node declares once: one timed group
POLL_S = 0.25  # how often the driver looks at the clock while waiting for messages


@dataclass
class _Attempt:
    """One Ray task measuring (what is left of) one group."""

    group: ComparisonGroup
    task: GroupTask
    number: int
    gen: Any  # ray.ObjectRefGenerator
    worker: dict[str, Any] | None = None  # the task's ("worker", facts) message
    active: int | None = None  # the point it measures, None between points
    since: float = 0.0  # time.monotonic() on the driver when that point began


@dataclass
class _Deaths:
    """Worker deaths per point: the first is retried, the second is the point's failure."""

    by_point: dict[int, list[str]] = field(default_factory=dict)

    def add(self, point_id: int, what: str) -> int:
        self.by_point.setdefault(point_id, []).append(what)
        return len(self.by_point[point_id])


class GroupDriver:
    """The driver's side of one run: submit attempts, route their messages, enforce timeouts.

    `run(groups)` returns when every point has its row; `cancel_all` stops what still runs
    (Ctrl-C). With `serial`, one attempt at a time in the cluster (no timing slot declared)."""

    def __init__(
        self,
        plan: RunPlan,
        run_dir: RunDir,
        record: RecordFn,
        progress: ProgressFn,
        *,
        serial: bool,
        run_token: str,
    ) -> None:
        import ray

        self.ray = ray
        self.plan, self.run_dir = plan, run_dir
        self.serial, self.run_token = serial, run_token
        self.attempts: list[_Attempt] = []
        self.nodes: dict[str, str] = {}  # node id -> host, of nodes that measured something
        self.record, self.progress = record, progress
        self.deaths = _Deaths()
        self.groups_total = 0
        self.started: list[str] = []  # group ids in the order their first attempt began
        scenario = Path(plan.scenario_path).resolve()
        self.scenario_name, self.driver_dir = scenario.name, str(scenario.parent)
        self.remote = ray.remote(group_task)
        self.expected = versions()

    def run(self, groups: Sequence[ComparisonGroup]) -> None:
        """Record skipped points, submit the groups, and handle messages until all have ended."""
        queued = []
        for group in groups:
            task = self.record_skipped(group)
            if task.points:
                queued.append((group, task))
        self.groups_total = len(queued)
        while queued or self.attempts:
            while queued and not (self.serial and self.attempts):
                self.submit(*queued.pop(0), number=1)
            self.step()

    def cancel_all(self) -> None:
        for attempt in self.attempts:
            _cancel(attempt)
        self.attempts.clear()

    def record_skipped(self, group: ComparisonGroup) -> GroupTask:
        """Record the group's skipped points now; the runnable rest as one GroupTask."""
        return record_skipped(group, self.plan, self.run_dir, self.record)

    def submit(
        self, group: ComparisonGroup, task: GroupTask, number: int, avoid: str | None = None
    ) -> None:
        """Start one attempt at `task`, on another node than `avoid` where there is one."""
        point = task.points[0].point
        cpus = point.threads + point.num_workers  # DataLoader workers are processes: cores too
        gpu = point.device.value == "cuda"
        missing = _unplaceable(self.ray.nodes(), cpus, gpu, slot=not self.serial)
        if missing:
            self._fail(group, task.points, missing, None)
            return
        options: dict[str, Any] = {
            "num_cpus": cpus,
            "num_gpus": 1 if gpu else 0,
            "max_retries": 0,  # a death is retried here, on another node, with what is left
            "name": f"perfbench {group.group_id}",
        }
        if not self.serial:
            options["resources"] = {SLOT: 1}
        slot = not self.serial
        other = _other_node(self.ray.nodes(), avoid, cpus, gpu, slot) if avoid else None
        if other:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(other, soft=True)
        payload = GroupPayload(
            task=task,
            scenario_name=self.scenario_name,
            driver_dir=self.driver_dir,
            expected=self.expected,
            run_token=self.run_token,
            cpus=cpus,
            gpu=gpu,
            attempt=number,
        )
        try:
            gen = self.remote.options(**options).remote(payload)
        except Exception as err:  # e.g. the scenario's folder is too big to ship
            self._fail(group, task.points, f"could not submit the group to Ray: {err}", None)
            return
        self.attempts.append(_Attempt(group, task, number, gen))

    def step(self) -> None:
        """Handle what arrived within POLL_S, then stop any point past its timeout."""
        attempts = self.attempts
        if attempts:
            ready, _ = self.ray.wait([a.gen for a in attempts], num_returns=1, timeout=POLL_S)
            for attempt in [a for a in attempts if any(a.gen is r for r in ready)]:
                self._next(attempt)
        self._check_timeouts()

    def _next(self, attempt: _Attempt) -> None:
        from ray.exceptions import RayError, RayTaskError, RuntimeEnvSetupError, TaskCancelledError

        try:
            message = self.ray.get(next(attempt.gen))
        except StopIteration:
            self._finish(attempt)
            why = "the Ray task ended without a row for this point (a bug in perfbench)"
            self._fail(attempt.group, attempt.task.points, why, attempt.worker)
            return
        except TaskCancelledError:
            self._finish(attempt)
            return
        except (RayTaskError, RuntimeEnvSetupError) as err:  # our code or the environment: no retry
            self._finish(attempt)
            why = f"the Ray task failed: {_first_line(getattr(err, 'cause', None) or err)}"
            self._fail(attempt.group, attempt.task.points, why, attempt.worker)
            return
        except RayError as err:  # the worker or its node died
            self._finish(attempt)
            self._died(attempt, err)
            return
        self._handle(attempt, message)

    def _handle(self, attempt: _Attempt, message: WorkerMessage) -> None:
        if isinstance(message, WorkerFacts):
            worker = message.facts
            attempt.worker = worker
            self.nodes[worker["node_id"]] = worker["host"]
            if attempt.group.group_id not in self.started:
                self.started.append(attempt.group.group_id)
            number = self.started.index(attempt.group.group_id) + 1
            self.progress(GroupStarted(number, self.groups_total, attempt.group, worker["host"]))
        elif isinstance(message, Active):
            attempt.active = message.point_id
            attempt.since = time.monotonic() - message.elapsed_s
        elif isinstance(message, FilesReady):
            self._write_files(message.files)
        elif isinstance(message, RowReady):
            row = message.row
            self._write_files(message.files)  # artefacts first: the row links to them
            row.extra[facts.WORKER]["attempt"] = attempt.number
            deaths = self.deaths.by_point.get(row.point_id)
            if deaths:
                row.extra[facts.WORKER]["earlier_deaths"] = list(deaths)
            attempt.task = attempt.task.without(row.point_id)
            self.record(row)

    def _write_files(self, files: dict[str, bytes]) -> None:
        """Artefacts from the worker, at the same relative paths as a local run writes them."""
        for relative, data in files.items():
            if Path(relative).is_absolute() or ".." in Path(relative).parts:
                raise ValueError(
                    f"a Ray worker sent an artefact outside the run folder: {relative}"
                )
            path = Path(self.run_dir.path) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def _finish(self, attempt: _Attempt) -> None:
        self.attempts.remove(attempt)

    def _check_timeouts(self) -> None:
        timeout = self.plan.timeout_s
        if timeout is None:
            return
        now = time.monotonic()
        for attempt in list(self.attempts):
            culprit = next((p for p in attempt.task.points if p.point_id == attempt.active), None)
            if culprit is None or now - attempt.since < timeout:
                continue
            _cancel(attempt)
            self._finish(attempt)
            where = f" on host {attempt.worker['host']}" if attempt.worker else ""
            self._row(
                attempt.group,
                culprit,
                "timeout",
                f"point stopped: exceeded --timeout {timeout:g} s{where} (the Ray task was "
                "cancelled; a timeout is never retried)",
                attempt.worker,
            )
            self._resubmit(attempt, attempt.task.without(culprit.point_id), attempt.number)

    def _died(self, attempt: _Attempt, err: Exception) -> None:
        """Blame the point the worker was measuring (the first left, before any); retry once."""
        points = attempt.task.points
        if not points:
            return
        culprit = next((p for p in points if p.point_id == attempt.active), points[0])
        worker = attempt.worker or {}
        where = f"host {worker.get('host', '?')} (node {str(worker.get('node_id', '?'))[:8]})"
        count = self.deaths.add(culprit.point_id, f"{where}: {_first_line(err)}")
        avoid = worker.get("node_id")
        if count < 2:
            self._resubmit(attempt, attempt.task, attempt.number + 1, avoid)
            return
        history = "; then ".join(self.deaths.by_point[culprit.point_id])
        self._row(
            attempt.group,
            culprit,
            "failed",
            f"the Ray worker died while measuring this point, twice (retried once): {history}",
            attempt.worker,
        )
        self._resubmit(attempt, attempt.task.without(culprit.point_id), attempt.number + 1, avoid)

    def _resubmit(
        self, attempt: _Attempt, task: GroupTask, number: int, avoid: str | None = None
    ) -> None:
        if task.points:
            self.submit(attempt.group, task, number, avoid)

    def _fail(
        self, group: ComparisonGroup, points: Sequence[Any], why: str, worker: dict | None
    ) -> None:
        for point_task in points:
            self._row(group, point_task, "failed", why, worker)

    def _row(
        self, group: ComparisonGroup, point_task: Any, status: str, error: str, worker: dict | None
    ) -> None:
        """A row the driver writes for a point that gave none (timeout, death, refusal)."""
        row = Row.for_point(point_task.point_id, point_task.point, group_id=group.group_id)
        row.update(status=status, error=error)
        if worker:  # stopped_at: the driver's wall clock when it gave up on the task
            row.update(
                host=worker["host"], extra={facts.WORKER: {**worker, "stopped_at": time.time()}}
            )
        self.record(row)


def _cancel(attempt: _Attempt) -> None:
    import ray

    try:
        ray.cancel(attempt.gen, force=True)
    except Exception:  # already finished, or its worker is gone: nothing left to stop
        pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return f"{type(err).__name__}: {text.splitlines()[0]}"


def _fits(node: dict[str, Any], cpus: int, gpu: bool, slot: bool) -> bool:
    have = node.get("Resources", {})
    return (
        node.get("Alive", False)
        and have.get("CPU", 0) >= cpus
        and (not gpu or have.get("GPU", 0) >= 1)
        and (not slot or have.get(SLOT, 0) >= 1)
    )


def _unplaceable(nodes: list[dict[str, Any]], cpus: int, gpu: bool, *, slot: bool) -> str | None:
    """Why no node of the cluster can ever run the group (None: one can): Ray would wait forever."""
    if any(_fits(n, cpus, gpu, slot) for n in nodes):
        return None
    wants = f"{cpus} CPU(s)" + (", a GPU" if gpu else "") + (f" and one {SLOT}" if slot else "")
    offers = "; ".join(
        f"{n.get('NodeManagerHostname', '?')}: "
        + ", ".join(
            f"{k}={v:g}"
            for k, v in sorted(n.get("Resources", {}).items())
            if k in ("CPU", "GPU", SLOT)
        )
        for n in nodes
        if n.get("Alive")
    )
    return f"no node of the Ray cluster has {wants} (alive nodes: {offers or 'none'})"


def _other_node(
    nodes: list[dict[str, Any]], avoid: str, cpus: int, gpu: bool, slot: bool
) -> str | None:
    """An alive node other than `avoid` that could run the group, for a retry after a death."""
    for node in nodes:
        if node["NodeID"] != avoid and _fits(node, cpus, gpu, slot):
            return node["NodeID"]
    return None
