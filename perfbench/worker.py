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
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from perfbench.point import PointTask
from perfbench.worker_output import OutputCapture, output_note


def _child_main(conn: Connection, env: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    capture = OutputCapture.install()  # fds 1 and 2 -> RUN_DIR/logs/<point_id>.log, per point
    from perfbench.point import measure_point
    from perfbench.scenario import ScenarioError, load_scenario

    scenarios: dict[str, Any] = {}
    while True:
        try:
            task: PointTask | None = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        capture.begin(task.run_dir, task.point_id)
        try:
            scenario = scenarios.get(task.scenario_path)
            if scenario is None:
                scenario = scenarios[task.scenario_path] = load_scenario(task.scenario_path)
            row = measure_point(scenario, task)
        except ScenarioError as err:
            row = {
                "point_id": task.point_id,
                **task.point.as_dict(),
                "status": "failed",
                "error": str(err),
            }
        capture.end().annotate(row)
        conn.send(row)


@dataclass
class WorkerResult:
    row: dict[str, Any] | None
    status: str  # "done" | "timeout" | "died"
    detail: str = ""


class Worker:
    """A replaceable child process that measures one point at a time."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._ctx = mp.get_context("spawn")  # fork after torch threads exist is unsafe
        self._env = dict(env or {})
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None

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
            args=(child_conn, self._env),
            name="perfbench-worker",
            daemon=False,
        )
        self._proc.start()
        child_conn.close()
        self._conn = parent_conn

    def run(self, task: PointTask, timeout_s: float | None) -> WorkerResult:
        """Send one task and wait for its row, at most timeout_s (None: no limit)."""
        self.start()
        assert self._conn is not None and self._proc is not None
        self._conn.send(task)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            try:
                if self._conn.poll(wait):
                    return WorkerResult(row=self._conn.recv(), status="done")
            except (EOFError, OSError):
                pass
            if not self._proc.is_alive():
                code = self._proc.exitcode
                self._reset()
                detail = f"the worker process died (exit code {code})"
                if code == -signal.SIGKILL:
                    detail += ": killed with SIGKILL, which is what the kernel's out-of-memory killer sends"
                elif code is not None and code < 0:
                    detail += f": killed by signal {signal.Signals(-code).name}"
                detail += output_note(task.run_dir, task.point_id)
                return WorkerResult(row=None, status="died", detail=detail)
            if deadline is not None and time.monotonic() >= deadline:
                self.kill()
                detail = f"exceeded --timeout {timeout_s:g} s"
                detail += output_note(task.run_dir, task.point_id)
                return WorkerResult(row=None, status="timeout", detail=detail)

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
