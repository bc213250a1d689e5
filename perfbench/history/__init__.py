"""Every run remembered: a store of run records, trends across commits, steps and a CI gate.

    from perfbench.history import record_run
    record_run("reports/mlp-20261204-1700")        # into the default store (or $PERFBENCH_HISTORY)

`perfbench run` records each run after its rows are written (`--no-history` to skip); the
`perfbench history` command shows trends (perfbench.cli.history). Modules: store (SQLAlchemy
Core schema and migrations), record (run folder -> records), fingerprint (machine, scenario,
commit), trend (grouping), steps (change detection statistics), findings (steps of a trend),
gate (--fail-on-regression), page (--html), bisect (`perfbench bisect`).
"""

from __future__ import annotations

from pathlib import Path

from perfbench.history.store_location import ENV_VAR

__all__ = ["ENV_VAR", "record_run"]


def record_run(run_dir: Path | str, url: str | None = None) -> int:
    """Record a finished run folder in the history store (`url`: a SQLite path or a database
    URL; default $PERFBENCH_HISTORY, else the user's cache folder). Returns the records added
    (0: already recorded, or history switched off). Raises on a store that cannot be written:
    callers that must not fail (a run) catch and warn."""
    from perfbench.history.record import record_run as _record_run

    return _record_run(run_dir, url)
