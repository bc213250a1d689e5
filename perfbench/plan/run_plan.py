"""The run plan: everything `perfbench run` will do, resolved before the first point runs.

`plan_run(scenario, request)` turns what the user typed (a `RunRequest`) into a frozen `RunPlan`:
the sweep (scenario SWEEP < `--config` [sweep] < `--set`, later winning per axis), every point with
its skip reason and the exact command that reruns it, the points grouped into comparison groups,
the timing settings (`[settings]` < `--setting` < `--budget`/`--seed`/`--timeout`), the worker
environment the planned backends need, and the profiling options. Every usage error is raised
here as a `ConfigError`, before any folder is created or any point is timed.

Rule 6 (an exact rerun command per point): the command carries every resolved setting inline,
never a path to a config file that may change by the time someone reruns it, and the worker
environment as leading `KEY=VALUE` assignments, so the point reruns under the same conditions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from perfbench.backends import BACKENDS, backend_names
from perfbench.measure.timing import TimingSettings
from perfbench.plan.sweep import (
    ConfigError,
    check_processes,
    expand,
    load_config,
    parse_axis_values,
    parse_set,
    require_ray,
    rerun_command,
    resolve_sweep,
)
from perfbench.profiling.instruments import ProfileFilter, ProfileOptions
from perfbench.results.axes import AXES, Point, plain
from perfbench.scenario.loading import Scenario

TIMING_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TimingSettings))
SETTING_KEYS: tuple[str, ...] = (*TIMING_KEYS, "seed", "timeout_s")  # what [settings] may hold
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class RunRequest:
    """What the user asked `perfbench run` for, unresolved (the command-line flags)."""

    config: Path | None = None
    sets: tuple[str, ...] = ()  # --set AXIS=V1,V2
    settings: tuple[str, ...] = ()  # --setting KEY=VALUE ([settings] keys)
    budget_s: float | None = None
    seed: int | None = None
    timeout_s: float | None = None
    profile: bool = False
    profile_only: tuple[str, ...] = ()  # --profile-only AXIS=V1,V2
    nvtx: bool = False
    nvtx_modules: bool = False
    flamegraph: bool = False
    native: bool = False
    control: bool = True  # --no-control turns the A/A control (eager against eager) off
    argv: tuple[str, ...] = ()  # the command as typed, for run.json
    executor: str = "local"  # --executor: where groups are measured (local worker or Ray)
    ray_address: str | None = None  # --ray-address: None starts a local Ray instance
    repeat: int = 1  # --repeat N: the whole sweep N times, each in fresh workers
    processes: int | None = None  # --processes K: each group in K fresh workers (two_level)


@dataclass(frozen=True)
class PlannedPoint:
    """One point of the sweep: its id (row order in results.csv), why it is skipped (None: it
    runs), and the exact command that reruns it alone."""

    point_id: int
    point: Point
    skip_reason: str | None
    command: str


@dataclass(frozen=True)
class ComparisonGroup:
    """Points that differ only in backend (same value on every other axis, present or future):
    the unit an interleaved comparison times together, a distributed executor ships as one task,
    and a verdict is given for. `group_id` names the shared values (`batch_size=32,threads=2,...`),
    so the same settings get the same id in every run, whatever else the sweep holds."""

    group_id: str
    points: tuple[PlannedPoint, ...]  # in the sweep's backend order

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(p.point.backend for p in self.points)


@dataclass(frozen=True)
class RunPlan:
    """Everything a run does, resolved: the runner consumes it, run.json records it."""

    scenario_path: str
    sweep: Mapping[str, tuple[Any, ...]]  # axis -> typed values, in axis order
    points: tuple[PlannedPoint, ...]  # in run order (backend outermost), point_id = index
    groups: tuple[ComparisonGroup, ...]
    timing: TimingSettings
    seed: int
    timeout_s: float | None
    worker_env: Mapping[str, str]  # set in the measuring worker (and here while a run lasts)
    profiling: ProfileOptions
    flamegraph: bool
    native: bool
    rerun_args: tuple[str, ...]  # appended to every point's rerun command (settings, flags)
    argv: tuple[str, ...]
    control: bool = True  # each group times eager against a second eager (the A/A control)
    # where the groups are measured; not in rerun commands: a point reruns on one machine
    executor: str = "local"
    ray_address: str | None = None
    repeat: int = (
        1  # repetitions of the whole sweep (perfbench.execute.repeat); not in rerun commands
    )
    processes: int | None = (
        None  # --processes K; None: chosen per group (perfbench.stats.two_level)
    )

    @property
    def family_size(self) -> int:
        """Comparisons against eager the sweep can make (runnable non-eager points in groups
        with a runnable eager point): the family its verdicts are corrected across."""
        runnable = [[p.point.backend for p in g.points if not p.skip_reason] for g in self.groups]
        return sum(len(b) - 1 for b in runnable if "eager" in b)

    def settings_record(self) -> dict[str, Any]:
        """run.json's `settings`: every timing setting and the timeout."""
        return {**dataclasses.asdict(self.timing), "timeout_s": self.timeout_s}

    def sweep_record(self) -> dict[str, list[Any]]:
        """run.json's `sweep`: plain values (enums as their strings)."""
        return {axis: [plain(v) for v in values] for axis, values in self.sweep.items()}


def plan_run(
    scenario: Scenario, request: RunRequest, environ: Mapping[str, str] | None = None
) -> RunPlan:
    """Resolve `request` against `scenario`; raises ConfigError on any usage error.

    `environ` (default: this process's) is where a user-set variable wins over what a backend
    asks for: someone who exports TRITON_INTERPRET gets their value, recorded as such.
    """
    if request.native and not request.flamegraph:
        raise ConfigError("--native only applies with --flamegraph")
    check_executor(request)
    if request.repeat < 1:
        raise ConfigError(f"--repeat must be >= 1, got {request.repeat}")
    check_processes(request.processes, request.executor)
    names = backend_names()
    config_sweep, table = load_config(request.config) if request.config else ({}, {})
    sweep = resolve_sweep(_layers(scenario, request, config_sweep), names)
    profile_only = profile_filters(request.profile_only, sweep, names)
    timing, seed, timeout = resolve_settings(request, table)
    env = worker_env(sweep["backend"], os.environ if environ is None else environ)
    profiling = ProfileOptions(
        profile=request.profile or bool(profile_only),
        profile_only=profile_only,
        nvtx=request.nvtx or request.nvtx_modules,
        nvtx_modules=request.nvtx_modules,
    )
    rerun_args = (
        *settings_args(timing, seed, timeout),
        *_instrument_args(profiling, request.flamegraph, request.native),
        *([] if request.control else ["--no-control"]),
    )
    path = str(scenario.path)
    points = []
    with environment_applied(env):  # applicability may depend on it (the Triton interpreter)
        for point_id, point in enumerate(expand(sweep)):
            args = [*rerun_args, *(["--profile"] if profiling.for_point(point).profile else [])]
            command = rerun_command(path, point, args, env)
            points.append(PlannedPoint(point_id, point, _skip_reason(point, scenario), command))
    return RunPlan(
        scenario_path=path,
        sweep=MappingProxyType({axis: tuple(values) for axis, values in sweep.items()}),
        points=tuple(points),
        groups=comparison_groups(points),
        timing=timing,
        seed=seed,
        timeout_s=timeout,
        worker_env=MappingProxyType(dict(env)),
        profiling=profiling,
        flamegraph=request.flamegraph,
        native=request.native,
        rerun_args=rerun_args,
        argv=request.argv,
        control=request.control,
        executor=request.executor,
        ray_address=request.ray_address,
        repeat=request.repeat,
        processes=request.processes,
    )


EXECUTORS = ("local", "ray")


def check_executor(request: RunRequest) -> None:
    """`--executor` and the flags that depend on it; Ray must be importable to ask for it."""
    if request.executor not in EXECUTORS:
        raise ConfigError(
            f"--executor must be one of {', '.join(EXECUTORS)}, got {request.executor!r}"
        )
    if request.executor != "ray":
        if request.ray_address is not None:
            raise ConfigError("--ray-address only applies with --executor ray")
        return
    if request.flamegraph:  # py-spy follows this process's children; Ray workers are not ones
        raise ConfigError("--flamegraph samples the local worker: not with --executor ray")
    require_ray()


def _layers(
    scenario: Scenario, request: RunRequest, config_sweep: dict[str, list[Any]]
) -> list[tuple[str, dict[str, list[Any]]]]:
    """The sweep's layers in order of precedence, each named for error messages."""
    layers: list[tuple[str, dict[str, list[Any]]]] = [(f"{scenario.path} SWEEP", scenario.sweep)]
    if request.config is not None:
        layers.append((str(request.config), config_sweep))
    for text in request.sets:
        axis, values = parse_set(text)
        layers.append((f"--set {text}", {axis: values}))
    return layers


def _skip_reason(point: Point, scenario: Scenario) -> str | None:
    from perfbench.measure.workload import skip_reason

    return skip_reason(point, scenario)


def group_id(point: Point) -> str:
    """The values a comparison group shares: every axis but backend, as `--set` writes them."""
    values = point.as_dict()
    return ",".join(f"{axis}={_text(values[axis])}" for axis in AXES if axis != "backend")


def comparison_groups(points: Sequence[PlannedPoint]) -> tuple[ComparisonGroup, ...]:
    """Points grouped by everything but backend, groups in order of their first point."""
    grouped: dict[str, list[PlannedPoint]] = {}
    for planned in points:
        grouped.setdefault(group_id(planned.point), []).append(planned)
    return tuple(ComparisonGroup(gid, tuple(members)) for gid, members in grouped.items())


def profile_filters(
    texts: Sequence[str], sweep: Mapping[str, Sequence[Any]], valid_backends: tuple[str, ...]
) -> ProfileFilter:
    """`--profile-only AXIS=V1,V2` texts -> ((axis, typed values), ...), parsed and validated as
    `--set` is; an axis given twice keeps the values both allow. A filter that leaves no point of
    the sweep is a usage error: a run asked to profile would otherwise silently profile nothing."""
    only: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        axis, raw = parse_set(text, flag="--profile-only")
        values = parse_axis_values(axis, raw, valid_backends, f"--profile-only {text}")
        earlier = axis in only
        left = only.get(axis, tuple(sweep[axis]))  # the sweep's, or what earlier filters left
        only[axis] = tuple(v for v in left if v in values)
        if not only[axis]:
            have = ", ".join(str(plain(v)) for v in left)
            source = "the earlier --profile-only filters leave" if earlier else "the sweep has"
            raise ConfigError(
                f"--profile-only {text}: matches no point of the sweep; "
                f"for {axis} {source} only: {have}"
            )
    return tuple(only.items())


def resolve_settings(
    request: RunRequest, table: Mapping[str, Any]
) -> tuple[TimingSettings, int, float | None]:
    """Timing settings, seed and timeout: the config's `[settings]` `table` < `--setting` < the
    dedicated flags (`--budget`, `--seed`, `--timeout`)."""
    values = _typed_settings(table, f"{request.config} [settings]")
    for text in request.settings:
        key, raw = _parse_setting(text)
        values.update(_typed_settings({key: raw}, f"--setting {text}"))
    flags = {"budget_s": request.budget_s, "seed": request.seed, "timeout_s": request.timeout_s}
    values.update(_typed_settings({k: v for k, v in flags.items() if v is not None}, "flags"))
    timing = TimingSettings(**{k: values[k] for k in TIMING_KEYS if k in values})
    if timing.budget_s <= 0:
        raise ConfigError("budget must be > 0 seconds")
    if not 0 <= timing.wait_quiet_s < math.inf:
        raise ConfigError(f"--wait-quiet must be >= 0 seconds, got {timing.wait_quiet_s}")
    timeout = values.get("timeout_s")
    if timeout is not None and timeout <= 0:
        raise ConfigError("--timeout must be > 0 seconds")
    return timing, values.get("seed", 0), timeout


def _parse_setting(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"--setting expects KEY=VALUE (e.g. min_reps=20), got {text!r}")
    key, _, raw = text.partition("=")
    return key.strip(), raw.strip()


def _typed_settings(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check keys and types: ints stay ints, floats accept ints (TOML's `budget_s = 1`), text
    (from --setting) is parsed; so a setting reads the same however it was given."""
    unknown = set(table) - set(SETTING_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {sorted(unknown)}; valid: {sorted(SETTING_KEYS)}"
        )
    return {key: _typed(key, value, source) for key, value in table.items()}


def _typed(key: str, value: Any, source: str) -> int | float:
    wants_int = key == "seed" or isinstance(getattr(TimingSettings(), key, 0.0), int)
    try:
        if isinstance(value, bool):
            raise ValueError
        if wants_int:
            if isinstance(value, float):
                raise ValueError
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        kind = "an integer" if wants_int else "a number"
        raise ConfigError(f"{source}: {key} must be {kind}, got {value!r}") from None


def settings_args(timing: TimingSettings, seed: int, timeout_s: float | None) -> list[str]:
    """Every resolved setting as flags, so a rerun needs no config file and no defaults that may
    have changed since: `--budget`, `--setting` for the other timing fields, `--seed`, `--timeout`."""
    args = ["--budget", _text(timing.budget_s)]
    for key in TIMING_KEYS:
        if key != "budget_s":
            args += ["--setting", f"{key}={_text(getattr(timing, key))}"]
    args += ["--seed", str(seed)]
    if timeout_s is not None:
        args += ["--timeout", _text(timeout_s)]
    return args


def _instrument_args(profiling: ProfileOptions, flamegraph: bool, native: bool) -> list[str]:
    """Instruments that run while the point is timed (NVTX ranges wrap the step, py-spy samples
    it), so its rerun is timed under them too. `--profile` is added per point where it ran."""
    args = ["--nvtx-modules"] if profiling.nvtx_modules else ["--nvtx"] if profiling.nvtx else []
    if flamegraph:
        args += ["--flamegraph", *(["--native"] if native else [])]
    return args


def _text(value: Any) -> str:
    """A value as the command line reads it back exactly: floats by repr (round-trips), bools
    lowercased as `--set` writes them."""
    value = plain(value)
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def worker_env(backends: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the planned backends ask for (`Backend.worker_env()`), with the user's
    value where they set the variable themselves. Two backends asking different values for one
    variable cannot share a worker: a usage error naming both."""
    env: dict[str, str] = {}
    asked_by: dict[str, str] = {}
    for name in backends:
        for key, value in BACKENDS[name].worker_env().items():
            if not _ENV_NAME.match(key):
                raise ConfigError(f"backend {name}: {key!r} is not an environment variable name")
            if key in env and env[key] != value:
                raise ConfigError(
                    f"backends {asked_by[key]} and {name} need different {key} "
                    f"({env[key]!r} vs {value!r}): run them in separate sweeps"
                )
            env[key], asked_by[key] = value, name
    return {key: environ.get(key, value) for key, value in env.items()}


@contextlib.contextmanager
def environment_applied(env: Mapping[str, str]) -> Iterator[None]:
    """Set `env` in this process for the block, then restore what was there (the planning here,
    and a whole run in `perfbench.launch`)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
