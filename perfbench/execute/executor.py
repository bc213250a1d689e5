"""The executor seam: who measures the comparison groups of a run, and where.

`perfbench.execute.runner.run_sweep` owns the run folder and the `record` callback (each row written and
fsynced the moment it is final, docs/design.md rule 7); an executor only decides where the groups
run and hands every row, skipped points included, to `record`. Two exist: the local worker
(`perfbench.execute.runner.LocalExecutor`, the default) and Ray (`perfbench.execute.ray.executor.RayExecutor`,
`--executor ray`). A third (Slurm, Kubernetes jobs) would implement the same four methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from perfbench.execute.events import ProgressFn, RecordFn

if TYPE_CHECKING:
    from perfbench.plan.run_plan import ComparisonGroup, RunPlan
    from perfbench.results.rundir import RunDir

__all__ = ["Executor", "ExecutorError", "ProgressFn", "RecordFn"]


class ExecutorError(RuntimeError):
    """The executor cannot start (no Ray cluster at the address given, ...): a usage error,
    raised before the run folder is created."""


class Executor(Protocol):
    """Measures comparison groups somewhere and hands each row to `record` as soon as it is final."""

    name: str

    def run_groups(
        self,
        groups: Sequence[ComparisonGroup],
        plan: RunPlan,
        run_dir: RunDir,
        record: RecordFn,
        progress: ProgressFn,
    ) -> None:
        """Every point of `groups` ends in exactly one `record` call (skipped, ok, failed, oom or
        timeout). KeyboardInterrupt propagates; `close` then stops what is still running."""

    def describe(self) -> dict[str, Any]:
        """run.json's `executor`: what ran the groups (JSON-able)."""

    def close(self) -> None:
        """Stop outstanding work and release what the executor started; safe to call twice."""
