"""Short rerun commands: a point's command without the flags that only restate a default.

A point's recorded command (results.csv `command`, plan.py rule 6) spells out every resolved
setting, about 440 characters for a CPU point: exact, and too long to read as advice. The
advisor's `try:` lines drop what a rerun would resolve to anyway:

- `--budget`, `--setting KEY=V`, `--seed` equal to `TimingSettings`'s defaults and seed 0
  (a rerun names no config file, so these defaults are what it gets);
- `--set AXIS=V` where the scenario's own default sweep (its SWEEP over perfbench's defaults,
  recorded in run.json `scenario.sweep` by `scenario_defaults`) has that one value.

Axes whose default depends on the machine (`threads`: all cores; `device`: cuda where present)
are never dropped, nor is anything an older run.json cannot vouch for: the short command plans to
the same points and settings as the long one (tests/advisor/test_short_command.py plans both).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from typing import Any

from perfbench.measure.timing import TimingSettings

# defaults that differ from one machine to another: a rerun elsewhere would resolve otherwise
MACHINE_AXES = ("threads", "device")
DEFAULT_SEED = 0


def scenario_defaults(scenario: Any) -> dict[str, list[Any]]:
    """What `perfbench run SCENARIO` sweeps with no flags, as plain values (run.json)."""
    from perfbench.backends import backend_names
    from perfbench.plan.sweep import resolve_sweep
    from perfbench.results.axes import plain

    sweep = resolve_sweep([(f"{scenario.path} SWEEP", scenario.sweep)], backend_names())
    return {axis: [plain(v) for v in values] for axis, values in sweep.items()}


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _same_number(text: str, default: Any) -> bool:
    try:
        return float(text) == float(default)
    except (TypeError, ValueError):
        return False


def _default_setting(key: str, text: str) -> bool:
    fields = {f.name: f.default for f in dataclasses.fields(TimingSettings)}
    return key in fields and _same_number(text, fields[key])


def _drops(flag: str, value: str, sweep: Mapping[str, list[Any]] | None) -> bool:
    """Whether `flag value` restates what a rerun resolves to anyway."""
    if flag == "--budget":
        return _default_setting("budget_s", value)
    if flag == "--seed":
        return _same_number(value, DEFAULT_SEED)
    if flag == "--setting":
        key, _, text = value.partition("=")
        return _default_setting(key.strip(), text.strip())
    if flag == "--set" and sweep:
        axis, _, text = value.partition("=")
        default = sweep.get(axis)
        return (
            axis not in MACHINE_AXES
            and isinstance(default, list)
            and len(default) == 1
            and _text(default[0]) == text
        )
    return False


def shorten(command: str, sweep: Mapping[str, list[Any]] | None) -> str:
    """`command` without the flags `_drops` names; anything it cannot parse comes back as is."""
    try:
        parts = shlex.split(command)
    except ValueError:
        return command
    out: list[str] = []
    i = 0
    while i < len(parts):
        flag = parts[i]
        if i + 1 < len(parts) and _drops(flag, parts[i + 1], sweep):
            i += 2
            continue
        out.append(flag)
        i += 1
    return shlex.join(out)
