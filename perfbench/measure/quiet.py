"""`--wait-quiet[=SECONDS]`: before a group's timed rounds, wait until other processes leave the
point's threads free, so a shared machine's busy spell is waited out instead of measured.

The test is the rule that would take the group's call away (`caveat.oversubscription`): others'
CPU over a short window (`WINDOW_S`, from /proc/stat less this process tree, as
`perfbench.measure.contention` counts it) must leave at least the point's threads free, within the
quarter-core housekeeping margin. The wait is bounded (`wait_quiet_s`, default
`DEFAULT_WAIT_S` with a bare `--wait-quiet`); a progress line says how busy the machine is every
`SAY_EVERY_S`, and the wait keeps the point's per-step timeout clock fresh (waiting is not the
point hanging). Every row of the group records `extra.quiet_wait` (seconds waited, whether it
gave up, others' cores in the last window); a group that gave up is timed anyway, and its rows get
the caveat `not quiet: ...` beside whatever contention the rounds then measure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfbench.measure.caveat import oversubscription
from perfbench.measure.contention import judge_contention, snapshot

DEFAULT_WAIT_S = 60.0
WINDOW_S = 1.0
SAY_EVERY_S = 10.0


@dataclass(frozen=True)
class QuietWait:
    """How one group's wait went."""

    waited_s: float
    gave_up: bool
    others_cores: float  # in the last window
    limit_s: float

    def as_dict(self) -> dict[str, Any]:
        """`extra.quiet_wait` of every row of the group."""
        return {
            "waited_s": round(self.waited_s, 2),
            "gave_up": self.gave_up,
            "others_cores": round(self.others_cores, 2),
            "limit_s": self.limit_s,
        }


def quiet_setting(seconds: float | None) -> tuple[str, ...]:
    """`--wait-quiet[=SECONDS]` as a `--setting` (checked with the other settings, recorded in
    run.json and in every rerun command); () when the flag is absent."""
    return () if seconds is None else (f"wait_quiet_s={seconds!r}",)


def others_cores(window_s: float) -> tuple[float, int]:
    """(cores others used over the next `window_s`, CPUs): `perfbench.measure.contention`'s count."""
    before = snapshot()
    time.sleep(window_s)
    c = judge_contention(before, snapshot(), 0.0)
    return c.others_cores, c.cpus


def wait_quiet(
    threads: int,
    limit_s: float,
    say: Callable[[str], None],
    window_s: float = WINDOW_S,
    measure: Callable[[float], tuple[float, int]] = others_cores,
) -> QuietWait:
    """Measure others' CPU in windows of `window_s` until the point's `threads` are free or
    `limit_s` has passed. `say("")` after every window keeps the caller's timeout clock fresh;
    `say(text)` is the progress line. `measure`: what counts as others (tests narrow it)."""
    start, said = time.monotonic(), -math.inf
    while True:
        others, cpus = measure(window_s)
        waited = time.monotonic() - start
        if not oversubscription(others, cpus, threads):
            if waited > 1.5 * window_s:
                say(f"machine quiet after {waited:.0f} s: others use {others:.1f} cores")
            return QuietWait(waited, False, others, limit_s)
        if waited >= limit_s:
            say(
                f"gave up waiting for a quiet machine after {waited:.0f} s: others still use "
                f"{others:.1f} of {cpus} cores, {threads} wanted; timing anyway, the rows are "
                "flagged 'not quiet'"
            )
            return QuietWait(waited, True, others, limit_s)
        if time.monotonic() - said >= SAY_EVERY_S:
            said = time.monotonic()
            say(
                f"waiting for a quiet machine: others use {others:.1f} of {cpus} cores, "
                f"{threads} wanted ({waited:.0f} of at most {limit_s:g} s)"
            )
        else:
            say("")


def wait_before_group(first: Any, begin: Callable[..., None]) -> QuietWait | None:
    """`--wait-quiet` for a group whose first point task is `first` (None when not asked);
    `begin` is the group's `Activity.begin(point_id, phase)`."""
    if first.timing.wait_quiet_s <= 0:
        return None
    return wait_quiet(
        first.point.threads, first.timing.wait_quiet_s, lambda text: begin(first.point_id, text)
    )
