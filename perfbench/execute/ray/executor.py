"""`--executor ray`: each comparison group is one Ray task; rows stream back into the run folder.

Intervals: each group is timed in one task, so k = 1 (one process; `--processes K` is refused with
Ray): the local executor's fresh-process combination (perfbench.execute.process_runs) does not run here.

We run on the engine teams already operate (laptops, Slurm-launched clusters, KubeRay) and write
no scheduler. What Ray does not give, this module adds:

- Exclusive timing per node. Ray's CPUs and GPUs are bookkeeping, not isolation: two tasks on one
  node share its cores. Every group task also asks for one `perfbench_timing_slot`, a custom
  resource each node declares once, so one group at a time is timed on a node; the task pins its
  process to the cores it asked for (perfbench.execute.ray.task.pin_cores). A cluster whose nodes do not
  declare the slot is run one group at a time across the whole cluster, with a warning.
- The scenario travels with the task: its folder is Ray's `working_dir`, so sibling modules and
  data files are there on every node (big folders such as reports/ are excluded).
- Per-point timeout: Ray has none. The task streams which point it measures and for how long; the
  driver cancels the task (force) when a point passes `--timeout`, records it as timeout, never
  retries it, and resubmits the rest of the group.
- A worker that dies (killed, OOM, node lost) is retried once, on another node where there is one,
  with the points it had not finished; a point whose worker dies twice is recorded as failed with
  both deaths, and the rest of its group goes on without it.

The task itself is perfbench.execute.ray.task.group_task; it calls perfbench.measure.group.measure_group, the unit
the local worker runs, and does not depend on how that times.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfbench.execute.events import ProgressFn, RecordFn, RunWarning
from perfbench.execute.executor import ExecutorError
from perfbench.execute.ray.driver import SLOT, GroupDriver
from perfbench.plan.run_plan import ComparisonGroup, RunPlan
from perfbench.results.rundir import RunDir

OBJECT_STORE_BYTES = 200 * 2**20  # a local start's object store; rows and artefacts are small
# not shipped with the scenario's folder (Ray also honours the folder's .gitignore)
EXCLUDES = (
    ".git",
    "reports",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    "node_modules",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    ".mypy_cache",
)


class RayExecutor:
    """Measures each comparison group as one Ray task; see the module docstring."""

    name = "ray"

    def __init__(self, address: str | None = None, *, object_store_bytes: int = OBJECT_STORE_BYTES):
        self.address = address  # None: start a local Ray instance; "auto" or host:port: join
        self._object_store_bytes = object_store_bytes
        self._owned = False  # we called ray.init, so we call ray.shutdown
        self._serial = False  # no node declares the timing slot: one group at a time
        self._warnings: list[str] = []
        self._driver: GroupDriver | None = None
        self._run_token = uuid.uuid4().hex[:12]

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, plan: RunPlan, run_path: Path | None = None) -> RayExecutor:
        """Join the cluster at `address`, or start a local instance, with the scenario's folder
        as the job's working_dir (Ray ships local folders only per job, not per task). Raises
        ExecutorError when it cannot."""
        import ray

        if ray.is_initialized():
            raise ExecutorError(
                "Ray is already initialised in this process: perfbench calls ray.init itself, to "
                "ship the scenario's folder as the job's working_dir (ray.shutdown() first)"
            )
        quiet = {
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "runtime_env": runtime_env(plan, run_path),
        }
        if self.address is None:
            ray.init(
                num_cpus=len(os.sched_getaffinity(0)),
                resources={SLOT: 1},
                object_store_memory=self._object_store_bytes,
                include_dashboard=False,
                **quiet,
            )
            self._owned = True
        else:
            check_reachable(self.address)
            try:
                ray.init(address=self.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ExecutorError(
                    f"cannot join the Ray cluster at {self.address}: {err}"
                ) from None
            self._owned = True
        if not ray.cluster_resources().get(SLOT):
            self._serial = True
            self._warnings.append(
                f"no node of the Ray cluster declares the {SLOT} resource, so groups are timed one "
                "at a time across the cluster; start each node with "
                f"ray start ... --resources='{{\"{SLOT}\": 1}}' to time one group per node at once"
            )
        return self

    def describe(self) -> dict[str, Any]:
        import ray

        return {
            "name": self.name,
            "address": self.address or "local (started by perfbench)",
            "ray_version": ray.__version__,
            "timing": "one group at a time in the cluster"
            if self._serial
            else f"one {SLOT} per node",
            "nodes": dict(self._driver.nodes) if self._driver else {},
            "warnings": list(self._warnings),
        }

    def close(self) -> None:
        """Cancel what still runs (Ctrl-C, an error) and disconnect or stop what we started."""
        import ray

        if self._driver is not None:
            self._driver.cancel_all()
        if self._owned and ray.is_initialized():
            ray.shutdown()
        self._owned = False

    # --- the run ---------------------------------------------------------------------------

    def run_groups(
        self,
        groups: Sequence[ComparisonGroup],
        plan: RunPlan,
        run_dir: RunDir,
        record: RecordFn,
        progress: ProgressFn,
    ) -> None:
        for warning in self._warnings:
            progress(RunWarning(warning))
        self._driver = GroupDriver(
            plan,
            run_dir,
            record,
            progress,
            serial=self._serial,
            run_token=self._run_token,
        )
        self._driver.run(groups)


def runtime_env(plan: RunPlan, run_path: Path | None) -> dict[str, Any]:
    """The job's runtime environment: the scenario's folder (less big folders and the run folder
    itself, if it lies inside) as every worker's cwd, and the worker environment the backends
    need (TRITON_INTERPRET ...), as the local worker sets it."""
    folder = Path(plan.scenario_path).resolve().parent
    excludes = list(EXCLUDES)
    if run_path is not None and Path(run_path).resolve().is_relative_to(folder):
        excludes.append(Path(run_path).resolve().relative_to(folder).as_posix())
    return {"working_dir": str(folder), "excludes": excludes, "env_vars": dict(plan.worker_env)}


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a HOST:PORT where nothing listens: ray.init retries such an address for minutes
    (measured here: still retrying after 6 minutes). `auto` and `ray://` addresses are Ray's."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--ray-address must be auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ExecutorError(
            f"nothing answers at --ray-address {address} ({err}); give the head node's GCS "
            "address (HOST:6379 by default, printed by `ray start --head`) or auto"
        ) from None
