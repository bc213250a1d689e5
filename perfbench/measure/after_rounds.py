"""After the timed rounds: is every arm's output still what was checked before timing?

The correctness check (`workload.prepare_checked`) sees one call. A model that carries state
across calls (a buffer that accumulates, a Python counter, a cache that grows) can turn its output
non-finite or wrong on its 30th call, and then thousands of wrong steps are timed and shown as a
result. So after the rounds every arm (eager, the A/A control and each backend) is checked again:

1. the step the timer repeated runs once more, and its output (the loss, in train mode) must be
   finite. Why not keep the output of the last timed call itself: holding it alive while the next
   timed call runs would change the allocator pattern of every timed call, and the call right
   after the rounds sees exactly the state the timed calls left behind.
2. in infer mode, the correctness check's batch runs once more and must still agree with the
   eager float32 reference at the arm's tolerance (train mode has moved the weights on purpose).

A change fails the point (no time is shown) with a message that says what changed and which
buffers the model changed in eval mode, the usual carrier of such state.
"""

from __future__ import annotations

from typing import Any

import torch

from perfbench.measure.correctness import MismatchError, check_against_reference, check_finite
from perfbench.measure.workload import Workload, autocast_context
from perfbench.results.axes import Mode

STATE_HINT = "state carried across calls?"
MAX_NAMES = 5


def buffer_snapshot(model: Any) -> dict[str, torch.Tensor]:
    """Clones of the module's buffers by name ({} for a callable that is not a module)."""
    if not isinstance(model, torch.nn.Module):
        return {}
    return {name: b.detach().clone() for name, b in model.named_buffers()}


def changed_buffers(model: Any, before: dict[str, torch.Tensor]) -> list[str]:
    """Names of the buffers that differ from `before` (NaN equal to NaN)."""
    now = dict(model.named_buffers()) if isinstance(model, torch.nn.Module) else {}
    changed = []
    for name, old in before.items():
        new = now.get(name)
        if new is None or new.shape != old.shape or new.dtype != old.dtype:
            changed.append(name)
        elif not torch.equal(new.detach(), old) and not _nan_equal(new.detach(), old):
            changed.append(name)
    return changed


def _nan_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not (a.is_floating_point() or a.is_complex()):
        return False
    return bool(torch.isclose(a, b, rtol=0, atol=0, equal_nan=True).all())


def buffers_clause(names: list[str]) -> str:
    """'; the forward changed buffer(s) 'calls' in eval mode', or '' when none changed."""
    if not names:
        return ""
    shown = ", ".join(repr(n) for n in names[:MAX_NAMES])
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return f"; the forward changed buffer(s) {shown}{more} on every call"


def output_change(workload: Workload) -> str | None:
    """Why this arm's output is no longer the checked one after the timed rounds, or None."""
    target = workload.prepared.model
    module = target if isinstance(target, torch.nn.Module) else workload.model
    before = buffer_snapshot(module)
    try:
        why = _changed(workload)
    except Exception as err:  # the step worked thousands of times, then raised: also carried state
        why = f"its step raised after the timed rounds ({STATE_HINT}): {type(err).__name__}: {err}"
    if why is None:
        return None
    return why + buffers_clause(changed_buffers(module, before))


def _changed(workload: Workload) -> str | None:
    point = workload.point
    out = workload.step()
    workload.sync()
    try:
        check_finite(out)
    except MismatchError as err:
        return f"output became non-finite after the timed rounds ({STATE_HINT}): {err}"
    if point.mode is not Mode.INFER or workload.reference is None:
        return None
    with torch.no_grad(), autocast_context(point):
        out = workload.scenario.forward(workload.prepared.model, workload.check_batch)
    workload.sync()
    try:
        check_finite(out)
    except MismatchError as err:
        return f"output became non-finite after the timed rounds ({STATE_HINT}): {err}"
    try:
        check_against_reference(out, workload.reference, workload.check.tolerance)
    except MismatchError as err:
        return f"output changed after the timed rounds ({STATE_HINT}): {err}"
    return None


def changed_outputs(arms: list[Any]) -> list[tuple[str, str]]:
    """(arm name, why) for every arm (`group_timing.Arm`) whose output changed across calls."""
    found = []
    for arm in arms:
        waits = arm.wait_s, arm.workload.feed.wait_s  # the check's data wait is not the rounds'
        why = output_change(arm.workload)
        arm.wait_s, arm.workload.feed.wait_s = waits
        if why is not None:
            found.append((arm.name, why))
    return found


class OutputChanged(Exception):
    """A point timed alone whose output changed across calls (`output_after_timing`)."""


def output_after_timing(workload: Workload) -> str | None:
    """`output_change` for a point timed alone; its data wait stays the timed calls' own."""
    wait_s = workload.feed.wait_s
    try:
        return output_change(workload)
    finally:
        workload.feed.wait_s = wait_s
