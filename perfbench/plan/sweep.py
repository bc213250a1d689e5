"""Sweep definition: defaults < scenario SWEEP < TOML config < `--set` on the command line.

Every value is parsed and validated here (perfbench.results.axes), so an unknown backend or amp value is a
usage error listing the valid ones, raised before any point runs.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from perfbench.results.axes import AXES, AxisError, Point, parse_axis_value
from perfbench.stats.two_level import MIN_PROCESSES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A bad config file or --set value (usage error, exit status 2)."""


def require_ray() -> None:
    """Ray is an optional extra (`--executor ray`; here, not in the Ray executor, so the plan can
    check it without importing the executor, which imports the plan): asking for it without it is a usage error saying how to install."""
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"--executor ray needs Ray, which cannot be imported here ({err}); "
            "install it with: pip install -e '.[ray]'"
        ) from None


def default_sweep() -> dict[str, list[Any]]:
    """What runs when nobody says otherwise: eager, one batch size, all cores, float32, inference."""
    return {
        "backend": ["eager"],
        "batch_size": [32],
        "threads": [torch.get_num_threads()],
        "amp": ["off"],
        "pin_memory": [False],
        "num_workers": [0],
        "mode": ["infer"],
        "device": ["cuda" if torch.cuda.is_available() else "cpu"],
        "memory_format": ["contiguous"],
        "shapes": ["static"],
    }


def parse_set(text: str, flag: str = "--set") -> tuple[str, list[str]]:
    """`AXIS=V1,V2` -> ("AXIS", ["V1", "V2"]); errors name `flag` (--set, --profile-only)."""
    if "=" not in text:
        raise ConfigError(f"{flag} expects AXIS=V1,V2 (e.g. batch_size=1,64), got {text!r}")
    axis, _, values = text.partition("=")
    axis = axis.strip()
    if axis not in AXES:
        raise ConfigError(f"{flag} {text!r}: unknown axis {axis!r}; valid axes: {', '.join(AXES)}")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise ConfigError(f"{flag} {text!r}: no values given for {axis}")
    return axis, items


def load_config(path: Path) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Read a TOML config: a `[sweep]` table of axes and an optional `[settings]` table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    unknown = set(data) - {"sweep", "settings"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown table(s) {sorted(unknown)}; expected [sweep] and [settings]"
        )
    sweep = data.get("sweep", {})
    bad_axes = set(sweep) - set(AXES)
    if bad_axes:
        raise ConfigError(f"{path}: unknown axis {sorted(bad_axes)}; valid axes: {', '.join(AXES)}")
    sweep = {k: v if isinstance(v, list) else [v] for k, v in sweep.items()}
    return sweep, dict(data.get("settings", {}))


def resolve_sweep(
    layers: list[tuple[str, dict[str, list[Any]]]], valid_backends: tuple[str, ...]
) -> dict[str, list[Any]]:
    """Merge (source name, axes) layers in order of precedence, later winning per axis, and parse
    every value. Errors name the source the bad value came from."""
    merged: dict[str, tuple[str, list[Any]]] = {
        k: ("defaults", v) for k, v in default_sweep().items()
    }
    for source, axes in layers:
        for axis, values in axes.items():
            if axis not in AXES:
                raise ConfigError(f"{source}: unknown axis {axis!r}; valid axes: {', '.join(AXES)}")
            merged[axis] = (source, list(values))
    out: dict[str, list[Any]] = {}
    for axis in AXES:
        source, values = merged[axis]
        if not values:
            raise ConfigError(f"{source}: axis {axis!r} has no values")
        parsed = parse_axis_values(axis, values, valid_backends, source)
        out[axis] = list(dict.fromkeys(parsed))  # de-duplicate, keep order
    return out


def parse_axis_values(
    axis: str, values: list[Any], valid_backends: tuple[str, ...], source: str
) -> list[Any]:
    """Typed values of one axis; a bad value is a ConfigError naming `source` (file, flag)."""
    try:
        return [parse_axis_value(axis, v, valid_backends) for v in values]
    except AxisError as err:
        raise ConfigError(f"{source}: {err}") from None


def expand(sweep: dict[str, list[Any]]) -> list[Point]:
    """The cartesian product of the axes, in a stable order (backend outermost)."""
    return [
        Point(**dict(zip(AXES, combo, strict=True)))
        for combo in itertools.product(*(sweep[a] for a in AXES))
    ]


def rerun_command(
    scenario_path: str,
    point: Point,
    extra_args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The exact command line that reruns this one point: `env` as leading `KEY=VALUE`
    assignments (a POSIX shell sets them for that command only), then `perfbench run`, the
    point's axes as `--set`, then `extra_args` (the run's resolved settings)."""
    import shlex

    parts = ["perfbench", "run", scenario_path]
    for axis, value in point.as_dict().items():
        parts += ["--set", f"{axis}={str(value).lower() if isinstance(value, bool) else value}"]
    parts += extra_args or []
    assignments = [f"{key}={shlex.quote(value)}" for key, value in (env or {}).items()]
    return " ".join([*assignments, shlex.join(parts)])


def check_processes(processes: int | None, executor: str) -> None:
    """`--processes K`: 1, or MIN_PROCESSES and more; the Ray executor times a group once."""
    if processes is None:
        return
    if processes < 1 or 1 < processes < MIN_PROCESSES:
        raise ConfigError(
            f"--processes must be 1 or >= {MIN_PROCESSES}, got {processes}: an interval from two "
            "processes' estimates covers about 88% instead of 95% (perfbench/stats/two_level.py)"
        )
    if processes > 1 and executor == "ray":
        raise ConfigError("--processes applies to the local executor: Ray times each group once")
