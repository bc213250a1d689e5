"""`perfbench compare` on a loaded machine: contention per side, no gate on a contended side, and
the within-run speedups as a basis that survives a slower machine.

- **Contention per side.** Each matched point gets `contended_a` / `contended_b`: "" when no
  repetition of it was contended, else how many were and why ("2 of 3: oversubscribed: others
  used 1.0 of 2 cores, ..."), read from each row's caveat (`perfbench.measure.caveat`). A point whose
  verdict is a call on a contended side shows it as "contended B: slower", never a bare
  faster/slower word (nor its colour on the page).
- **No gate on a contended side.** Losing cores to others slows the arms unequally and by up to
  an order of magnitude (issue 21: eager +207% under load, nothing changed), so `--fail-above`
  does not fail a point that is slower only on a contended side: it is listed as not gated, with
  why, unless `--allow-contended`. A point that lost its result in B still fails: that is not a
  timing.
- **`--basis speedup`.** The default basis stays `medians` (B's median against A's, as before).
  `--basis speedup` compares, per non-eager point, the speedup over eager measured inside each
  run (paired interleaved rounds, `speedup_vs_eager` and its interval) of A against B, beside
  both runs' absolute medians: a machine that is uniformly slower in B moves the medians but not
  the speedups. The change is speedup_B / speedup_A. With >= 2 repetitions a side, the
  repetitions are the unit (Welch over the per-repetition log speedups, `repeat.runs_ratio`);
  with one run a side, the two intervals combine on the log scale (half-widths added in
  quadrature, each taken as the row's own interval: conservative where a row's interval is
  Holm-widened beyond 95%). The verdict reads the interval of the change with the run's margin
  (`faster`: the backend gained on eager in B); the gate fails a point whose whole interval lies
  below 1 / (1 + PCT/100): the backend's advantage fell by more than PCT% with confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.measure.caveat import caveat_of
from perfbench.report.data import axes_key, load_results
from perfbench.results.axes import AXES
from perfbench.results.rundir import RunDir
from perfbench.stats.runs_ratio import runs_ratio
from perfbench.stats.verdict import classify

BASES = ("medians", "speedup")
CALL_WORDS = ("faster", "slower", "same")
SPEEDUP_TEXT = [
    "median_a_ms",
    "median_b_ms",
    "speedup_a",
    "speedup_b",
    "speedup_change",
    "contended_a",
    "contended_b",
    "verdict",
]


def _rows_by_point(run: Path) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in load_results(RunDir(Path(run))).to_dict("records"):
        out.setdefault(axes_key(r), []).append(r)
    return out


def side_contention(rows: list[dict[str, Any]] | None) -> str:
    """ "" when no repetition of the point was contended, else "k of n: <first caveat>"."""
    if not rows:
        return ""
    caveats = [c.split(";", 1)[0] for c in (caveat_of(r) for r in rows) if c]  # the first
    if not caveats:
        return ""
    return f"{len(caveats)} of {len(rows)}: {caveats[0]}" if len(rows) > 1 else caveats[0]


def mark_contention(table: pd.DataFrame, run_a: Path, run_b: Path) -> pd.DataFrame:
    """`contended_a` / `contended_b` per point, and a call on a contended side no bare word."""
    a, b = _rows_by_point(run_a), _rows_by_point(run_b)
    keys = [axes_key(r) for r in table[list(AXES)].to_dict("records")]
    table = table.copy()
    table["contended_a"] = [side_contention(a.get(k)) for k in keys]
    table["contended_b"] = [side_contention(b.get(k)) for k in keys]
    table["verdict"] = [_caveated(r) for r in table.to_dict("records")]
    return table


def _sides(row: dict[str, Any]) -> str:
    return " and ".join(s for s, c in (("A", "contended_a"), ("B", "contended_b")) if row[c])


def _caveated(row: dict[str, Any]) -> str:
    verdict = str(row["verdict"])
    sides = _sides(row)
    if sides and verdict.split(" ")[0] in CALL_WORDS:
        return f"contended {sides}: {verdict}"
    return verdict


def split_gate(regressed: pd.DataFrame, allow_contended: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points the gate fails, slower points it does not gate because a side was contended).
    A lost result always fails; with `allow_contended` nothing is held back."""
    if allow_contended or regressed.empty or "contended_a" not in regressed:
        return regressed, regressed.iloc[0:0]
    contended = (regressed["contended_a"] != "") | (regressed["contended_b"] != "")
    lost = regressed["status_b"] != "ok"
    held = contended & ~lost
    return regressed[~held], regressed[held]


def refusal_note(held: pd.DataFrame, fail_above: float) -> str:
    """Why the gate did not fail the held-back points, and what to do."""
    return (
        f"not gated: {len(held)} point(s) slower beyond {fail_above:g}% were measured on a "
        "contended side (other processes took the cores the point's threads wanted, which slows "
        "arms unequally): rerun that side on a quiet machine (--wait-quiet, threads=1 on a "
        "shared box), or pass --allow-contended to gate on them anyway"
    )


def _speedups(rows: list[dict[str, Any]] | None) -> list[tuple[float, float, float]]:
    out = []
    for r in rows or []:
        s, lo, hi = (
            _num(r.get(c)) for c in ("speedup_vs_eager", "speedup_ci_low", "speedup_ci_high")
        )
        if r.get("status") == "ok" and s > 0 and lo > 0 and hi >= lo:
            out.append((s, lo, hi))
    return out


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _span(s: list[tuple[float, float, float]]) -> str:
    if len(s) == 1:
        return f"{s[0][0]:.2f}× ({s[0][1]:.2f}–{s[0][2]:.2f})"
    gm = math.exp(sum(math.log(x[0]) for x in s) / len(s)) if s else math.nan
    return f"{gm:.2f}× ({len(s)} runs)" if s else ""


def speedup_change(
    sa: list[tuple[float, float, float]], sb: list[tuple[float, float, float]]
) -> tuple[float, float, float]:
    """speedup_B / speedup_A with its interval (module docstring), NaNs when either is missing."""
    if not sa or not sb:
        return math.nan, math.nan, math.nan
    if len(sa) >= 2 and len(sb) >= 2:
        est = runs_ratio([x[0] for x in sa], [x[0] for x in sb])
        low, high = est.interval(0.95)
        return est.ratio, low, high
    (a, alo, ahi), (b, blo, bhi) = sa[0], sb[0]  # one run a side: the first repetition's
    ha = max(math.log(ahi / a), math.log(a / alo))
    hb = max(math.log(bhi / b), math.log(b / blo))
    h = math.hypot(ha, hb)
    ratio = b / a
    return ratio, ratio * math.exp(-h), ratio * math.exp(h)


def speedup_table(run_a: Path, run_b: Path, margin: float) -> pd.DataFrame:
    """One row per non-eager point in either run: both speedups over eager, their change and a
    verdict on it, beside both runs' medians; contention per side."""
    a, b = _rows_by_point(run_a), _rows_by_point(run_b)
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        ra, rb = a.get(key), b.get(key)
        row: dict[str, Any] = dict(zip(AXES, key, strict=True))
        if row["backend"] == "eager":
            continue
        sa, sb = _speedups(ra), _speedups(rb)
        ratio, low, high = speedup_change(sa, sb)
        verdict = "no speedup on a side" if math.isnan(ratio) else classify(low, high, margin).value
        row.update(
            median_a_ms=_median(ra),
            median_b_ms=_median(rb),
            speedup_a=_span(sa),
            speedup_b=_span(sb),
            ratio=ratio,
            ci_low=low,
            ci_high=high,
            speedup_change="" if math.isnan(ratio) else f"{ratio:.2f}× ({low:.2f}–{high:.2f})",
            status_a=(ra or [{}])[0].get("status", "missing"),
            status_b=(rb or [{}])[0].get("status", "missing"),
            contended_a=side_contention(ra),
            contended_b=side_contention(rb),
            verdict=verdict,
        )
        row["verdict"] = _caveated(row)
        rows.append(row)
    return pd.DataFrame(
        rows, columns=[*AXES, *SPEEDUP_TEXT, "ratio", "ci_low", "ci_high", "status_a", "status_b"]
    )


def _median(rows: list[dict[str, Any]] | None) -> float:
    ok = sorted(_num(r.get("median_ms")) for r in rows or [] if r.get("status") == "ok")
    return ok[len(ok) // 2] if ok else math.nan


def speedup_regressions(df: pd.DataFrame, fail_above: float) -> pd.DataFrame:
    """Points whose speedup over eager fell by more than `fail_above`% with confidence."""
    return df[df["ci_high"] < 1.0 / (1.0 + fail_above / 100.0)]


SPEEDUP_NOTE = (
    "basis speedup: per non-eager point, the speedup over eager measured inside each run (paired "
    "interleaved rounds, with its interval) of A against B; change = speedup_B / speedup_A "
    "(below 1: the backend's advantage shrank), beside both runs' absolute medians"
)


def tables(
    run_a: Path,
    run_b: Path,
    margin: float,
    fail_above: float | None,
    allow_contended: bool,
    basis: str,
    compare_runs: Callable[[Path, Path], pd.DataFrame],
    regressions: Callable[[pd.DataFrame, float], pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(table, points the gate fails, points held back as contended) on `basis`; the medians
    basis is `compare.compare_runs` and `compare.regressions` with contention marked."""
    if basis not in BASES:
        raise ValueError(f"--basis must be one of {', '.join(BASES)}, got {basis!r}")
    if basis == "speedup":
        table, gate = speedup_table(run_a, run_b, margin), speedup_regressions
    else:
        table, gate = mark_contention(compare_runs(run_a, run_b), run_a, run_b), regressions
    regressed = table.iloc[0:0] if fail_above is None else gate(table, fail_above)
    return (table, *split_gate(regressed, allow_contended))


def text_columns(
    basis: str, table: pd.DataFrame, medians_columns: Callable[[pd.DataFrame], list[str]]
) -> list[str]:
    """The measurement columns a table shows: the speedup basis's, or the medians basis's with
    the contention columns before the verdict where a side was contended."""
    if basis == "speedup":
        return list(SPEEDUP_TEXT)
    out = medians_columns(table)
    if (
        "contended_a" in table
        and ((table["contended_a"] != "") | (table["contended_b"] != "")).any()
    ):
        at = out.index("verdict") if "verdict" in out else len(out)
        out[at:at] = ["contended_a", "contended_b"]
    return out


def notes(found: Any, medians_notes: Callable[[pd.DataFrame], list[str]]) -> list[str]:
    """`Comparison.notes`: the basis, then the gate's held-back points (module docstring)."""
    out = [SPEEDUP_NOTE] if found.basis == "speedup" else medians_notes(found.table)
    if found.held is not None and len(found.held) and found.fail_above is not None:
        out.append(refusal_note(found.held, found.fail_above))
    return out
