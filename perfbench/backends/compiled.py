"""`compile`: torch.compile with the default mode (inductor).

Compilation happens lazily on the first call, so the harness's cold-start measurement (first call)
includes it and the steady-state timing does not. `dynamic=None` lets dynamo specialise on the
first batch size and switch to a dynamic-shape graph on the second, so a sweep over batch sizes
compiles at most twice per model instead of once per size.
"""

from __future__ import annotations

import torch

from perfbench.backends.base import Backend, Prepared


def _prepare(model, point, example_batch, scenario) -> Prepared:
    torch._dynamo.reset()  # no state from an earlier backend or point leaks into this one
    return Prepared(model=torch.compile(model, mode=None), info={"compile_mode": "default"})


BACKEND = Backend(
    name="compile",
    description="torch.compile (inductor, default mode)",
    prepare=_prepare,
)
