"""A run folder as history: one `runs` row and one `records` row per results.csv row.

Reads the folder through the project's own reader (`RunDir.read_meta`, `RunDir.read_rows`), so a
folder written by an older perfbench imports with its missing columns at their defaults. The
run's key is a hash of its resolved path and start time: recording a folder again (or importing
it after `perfbench run` recorded it) adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import perfbench.history.store as store
from perfbench.history.fingerprint import identify, machine_fingerprint
from perfbench.history.store_location import ENV_VAR
from perfbench.results import facts
from perfbench.results.axes import AXES
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir

OFF = ("off", "none", "0", "no")


def default_path() -> Path:
    """The default store: $XDG_CACHE_HOME/perfbench/history.sqlite (~/.cache without it)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "perfbench" / "history.sqlite"


def resolve_url(given: str | None = None) -> str | None:
    """The store's URL: `given` (a path or URL), else $PERFBENCH_HISTORY, else the default file;
    None when recording is switched off."""
    value = given if given is not None else os.environ.get(ENV_VAR, "")
    if value.strip().lower() in OFF:
        return None
    if "://" in value:
        return value
    path = Path(value).expanduser() if value else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def point_key(row: Row) -> str:
    """The point a record belongs to: every axis but the backend, as canonical JSON."""
    return json.dumps({a: getattr(row, a) for a in AXES if a != "backend"}, sort_keys=True)


def _record(row: Row) -> dict[str, Any]:
    ci = row.extra.get(facts.MEDIAN_CI_MS) if isinstance(row.extra, dict) else None
    ci = ci if isinstance(ci, list) and len(ci) == 2 else (None, None)
    note = row.extra.get(facts.CONTENTION) if isinstance(row.extra, dict) else None
    return {
        "point_key": point_key(row),
        "backend": row.backend,
        "repeat": row.repeat,
        "status": row.status,
        "error": row.error or row.reason or None,
        "median_ms": row.median_ms,
        "iqr_ms": row.iqr_ms,
        "p05_ms": row.p05_ms,
        "p95_ms": row.p95_ms,
        "noise": row.noise,
        "reps": row.reps,
        "median_ci_low_ms": ci[0],
        "median_ci_high_ms": ci[1],
        "speedup": row.speedup_vs_eager,
        "speedup_ci_low": row.speedup_ci_low,
        "speedup_ci_high": row.speedup_ci_high,
        "verdict": row.verdict or None,
        "cold_start_s": row.cold_start_s,
        "peak_mem_bytes": row.peak_mem_bytes,
        "command": row.command or None,
        "contended": row.contended,
        "contention_note": str(note) if note else None,
    }


def _scenario_path(meta: dict[str, Any]) -> Path:
    given = Path(str((meta.get("scenario") or {}).get("path") or "unknown-scenario.py"))
    return given if given.is_absolute() else Path(str(meta.get("cwd") or ".")) / given


def run_records(run_dir: Path, live: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the runs row, the records rows) of one run folder. Errors name the folder."""
    run = RunDir(Path(run_dir))
    if not run.run_json.is_file():
        raise FileNotFoundError(f"{run_dir}: no run.json: not a perfbench run folder")
    meta = run.read_meta()
    rows = run.read_rows() if run.results_csv.is_file() else []
    env = meta.get("environment") or {}
    machine, machine_facts = machine_fingerprint(env)
    ident = identify(_scenario_path(meta), env.get("git_commit"), live)
    path = str(run.path.resolve())
    started = str(meta.get("started_at") or "")
    packages = env.get("packages") or {}
    return {
        "run_key": hashlib.sha256(f"{path}\n{started}".encode()).hexdigest()[:32],
        "run_path": path,
        "state": meta.get("state"),
        "scenario_key": ident.key,
        "scenario_name": (meta.get("scenario") or {}).get("name"),
        "scenario_hash": ident.source_hash,
        "repo_root": ident.repo_root,
        "git_commit": ident.commit,
        "git_dirty": ident.dirty,
        "commit_time": ident.commit_time,
        "started_at": started,
        "torch_version": env.get("torch"),
        "perfbench_version": meta.get("perfbench_version") or packages.get("perfbench"),
        "machine": machine,
        "machine_desc": json.dumps(machine_facts, sort_keys=True),
        "command": meta.get("command"),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, [_record(r) for r in rows]


def record_run(run_dir: Path | str, url: str | None = None, live: bool = True) -> int:
    """Record one run folder into the history store (`url`: a path or database URL; default as
    `resolve_url`). Returns the records added: 0 if the folder was already recorded or recording
    is off. The public entry point for `perfbench run` and the Python API."""
    resolved = resolve_url(url)
    if resolved is None:
        return 0
    run, rows = run_records(Path(run_dir), live=live)
    engine = store.open_store(resolved)
    try:
        return store.insert_run(engine, run, rows)
    finally:
        engine.dispose()
