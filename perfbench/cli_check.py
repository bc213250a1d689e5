"""`perfbench check SCENARIO`: load the scenario, run the sanity ladder, print its table.

The ladder itself (perfbench/check/) never prints; this is the terminal side.
"""

from __future__ import annotations

import sys

from perfbench.check.ladder import run_check
from perfbench.scenario import ScenarioError


def check_main(
    scenario_path: str,
    backends: list[str],
    quiet: bool = False,
    load_timeout_s: float | None = None,
) -> int:
    """Load (within `load_timeout_s`, default `catalog.DEFAULT_LOAD_TIMEOUT_S`), run the ladder,
    print its table. Exit 0 if no rung failed, 1 if one did, 2 if the scenario cannot be loaded
    (message on stderr)."""
    from perfbench.bounded_load import load_for_command
    from perfbench.catalog import DEFAULT_LOAD_TIMEOUT_S

    if load_timeout_s is None:
        limit = (DEFAULT_LOAD_TIMEOUT_S, "the default limit; --timeout sets it")
    else:
        limit = (load_timeout_s, "--timeout")
    try:
        scenario = load_for_command(scenario_path, *limit)
        report = run_check(scenario, backends=backends)
    except ScenarioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.format_text(quiet=quiet))
    return 0 if report.ok else 1
