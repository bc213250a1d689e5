"""The compiler-knob axes: `memory_format` (contiguous, channels_last) and `shapes` (static,
dynamic). Here: where each makes sense, and how channels_last is applied to a point.

channels_last is a layout of 4-D (N, C, H, W) tensors: the model's 4-D weights and the batch's
4-D tensors are converted, for eager too, so eager in the same layout is the baseline and the
comparison measures the backend, not the layout. The eager float32 reference of the correctness
check stays contiguous, so a layout bug in any backend (eager included) fails the check.

`shapes` is read by the torch.compile backends (compile_variants.py); eager runs the same either
way and stays the baseline of both; every other backend skips shapes=dynamic with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from perfbench.results.axes import MemoryFormat, Shapes
from perfbench.scenario.loading import describe_value

if TYPE_CHECKING:
    from perfbench.backends.base import Backend
    from perfbench.results.axes import Point
    from perfbench.scenario.loading import Scenario

# make_batch at this size decides whether the scenario has 4-D inputs; cheap and shape-preserving
PROBE_BATCH_SIZE = 2


def knob_skip_reason(point: Point, scenario: Scenario, backend: Backend) -> str | None:
    """Why the point's memory_format or shapes makes no sense here, or None."""
    if point.shapes is Shapes.DYNAMIC and not backend.shapes_axis:
        return (
            f"shapes=dynamic is a torch.compile setting (dynamic=True): {backend.name} does not "
            "compile with symbolic shapes; run it at shapes=static"
        )
    if point.memory_format is MemoryFormat.CHANNELS_LAST:
        batch = scenario.make_batch(PROBE_BATCH_SIZE)
        if not any(t.dim() == 4 for t in _tensors(batch)):
            return (
                "channels_last is a layout of 4-D (N, C, H, W) tensors; "
                f"make_batch({PROBE_BATCH_SIZE}) gives {describe_value(batch)}"
            )
    return None


def model_to_memory_format(model: torch.nn.Module, point: Point) -> torch.nn.Module:
    """Convert the model's 4-D weights in place (others are untouched by `to`)."""
    if point.memory_format is MemoryFormat.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last)
    return model


def batch_to_memory_format(batch: Any, point: Point) -> Any:
    """The batch with every 4-D tensor in the point's layout (Tensor, tuple/list or dict)."""
    if point.memory_format is MemoryFormat.CONTIGUOUS:
        return batch
    return _convert(batch)


def _convert(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(memory_format=torch.channels_last) if value.dim() == 4 else value
    if isinstance(value, Mapping):
        return {k: _convert(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_convert(v) for v in value)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def feed_in_memory_format(next_batch: Any, uses_loader: bool, point: Point) -> Any:
    """A `next_batch` that hands out batches in the point's layout. A fixed batch is converted
    once; DataLoader batches are converted each step, inside the timed step, for eager and every
    backend alike (what a user's loop converting each batch pays)."""
    if point.memory_format is MemoryFormat.CONTIGUOUS:
        return next_batch
    if not uses_loader:
        fixed = _convert(next_batch())
        return lambda: fixed
    return lambda: _convert(next_batch())
