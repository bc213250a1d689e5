"""The measuring child process, so `--timeout` can stop a hung point and a crash cannot take the
sweep down with it.

One worker serves a whole sweep (torch's import cost is paid once); after a timeout or a crash it
is killed and replaced by a fresh one for the next point. The child ignores SIGINT: Ctrl-C is the
parent's to handle (it kills the child, keeps every row already written, and rebuilds the report).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from perfbench.execute.events import GroupDone, PhaseText, RowReady, WorkerMessage
from perfbench.execute.heartbeat import Heartbeat
from perfbench.execute.main_guard import FIX, REIMPORT_EXIT
from perfbench.measure.group import Activity, GroupTask
from perfbench.measure.point import PointTask
from perfbench.measure.step_limit import current_limit
from perfbench.measure.timing import TimingSettings
from perfbench.measure.worker_output import OutputCapture, output_note
from perfbench.results.row import Row


def _child_main(conn: Connection, env: dict[str, str], activity_slots: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    capture = OutputCapture.install()  # fds 1 and 2 -> RUN_DIR/logs/<point_id>.log, per point
    from perfbench.measure.group import Activity, measure_group
    from perfbench.scenario.loading import ScenarioError, load_scenario

    activity = Activity(activity_slots)
    activity.say = lambda text: conn.send(PhaseText(text))
    scenarios: dict[str, Any] = {}
    while True:
        try:
            task: GroupTask | None = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            scenario = scenarios.get(task.scenario_path)
            if scenario is None:
                scenario = scenarios[task.scenario_path] = load_scenario(task.scenario_path)
            measure_group(scenario, task, lambda row: conn.send(RowReady(row)), activity, capture)
        except ScenarioError as err:
            for point_task in task.points:
                conn.send(RowReady(_load_error_row(point_task, task.group_id, err)))
        conn.send(GroupDone())


def _load_error_row(task: PointTask, group_id: str, err: Exception) -> Row:
    return Row.for_point(
        task.point_id, task.point, group_id=group_id, status="failed", error=str(err)
    )


@dataclass
class WorkerResult:
    """How a group ended in the worker. `rows` holds every row the worker sent, in order (each
    was already handed to `on_row`); on a timeout or a death, `culprit` is the point the worker
    was working on (None if it was between points)."""

    status: str  # "done" | "timeout" | "died"
    rows: list[Row] = field(default_factory=list)
    detail: str = ""
    culprit: int | None = None


class Worker:
    """A replaceable child process that measures one comparison group at a time."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._ctx = mp.get_context("spawn")  # fork after torch threads exist is unsafe
        self._env = dict(env or {})
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._slots = self._ctx.Array(
            "d", [Activity.IDLE] + [0.0] * (Activity.SLOTS - 1), lock=False
        )
        self.activity = Activity(self._slots)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        parent_conn, child_conn = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            # not a daemon: a daemonic process may not start children, and a scenario's DataLoader
            # with num_workers > 0 must. If the parent dies, the child's recv() sees EOF and exits.
            target=_child_main,
            args=(child_conn, self._env, self._slots),
            name="perfbench-worker",
            daemon=False,
        )
        self._proc.start()
        child_conn.close()
        self._conn = parent_conn

    def run(
        self,
        task: GroupTask,
        timeout_s: float | None,
        on_row: Callable[[Row], None] = lambda row: None,
        on_phase: Callable[[str], None] = lambda text: None,
        timing: TimingSettings | None = None,
    ) -> WorkerResult:
        """Send one group and collect its rows as they come (each goes to `on_row` at once).

        `timeout_s` bounds the work on any one point; without it `timing`'s default limit does
        (`perfbench.measure.step_limit`; neither: no limit). The worker says which point it works on and
        since when, so a hang is stopped and blamed on that point. A phase that runs long gets a
        heartbeat line through `on_phase` every ~10 s."""
        self.start()
        assert self._conn is not None and self._proc is not None
        self.activity.idle()
        self._conn.send(task)
        result = WorkerResult(status="done")
        beat = Heartbeat(on_phase)
        while True:
            try:
                if self._conn.poll(0.2):
                    message: WorkerMessage = self._conn.recv()
                    if isinstance(message, GroupDone):
                        return result
                    if isinstance(message, PhaseText):
                        on_phase(message.text)
                        beat.phase(message.text)
                        continue
                    assert isinstance(message, RowReady), message
                    result.rows.append(message.row)
                    on_row(message.row)
                    continue
            except (EOFError, OSError):
                pass
            culprit, since = self.activity.current()
            if not self._proc.is_alive():
                result.status, result.culprit = "died", culprit
                result.detail = self._death_detail() + _note(task, culprit)
                return result
            if culprit is None:
                continue
            is_step, slowest = self.activity.step_facts()
            limit, what = current_limit(timeout_s, timing, is_step, slowest)
            if limit is not None and time.monotonic() - since >= limit:
                self.kill()
                result.status, result.culprit = "timeout", culprit
                result.detail = f"exceeded {what}" + _note(task, culprit)
                return result
            beat.tick(time.monotonic() - since, limit, is_step)

    def _death_detail(self) -> str:
        assert self._proc is not None
        code = self._proc.exitcode
        self._reset()
        detail = f"the worker process died (exit code {code})"
        if (
            code == REIMPORT_EXIT
        ):  # perfbench.execute.main_guard: an unguarded script started it again
            detail += f": it re-imported the main script, which starts perfbench again: {FIX}"
        elif code == -signal.SIGKILL:
            detail += ": killed with SIGKILL, which is what the kernel's out-of-memory killer sends"
        elif code is not None and code < 0:
            detail += f": killed by signal {signal.Signals(-code).name}"
        return detail

    def kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2)
        self._reset()

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(5)
            except (BrokenPipeError, OSError):
                pass
        self.kill()

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._proc = None


def _note(task: GroupTask, point_id: int | None) -> str:
    """Where the point's captured output is, for an error message ("" when no point was active)."""
    if point_id is None or not task.points:
        return ""
    return output_note(task.points[0].run_dir, point_id)
