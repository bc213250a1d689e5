"""The HTML page of `perfbench compare --html`: the gate's outcome first, then one row per point.

A reader opens the page to learn one thing: did B regress? So the top says PASS or FAIL against
`--fail-above` (or that no gate was set) and counts the verdicts, then says what the verdicts
rest on (runs as the unit with an interval, or one run on a side: the weaker IQR rule); the table
names each point by the axes that vary (backend always) and puts the verdict right after them, so
it is on screen at 1400 px whatever else the table holds. Where runs are the unit it adds the 95%
interval of the change and the repetitions counted on each side. Missing values are blank, never
NaN. Self-contained and autoescaped, like the report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from perfbench.results.axes import AXES

# (column, header) after the axes, in page order: the verdict first
PAGE_COLUMNS = (
    ("verdict", "verdict"),
    ("change_pct", "change B/A"),
    ("change_ci", "95% CI of change"),
    ("median_a_ms", "A median ms"),
    ("median_b_ms", "B median ms"),
    ("runs", "repetitions A/B"),
    ("noise_a", "A IQR/median"),
    ("noise_b", "B IQR/median"),
    ("status_a", "A status"),
    ("status_b", "B status"),
    # perfbench.analysis.compare_load: contention per side; --basis speedup's columns
    ("contended_a", "A contended"),
    ("contended_b", "B contended"),
    ("speedup_a", "A speedup over eager"),
    ("speedup_b", "B speedup over eager"),
    ("speedup_change", "speedup B/A (CI)"),
)
NUMERIC = {"median_a_ms", "median_b_ms", "noise_a", "noise_b", "change_pct"}


def shown_axes(df: pd.DataFrame) -> list[str]:
    """The axes a comparison table shows: backend always, and every axis that varies in it."""
    return ["backend"] + [a for a in AXES if a != "backend" and df[a].astype(str).nunique() > 1]


def cell_text(column: str, value: Any) -> str:
    """One cell for humans: blank for a missing value (never NaN), percentages as such."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in ("noise_a", "noise_b"):
        return f"{value:.1%}"
    if column == "change_pct":
        return f"{value:+.1f}%"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def verdict_counts(df: pd.DataFrame) -> str:
    """ "13 slower, 4 no result (...)": how many points got each verdict, most common first."""
    counts = df["verdict"].value_counts()
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _how_sure(df: pd.DataFrame) -> str:
    """How "slower by more than PCT%" was established, by the bases present."""
    if "speedup_change" in df:  # --basis speedup (perfbench.analysis.compare_load)
        return "in its speedup over eager, with confidence"
    bases = set(df["basis"]) if "basis" in df else set()
    if bases == {"runs"}:
        return "with 95% confidence"
    if "runs" in bases:
        return (
            "with 95% confidence where runs are the unit, beyond the noise of both runs elsewhere"
        )
    return "beyond the noise of both runs"


def gate_summary(
    df: pd.DataFrame, fail_above: float | None, regressed: pd.DataFrame | None
) -> tuple[str, str]:
    """(css class, sentence) of the page's first line: the gate's outcome."""
    if fail_above is None:
        return "none", "No gate: --fail-above was not given, so nothing passes or fails."
    n = 0 if regressed is None else len(regressed)
    if n == 0:
        return "pass", (
            f"PASS: no matched point is slower by more than {fail_above:g}% ({_how_sure(df)})."
        )
    return "fail", (
        f"FAIL: {n} of {len(df)} point(s) regressed beyond {fail_above:g}% "
        f"(slower by more than that {_how_sure(df)}, or lost their result in B)."
    )


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>perfbench compare</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2330; }
table { border-collapse: collapse; } th, td { padding: 3px 8px; border-bottom: 1px solid #dde1e8; }
th { background: #f6f7f9; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.slower, .regressed { color: #b3261e; font-weight: 600; } .faster, .fixed { color: #1f7a4d; font-weight: 600; }
tr.gated td { background: #fff7f6; }
.gate { padding: 10px 14px; border-radius: 4px; font-size: 16px; font-weight: 600; }
.gate.pass { background: #dff3e8; color: #1f7a4d; } .gate.fail { background: #fde7e5; color: #b3261e; }
.gate.none { background: #eceef2; color: #445; } .warn { background: #fff4d6; color: #8a5a00; padding: 6px 12px; }
</style></head><body>
<h1>perfbench compare</h1>
<p id="gate" class="gate {{ gate[0] }}">{{ gate[1] }}</p>
<p>{{ counts }}</p>
{% if mismatch %}<p class="warn">warning: {{ mismatch }}</p>{% endif %}
<p>A: <code>{{ run_a }}</code><br>B: <code>{{ run_b }}</code></p>
<p>change = B / A − 1.</p>
{% for note in notes %}<p class="basis">{{ note }}</p>{% endfor %}
<table id="compare-table"><thead><tr>{% for c, header in columns %}<th>{{ header }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr{% if r.gated %} class="gated"{% endif %}>{% for c, header in columns %}
<td class="{{ 'num' if c in numeric else '' }} {{ r.verdict_class if c == 'verdict' else '' }}">{{ r.cells[c] }}</td>
{% endfor %}</tr>{% endfor %}
</tbody></table></body></html>
"""


def write_compare_html(
    df: pd.DataFrame,
    out_path: Path,
    run_a: str = "A",
    run_b: str = "B",
    fail_above: float | None = None,
    regressed: pd.DataFrame | None = None,
    mismatch: str | None = None,
    notes: list[str] | None = None,
    text: list[str] | None = None,
) -> Path:
    """The comparison as a small self-contained HTML page (autoescaped). `notes`: what the
    verdicts rest on; `text`: the measurement columns shown (the interval and repetitions
    columns only where some point has runs as the unit)."""
    axes = shown_axes(df) if len(df) else ["backend"]
    optional = {"change_ci", "runs"} - set(text or ())
    page = [(c, h) for c, h in PAGE_COLUMNS if c not in optional and c in df.columns]
    columns = [(a, a) for a in axes] + page
    gated = set() if regressed is None else set(regressed.index)
    rows = [
        {
            "cells": {c: cell_text(c, r[c]) for c, _ in columns},
            "verdict_class": str(r["verdict"]).split(":")[0].split(" ")[0],
            "gated": index in gated,
        }
        for index, r in df.iterrows()
    ]
    env = jinja2.Environment(autoescape=True)
    html = env.from_string(_HTML).render(
        columns=columns,
        rows=rows,
        numeric=NUMERIC,
        gate=gate_summary(df, fail_above, regressed),
        counts=verdict_counts(df) if len(df) else "no points in either run",
        mismatch=mismatch,
        notes=notes or [],
        run_a=run_a,
        run_b=run_b,
    )
    out_path = Path(out_path)
    out_path.write_text(html, encoding="utf-8")
    return out_path
