"""No point runs unbounded: the limit the parent enforces on what the worker is doing now.

With `--timeout SECONDS` every piece of work (a phase such as a build, or one step) gets that
many seconds, as before. Without it, the default scales with the point:

- a phase (build, backend prepare and compile, first call and check, flop count, profiling
  passes) gets `timeout_floor_s` (600 s by default: the slowest compile measured on the 2-core
  development CPU was under a minute; a user's large model may compile for minutes);
- a step, once the worker has timed one, gets `timeout_factor` times the slowest step of the group
  so far (50x by default), and never less than `min(STEP_MIN_S, timeout_floor_s)`: a 20 ms step
  that hangs is stopped after a minute, not after ten.

The worker tells the parent which it is doing through `group.Activity` (a step is a `begin`
without a phase text; the slowest step is measured there, between two steps). Both knobs are
timing settings, so run.json and every rerun command state them (`--setting timeout_factor=50`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # timing imports torch; the parent's loop needs only two numbers
    from perfbench.measure.timing import TimingSettings

STEP_MIN_S = 60.0  # the least a step gets by default (timer noise, a GC pause, a slow first call)


def current_limit(
    timeout_s: float | None, timing: TimingSettings | None, is_step: bool, slowest_step_s: float
) -> tuple[float | None, str]:
    """(seconds or None for no limit, what the limit is, for the message that stops a point)."""
    if timeout_s is not None:
        return timeout_s, f"--timeout {timeout_s:g} s"
    if timing is None:
        return None, ""
    floor = timing.timeout_floor_s
    if not is_step or slowest_step_s <= 0:
        return floor, (
            f"the default limit of {floor:g} s for one phase (set --timeout SECONDS, or "
            "--setting timeout_floor_s=SECONDS)"
        )
    limit = max(timing.timeout_factor * slowest_step_s, min(STEP_MIN_S, floor))
    return limit, (
        f"the default step limit of {limit:.3g} s ({timing.timeout_factor:g}x the slowest step so "
        f"far, {slowest_step_s:.3g} s, at least {min(STEP_MIN_S, floor):g} s; set --timeout "
        "SECONDS, or --setting timeout_factor=N)"
    )
