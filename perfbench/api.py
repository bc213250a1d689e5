"""The Python API's bodies (`perfbench.run`, `load`, `compare`, `check`): the same library code
as the command line, for a notebook or a script. `perfbench/__init__.py` holds the thin public
names; each imports this module only when called, so `import perfbench` loads neither torch nor
pandas.

`run()` builds the `perfbench run` command line that asks for the same sweep (`--set` per axis,
`--setting` per setting) and hands it to `perfbench.launch`, the function the command line
itself runs: same plan, folder, rows and verdicts, and run.json records that command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from perfbench.run_result import Run

if TYPE_CHECKING:
    from perfbench.analysis.compare import RunComparison
    from perfbench.check.ladder import CheckReport
    from perfbench.execute.events import ProgressFn
    from perfbench.plan.run_plan import RunRequest

ScenarioLike = str | os.PathLike[str] | ModuleType  # a scenario file, or its imported module


def scenario_file(scenario: ScenarioLike) -> str:
    """The scenario's file: a path as given, or an imported module's `__file__` (the measuring
    worker imports the scenario again from its file, so a module must have one)."""
    if isinstance(scenario, ModuleType):
        file = getattr(scenario, "__file__", None)
        if not file or not str(file).endswith(".py"):
            raise TypeError(
                f"module {scenario.__name__!r} has no .py file (got __file__={file!r}): perfbench "
                "measures in a worker process that imports the scenario from its file; save the "
                "scenario as a .py file and pass its path"
            )
        return str(file)
    if isinstance(scenario, (str, os.PathLike)):
        return os.fspath(scenario)
    raise TypeError(
        f"scenario must be a path or an imported scenario module, got {type(scenario).__name__}"
    )


def _text(value: Any) -> str:
    """A sweep or settings value as `perfbench run` reads it back (perfbench.plan.run_plan._text)."""
    value = getattr(value, "value", value)  # an enum axis value (Device.CPU)
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def sweep_args(sweep: Mapping[str, Any] | None) -> list[str]:
    """`--set AXIS=V1,V2` per axis; a single value stands for a list of one."""
    if sweep is None:
        return []
    if not isinstance(sweep, Mapping):
        raise TypeError(f"sweep must be a dict of axis -> values, got {type(sweep).__name__}")
    args: list[str] = []
    for axis, values in sweep.items():
        items = list(values) if isinstance(values, (list, tuple, range)) else [values]
        texts = [_text(v) for v in items]
        bad = [t for t in texts if "," in t or not t.strip()]
        if bad or not texts:
            raise ValueError(
                f"sweep[{axis!r}]: values must be non-empty and without commas, got {values!r}"
            )
        args += ["--set", f"{axis}={','.join(texts)}"]
    return args


def settings_args(settings: Mapping[str, Any] | None) -> list[str]:
    """`--setting KEY=VALUE` per [settings] key (budget_s, seed, min_reps, timeout_s, ...)."""
    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict of key -> value, got {type(settings).__name__}")
    return [a for k, v in settings.items() for a in ("--setting", f"{k}={_text(v)}")]


def run_request(
    path: str,
    sweep: Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None,
    executor: str,
    out: Path | None,
) -> RunRequest:
    """The RunRequest `perfbench run` would make of the equivalent command line."""
    from perfbench.plan.run_plan import RunRequest

    sets, setting_args = sweep_args(sweep), settings_args(settings)
    argv = ["run", path, *sets, *setting_args, *(["--out", str(out)] if out else [])]
    if executor != "local":
        argv += ["--executor", executor]
    return RunRequest(
        sets=tuple(sets[1::2]),
        settings=tuple(setting_args[1::2]),
        executor=executor,
        argv=("perfbench", *argv),
    )


def run(
    scenario: ScenarioLike,
    sweep: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    executor: str = "local",
    progress: bool | ProgressFn = True,
) -> Run:
    """See `perfbench.run`."""
    from perfbench.execute.main_guard import require_main_guard

    require_main_guard("perfbench.run()")  # before torch is imported (seconds); launch checks too
    from perfbench.cli.progress import Progress
    from perfbench.launch import launch

    path = scenario_file(scenario)
    out_path = Path(out) if out is not None else None
    request = run_request(path, sweep, settings, executor, out_path)
    printer = Progress(quiet=progress is not True)  # the command line's lines, or silence
    outcome = launch(
        path,
        request,
        out=out_path,
        progress=progress if callable(progress) else printer,
        on_start=printer.start,
        end_process_on_hang=False,
    )
    if outcome.report_error:
        import warnings

        warnings.warn(f"perfbench: {outcome.report_error}", RuntimeWarning, stacklevel=3)
    return Run(outcome.run_dir.path)


def as_path(run: Run | str | Path) -> Path:
    return run.path if isinstance(run, Run) else Path(run)


def compare(
    a: Run | str | Path, b: Run | str | Path, fail_above: float | None = None
) -> RunComparison:
    """See `perfbench.compare`."""
    from perfbench.analysis.compare import compare as compare_folders

    return compare_folders(as_path(a), as_path(b), fail_above=fail_above)


def check(
    scenario: ScenarioLike, backends: tuple[str, ...] = ("eager", "compile"), timeout_s: float = 0.0
) -> CheckReport:
    """See `perfbench.check`."""
    from perfbench.check.ladder import run_check
    from perfbench.execute.scenario_capture import DEFAULT_LOAD_TIMEOUT_S
    from perfbench.scenario.bounded_load import load_bounded

    if not timeout_s >= 0:
        raise ValueError(f"timeout_s must be >= 0 seconds (0: the default), got {timeout_s!r}")
    limit = timeout_s or DEFAULT_LOAD_TIMEOUT_S
    loaded = load_bounded(scenario_file(scenario), limit, f"timeout_s={limit:g}")
    return run_check(loaded, backends=tuple(backends))
