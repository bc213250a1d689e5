"""What `perfbench compare` checks before it gives a verdict: that the two runs timed the same
scenario, and how many rows of each side it could not read.

Why refuse rather than warn: a faster/slower verdict between two different models is a number about
nothing, and a warning above a table of green and red verdicts is easy to miss (issue 19, item 7).
"Same scenario" is the same file path, or the same source (sha256, recorded in run.json since
this version) under another path, a renamed or copied file. Editing the scenario in place is the
ratchet's whole point (make one change, compare), so the path alone decides when both are the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perfbench.results import layout
from perfbench.results.reader import read_results_csv

ALLOW_FLAG = "--allow-different-scenarios"


def _scenario(run: Path) -> dict[str, Any]:
    try:
        meta = json.loads((Path(run) / layout.RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    scenario = meta.get("scenario") if isinstance(meta, dict) else None
    return scenario if isinstance(scenario, dict) else {}


def different_scenarios(
    run_a: Path, run_b: Path, allow_different_scenarios: bool = False
) -> str | None:
    """Why the runs' points are not comparable (the refusal, naming both scenarios), or None."""
    sa, sb = _scenario(run_a), _scenario(run_b)
    if allow_different_scenarios or not sa or not sb or sa.get("path") == sb.get("path"):
        return None
    if sa.get("sha256") and sa.get("sha256") == sb.get("sha256"):
        return None  # the same source under another name
    return (
        f"the runs timed different scenarios ({sa.get('path')} in A, {sb.get('path')} in B): "
        f"their points are not comparable, so no faster/slower verdict is given. If they are the "
        f"same program under another name, rerun with {ALLOW_FLAG}"
    )


def unreadable_notes(run_a: Path, run_b: Path) -> list[str]:
    """One line per side whose results.csv has damaged lines: how many rows were left out (each
    line is named in the DamagedRowsWarning the comparison's own read raised)."""
    notes = []
    for side, run in (("A", run_a), ("B", run_b)):
        found = read_results_csv(Path(run) / layout.RESULTS_CSV, warn=False)
        if found.damaged:
            lines = ", ".join(str(d.line) for d in found.damaged[:10])
            more = ", ..." if len(found.damaged) > 10 else ""
            notes.append(
                f"{side}: {len(found.damaged)} row(s) of {layout.RESULTS_CSV} could not be read "
                f"(damaged line(s) {lines}{more}); compared on its {len(found.rows)} intact row(s)"
            )
    return notes
