"""The bytes one step must move at least: the model's weights (parameters and buffers) and the
batch, counted from the tensors themselves, never measured.

Why: a step that is nearly flat across batch sizes is either paying a fixed per-step cost
(dispatch, Python, launches: overhead-bound) or streaming its weights from memory every step
(memory-bound: the weights do not fit in the last-level cache and every step reads them all).
The two look alike in step times; they differ in how long the bytes take at the device's
measured copy bandwidth (`perfbench ceilings`), which the advisor compares (advisor/bound.py).

Recorded per point as row `extra["step_bytes"]`: {"weights": int, "batch": int | None,
"weight_tensors": int, "last_level_cache": int | None (bytes, of the machine that measured)}. A tensor shared by two modules (tied embeddings) is counted once; the
batch is None when it comes from a DataLoader (reading one would consume it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from perfbench.measure.ceilings import last_level_cache_bytes


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a batch: a Tensor, or nested tuples/lists/dicts of them."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _nbytes(t: torch.Tensor) -> int:
    return int(t.numel()) * int(t.element_size())


def weight_bytes(model: torch.nn.Module) -> tuple[int, int]:
    """(bytes, tensor count) of the model's parameters and buffers, each storage counted once."""
    seen: set[tuple[int, int]] = set()
    total = count = 0
    for t in (*model.parameters(), *model.buffers()):
        if t.device.type == "meta":
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        total += _nbytes(t)
        count += 1
    return total, count


def batch_bytes(batch: Any) -> int:
    """Bytes of every tensor in one batch (the step reads its input at least once)."""
    return sum(_nbytes(t) for t in _tensors(batch))


def step_bytes(model: torch.nn.Module, batch: Any | None) -> dict[str, Any]:
    """`extra["step_bytes"]` of a point; `batch` None where it cannot be read without cost."""
    weights, count = weight_bytes(model)
    return {
        "weights": weights,
        "weight_tensors": count,
        "batch": None if batch is None else batch_bytes(batch),
        "last_level_cache": last_level_cache_bytes(),
    }
