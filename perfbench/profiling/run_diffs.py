"""The op-level diffs of one run folder: every profiled point against its baseline, written as
`diffs/<B>--vs--<A>.csv` (A the baseline, B the point; each a file-name-safe point label).

Two kinds of comparison, both at equal settings on every other axis:
- `backend`: a backend's point against eager (what fusion, compilation or quantization changed);
- `amp`: an autocast point (bf16/fp16) against the same backend at amp=off (which ops the casts
  added or slowed: why low precision is slower on a CPU, or faster on a GPU).
Both points need a `--profile` trace. On a CUDA point the device side (kernels) is written too, as
`...--vs--<A>.device.csv`. The CSVs are derived data: rebuilding the report rewrites them from the
traces, so they never disagree with the traces in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.profiling.op_diff import diff_ops, op_steps, totals
from perfbench.profiling.torch_trace import safe_label
from perfbench.results import facts
from perfbench.results.axes import AXES

DIFF_DIR = "diffs"


@dataclass
class OpDiff:
    """One diff: baseline A, point B, the kind, the CSV written, the table and step totals."""

    kind: str  # "backend" or "amp"
    a_label: str
    b_label: str
    csv: str  # relative to the run folder
    diff: pd.DataFrame
    totals: dict[str, float] = field(default_factory=dict)
    side: str = "host"
    error: str | None = None


def _key(row: dict[str, Any], skip: str) -> tuple[str, ...]:
    """Axes other than `skip` as comparable strings (64, 64.0 and "64" are one batch size)."""
    out = []
    for axis in AXES:
        if axis == skip:
            continue
        value = row.get(axis)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out.append(str(value).lower())
    return tuple(out)


def _trace(row: dict[str, Any]) -> str | None:
    profile = (row.get("extra") or {}).get(facts.PROFILE)
    if isinstance(profile, dict) and isinstance(profile.get("trace"), str):
        return profile["trace"]
    return None


def pairs(df: pd.DataFrame) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(kind, baseline row, point row) for every profiled ok point that has a profiled baseline."""
    rows = [r for r in df.to_dict("records") if r.get("status") == "ok" and _trace(r)]
    eager = {_key(r, "backend"): r for r in rows if r.get("backend") == "eager"}
    amp_off = {_key(r, "amp"): r for r in rows if str(r.get("amp")) == "off"}
    out = []
    for r in rows:
        if r.get("backend") != "eager" and _key(r, "backend") in eager:
            out.append(("backend", eager[_key(r, "backend")], r))
        if str(r.get("amp")) != "off" and _key(r, "amp") in amp_off:
            out.append(("amp", amp_off[_key(r, "amp")], r))
    return out


def run_diffs(df: pd.DataFrame, run_path: Path, write: bool = True) -> list[OpDiff]:
    """Diff every pair in `pairs(df)`; `df` needs a `label` column (report.data.load_results).
    A trace that cannot be read gives an OpDiff with `error` set, never an exception."""
    run_path = Path(run_path)
    out: list[OpDiff] = []
    for kind, a, b in pairs(df):
        name = f"{safe_label(b['label'])}--vs--{safe_label(a['label'])}"
        sides = ["host", "device"] if str(b.get("device")) == "cuda" else ["host"]
        for side in sides:
            csv = f"{DIFF_DIR}/{name}{'' if side == 'host' else '.device'}.csv"
            try:
                steps_a = op_steps(run_path / _trace(a), side)  # type: ignore[operator]
                steps_b = op_steps(run_path / _trace(b), side)  # type: ignore[operator]
                diff = diff_ops(steps_a, steps_b)
            except (OSError, ValueError, KeyError) as err:
                empty = pd.DataFrame()
                out.append(
                    OpDiff(
                        kind,
                        a["label"],
                        b["label"],
                        "",
                        empty,
                        side=side,
                        error=f"{type(err).__name__}: {err}".replace(f"{run_path}/", ""),
                    )
                )
                continue
            if write:
                (run_path / DIFF_DIR).mkdir(exist_ok=True)
                diff.to_csv(run_path / csv, index=False, float_format="%.6g")
            out.append(
                OpDiff(kind, a["label"], b["label"], csv, diff, totals(steps_a, steps_b), side)
            )
    return out
