"""`perfbench check SCENARIO`: load the scenario, run the sanity ladder, print its table.

The ladder itself (perfbench/check/) never prints; this is the terminal side.
"""

from __future__ import annotations

import sys

from perfbench.check.ladder import run_check
from perfbench.scenario import ScenarioError, load_scenario, probe_scenario


def check_main(scenario_path: str, backends: list[str], quiet: bool = False) -> int:
    """Exit 0 if no rung failed, 1 if one did, 2 if the scenario cannot be loaded (on stderr)."""
    try:
        scenario = load_scenario(scenario_path)
        probe_scenario(scenario)
        report = run_check(scenario, backends=backends)
    except ScenarioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.format_text(quiet=quiet))
    return 0 if report.ok else 1
