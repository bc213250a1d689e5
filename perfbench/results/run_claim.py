"""A run owns its folder (issue 19, item 1): which folders a run may write into, and how `--append`
adds points to a finished run without touching what is there.

Before this, two runs into one `--out` both exited 0 and left one results.csv holding two
scenarios' rows with duplicate point ids under the second run's run.json. The rules now:

- an empty or missing folder is a new run;
- a folder holding anything but a perfbench run (results.csv or run.json) is refused;
- a folder another live run holds (`run.lock`, perfbench.results.run_lock) is refused, naming the holder;
  a stale lock (its holder died) is reported and taken over;
- a folder holding a run (finished, interrupted or killed) is refused unless `--append`; with it,
  the scenario (path and sha256 of its source), the settings, the seed and the environment must
  match the folder's run.json, or the refusal names each difference. Appended points get fresh
  point ids (after every id the folder used) and the next `repeat` numbers, so their rows, logs,
  traces and timelines never reuse a name; run.json keeps the first run's record and gains an
  `appends` entry per appended run.

Every refusal is a RunFolderError (exit status 2 on the command line), raised before anything in
the folder is written. `RunDir.claim` is the entry; `perfbench.execute.runner.run_sweep` claims a folder
itself when its caller did not, so a library caller gets the same rules.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from perfbench.results import layout
from perfbench.results.row import COLUMNS
from perfbench.results.run_lock import LOCK_NAME, RunFolderError, RunLock


class AppendingPlan(Protocol):
    """What --append reads of the run plan (perfbench.plan.run_plan.RunPlan; not imported: the run
    folder's rules sit below the plan)."""

    flamegraph: bool


# what must match for --append: the environment keys that change a measurement (not the clocks
# and load in `hardware`, not the parent's thread count)
ENVIRONMENT_KEYS = (
    "python",
    "executable",
    "platform",
    "hostname",
    "cpu",
    "cpu_count",
    "torch",
    "cuda",
    "cudnn",
    "driver",
    "gpus",
    "packages",
    "env_vars",
    "git_commit",
)
__all__ = ["AppendStart", "RunFolderError", "check_folder", "scenario_sha256", "start_append"]


def scenario_sha256(path: str | Path) -> str | None:
    """sha256 of the scenario's source, so --append and compare can tell an edited file."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def check_folder(folder: Path, lock: RunLock, append: bool) -> None:
    """Under `lock`: refuse a folder that holds something else, or a run without --append."""
    entries = sorted(e for e in os.listdir(folder) if e != LOCK_NAME)
    has_run = any(e in (layout.RESULTS_CSV, layout.RUN_JSON) for e in entries)
    if entries and not has_run:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise RunFolderError(
            f"{folder} is not empty and is not a perfbench run folder (it holds {shown}); a run "
            "writes into a new or empty folder: choose another --out"
        )
    run_json = folder / layout.RUN_JSON
    if not run_json.exists():
        if _has_rows(folder / layout.RESULTS_CSV):
            raise RunFolderError(
                f"{folder} holds results without a run.json: it cannot be checked against this "
                "run, so nothing is added to it; choose another --out"
            )
        return  # a run that died before its first point, or a library caller's RunDir.create
    if not append:
        meta = _meta(run_json)
        scenario = (meta.get("scenario") or {}).get("path")
        raise RunFolderError(
            f"{folder} already holds a run ({scenario}, state {meta.get('state')!r}, started "
            f"{meta.get('started_at')}); nothing in it is overwritten. Choose a new --out, or "
            "pass --append to add this run's points to it (same scenario, settings and "
            "environment)"
        )


def _has_rows(results: Path) -> bool:
    try:
        with results.open("rb") as fh:
            return sum(1 for line in fh if line.strip()) > 1
    except OSError:
        return False


def _meta(run_json: Path) -> dict[str, Any]:
    try:
        meta = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunFolderError(f"{run_json} cannot be read ({err}): nothing is added to it") from None
    if not isinstance(meta, dict):
        raise RunFolderError(f"{run_json} is not a JSON object: nothing is added to it")
    return meta


@dataclass(frozen=True)
class AppendStart:
    """Where an appended run starts: its first point id and repeat number, and the folder's
    run.json as it was (kept; the appended run becomes an entry of its `appends`)."""

    first_point_id: int
    first_repeat: int
    base_meta: dict[str, Any]


def start_append(folder: Path, meta: Mapping[str, Any], plan: AppendingPlan) -> AppendStart | None:
    """For a folder that holds a run: check that `meta` (this run's run.json) may be appended,
    and where its ids start. None for a folder without a run (a new run)."""
    run_json = folder / layout.RUN_JSON
    if not run_json.exists():
        return None
    base = _meta(run_json)
    differences = identity_differences(base, meta)
    if _header(folder / layout.RESULTS_CSV) != sorted(COLUMNS):
        differences.append("results.csv has other columns (another perfbench version wrote it)")
    if plan.flamegraph and any((folder / layout.FLAMEGRAPHS).glob("*")):
        differences.append("--flamegraph would overwrite the flame graph already in the folder")
    if differences:
        raise RunFolderError(
            f"cannot append to {folder}: this run differs from the run it holds, so their points "
            "would not be comparable:\n  " + "\n  ".join(differences)
        )
    from perfbench.results.reader import read_results_csv

    rows = read_results_csv(folder / layout.RESULTS_CSV, warn=False).rows
    used = [base.get("points_total") or 0, base.get("next_point_id") or 0]
    used += [r.point_id + 1 for r in rows if r.point_id is not None]
    used += [a.get("next_point_id") or 0 for a in base.get("appends") or []]
    repeats = [r.repeat for r in rows if r.repeat is not None]
    return AppendStart(max(used), max(repeats, default=-1) + 1, base)


def _header(results: Path) -> list[str]:
    try:
        with results.open(newline="", encoding="utf-8", errors="replace") as fh:
            return sorted(next(csv.reader(fh), []))
    except OSError:
        return []


def identity_differences(base: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    """Each way `meta` differs from `base` in scenario, settings, seed or environment, as
    `what: X in the folder, Y now`; the first run's record is the one compared against."""
    out: list[str] = []
    for key in ("path", "sha256"):
        _differ(out, f"scenario.{key}", _get(base, "scenario", key), _get(meta, "scenario", key))
    _differ_all(out, "settings", base.get("settings") or {}, meta.get("settings") or {})
    _differ(out, "seed", base.get("seed"), meta.get("seed"))
    _differ_all(out, "worker_env", base.get("worker_env") or {}, meta.get("worker_env") or {})
    env_a, env_b = base.get("environment") or {}, meta.get("environment") or {}
    for key in ENVIRONMENT_KEYS:
        a, b = env_a.get(key), env_b.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            _differ_all(out, f"environment.{key}", a, b)
        else:
            _differ(out, f"environment.{key}", a, b)
    return out


def _get(meta: Mapping[str, Any], *keys: str) -> Any:
    value: Any = meta
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _differ_all(out: list[str], name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    for key in sorted(set(a) | set(b)):
        _differ(out, f"{name}.{key}", a.get(key), b.get(key))


def _differ(out: list[str], name: str, a: Any, b: Any) -> None:
    if a != b:
        out.append(f"{name}: {_text(a)} in the folder, {_text(b)} now")


def _text(value: Any) -> str:
    if value is None:
        return "(not recorded)"
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
