"""What the report says, computed from the run folder alone (docs/design.md rule 7: never re-measure).

Kept apart from the charts and the HTML so the numbers can be tested without rendering, the same
split torch.utils.benchmark makes between `Measurement` and `Compare`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from perfbench.measure.caveat import caveat_of, shown_verdict
from perfbench.measure.timing import is_significant
from perfbench.report import verdict_view
from perfbench.results import facts
from perfbench.results.axes import AXES, point_label
from perfbench.results.row import MEASURED, Row
from perfbench.results.rundir import RunDir, rows_frame

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
    df["label"] = [point_label(r, " ") + _rep(r, df) for r in df.to_dict("records")]
    return df


def _rep(row: dict[str, Any], df: pd.DataFrame) -> str:
    """ " rep1" after a label in a run made with --repeat (one row per point per repetition)."""
    return f" rep{row['repeat']}" if df["repeat"].nunique() > 1 else ""


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


SPEEDUP_COLUMNS = [
    "label",
    "backend",
    "settings",
    "eager_ms",
    "median_ms",
    "speedup",
    "ci_low",
    "ci_high",
    "significant",
    "correctness_only",
    "verdict",
    "verdict_text",
    "tone",
    "repeat",
    "setting_key",
    "shown_ms",
    "ms_note",
]


def speedups(df: pd.DataFrame, margin: float = verdict_view.DEFAULT_MARGIN) -> pd.DataFrame:
    """Each ok non-eager point against the ok eager point with the same other axes.

    With the verdict columns (paired interleaved rounds) the speedup, its interval and the
    verdict are the row's own; without them (older runs) speedup = eager median / backend median
    (>1 means faster than eager), both from this run (docs/design.md rule 8), called a change only
    beyond the IQR/median of both points. `tone` is the one colour rule of table and chart.
    """
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()]
    eager = {_key(r): r for r in ok[ok["backend"] == "eager"].to_dict("records")}
    several_hosts = len({h for h in ok["host"] if h}) > 1
    rows = []
    for r in ok[ok["backend"] != "eager"].to_dict("records"):
        base = eager.get(_key(r))  # --repeat: eager from the same repetition
        if base is None:
            continue
        rows.append(_speedup_row(r, base, margin, several_hosts, _rep(r, ok)))
    return pd.DataFrame(rows, columns=SPEEDUP_COLUMNS)


def _speedup_row(
    r: dict[str, Any], base: dict[str, Any], margin: float, several_hosts: bool, rep: str = ""
) -> dict[str, Any]:
    """One comparison: the row's own verdict columns where filled, else the IQR rule."""
    paired = verdict_view.has_verdict(r) and not math.isnan(_float(r.get("speedup_vs_eager")))
    if paired:
        speedup = _float(r["speedup_vs_eager"])
        low, high = _float(r.get("speedup_ci_low")), _float(r.get("speedup_ci_high"))
        significant = str(r["verdict"]).strip() in (verdict_view.FASTER, verdict_view.SLOWER)
    else:
        speedup = base["median_ms"] / r["median_ms"]
        low = high = math.nan
        # rule 8: a difference counts only when it exceeds the noise of both points
        significant = is_significant(r["median_ms"] / base["median_ms"], _noise(base), _noise(r))
    shown_ms, ms_note = consistent_ms(
        r["backend"], base["median_ms"], r["median_ms"], speedup, paired
    )
    verdict = verdict_view.verdict_of(r, significant, speedup)
    caveat = caveat_of(r) if paired else ""  # a caveated call is never green/red
    significant = significant and not caveat
    text = verdict_view.verdict_text(r, verdict, speedup, margin)
    text += f" [caveat: {caveat}]" if caveat and caveat not in text else ""
    verdict = shown_verdict(verdict, caveat)
    correctness_only = bool(r["correctness_only"])
    setting = point_label({**r, "backend": ""}, " ") + (f" on {r['host']}" if several_hosts else "")
    return {
        "label": r["label"],
        "backend": r["backend"],
        "settings": setting + rep,
        "eager_ms": base["median_ms"],
        "median_ms": r["median_ms"],
        "speedup": speedup,
        "ci_low": low,
        "ci_high": high,
        "significant": significant,
        "correctness_only": correctness_only,
        "verdict": verdict,
        "verdict_text": text,
        "tone": verdict_view.tone(verdict, correctness_only),
        "repeat": r.get("repeat") or 0,
        "setting_key": setting,
        "shown_ms": shown_ms,
        "ms_note": ms_note,
    }


def consistent_ms(
    backend: str, eager_ms: float, median_ms: float, speedup: float, paired: bool
) -> tuple[float, str]:
    """The backend time to show beside eager's median so the pair agrees with the speedup.

    A paired speedup is the rounds' estimate (each round's eager and backend share its load);
    the medians pool all samples. When they point different ways (paired 0.98× while the
    backend's median is lower than eager's) the page shows eager's median ÷ the speedup, and the
    tooltip gives the backend's own median and why it disagrees. Otherwise the median, no note."""
    if not paired or not speedup or math.isnan(speedup) or eager_ms == median_ms:
        return median_ms, ""
    if (speedup > 1) == (median_ms < eager_ms):
        return median_ms, ""
    return eager_ms / speedup, (
        f"eager's median ÷ the paired speedup {speedup:.2f}×. {backend}'s own median, "
        f"{median_ms:.4g} ms against eager's {eager_ms:.4g} ms, points the other way: medians "
        "pool samples from rounds under different load, while each paired round times both "
        "under the same load, so the speedup and its interval are the estimate to trust."
    )


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    """Equal settings on the same machine: a time is only compared with one from its own host
    (points of one run may be measured on different machines under --executor ray)."""
    return (*axes_key(row, OTHER_AXES), str(row.get("host") or ""), str(row.get("repeat") or 0))


def _noise(row: dict[str, Any]) -> float:
    """IQR / median of one point; NaN when unknown (then nothing is called significant)."""
    noise = row.get("noise")
    if noise is None or (isinstance(noise, float) and math.isnan(noise)):
        iqr, med = row.get("iqr_ms"), row.get("median_ms")
        return float(iqr) / float(med) if iqr is not None and med else math.nan
    return float(noise)


def speedup_summary(sp: pd.DataFrame) -> list[dict[str, Any]]:
    """Per backend: how many settings were compared, geometric-mean speedup, worst and best, and
    how many settings each verdict got.

    The geometric mean, because speedups are ratios: 2x faster and 2x slower average to 1x. It is
    green only when every setting (interpreter timings aside) is called faster, red only when
    every one is slower: a mean over "same", "inconclusive" or mixed verdicts is no call."""
    out = []
    for backend, g in sp.groupby("backend", sort=False):
        worst = g.loc[g["speedup"].idxmin()]
        best = g.loc[g["speedup"].idxmax()]
        counted = g[~g["correctness_only"]]["verdict"].value_counts()
        n_faster = int(counted.get(verdict_view.FASTER, 0))
        n_slower = int(counted.get(verdict_view.SLOWER, 0))
        n_counted = int(counted.sum())
        tone = "muted"
        if n_counted and n_faster == n_counted:
            tone = "good"
        elif n_counted and n_slower == n_counted:
            tone = "bad"
        reps = g["repeat"].nunique()  # --repeat: a setting counts once, its verdicts once each
        out.append(
            {
                "backend": backend,
                "n": g["setting_key"].nunique(),
                "n_significant": int(g["significant"].sum()),
                "n_faster": n_faster,
                "n_slower": n_slower,
                "verdicts": verdict_view.count_text(g["verdict"].tolist())
                + (f" over {reps} repetitions" if reps > 1 else ""),
                "tone": tone,
                "geomean": float(math.exp(g["speedup"].map(math.log).mean())),
                "worst": float(worst["speedup"]),
                "worst_at": worst["settings"],
                "best": float(best["speedup"]),
                "best_at": best["settings"],
                "correctness_only": bool(g["correctness_only"].any()),
            }
        )
    return out


def best_per_backend(df: pd.DataFrame, sp: pd.DataFrame | None = None) -> pd.DataFrame:
    """The highest-throughput ok point of each backend (lowest median where throughput is absent),
    ranked by samples/s: per sample, so points at different batch sizes compare. Beside each,
    eager at the same settings (`eager_ms`, and `speedup`/`tone`/`shown_ms`/`ms_note` from the
    speedup table `sp`), so no row's time is read against another batch size's."""
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()].copy()
    if ok.empty:
        return ok
    ok["_score"] = ok["throughput"].fillna(-1.0) if "throughput" in ok else -1.0
    ok = ok.sort_values(["_score", "median_ms"], ascending=[False, True])
    best = ok.groupby("backend", sort=False).head(1).drop(columns="_score")
    eager = {_key(r): r["median_ms"] for r in ok[ok["backend"] == "eager"].to_dict("records")}
    best["eager_ms"] = [eager.get(_key(r), math.nan) for r in best.to_dict("records")]
    by_label = {} if sp is None else {s["label"]: s for s in sp.to_dict("records")}
    for col, empty in (
        ("speedup", math.nan),
        ("tone", ""),
        ("shown_ms", math.nan),
        ("ms_note", ""),
    ):
        best[col] = [by_label.get(lbl, {}).get(col, empty) for lbl in best["label"]]
    best["shown_ms"] = best["shown_ms"].fillna(best["median_ms"])
    return best


def settings_differ(best: pd.DataFrame) -> bool:
    """Whether the best points of the backends are at different settings (not one group)."""
    return len({axes_key(r, OTHER_AXES) for r in best.to_dict("records")}) > 1


def not_ok(df: pd.DataFrame) -> pd.DataFrame:
    """Points that did not produce a result, with the reason or error as `why`."""
    bad = df[df["status"] != "ok"].copy()
    bad["why"] = [
        (r["error"] or r["reason"] or "(no reason recorded)") for r in bad.to_dict("records")
    ]
    bad["traceback"] = [str(e.get(facts.TRACEBACK) or "") for e in bad["extra"]]
    return bad


# plain-words advice the harness attaches to a point (e.g. "input-bound: ..."), shown in the verdict
HINT_KEYS = (facts.INPUT_BOUND_HINT, facts.FLOPS_UNKNOWN)


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
        warning = r["extra"].get(facts.NOISE_WARNING)
        if warning:
            out.append((r["label"], str(warning)))
    return out
