"""perfbench: where a PyTorch workload spends its time, and what fusion buys. See README.md.

The Python API, for a notebook or a script (the same code as the `perfbench` command)::

    import perfbench
    r = perfbench.run("scenarios/mlp.py", sweep={"batch_size": [8]})
    r.df[["backend", "verdict", "speedup_vs_eager"]]   # results.csv as a DataFrame
    r                                                  # in Jupyter: verdicts and chart inline

`import perfbench` imports neither torch nor pandas: each function below imports what it needs
when called (perfbench.api holds the bodies). A script that calls `run` must do so under
`if __name__ == "__main__":` (the measuring worker is spawned; perfbench.execute.main_guard).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # before any import below: perfbench.execute.runner reads it

from perfbench.run_result import Run

if TYPE_CHECKING:
    from perfbench.analysis.compare import RunComparison
    from perfbench.check.ladder import CheckReport
    from perfbench.execute.events import ProgressEvent
    from perfbench.measure.ab_ratio import Ratio


class _Package(ModuleType):
    """perfbench's own module type. The public function `check` shares its name with the
    subpackage perfbench/check/ (and `compare` once shared its name with a module), and importing
    a submodule sets it as an attribute of its package (the first time, whenever that happens):
    this keeps the public function there instead. The subpackage stays importable by its full
    names (`from perfbench.check.ladder import run_check`); `from perfbench import check` gives
    the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("check", "compare") and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["Run", "__version__", "check", "compare", "load", "measure_ratio", "run"]


def run(
    scenario: str | Path | ModuleType,
    *,
    sweep: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    executor: str = "local",
    progress: bool | Callable[[ProgressEvent], None] = True,
) -> Run:
    """Sweep a scenario and write a run folder, exactly as `perfbench run` does; return the `Run`.

    `scenario`: a scenario file, or its imported module (the worker imports it from its file).
    `sweep`: axis -> values, e.g. {"batch_size": [8, 64], "backend": ["eager", "compile"]}
    (the `--set` flags; axes not named keep the scenario's SWEEP, then the defaults).
    `settings`: [settings] keys, e.g. {"budget_s": 0.5, "min_reps": 10} (the `--setting` flags).
    `out`: the run folder (default reports/<scenario>-<time>). `executor`: "local" or "ray".
    `progress`: print a line per point (True), nothing (False), or call `progress(event)` with
    each event of `perfbench.execute.events` (`GroupStarted`, `Phase`, `PointDone` with the
    point's `Row`, `RepetitionStarted`, `RunWarning`, `Interrupted`).
    The backends' worker environment is set while the run lasts and restored afterwards.
    Raises ScenarioError, ConfigError or MainGuardError (each naming file and line) before any
    folder is made; a point that fails is a row with its status, not an exception.
    """
    from perfbench import api

    return api.run(
        scenario,
        sweep=sweep,
        settings=settings,
        out=out,
        executor=executor,
        progress=progress,
    )


def load(run_dir: str | Path) -> Run:
    """Open a run folder (from `perfbench.run` or `perfbench run`): the same `Run` as a fresh one.
    Raises FileNotFoundError when the folder has no results.csv or run.json."""
    return Run(run_dir)


def compare(
    a: Run | str | Path, b: Run | str | Path, fail_above: float | None = None
) -> RunComparison:
    """Run A against run B per matched point, as `perfbench compare A B`: `.table` is a DataFrame
    (ratio of medians with its interval, verdict); with `fail_above` (percent), `.regressed`
    holds the points slower than that and `.exit_code` is 1 when there are any."""
    from perfbench import api

    return api.compare(a, b, fail_above=fail_above)


def measure_ratio(
    fn_a: Callable[[], Any],
    fn_b: Callable[[], Any],
    *,
    device: str = "cpu",
    budget_s: float = 3.0,
    min_pairs: int = 10,
    label: str = "A/B",
    level: float = 0.95,
    threads: int | None = None,
) -> Ratio:
    """time(fn_a) / time(fn_b), timed interleaved in this process, with its confidence interval:
    the estimator of the sweep's verdicts and of the `perfbench_ratio` pytest gate. Returns a
    `Ratio` (`.ratio`, `.ci_low`, `.ci_high`, `.half_width`, `.assert_at_most(limit)`).
    On CUDA, `device="cuda"` times with CUDA events."""
    from perfbench.measure.ab_ratio import measure_ratio as measure

    return measure(
        fn_a,
        fn_b,
        device=device,
        budget_s=budget_s,
        min_pairs=min_pairs,
        label=label,
        level=level,
        threads=threads,
    )


def check(
    scenario: str | Path | ModuleType,
    *,
    backends: tuple[str, ...] = ("eager", "compile"),
    timeout_s: float = 0.0,
) -> CheckReport:
    """The sanity ladder of `perfbench check`: six rungs that catch a broken scenario in seconds.
    Returns the `CheckReport` (`.ok`, `.rungs`, `.format_text()`); `timeout_s` bounds importing
    the scenario (0: the command line's default). Raises ScenarioError when it cannot load."""
    from perfbench import api

    return api.check(scenario, backends=backends, timeout_s=timeout_s)
