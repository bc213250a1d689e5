"""What the report says, computed from the run folder alone (docs/design.md rule 7: never re-measure).

Kept apart from the charts and the HTML so the numbers can be tested without rendering, the same
split torch.utils.benchmark makes between `Measurement` and `Compare`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from perfbench.axes import AXES, point_label
from perfbench.row import MEASURED, Row
from perfbench.rundir import RunDir, rows_frame
from perfbench.timing import is_significant

# Axes other than backend: "equal settings" for a speedup means equal on all of these.
OTHER_AXES = tuple(a for a in AXES if a != "backend")

CORRECTNESS_ONLY_NOTE = "interpreter timing, not performance"


def load_results(run: RunDir) -> pd.DataFrame:
    """results.csv as the report's table: see `results_table`."""
    return results_table(run.read_rows())


def results_table(rows: Sequence[Row]) -> pd.DataFrame:
    """Rows as a table with a readable `label` per point, and the measurements of every point
    that is not ok blanked, so a failed point's time can never be read as a result (rule 1)."""
    df = rows_frame(rows)
    df["correctness_only"] = df["correctness_only"].map(lambda v: v is True)
    not_ok = df["status"] != "ok"
    for col in MEASURED:
        df[col] = df[col].astype(float)
        df.loc[not_ok, col] = math.nan
    df["label"] = [point_label(r, " ") for r in df.to_dict("records")]
    return df


def axes_key(row: dict[str, Any], axes: tuple[str, ...] = AXES) -> tuple[str, ...]:
    """Axes of a row as comparable strings (CSV round trips turn 64 into 64.0 or "64")."""
    out = []
    for axis in axes:
        value = row.get(axis)
        if isinstance(value, float) and not math.isnan(value) and value.is_integer():
            value = int(value)
        out.append(
            "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        )
    return tuple(out)


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """Each ok non-eager point against the ok eager point with the same other axes.

    speedup = eager median / backend median (>1 means faster than eager), both from this run
    (docs/design.md rule 8: compare ratios measured in one run).
    """
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()]
    eager = {_key(r): r for r in ok[ok["backend"] == "eager"].to_dict("records")}
    several_hosts = len({h for h in ok["host"] if h}) > 1
    rows = []
    for r in ok[ok["backend"] != "eager"].to_dict("records"):
        base = eager.get(_key(r))
        if base is None:
            continue
        rows.append(
            {
                "label": r["label"],
                "backend": r["backend"],
                "settings": point_label({**r, "backend": ""}, " ")
                + (f" on {r['host']}" if several_hosts else ""),
                "eager_ms": base["median_ms"],
                "median_ms": r["median_ms"],
                "speedup": base["median_ms"] / r["median_ms"],
                # rule 8: a difference counts only when it exceeds the noise of both points
                "significant": is_significant(
                    r["median_ms"] / base["median_ms"], _noise(base), _noise(r)
                ),
                "correctness_only": bool(r["correctness_only"]),
            }
        )
    cols = [
        "label",
        "backend",
        "settings",
        "eager_ms",
        "median_ms",
        "speedup",
        "significant",
        "correctness_only",
    ]
    return pd.DataFrame(rows, columns=cols)


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    """Equal settings on the same machine: a time is only compared with one from its own host
    (points of one run may be measured on different machines under --executor ray)."""
    return (*axes_key(row, OTHER_AXES), str(row.get("host") or ""))


def _noise(row: dict[str, Any]) -> float:
    """IQR / median of one point; NaN when unknown (then nothing is called significant)."""
    noise = row.get("noise")
    if noise is None or (isinstance(noise, float) and math.isnan(noise)):
        iqr, med = row.get("iqr_ms"), row.get("median_ms")
        return float(iqr) / float(med) if iqr is not None and med else math.nan
    return float(noise)


def speedup_summary(sp: pd.DataFrame) -> list[dict[str, Any]]:
    """Per backend: how many settings were compared, geometric-mean speedup, worst and best.

    The geometric mean, because speedups are ratios: 2x faster and 2x slower average to 1x."""
    out = []
    for backend, g in sp.groupby("backend", sort=False):
        worst = g.loc[g["speedup"].idxmin()]
        best = g.loc[g["speedup"].idxmax()]
        out.append(
            {
                "backend": backend,
                "n": len(g),
                "n_significant": int(g["significant"].sum()),
                "geomean": float(math.exp(g["speedup"].map(math.log).mean())),
                "worst": float(worst["speedup"]),
                "worst_at": worst["settings"],
                "best": float(best["speedup"]),
                "best_at": best["settings"],
                "correctness_only": bool(g["correctness_only"].any()),
            }
        )
    return out


def best_per_backend(df: pd.DataFrame) -> pd.DataFrame:
    """The highest-throughput ok point of each backend (lowest median where throughput is absent)."""
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()].copy()
    if ok.empty:
        return ok
    ok["_score"] = ok["throughput"].fillna(-1.0) if "throughput" in ok else -1.0
    ok = ok.sort_values(["_score", "median_ms"], ascending=[False, True])
    return ok.groupby("backend", sort=False).head(1).drop(columns="_score")


def not_ok(df: pd.DataFrame) -> pd.DataFrame:
    """Points that did not produce a result, with the reason or error as `why`."""
    bad = df[df["status"] != "ok"].copy()
    bad["why"] = [
        (r["error"] or r["reason"] or "(no reason recorded)") for r in bad.to_dict("records")
    ]
    bad["traceback"] = [str(e.get("traceback") or "") for e in bad["extra"]]
    return bad


# plain-words advice the harness attaches to a point (e.g. "input-bound: ..."), shown in the verdict
HINT_KEYS = ("input_bound_hint", "flops_unknown")


def hints(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, hint) for ok points the harness attached advice to."""
    return [
        (r["label"], str(r["extra"][k]))
        for r in df[df["status"] == "ok"].to_dict("records")
        for k in HINT_KEYS
        if r["extra"].get(k)
    ]


def noisy(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, warning) for ok points whose spread the harness flagged (IQR/median > 10%)."""
    out = []
    for r in df[df["status"] == "ok"].to_dict("records"):
        warning = r["extra"].get("noise_warning")
        if warning:
            out.append((r["label"], str(warning)))
    return out
