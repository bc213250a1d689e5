"""The answer to the question a sweep asks: which backend is fastest here, by how much, how sure,
at which settings. It is the first finding of every sweep that compared backends (priority 0);
the other findings say why.

Only points with a real verdict answer: the interleaved rounds' confidence interval against eager
(`speedup_ci_low`/`_high`, `verdict`), from a group that was neither contended nor too noisy to
call, and not an interpreter timing. A backend wins where its verdict is `faster` (the interval
clears 1 and the A/A control); the answer names the largest such speedup, with its interval and
the runner-up at the same settings. When nothing wins it says so first, and names the closest.
Numbers of one finding always come from one row (one repetition under `--repeat`): a speedup and
the medians it is told with are never taken from different repetitions.
"""

from __future__ import annotations

import math
from typing import Any

from perfbench.advisor.data import RunData, ms, settings
from perfbench.advisor.finding import Finding
from perfbench.results import facts

FASTER = "faster"


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def callable_row(row: dict[str, Any]) -> bool:
    """A non-eager point whose verdict may be read as a call (see the module docstring)."""
    if row.get("backend") == "eager" or _truthy(row.get("correctness_only")):
        return False
    low, high = _num(row.get("speedup_ci_low")), _num(row.get("speedup_ci_high"))
    if math.isnan(low) or math.isnan(high) or not str(row.get("verdict") or "").strip():
        return False
    extra = row.get("extra") or {}
    return not _truthy(row.get("contended")) and not _truthy(extra.get(facts.TOO_NOISY))


def _speedup(row: dict[str, Any]) -> float:
    s = _num(row.get("speedup_vs_eager"))
    return (
        s
        if not math.isnan(s)
        else math.sqrt(_num(row["speedup_ci_low"]) * _num(row["speedup_ci_high"]))
    )


def _said(row: dict[str, Any]) -> str:
    """`onnxruntime 2.21× (95% CI 1.48–2.96, faster)`: one row's own numbers."""
    level = _num((row.get("extra") or {}).get(facts.SPEEDUP_CI_LEVEL))
    level_text = f"{level * 100:g}% CI " if not math.isnan(level) else "CI "
    return (
        f"{row['backend']} {_speedup(row):.2f}× ({level_text}{_num(row['speedup_ci_low']):.2f}–"
        f"{_num(row['speedup_ci_high']):.2f}, {row['verdict']})"
    )


def _rep(row: dict[str, Any]) -> str:
    """` (repetition 1)` in a run made with --repeat (rows of several repetitions), else ''."""
    r = _num(row.get("repeat"))
    return "" if math.isnan(r) or not row.get("_repeated") else f" (repetition {int(r)})"


def _medians(data: RunData, row: dict[str, Any]) -> str:
    """Both medians of the row's own group and repetition, with the source of each number."""
    eager = data.same_but(row, backend="eager")
    times = f"{row['backend']} {ms(row['median_ms'])}"
    if eager is not None:
        times = f"eager {ms(eager['median_ms'])}, " + times
    return (
        f"medians in the same interleaved rounds{_rep(row)}: {times}; the speedup is the paired "
        "rounds' estimate, not the ratio of these medians [results.csv]"
    )


def _same_group(data: RunData, row: dict[str, Any], best: dict[str, Any]) -> bool:
    """`row` was timed in `best`'s group (same settings and repetition, another backend)."""
    found = data.same_but(row, backend=best["backend"])
    return found is not None and found.get("label") == best.get("label")


def fastest(data: RunData) -> list[Finding]:
    """The answer finding (see the module docstring); none for a run without comparisons."""
    repeated = len({str(r.get("repeat")) for r in data.ok()}) > 1
    rows = [{**r, "_repeated": repeated} for r in data.ok() if r.get("backend") != "eager"]
    compared = [r for r in rows if not math.isnan(_num(r.get("speedup_ci_low")))]
    if not compared:
        return []
    callable_ = [r for r in compared if callable_row(r)]
    uncalled = len(compared) - len(callable_)
    note = (
        f"{uncalled} of {len(compared)} comparison(s) left out: contended, too noisy to call or "
        "interpreter timings [results.csv contended, extra.too_noisy]"
        if uncalled
        else f"every one of the {len(compared)} comparison(s) had a callable verdict"
    )
    wins = [r for r in callable_ if r.get("verdict") == FASTER and _num(r["speedup_ci_low"]) > 1]
    if not wins:
        return [_no_winner(data, callable_, note)]
    best = max(wins, key=_speedup)
    peers = [r for r in callable_ if r is not best and _same_group(data, r, best)]
    elsewhere = [r for r in wins if r["backend"] == best["backend"] and r is not best]
    ran = [r for r in callable_ if r["backend"] == best["backend"]]
    sentence = (
        f"{best['backend']} is the fastest backend here: {_speedup(best):.2f}× faster than eager "
        f"(CI {_num(best['speedup_ci_low']):.2f}–{_num(best['speedup_ci_high']):.2f}, verdict "
        f"{best['verdict']}) at {settings(best)}{_rep(best)}; it was faster at "
        f"{len(elsewhere) + 1} of the {len(ran)} setting(s) where it had a callable verdict."
    )
    evidence = [
        f"{_said(best)} against eager, paired interleaved rounds [results.csv speedup_vs_eager, "
        "speedup_ci_low, speedup_ci_high, verdict]",
        _medians(data, best),
    ]
    if peers:
        evidence.append("others at these settings: " + "; ".join(_said(r) for r in peers))
    if elsewhere:
        evidence.append(
            f"{best['backend']} also faster at: "
            + "; ".join(f"{settings(r)}{_rep(r)} {_said(r)}" for r in elsewhere[:5])
        )
    evidence.append(note)
    command = data.command(best, backend=f"eager,{best['backend']}")
    return [_answer(sentence, evidence, command, best)]


def _no_winner(data: RunData, callable_: list[dict[str, Any]], note: str) -> Finding:
    if not callable_:
        sentence = (
            "No backend beat eager with confidence: no comparison of this run had a verdict that "
            "may be called (all contended, too noisy or interpreter timings); rerun on a quieter "
            "machine or with --repeat."
        )
        compared = [r for r in data.ok() if not math.isnan(_num(r.get("speedup_ci_low")))]
        close = max(compared, key=_speedup, default=None)
        seen = (
            ()
            if close is None
            else (f"largest, not callable: {_said(close)} at {settings(close)}",)
        )
        return Finding("answer", sentence, (note, *seen), "", 0, math.inf)
    close = max(callable_, key=_speedup)
    sentence = (
        "No backend beat eager with confidence at these settings; closest: "
        f"{_said(close)} at {settings(close)}{_rep(close)}."
    )
    evidence = (_medians(data, close), note)
    command = data.command(close, backend=f"eager,{close['backend']}")
    return _answer(sentence, list(evidence), command, close)


def _answer(sentence: str, evidence: list[str], command: str, row: dict[str, Any]) -> Finding:
    return Finding(
        "answer", sentence, tuple(evidence), command, 0, math.inf, (str(row.get("label", "")),)
    )
