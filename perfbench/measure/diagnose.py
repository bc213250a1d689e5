"""Name the real culprit before any backend is checked against eager.

Two faults of the *model* make every backend fail its correctness check with a number that
blames the backend ("relative error 0.47 against the eager float32 reference"): a forward that
changes its input in place (the second call sees a different batch), and a forward that is not
deterministic in eval mode (`torch.randn_like` noise, a dropout called with `training=True`).
Both are checks of eager against itself on one batch, so they run first; a group whose eager
fails one fails once, with this message, instead of failing every backend.

Both checks run the way the correctness check does: eval mode, autograd off, float32, on private
clones of the batch (the caller's batch is never touched), and leave the model's train/eval mode
as they found it. `fail_on_diagnosis` runs both once for a comparison group, whatever its
backends (interleaved or each point timed alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from perfbench.measure.after_rounds import buffer_snapshot, buffers_clause, changed_buffers
from perfbench.measure.correctness import MismatchError, relative_error, tolerance_for
from perfbench.measure.workload import checked_model, seeded_batch, to_device
from perfbench.results.axes import Amp
from perfbench.results.row import Row
from perfbench.scenario.loading import Scenario

if TYPE_CHECKING:
    from perfbench.measure.point import PointTask


def clone_batch(value: Any) -> Any:
    """A deep copy of the tensors in a Tensor / tuple / list / dict batch."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, Mapping):
        return {k: clone_batch(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(clone_batch(v) for v in value)
    return value


def tensor_paths(value: Any, path: str = "batch") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a batch with where it sits: `batch`, `batch[0]`, `batch['mask']`."""
    if isinstance(value, torch.Tensor):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in tensor_paths(v, f"{path}[{k!r}]")]
    if isinstance(value, (tuple, list)):
        return [p for i, v in enumerate(value) for p in tensor_paths(v, f"{path}[{i}]")]
    return []


def _eval_forward(scenario: Scenario, model: torch.nn.Module) -> Callable[[Any], Any]:
    def run(batch: Any) -> Any:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return scenario.forward(model, batch)
        finally:
            model.train(was_training)

    return run


def _change(after: torch.Tensor, before: torch.Tensor) -> str | None:
    """How a tensor changed, or None when it is bit-identical (NaN equal to NaN)."""
    if after.shape != before.shape or after.dtype != before.dtype:
        was = f"{tuple(before.shape)} {before.dtype}"
        return f"became {tuple(after.shape)} {after.dtype} (was {was})"
    if after.is_floating_point() or after.is_complex():
        differs = ~torch.isclose(after, before, rtol=0, atol=0, equal_nan=True)
    else:
        differs = after != before
    n = int(differs.sum())
    if n == 0:
        return None
    diff = (after.double() - before.double()).abs().nan_to_num(nan=math.inf)
    rel = relative_error(after, before)
    return (
        f"changed by relative error {rel:.3g} (max abs change {float(diff.max()):.3g}, "
        f"{n} of {after.numel()} elements)"
    )


def input_mutation(scenario: Scenario, model: torch.nn.Module, batch: Any) -> str | None:
    """ "forward changes its input in place: ..." naming each changed tensor, or None."""
    before = clone_batch(batch)
    work = clone_batch(batch)
    _eval_forward(scenario, model)(work)
    changed = []
    for (path, after), (_, orig) in zip(tensor_paths(work), tensor_paths(before), strict=True):
        how = _change(after, orig)
        if how is not None:
            changed.append(f"{path} {how}")
    if not changed:
        return None
    return "forward changes its input in place: " + "; ".join(changed)


def nondeterminism(
    scenario: Scenario, model: torch.nn.Module, batch: Any, tolerance: float
) -> str | None:
    """ "the model is not deterministic in eval mode: ..." when two eager forwards on the same
    batch differ beyond `tolerance` (relative error, as the correctness check measures), or None.
    """
    run = _eval_forward(scenario, model)
    buffers = buffer_snapshot(model)  # a buffer the forward changes is state carried across calls
    first = run(clone_batch(batch))
    second = run(clone_batch(batch))
    carried = buffers_clause(changed_buffers(model, buffers))
    try:
        err = relative_error(second, first)
    except MismatchError as exc:
        return f"the model is not deterministic in eval mode: two eager forwards differ: {exc}{carried}"
    if err <= tolerance:  # NaN compares False, so a NaN error is reported
        return None
    return (
        f"the model is not deterministic in eval mode: two eager forwards on the same batch "
        f"differ by relative error {err:.3g} (tolerance {tolerance:.3g}){carried}"
    )


def diagnose(
    scenario: Scenario, model: torch.nn.Module, batch: Any, tolerance: float | None = None
) -> list[str]:
    """Both checks; an empty list means eager agrees with itself and leaves its batch alone.
    `tolerance` defaults to the scenario's float32 tolerance."""
    tol = tolerance if tolerance is not None else tolerance_for(Amp.OFF, scenario.tolerance)
    found = [input_mutation(scenario, model, batch), nondeterminism(scenario, model, batch, tol)]
    return [f for f in found if f is not None]


def fail_on_diagnosis(
    scenario: Scenario,
    tasks: tuple[PointTask, ...],
    emit: Callable[[Row], None],
    begin: Callable[[int], None],
) -> bool:
    """Diagnose the eager model once for the whole group (whatever its backends); when it fails,
    every task gets a failed row with the diagnosis and True is returned."""
    begin(tasks[0].point_id)  # a forward that hangs here is blamed on a point, not on nothing
    diagnosis = _diagnose(scenario, tasks[0])
    if not diagnosis:
        return False
    for t in tasks:
        emit(Row.for_point(t.point_id, t.point, status="failed", error=diagnosis))
    return True


def _diagnose(scenario: Scenario, task: PointTask) -> str:
    """The eager model's own problems, named before any backend is checked ("" when none)."""
    try:
        device = torch.device(task.point.device.value)
        torch.set_num_threads(task.point.threads)
        model = checked_model(scenario, task.seed).to(device)
        batch = to_device(seeded_batch(scenario, task.point.batch_size, task.seed), device)
        found = diagnose(scenario, model, batch)
    except Exception:  # a model that cannot even build fails in its own arm, with file:line
        return ""
    return "; ".join(f"eager: {f}" for f in found)
