"""A speedup's verdict in words and in colour: one rule, used by the report's tables and its chart.

A run made with the verdict columns (results.csv `speedup_vs_eager`, `speedup_ci_low`,
`speedup_ci_high`, `verdict`, `verdict_reason`: eager and the backend timed in paired,
interleaved rounds) is shown from those columns, in the sentence the terminal prints:
"compile 1.31× faster (95% CI 1.22–1.40)", "compile same within ±3% (0.98–1.02)",
"compile inconclusive (0.93–1.08)", "fx no change: <reason>". An older run (columns empty) falls
back to the ratio of medians and the IQR rule (`timing.is_significant`): "faster", "slower" or
"within noise".

Colour follows the verdict and nothing else: green only for `faster`, red only for `slower`;
a call whose row has a caveat (contended, too noisy: `perfbench.measure.caveat`) is shown as
"faster (too noisy)" in amber, never green or red; same, inconclusive, no change, within noise and
interpreter timings are grey, so a bar can never look like a win that the table does not call one.

The interval's level is the row's `extra["speedup_ci_level"]` when the harness records one (a
sweep corrected across its comparisons uses a wider interval than 95%), else 0.95; the practical
margin δ of "same within ±δ" is run.json's `settings["margin"]`, else 3%.
"""

from __future__ import annotations

import math
from typing import Any

from perfbench.results import facts

FASTER, SLOWER = "faster", "slower"
WITHIN_NOISE = "within noise"  # the fallback's word for a difference inside the IQR of a point
INTERPRETER = "interpreter timing"  # a correctness-only point: no verdict on its speed
DEFAULT_LEVEL = 0.95
DEFAULT_MARGIN = 0.03
# verdicts in the order a summary counts them; any other word follows, sorted
ORDER = (
    FASTER,
    SLOWER,
    "same",
    "inconclusive",
    "no change",
    "too noisy",
    WITHIN_NOISE,
    INTERPRETER,
)
COLOURS = {"good": "#2a7", "bad": "#c44", "muted": "#999", "caveat": "#d90"}


def _number(value: Any) -> float:
    """A float, NaN for a blank cell (None, '', NaN, text)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def has_verdict(row: dict[str, Any]) -> bool:
    """The row carries the harness's own verdict (a run made with paired rounds)."""
    return bool(str(row.get("verdict") or "").strip())


def verdict_of(row: dict[str, Any], significant: bool, speedup: float) -> str:
    """The row's verdict, or for an older run the IQR rule's word; an interpreter timing
    (`correctness_only`) gets none: its time says nothing about performance."""
    if row.get("correctness_only") is True:
        return INTERPRETER
    if has_verdict(row):
        return str(row["verdict"]).strip()
    if not significant or math.isnan(speedup):
        return WITHIN_NOISE
    return FASTER if speedup >= 1.0 else SLOWER


def tone(verdict: str, correctness_only: bool) -> str:
    """'good' (green) only for a plain faster, 'bad' (red) only for a plain slower, 'caveat'
    (amber) for a call with a caveat ("faster (contended)"), else 'muted' (grey).

    Interpreter timings are grey whatever their verdict: they are not performance."""
    if correctness_only:
        return "muted"
    if verdict.split(" (", 1)[0] in (FASTER, SLOWER, "same") and verdict.endswith(")"):
        return "caveat"  # "faster (too noisy)": perfbench.measure.caveat.shown_verdict, amber
    return {FASTER: "good", SLOWER: "bad"}.get(verdict, "muted")


def ci_level(row: dict[str, Any]) -> float:
    """Confidence level of the row's interval (see the module docstring)."""
    level = _number((row.get("extra") or {}).get(facts.SPEEDUP_CI_LEVEL))
    return level if 0.0 < level < 1.0 else DEFAULT_LEVEL


def _level_text(level: float) -> str:
    text = f"{level * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}% CI"


def verdict_text(row: dict[str, Any], verdict: str, speedup: float, margin: float) -> str:
    """The sentence for one comparison (module docstring); the fallback's is just its word."""
    backend = str(row.get("backend") or "")
    if verdict == INTERPRETER or not has_verdict(row):
        return verdict
    reason = str(row.get("verdict_reason") or "").strip()
    if reason.startswith(f"{backend} {verdict}"):  # the harness wrote the whole sentence
        return reason
    if verdict == "no change":
        return f"{backend} no change" + (f": {reason}" if reason else "")
    low, high = _number(row.get("speedup_ci_low")), _number(row.get("speedup_ci_high"))
    span = "" if math.isnan(low) or math.isnan(high) else f"{low:.2f}–{high:.2f}"
    if verdict == FASTER and span:
        return f"{backend} {speedup:.2f}× faster ({_level_text(ci_level(row))} {span})"
    if verdict == SLOWER and span and speedup > 0:
        return (
            f"{backend} {1.0 / speedup:.2f}× slower "
            f"(speedup {speedup:.2f}, {_level_text(ci_level(row))} {span})"
        )
    if verdict == "same" and span:
        return f"{backend} same within ±{margin * 100:g}% ({span})"
    text = f"{backend} {verdict}" + (f" ({span})" if span else "")
    return text + (f", {reason}" if reason else "")


def margin_of(meta: dict[str, Any]) -> float:
    """The practical margin δ the run's verdicts used (module docstring)."""
    value = _number((meta.get("settings") or {}).get("margin"))
    return value if 0.0 < value < 1.0 else DEFAULT_MARGIN


def count_text(verdicts: list[str]) -> str:
    """ "2 faster, 1 same": how many comparisons got each verdict, in a fixed order."""
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    keys = [v for v in ORDER if v in counts] + sorted(v for v in counts if v not in ORDER)
    return ", ".join(f"{counts[v]} {v}" for v in keys)
