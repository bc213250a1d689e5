"""`perfbench compare RUN_A RUN_B`: the ratchet. Record a baseline, make one change, compare.

Points are matched by their axes (backend, batch_size, threads, amp, pin_memory, num_workers,
mode, device). For each matched pair the ratio of medians B / A is reported with a verdict; a change
is called significant only when it is larger than the measured noise of both runs.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.axes import AXES
from perfbench.report.compare_page import cell_text, shown_axes, write_compare_html
from perfbench.report.data import axes_key, load_results
from perfbench.rundir import RunDir
from perfbench.timing import is_significant

# a verdict that says the change is inside the noise: never a regression, whatever its size
WITHIN_NOISE = "same (within noise)"
COLUMNS = [
    *AXES,
    "status_a",
    "status_b",
    "median_a_ms",
    "median_b_ms",
    "noise_a",
    "noise_b",
    "ratio",
    "change_pct",
    "significant",
    "verdict",
]


def relative_noise(row: dict[str, Any]) -> float:
    """IQR / median of one point, from the `noise` column, else iqr_ms, else the raw times."""
    noise = row.get("noise")
    if isinstance(noise, float) and not math.isnan(noise):
        return noise
    iqr, med = row.get("iqr_ms"), row.get("median_ms")
    if isinstance(iqr, float) and not math.isnan(iqr) and med:
        return iqr / med
    times = (row.get("extra") or {}).get("times_ms")
    if isinstance(times, list) and len(times) >= 4:
        s = pd.Series(times, dtype=float)
        return float((s.quantile(0.75) - s.quantile(0.25)) / s.median())
    return math.nan


def compare_runs(run_a: Path, run_b: Path) -> pd.DataFrame:
    """One row per point present in either run; ratio = median B / median A (>1: B is slower)."""
    a = _by_axes(load_results(RunDir(Path(run_a))))
    b = _by_axes(load_results(RunDir(Path(run_b))))
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        ra, rb = a.get(key), b.get(key)
        row: dict[str, Any] = dict(zip(AXES, key, strict=True))
        row["status_a"] = ra["status"] if ra else "missing"
        row["status_b"] = rb["status"] if rb else "missing"
        med_a = ra["median_ms"] if ra and ra["status"] == "ok" else math.nan
        med_b = rb["median_ms"] if rb and rb["status"] == "ok" else math.nan
        noise_a = relative_noise(ra) if ra else math.nan
        noise_b = relative_noise(rb) if rb else math.nan
        ratio = med_b / med_a if med_a and not math.isnan(med_a) else math.nan
        sig = is_significant(ratio, noise_a, noise_b)
        row.update(
            median_a_ms=med_a,
            median_b_ms=med_b,
            noise_a=noise_a,
            noise_b=noise_b,
            ratio=ratio,
            change_pct=(ratio - 1.0) * 100.0,
            significant=sig,
            verdict=_verdict(row["status_a"], row["status_b"], ratio, sig, noise_a, noise_b),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _by_axes(df: pd.DataFrame) -> dict[tuple[str, ...], dict[str, Any]]:
    """Last row wins when a point was measured twice (a resumed run appends)."""
    return {axes_key(r): r for r in df.to_dict("records")}


def _verdict(
    status_a: str, status_b: str, ratio: float, sig: bool, noise_a: float, noise_b: float
) -> str:
    if status_a == "missing" or status_b == "missing":
        return f"only in {'B' if status_a == 'missing' else 'A'}"
    if status_a != "ok" or status_b != "ok":
        if status_a == "ok":
            return f"regressed: {status_b} in B"
        if status_b == "ok":
            return f"fixed: {status_a} in A"
        return f"no result ({status_a} / {status_b})"
    if math.isnan(noise_a) or math.isnan(noise_b):
        return "noise unknown"
    if not sig:
        return WITHIN_NOISE
    return "slower" if ratio > 1 else "faster"


def regressions(df: pd.DataFrame, fail_above_pct: float) -> pd.DataFrame:
    """Matched points slower by more than the threshold, and points ok in A that lost their result
    in B (a point that starts failing is the largest slowdown there is).

    A point whose own verdict is "same (within noise)" is no regression however large its
    change: the change is inside the spread of one of the runs. A point whose noise is unknown
    (an older run without IQRs) is judged by its change alone, so a gate never goes quiet for
    want of a spread."""
    slower = (df["change_pct"] > fail_above_pct) & (df["verdict"] != WITHIN_NOISE)
    lost = (df["status_a"] == "ok") & df["status_b"].isin(["failed", "oom", "timeout"])
    return df[slower | lost]


TEXT_COLUMNS = ["median_a_ms", "median_b_ms", "change_pct", "noise_a", "noise_b", "verdict"]


def format_table(df: pd.DataFrame, axes: list[str] | None = None) -> str:
    """The comparison as plain text for the terminal. `axes`: the columns that name a point
    (default `shown_axes(df)`); pass the full comparison's so a subset (the regressions) shows
    the same ones, backend included."""
    if df.empty:
        return "no points in either run"
    axes = axes or shown_axes(df)
    cells = pd.DataFrame(
        {c: [cell_text(c, v) for v in df[c]] for c in [*axes, *TEXT_COLUMNS]}, index=df.index
    )
    return cells.to_string(index=False)


def scenario_mismatch(run_a: Path, run_b: Path) -> str | None:
    """Why the two runs may not be comparable (different scenario or host), or None."""
    metas = []
    for path in (run_a, run_b):
        try:
            metas.append(RunDir(path).read_meta())
        except (OSError, ValueError):
            return None
    (a, b) = metas
    sa, sb = (m.get("scenario") or {} for m in metas)
    if sa.get("path") != sb.get("path"):
        return f"different scenarios: {sa.get('path')} vs {sb.get('path')}"
    ha = (a.get("environment") or {}).get("hostname")
    hb = (b.get("environment") or {}).get("hostname")
    if ha and hb and ha != hb:
        return f"different hosts ({ha} vs {hb}): absolute times are not comparable across machines"
    return None


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `perfbench compare` (the CLI owns the subparser; this fills it)."""
    parser.add_argument("run_a", type=Path, help="baseline run folder")
    parser.add_argument("run_b", type=Path, help="run folder to compare against the baseline")
    parser.add_argument(
        "--fail-above",
        type=float,
        metavar="PCT",
        default=None,
        help="exit 1 when a matched point is slower by more than PCT percent and not within the "
        "noise (or lost its result)",
    )
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write the table as HTML")


class CompareError(ValueError):
    """The arguments cannot be compared (not a run folder, a negative threshold): exit status 2."""


@dataclass
class Comparison:
    """What `perfbench compare` found; the CLI prints it (perfbench.cli_compare)."""

    table: pd.DataFrame  # compare_runs: one row per point in either run
    mismatch: str | None  # why the runs may not be comparable (scenario_mismatch)
    fail_above: float | None  # the --fail-above gate in percent, None without one
    regressed: pd.DataFrame  # points beyond the gate (empty without one)

    @property
    def axes(self) -> list[str]:
        """The axes that name a point in any table of this comparison (backend always)."""
        return shown_axes(self.table) if len(self.table) else ["backend"]

    @property
    def exit_code(self) -> int:
        """0 = fine, 1 = a regression above --fail-above."""
        return 1 if len(self.regressed) else 0


def compare(
    run_a: Path, run_b: Path, fail_above: float | None = None, html: Path | None = None
) -> Comparison:
    """Compare two run folders, write the HTML table when asked, and apply the gate."""
    for path in (run_a, run_b):
        if not RunDir(Path(path)).results_csv.is_file():
            raise CompareError(f"{path} is not a run folder (no results.csv)")
    if fail_above is not None and (math.isnan(fail_above) or fail_above < 0):
        raise CompareError("--fail-above must be a percentage >= 0")
    table = compare_runs(run_a, run_b)
    found = Comparison(
        table=table,
        mismatch=scenario_mismatch(Path(run_a), Path(run_b)),
        fail_above=fail_above,
        regressed=table.iloc[0:0] if fail_above is None else regressions(table, fail_above),
    )
    if html:
        write_compare_html(
            table, html, str(run_a), str(run_b), fail_above, found.regressed, found.mismatch
        )
    return found


if __name__ == "__main__":  # `python -m perfbench.compare A B`, the same as `perfbench compare`
    from perfbench.cli_compare import compare_main

    raise SystemExit(compare_main())
