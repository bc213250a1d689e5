"""`perfbench compare RUN_A RUN_B`: the ratchet. Record a baseline, make one change, compare.

Points are matched by their axes (backend, batch_size, threads, amp, pin_memory, num_workers,
mode, device, ...). For each matched pair the change B / A is reported with a verdict, on one of
two bases, and the output says which:

- **Runs as the unit** (both runs made with `--repeat N`, N >= 2, every repetition ok): two runs
  cannot be paired round by round (they ran at different times), so the unit is the repetition.
  The change is the ratio of the geometric means of the per-repetition medians, with a 95% Welch
  t-interval over their logs (`perfbench.stats.runs_ratio.runs_ratio`, where the choice over a bootstrap is
  measured). Verdicts as in a run (`perfbench.stats.verdict.classify`, margin δ from B's run.json):
  `faster`/`slower` when the interval clears the margin, `same` inside it, else `inconclusive`.
- **One run on a side** (the fallback): the ratio of medians, called a change only when it is
  larger than the IQR/median of both runs (`timing.is_significant`). This is weaker: there is no
  interval, and the drift between two runs is larger than either run's IQR on a shared machine.

`--fail-above PCT` fails a point where runs are the unit only when the whole 95% interval of B/A
lies above 1 + PCT/100 ("slower by more than PCT% with 95% confidence"); each point is judged at
95% on its own (no correction across points: a point truly at the threshold fails 2.5% of the
time, one far below it almost never). With one run on a side it fails when the change exceeds
PCT% and is not within the noise. A point that was ok in A and lost its result in any
repetition of B always fails. Contention per side, no gate on a contended side
(`--allow-contended`) and `--basis speedup`: `perfbench.analysis.compare_load`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.analysis import compare_load as load
from perfbench.analysis.compare_guard import different_scenarios, unreadable_notes
from perfbench.measure.timing import is_significant
from perfbench.report.compare_page import cell_text, shown_axes, write_compare_html
from perfbench.report.data import axes_key, load_results
from perfbench.report.verdict_view import margin_of
from perfbench.results.axes import AXES
from perfbench.results.rundir import RunDir
from perfbench.stats.runs_ratio import runs_ratio
from perfbench.stats.verdict import classify

# a verdict that says the change is inside the noise: never a regression, whatever its size
WITHIN_NOISE = "same (within noise)"
RUNS, IQR = "runs", "IQR"  # the basis of a row's verdict (module docstring)
LEVEL = 0.95
NOT_OK = ("failed", "oom", "timeout")
COLUMNS = [
    *AXES,
    "status_a",
    "status_b",
    "reps_a",
    "reps_b",
    "runs",
    "median_a_ms",
    "median_b_ms",
    "noise_a",
    "noise_b",
    "ratio",
    "change_pct",
    "ci_low",
    "ci_high",
    "change_ci",
    "basis",
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
    return _iqr_ratio(row.get("times_ms"))


def _iqr_ratio(times: Any) -> float:
    if isinstance(times, list) and len(times) >= 4:
        s = pd.Series(times, dtype=float)
        return float((s.quantile(0.75) - s.quantile(0.25)) / s.median())
    return math.nan


@dataclass
class Side:
    """One run's rows of one point, one per repetition (a run without --repeat has one)."""

    status: str  # "ok" when every repetition is ok, else the first failure, or "missing"
    reps: int
    medians: list[float]  # per ok repetition
    noise: float  # IQR/median of the samples of all ok repetitions merged

    @classmethod
    def of(cls, rows: list[dict[str, Any]] | None) -> Side:
        if not rows:
            return cls("missing", 0, [], math.nan)
        statuses = [r["status"] for r in rows]
        failed = next((s for s in statuses if s in NOT_OK), None)
        status = failed or ("ok" if set(statuses) == {"ok"} else statuses[-1])
        ok = [r for r in rows if r["status"] == "ok" and not math.isnan(r["median_ms"])]
        if len(rows) == 1:
            noise = relative_noise(rows[0])
        else:  # Measurement.merge: every ok repetition's raw samples together
            times = [t for r in ok for t in r.get("times_ms") or []]
            noise = _iqr_ratio(times)
            if math.isnan(noise) and ok:
                noise = statistics.median(relative_noise(r) for r in ok)
        return cls(status, len(rows), [float(r["median_ms"]) for r in ok], noise)

    @property
    def median(self) -> float:
        """The one-run median; with repetitions the median of their medians."""
        return statistics.median(self.medians) if self.status == "ok" else math.nan


def compare_runs(run_a: Path, run_b: Path, margin: float | None = None) -> pd.DataFrame:
    """One row per point present in either run; ratio = B / A (>1: B is slower). `margin`: the
    verdict's practical margin where runs are the unit (default: B's run.json, else 3%)."""
    a = _by_axes(load_results(RunDir(Path(run_a))))
    b = _by_axes(load_results(RunDir(Path(run_b))))
    margin = _margin(Path(run_b)) if margin is None else margin
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        row: dict[str, Any] = dict(zip(AXES, key, strict=True))
        row.update(judge_pair(Side.of(a.get(key)), Side.of(b.get(key)), margin))
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _margin(run: Path) -> float:
    try:
        return margin_of(RunDir(run).read_meta())
    except (OSError, ValueError):
        return margin_of({})


def judge_pair(sa: Side, sb: Side, margin: float) -> dict[str, Any]:
    """The comparison columns of one matched point (module docstring: the two bases)."""
    out: dict[str, Any] = {
        "status_a": sa.status,
        "status_b": sb.status,
        "reps_a": sa.reps,
        "reps_b": sb.reps,
        "runs": f"{sa.reps}/{sb.reps}",
        "noise_a": sa.noise,
        "noise_b": sb.noise,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "change_ci": "",
        "basis": "",
    }
    both_ok = sa.status == "ok" and sb.status == "ok"
    if both_ok and len(sa.medians) >= 2 and len(sb.medians) >= 2:
        est = runs_ratio(sa.medians, sb.medians)
        low, high = est.interval(LEVEL)
        verdict = classify(1.0 / high, 1.0 / low, margin).value  # on the speedup A / B
        out.update(
            median_a_ms=statistics.geometric_mean(sa.medians),
            median_b_ms=statistics.geometric_mean(sb.medians),
            ratio=est.ratio,
            ci_low=low,
            ci_high=high,
            change_ci=f"{(low - 1) * 100:+.1f}% to {(high - 1) * 100:+.1f}%",
            basis=RUNS,
            significant=verdict in ("faster", "slower"),
            verdict=verdict,
        )
    else:
        med_a, med_b = sa.median, sb.median
        ratio = med_b / med_a if med_a and not math.isnan(med_a) else math.nan
        sig = is_significant(ratio, sa.noise, sb.noise)
        out.update(
            median_a_ms=med_a,
            median_b_ms=med_b,
            ratio=ratio,
            basis=IQR if both_ok else "",
            significant=sig,
            verdict=_verdict(sa.status, sb.status, ratio, sig, sa.noise, sb.noise),
        )
    out["change_pct"] = (out["ratio"] - 1.0) * 100.0
    if sb.status in NOT_OK and sb.reps > 1 and sa.status == "ok":
        out["verdict"] += f" ({sb.reps - len(sb.medians)} of {sb.reps} repetitions)"
    return out


def _by_axes(df: pd.DataFrame) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows per point, one per repetition in repetition order; the last row of a repetition
    wins when a point was measured twice in it (a resumed run appends)."""
    out: dict[tuple[str, ...], dict[int, dict[str, Any]]] = {}
    for r in df.to_dict("records"):
        out.setdefault(axes_key(r), {})[int(r.get("repeat") or 0)] = r
    return {key: [reps[k] for k in sorted(reps)] for key, reps in out.items()}


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

    Where runs are the unit, slower means the whole 95% interval of B/A lies above
    1 + PCT/100. Otherwise (one run on a side) a point whose verdict is "same (within noise)" is
    no regression however large its change, and a point whose noise is unknown (an older run
    without IQRs) is judged by its change alone, so a gate never goes quiet for want of a spread."""
    runs = df["basis"] == RUNS
    slower_runs = runs & (df["ci_low"] > 1.0 + fail_above_pct / 100.0)
    slower_one = ~runs & (df["change_pct"] > fail_above_pct) & (df["verdict"] != WITHIN_NOISE)
    lost = (df["status_a"] == "ok") & df["status_b"].isin(NOT_OK)
    return df[slower_runs | slower_one | lost]


TEXT_COLUMNS = ["median_a_ms", "median_b_ms", "change_pct", "noise_a", "noise_b", "verdict"]
RUNS_COLUMNS = {"change_pct": "change_ci", "median_b_ms": "runs"}  # shown after, with repetitions


def text_columns(df: pd.DataFrame) -> list[str]:
    """The measurement columns a table shows: today's, plus the interval and the repetitions
    counts where some point has runs as the unit."""
    if not (df["basis"] == RUNS).any():
        return list(TEXT_COLUMNS)
    out = []
    for c in TEXT_COLUMNS:
        out += [c, RUNS_COLUMNS[c]] if c in RUNS_COLUMNS else [c]
    return out


def _count_text(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return f"{low}" if low == high else f"{low}-{high}"


def basis_notes(df: pd.DataFrame) -> list[str]:
    """What each verdict rests on, one sentence per basis present (the CLI and the page show it)."""
    notes = []
    runs, one = df[df["basis"] == RUNS], df[df["basis"] == IQR]
    if len(runs):
        notes.append(
            f"{len(runs)} point(s) with runs as the unit (A: {_count_text(runs['reps_a'])}, "
            f"B: {_count_text(runs['reps_b'])} repetitions): rounds cannot be paired across "
            "runs, so change = ratio of the geometric means of the per-repetition medians, with "
            f"a {LEVEL:.0%} Welch t-interval over their logs."
        )
    if len(one):
        notes.append(
            f"{len(one)} point(s) with a single run on a side: change = ratio of medians, called "
            "only beyond the IQR/median of both runs. A weaker verdict (no interval; drift "
            "between runs exceeds either IQR): run both sides with --repeat 3 or more."
        )
    return notes


def format_table(
    df: pd.DataFrame, axes: list[str] | None = None, text: list[str] | None = None
) -> str:
    """The comparison as plain text for the terminal. `axes`: the columns that name a point
    (default `shown_axes(df)`), `text`: the measurement columns (default `text_columns(df)`);
    pass the full comparison's so a subset (the regressions) shows the same ones."""
    if df.empty:
        return "no points in either run"
    axes = axes or shown_axes(df)
    columns = [*axes, *(text or text_columns(df))]
    cells = pd.DataFrame({c: [cell_text(c, v) for v in df[c]] for c in columns}, index=df.index)
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


class CompareError(ValueError):
    """The arguments cannot be compared (not a run folder, a negative threshold): exit status 2."""


@dataclass
class RunComparison:
    """What `perfbench compare` found; the CLI prints it (perfbench.cli.compare)."""

    table: pd.DataFrame  # compare_runs: one row per point in either run
    mismatch: str | None  # why the runs may not be comparable (scenario_mismatch)
    fail_above: float | None  # the --fail-above gate in percent, None without one
    regressed: pd.DataFrame  # points beyond the gate (empty without one)
    unreadable: tuple[str, ...] = ()  # per side with damaged results.csv lines: how many
    held: pd.DataFrame | None = None  # slower beyond the gate on a contended side: not gated
    basis: str = "medians"  # --basis (perfbench.analysis.compare_load)

    @property
    def axes(self) -> list[str]:
        """The axes that name a point in any table of this comparison (backend always)."""
        return shown_axes(self.table) if len(self.table) else ["backend"]

    @property
    def text(self) -> list[str]:
        """The measurement columns of every table of this comparison."""
        return load.text_columns(self.basis, self.table, text_columns)

    @property
    def notes(self) -> list[str]:
        """What the verdicts rest on (runs as the unit, one run on a side, the speedups), what
        could not be read, and what the gate held back as contended."""
        return [*self.unreadable, *load.notes(self, basis_notes)]

    @property
    def exit_code(self) -> int:
        """0 = fine, 1 = a regression above --fail-above."""
        return 1 if len(self.regressed) else 0


def compare(
    run_a: Path,
    run_b: Path,
    fail_above: float | None = None,
    html: Path | None = None,
    allow_contended: bool = False,
    basis: str = "medians",
    **kw: bool,
) -> RunComparison:
    """Compare two run folders, write the HTML table when asked, and apply the gate (not on a
    contended side unless `allow_contended`; `basis`: perfbench.analysis.compare_load); runs of
    different scenarios are refused unless `allow_different_scenarios=True` (compare_guard)."""
    for path in (run_a, run_b):
        if not RunDir(Path(path)).results_csv.is_file():
            raise CompareError(f"{path} is not a run folder (no results.csv)")
    if refusal := different_scenarios(Path(run_a), Path(run_b), **kw):
        raise CompareError(refusal)
    if fail_above is not None and (math.isnan(fail_above) or fail_above < 0):
        raise CompareError("--fail-above must be a percentage >= 0")
    table, regressed, held = load.tables(
        run_a, run_b, _margin(Path(run_b)), fail_above, allow_contended, basis,
        compare_runs, regressions,
    )  # fmt: skip
    mismatch = scenario_mismatch(Path(run_a), Path(run_b))
    unreadable = tuple(unreadable_notes(Path(run_a), Path(run_b)))
    found = RunComparison(table, mismatch, fail_above, regressed, unreadable, held, basis)
    if html:
        write_compare_html(table, html, str(run_a), str(run_b), fail_above, found.regressed,
                           found.mismatch, found.notes, found.text)  # fmt: skip
    return found
