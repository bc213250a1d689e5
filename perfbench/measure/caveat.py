"""The caveat that travels with a verdict, and the rule that takes the call from an oversubscribed
group.

**No call under oversubscription.** Losing cores to other processes hurts the arms of a group
unequally: inductor's OpenMP regions wait at more barriers per step than eager's GEMMs, so a
descheduled thread stalls one arm more than the other, and the A/A control (eager against eager)
cannot see it (issue 19 item 6: compile called 0.66× slower at bs8, threads=2, beside a busy
process; not slower on a quiet machine). So where the cores others took during the timed rounds
leave fewer free cores than the point's threads,

    others_cores > cpus - threads + OVERSUBSCRIBED_MARGIN_CORES,

a group's `faster`, `slower` and `same` become `inconclusive` with the reason ("oversubscribed:
others used 1.0 of 2 cores, this point wanted 2; rerun on a quiet machine or at threads=1"). The
margin is `contention.OTHERS_MARGIN_CORES` (a quarter core): housekeeping measured in quiet
windows on the shared 2-core development VM took 0.00-0.14 cores, one busy neighbour ~1.0, so a
quarter core separates the two, and the rule is exactly the `contended` flag's first rule:
a group flagged contended by other processes never makes a call. At threads=1 on 2 cores one
busy neighbour still fits in the free core (a call is made); two do not.

**The caveat.** Every results row has a `caveat` column (`CAVEAT_COLUMN`): empty when nothing
weakens the row's timing, else one or more of, joined by "; ":

- `oversubscribed: ...` (the rule above; the call was taken away),
- `contended: ...` (steal time, a throttled GPU, or others' CPU below the oversubscription line
  of a point that nonetheless was flagged),
- `too noisy: ...` (the A/A control failed; the interval was widened by it, `perfbench.stats.verdict`),
- `not quiet: ...` (`--wait-quiet` gave up waiting, `perfbench.measure.quiet`).

A `faster`/`slower`/`same` with a non-empty caveat is not a plain call: every place that shows a
verdict (terminal, report table and chart, findings, compare, history) reads `plain_call(row)`
and shows `shown_verdict(row)` ("faster (too noisy)", amber), never a bare green/red word.
Rows whose column is empty (written before it existed, or a point timed alone) get their caveat
from `contended` and `extra.too_noisy` (`caveat_of`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from perfbench.measure.contention import OTHERS_MARGIN_CORES, Contention
from perfbench.results import facts

CAVEAT_COLUMN = "caveat"
OVERSUBSCRIBED_MARGIN_CORES = OTHERS_MARGIN_CORES
OVERSUBSCRIBED, CONTENDED, TOO_NOISY, NOT_QUIET = (
    "oversubscribed",
    "contended",
    "too noisy",
    "not quiet",
)
CALLS = ("faster", "slower", "same")  # verdicts that claim something about speed


def oversubscription(others_cores: float, cpus: int, threads: int) -> str:
    """The reason a group measured with `threads` threads beside `others_cores` of others' CPU
    may make no call, or "" when the free cores cover its threads (module docstring)."""
    if math.isnan(others_cores) or others_cores <= cpus - threads + OVERSUBSCRIBED_MARGIN_CORES:
        return ""
    fix = "rerun on a quiet machine (--wait-quiet)"
    fix += " or at threads=1" if threads > 1 else ""
    return (
        f"{OVERSUBSCRIBED}: others used {others_cores:.1f} of {cpus} cores, this point wanted "
        f"{threads}; {fix}"
    )


def group_caveat(row: Any, contention: Contention, threads: int) -> tuple[str, bool]:
    """(caveat text, whether calls are taken away) for one row of a group timed under
    `contention`: oversubscription first, else the contended flag's own reasons."""
    parts: list[str] = []
    over = oversubscription(contention.others_cores, contention.cpus, threads)
    if over:
        parts.append(over)
    elif row.contended:
        why = (row.extra or {}).get(facts.CONTENTION) or "other processes took CPU"
        parts.append(f"{CONTENDED}: {why}")
    quiet = (row.extra or {}).get(facts.QUIET_WAIT) or {}
    if quiet.get("gave_up"):
        parts.append(
            f"{NOT_QUIET}: gave up waiting for a quiet machine after {quiet['waited_s']:.0f} s "
            f"(others used {quiet['others_cores']:.1f} cores)"
        )
    return "; ".join(parts), bool(over)


def apply_load_rule(rows: Sequence[Any], contention: Contention, threads: int) -> None:
    """Set every row's caveat and take the call from an oversubscribed group's comparisons;
    a caveated call's `verdict_reason` carries its caveat (so does the terminal's line)."""
    for row in rows:
        caveat, uncall = group_caveat(row, contention, threads)
        if row.extra.get(facts.TOO_NOISY) and row.verdict in CALLS:
            noisy = row.verdict_reason.split("; too noisy: ", 1)[-1]
            caveat = "; ".join(p for p in (caveat, f"{TOO_NOISY}: {noisy}") if p)
        row.caveat = caveat
        if uncall and row.verdict in CALLS:
            row.extra[facts.VERDICT_BEFORE_LOAD_RULE] = row.verdict
            span = f"{row.speedup_ci_low:.2f}–{row.speedup_ci_high:.2f}"
            row.verdict = "inconclusive"
            row.verdict_reason = f"{row.backend} inconclusive ({span}); {caveat}"
        elif caveat and row.verdict in CALLS and caveat not in row.verdict_reason:
            row.verdict_reason += f"; {caveat}"


def caveat_of(row: Mapping[str, Any]) -> str:
    """The row's caveat; where the column is empty (a row written before it existed, or a point
    timed alone), from `contended` and `extra.too_noisy`, which every such row carries."""
    text = str(row.get(CAVEAT_COLUMN) or "").strip()
    if text and text.lower() != "nan":
        return text
    extra = row.get("extra") or {}
    parts = []
    if row.get("contended") in (True, "True", "true"):
        parts.append(f"{CONTENDED}: {extra.get(facts.CONTENTION) or 'other processes took CPU'}")
    if extra.get(facts.TOO_NOISY) and str(row.get("verdict") or "") in CALLS:
        parts.append(f"{TOO_NOISY}: the A/A control failed")
    return "; ".join(parts)


def caveat_kind(caveat: str) -> str:
    """The first caveat's name ("oversubscribed", "too noisy", ...), "" for none."""
    return caveat.split(":", 1)[0].strip() if caveat else ""


def plain_call(row: Mapping[str, Any]) -> bool:
    """The row's verdict is a `faster`/`slower` call with nothing that weakens it."""
    return str(row.get("verdict") or "").strip() in ("faster", "slower") and not caveat_of(row)


def shown_verdict(verdict: str, caveat: str) -> str:
    """The verdict word as every view shows it: "faster (too noisy)" for a caveated call."""
    if verdict in CALLS and caveat:
        return f"{verdict} ({caveat_kind(caveat)})"
    return verdict
