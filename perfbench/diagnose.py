"""Name the real culprit before any backend is checked against eager.

Two faults of the *model* make every backend fail its correctness check with a number that
blames the backend ("relative error 0.47 against the eager float32 reference"): a forward that
changes its input in place (the second call sees a different batch), and a forward that is not
deterministic in eval mode (`torch.randn_like` noise, a dropout called with `training=True`).
Both are checks of eager against itself on one batch, so they run first; a group whose eager
fails one fails once, with this message, instead of failing every backend.

Both checks run the way the correctness check does: eval mode, autograd off, float32, on private
clones of the batch (the caller's batch is never touched), and leave the model's train/eval mode
as they found it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from perfbench.axes import Amp
from perfbench.correctness import MismatchError, relative_error, tolerance_for
from perfbench.scenario import Scenario


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
    first = run(clone_batch(batch))
    second = run(clone_batch(batch))
    try:
        err = relative_error(second, first)
    except MismatchError as exc:
        return f"the model is not deterministic in eval mode: two eager forwards differ: {exc}"
    if err <= tolerance:  # NaN compares False, so a NaN error is reported
        return None
    return (
        f"the model is not deterministic in eval mode: two eager forwards on the same batch "
        f"differ by relative error {err:.3g} (tolerance {tolerance:.3g})"
    )


def diagnose(
    scenario: Scenario, model: torch.nn.Module, batch: Any, tolerance: float | None = None
) -> list[str]:
    """Both checks; an empty list means eager agrees with itself and leaves its batch alone.
    `tolerance` defaults to the scenario's float32 tolerance."""
    tol = tolerance if tolerance is not None else tolerance_for(Amp.OFF, scenario.tolerance)
    found = [input_mutation(scenario, model, batch), nondeterminism(scenario, model, batch, tol)]
    return [f for f in found if f is not None]
