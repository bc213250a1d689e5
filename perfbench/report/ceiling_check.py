"""Which measured ceiling each point is compared with, and which points beat theirs.

A run records the cached ceilings of its device (run.json: `ceilings`, and on a CPU
`ceilings_by_threads`, one per thread count of the sweep). A point is compared with the ceiling
of its own device and thread count only: a 1-thread point against a 2-thread matmul rate says
nothing. A point above its ceiling cannot be faster than the device: it means the ceiling is
stale (measured while the machine was busy, or by an older perfbench), and the report says so
next to the chart instead of printing "120% of ceiling" as if it were a result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class AboveCeiling:
    """An ok point whose achieved TFLOP/s exceeds the matmul ceiling it is compared with."""

    label: str
    tflops: float
    ceiling: float
    threads: int | None


def _entries(meta: dict[str, Any]) -> list[dict[str, Any]]:
    by_threads = meta.get("ceilings_by_threads")
    if isinstance(by_threads, dict) and by_threads:
        return [e for e in by_threads.values() if isinstance(e, dict)]
    single = meta.get("ceilings")
    return [single] if isinstance(single, dict) else []


def listed(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ceiling the run recorded, for the page's reproduce section."""
    return _entries(meta)


def _threads_of(entry: dict[str, Any]) -> int | None:
    """The thread count a ceiling was measured with: its field, else its cache key."""
    if isinstance(entry.get("threads"), int):
        return int(entry["threads"])
    found = re.search(r"threads=(\d+)", str(entry.get("device_name", "")))
    return int(found.group(1)) if found else None


def _applies(entry: dict[str, Any], device: str, threads: int | None) -> bool:
    kind = "cuda" if str(entry.get("device_name", "")).startswith("cuda") else "cpu"
    if kind != device:
        return False
    measured_at = _threads_of(entry)
    return kind == "cuda" or measured_at is None or measured_at == threads


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def point_ceilings(df: pd.DataFrame, meta: dict[str, Any]) -> pd.Series:
    """Matmul TFLOP/s ceiling per row of `df` (same index), NaN where no ceiling applies."""
    entries = _entries(meta)
    values = []
    for r in df.to_dict("records"):
        device, threads = str(r.get("device", "cpu") or "cpu"), _int(r.get("threads"))
        peak = next((e.get("matmul_tflops") for e in entries if _applies(e, device, threads)), None)
        ok = isinstance(peak, (int, float)) and peak > 0
        values.append(float(peak) if ok else math.nan)  # type: ignore[arg-type]
    return pd.Series(values, index=df.index, dtype=float)


def above_ceiling(df: pd.DataFrame, ceilings: pd.Series) -> list[AboveCeiling]:
    """Ok points (not interpreter timings) whose TFLOP/s exceed their ceiling."""
    if "tflops" not in df:
        return []
    ok = (df["status"] == "ok") & ~df["correctness_only"] & df["tflops"].notna() & ceilings.notna()
    return [
        AboveCeiling(str(r["label"]), float(r["tflops"]), float(c), _int(r.get("threads")))
        for (_, r), c in zip(df[ok].iterrows(), ceilings[ok], strict=True)
        if float(r["tflops"]) > float(c)
    ]


def stale_note(above: list[AboveCeiling]) -> str | None:
    """What the chart's caption says when points beat their ceiling, with the command to fix it."""
    if not above:
        return None
    counts = sorted({a.threads for a in above if a.threads is not None})
    refresh = "; ".join(f"perfbench ceilings --refresh --threads {t}" for t in counts) or (
        "perfbench ceilings --refresh"
    )
    worst = max(above, key=lambda a: a.tflops / a.ceiling)
    return (
        f"{len(above)} point(s) above the measured ceiling (red), up to "
        f"{worst.tflops / worst.ceiling:.0%} ({worst.label}): a point cannot beat the device, so "
        f"the ceiling is stale. Measure it again on a quiet machine: {refresh}"
    )
