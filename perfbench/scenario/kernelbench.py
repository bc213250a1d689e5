"""KernelBench problem files as scenarios, unchanged.

A KernelBench problem defines `class Model(nn.Module)`, `get_init_inputs()` (the constructor's
arguments), `get_inputs()` (the forward's arguments) and a module-level `batch_size` that
`get_inputs` reads. It becomes a scenario like this:

- `build_model()` = `Model(*get_init_inputs())`;
- `make_batch(bs)` = `get_inputs()` called with the module's `batch_size` set to `bs` (and put
  back afterwards), so the sweep's batch size replaces theirs; the tensors are the batch;
- non-tensor inputs (a scalar, a dim) are kept at their positions and passed to the model by
  `forward`, as KernelBench's own harness passes them;
- the default sweep's batch size is the file's own `batch_size` (`--set batch_size=...` wins).

Limitation: only `batch_size` is replaced. Sizes computed from it at import time, and inputs whose
first dimension is not `batch_size`, are taken as the file defines them, so for those the
throughput column (batch_size / step time) counts the sweep's batch size, not the real work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

KERNELBENCH_NAMES = ("Model", "get_inputs", "get_init_inputs")


class KernelBenchError(ValueError):
    """A file that looks like a KernelBench problem but cannot be adapted; the loader
    (`perfbench.scenario.loading.load_scenario`) turns it into a ScenarioError naming the file, so this
    module needs nothing from the loader (no import cycle)."""


def looks_like_kernelbench(ns: dict[str, Any]) -> bool:
    """A file in KernelBench's format: its names, and no scenario functions of its own."""
    has_scenario = "build_model" in ns or "make_batch" in ns
    return not has_scenario and "Model" in ns and "get_inputs" in ns


def adapt_kernelbench(path: Path, ns: dict[str, Any]) -> dict[str, Any]:
    """The module namespace with the scenario contract's names added (see the module docstring)."""
    missing = [name for name in (*KERNELBENCH_NAMES, "batch_size") if name not in ns]
    if missing:
        raise KernelBenchError(
            f"looks like a KernelBench problem but lacks {', '.join(missing)} (it needs Model, "
            "get_inputs(), get_init_inputs() and a module-level batch_size)",
        )
    own_batch = ns["batch_size"]
    if isinstance(own_batch, bool) or not isinstance(own_batch, int) or own_batch <= 0:
        raise KernelBenchError(f"batch_size must be a positive integer, got {own_batch!r}")
    for name in KERNELBENCH_NAMES:
        if not callable(ns[name]):
            raise KernelBenchError(f"{name} must be callable, got {type(ns[name]).__name__}")

    constants: dict[int, Any] = {}  # position -> non-tensor input, from the latest get_inputs()
    get_inputs: Callable[[], Any] = ns["get_inputs"]

    def build_model() -> torch.nn.Module:
        return ns["Model"](*ns["get_init_inputs"]())

    def make_batch(batch_size: int) -> tuple[torch.Tensor, ...]:
        ns["batch_size"] = batch_size  # get_inputs reads the module global at call time
        try:
            inputs = list(get_inputs())
        finally:
            ns["batch_size"] = own_batch
        constants.clear()
        constants.update({i: v for i, v in enumerate(inputs) if not isinstance(v, torch.Tensor)})
        return tuple(v for v in inputs if isinstance(v, torch.Tensor))

    def forward(model: Any, batch: Any) -> Any:
        tensors = iter(batch)
        size = len(batch) + len(constants)
        args = [constants[i] if i in constants else next(tensors) for i in range(size)]
        return model(*args)

    doc = (ns.get("__doc__") or "").strip()
    note = (
        f"KernelBench problem {path.name}: Model(*get_init_inputs()), inputs from get_inputs() "
        f"with the sweep's batch_size in place of the file's {own_batch}."
    )
    adapted = dict(ns)
    adapted.update(build_model=build_model, make_batch=make_batch, forward=forward)
    adapted.setdefault("SWEEP", {"batch_size": [own_batch]})
    adapted["__doc__"] = f"{doc}\n\n{note}".strip()
    return adapted
