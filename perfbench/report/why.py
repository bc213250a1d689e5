"""The report's "why" block, under the verdict: the hardware line, the advisor's findings (most
valuable first, each with its evidence and command) and the op-level "what changed" tables.

One function, `why_context`, so the page needs a single added argument and the template a single
include (`why.html.j2`). It writes the run's `diffs/*.csv` as it goes (derived from the traces,
rewritten on every rebuild). Nothing here may break the report: any failure becomes a line that
says what failed, and the rest of the page renders as before.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

import pandas as pd

from perfbench.results.hardware import summary_line
from perfbench.results.rundir import RunDir

MAX_COMPARISONS = 12  # "what changed" tables shown; the rest are in diffs/ as CSV
MAX_ROWS = 8


def why_context(run: RunDir, df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """{"hardware": str, "findings": [...], "changed": [...], "errors": [...]} for the template."""
    from perfbench.advisor import RunData, advise
    from perfbench.profiling.run_diffs import run_diffs

    env = meta.get("environment") or {}
    out: dict[str, Any] = {
        "hardware": summary_line(env.get("hardware") or meta.get("hardware")),
        "findings": [],
        "changed": [],
        "errors": [],
    }
    try:
        comparisons = run_diffs(df, run.path, write=True) if len(df) else []
    except Exception as err:  # the diffs are derived: say why they are missing, keep the page
        comparisons = []
        out["errors"].append(f"op diffs failed: {type(err).__name__}: {err}")
    out["errors"] += [f"{c.b_label} vs {c.a_label}: {c.error}" for c in comparisons if c.error]
    try:
        findings = advise(RunData(run.path, df, meta, comparisons)) if len(df) else []
        out["findings"] = [f.as_dict() for f in findings]
    except Exception as err:
        out["errors"].append(f"advisor failed: {type(err).__name__}: {err}")
        out["errors"].append(traceback.format_exc(limit=-3))
    shown = [c for c in comparisons if not c.error][:MAX_COMPARISONS]
    out["changed"] = [_changed(c) for c in shown]
    out["more_diffs"] = max(0, sum(1 for c in comparisons if not c.error) - len(shown))
    return out


def _changed(comp: Any) -> dict[str, Any]:
    """One "what changed" table: the ops that vanished, appeared or moved beyond their noise."""
    diff = comp.diff
    changed = diff[diff["status"] != "same"].head(MAX_ROWS)
    rows = []
    for r in changed.to_dict("records"):
        if r["fused_from"]:
            fused = f"from aten {r['fused_from']}"
        else:
            fused = f"into {r['fused_into']}" if r["fused_into"] else ""
        rows.append({**r, "fused": fused, "a_shapes": r["a_shapes"] or r["b_shapes"]})
    counts = diff["status"].value_counts().to_dict()
    totals = {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in comp.totals.items()
    }
    return {
        "kind": comp.kind,
        "side": comp.side,
        "a": comp.a_label,
        "b": comp.b_label,
        "csv": comp.csv,
        "rows": rows,
        "counts": counts,
        "totals": totals,
        "hidden": int(len(diff[diff["status"] != "same"]) - len(rows)),
    }
