"""Run a sweep end to end: load the scenario, plan it, measure it into a run folder under the
worker environment, build the report. The one path that `perfbench run` (perfbench.cli.main) and
`perfbench.run()` (perfbench.api) share, so both give the same sweep, folder, rows and verdicts.

Nothing here prints: the caller hears about the run through callbacks (`on_start`, `on_check`,
the runner's `progress`) and gets a `RunOutcome`. Usage errors are raised before any folder is
made: `ScenarioError` (the file), `ConfigError` (the sweep or settings), `ExecutorError` (a Ray
cluster that cannot be joined), `MainGuardError` (a script without a `__main__` guard),
`RunFolderError` (a folder that is not this run's to write), and `ModelStop` (build_model()
returned what no point can use; the row that found it is kept).
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

HistoryTarget = str | bool | None  # a store path or URL; None: the default store; False: none

if TYPE_CHECKING:
    from perfbench.check.ladder import CheckReport
    from perfbench.execute.events import ProgressFn
    from perfbench.plan.run_plan import RunPlan, RunRequest
    from perfbench.results.rundir import RunDir


@dataclass(frozen=True)
class RunStart:
    """The run folder exists and the first group is about to be measured."""

    points: int  # planned points of one repetition
    scenario_path: Path
    run_path: Path
    # what the scenario printed while loading, as `LoadedScenario.keep` describes it (None: nothing)
    load_output: dict[str, Any] | None = None
    took_over: str | None = (
        None  # the stale run.lock this run replaced (perfbench.results.run_lock)
    )


@dataclass
class RunOutcome:
    """A finished (or interrupted) run: its folder, plan, point count per status, and the report
    (None when building it raised: `report_error` says why; the rows are safe on disk)."""

    run_dir: RunDir
    plan: RunPlan
    counts: Counter[str]
    report: Path | None
    report_error: str | None = None
    history_error: str | None = None  # the run was not recorded in history: why, and the retry


class CheckBlocked(RuntimeError):
    """The sanity ladder (`check=True`) failed a blocking rung (1 or 6): nothing was timed."""

    def __init__(self, report: CheckReport) -> None:
        super().__init__("the sanity check failed a blocking rung (1 or 6): not timing")
        self.report = report


def _ignore(*_: Any) -> None:
    return None


def launch(
    scenario_path: str | Path,
    request: RunRequest,
    *,
    out: Path | None = None,
    check: bool = False,
    append: bool = False,
    history: HistoryTarget = None,
    progress: ProgressFn = _ignore,
    on_start: Callable[[RunStart], None] = _ignore,
    on_check: Callable[[CheckReport], None] = _ignore,
    end_process_on_hang: bool = True,
) -> RunOutcome:
    """Load `scenario_path` (bounded by `request.timeout_s`), plan `request`, and measure the
    sweep into `out` (default reports/<scenario>-<time>) with the planned executor.

    The folder is claimed first (perfbench.results.run_claim: `run.lock`, ownership, `append` rules;
    `RunFolderError` when refused, with nothing written) and released after the report. The
    worker environment the backends need (`plan.worker_env`) is set in this process for the
    run's duration and restored afterwards: `check=True` prepares backends here and must see what
    the worker sees (Triton reads TRITON_INTERPRET when first imported), and a notebook that runs
    a sweep keeps its own environment. `history`: the store to record the run in (None: the
    default store; False: not recorded); a history failure is `RunOutcome.history_error`, never
    a failed run. `end_process_on_hang`: see `load_capturing_output`.
    """
    from perfbench.execute.main_guard import require_main_guard

    require_main_guard("perfbench run")  # first: before torch is imported or a folder is made
    from perfbench.execute.runner import default_run_dir, make_executor
    from perfbench.execute.scenario_capture import load_capturing_output
    from perfbench.plan.run_plan import environment_applied, plan_run

    loaded = load_capturing_output(str(scenario_path), request.timeout_s, end_process_on_hang)
    scenario = loaded.scenario
    plan = plan_run(scenario, request)
    with environment_applied(plan.worker_env):
        if check:
            _check(scenario, list(plan.sweep["backend"]), on_check)
        out = Path(out) if out is not None else default_run_dir(scenario)
        executor = make_executor(plan, out)  # before the folder: a bad cluster is a usage error
        run = _claim(out, append, scenario, plan, executor)
        try:
            counts = _measure(run, loaded, plan, executor, progress, on_start)
            history_error = _record(run.path, history)
            report, error = build_report_safely(run.path)
        finally:
            run.release()
    return RunOutcome(run, plan, counts, report, error, history_error)


def _claim(out: Path, append: bool, scenario: Any, plan: RunPlan, executor: Any) -> RunDir:
    """The folder is this run's alone, or `RunFolderError` with nothing written to it."""
    from perfbench.execute.runner import run_meta
    from perfbench.results.run_claim import start_append
    from perfbench.results.run_lock import RunFolderError
    from perfbench.results.rundir import RunDir

    try:
        run = RunDir.claim(out, append, " ".join(plan.argv))
    except RunFolderError:
        executor.close()
        raise
    try:  # --append to a run that differs: refused before anything is written
        run.appending = start_append(run.path, run_meta(scenario, plan), plan) if append else None
    except RunFolderError:
        executor.close()
        run.release()
        raise
    return run


def _measure(
    run: RunDir,
    loaded: Any,
    plan: RunPlan,
    executor: Any,
    progress: ProgressFn,
    on_start: Callable[[RunStart], None],
) -> Counter[str]:
    """Measure the sweep into the claimed folder; what the scenario printed while imported goes
    to logs/load.log once the folder is known to be ours (also when the model stops the run)."""
    from perfbench.execute.runner import run_sweep

    scenario = loaded.scenario
    load_output = loaded.keep(run.path, write=False)
    took_over = run.lock.took_over if run.lock else None
    on_start(RunStart(len(plan.points), Path(scenario.path), run.path, load_output, took_over))
    try:
        return run_sweep(scenario, plan, run, progress, executor)
    finally:
        loaded.keep(run.path)


def _record(run_dir: Path, history: HistoryTarget) -> str | None:
    """Record the finished run in the history store; a failure comes back as a message with the
    command that retries, since the run folder is complete on disk already."""
    if history is False:
        return None
    try:
        from perfbench.history import record_run

        record_run(run_dir, history or None)
    except Exception as err:  # the store must never break a run
        return (
            f"run not recorded in history ({type(err).__name__}: {err}); "
            f"retry with: perfbench history import {shlex.quote(str(run_dir))}"
        )
    return None


def _check(scenario: Any, backends: list[str], on_check: Callable[[CheckReport], None]) -> None:
    """Run the sanity ladder; a failing rung 1 or 6 raises `CheckBlocked` before any timing."""
    from perfbench.check.ladder import run_check

    report = run_check(scenario, backends=tuple(backends))
    on_check(report)
    if report.blocks_timing:
        raise CheckBlocked(report)


def build_report_safely(run_dir: Path) -> tuple[Path | None, str | None]:
    """Build report.html; a report bug must not hide that the measurements are safe on disk, so
    it comes back as a message (with the command that retries) instead of raising."""
    try:
        from perfbench.report.page import build_report

        return build_report(run_dir), None
    except Exception as err:
        return None, (
            f"could not build the report ({type(err).__name__}: {err}); results are in "
            f"{run_dir / 'results.csv'}; retry with: perfbench report {shlex.quote(str(run_dir))}"
        )
