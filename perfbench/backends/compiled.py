"""`compile`: torch.compile with the default mode (inductor).

Compilation happens lazily on the first call, so the harness's cold-start measurement (first call)
includes it and the steady-state timing does not. `dynamic=None` lets dynamo specialise on the
first batch size and switch to a dynamic-shape graph on the second, so a sweep over batch sizes
compiles at most twice per model instead of once per size.
"""

from __future__ import annotations

from perfbench.backends.base import Backend, Prepared
from perfbench.backends.compile_variants import prepare_compiled


def _prepare(model, point, example_batch, scenario) -> Prepared:
    # Counts graph breaks first (trace only), then resets dynamo so no state from explain, an
    # earlier backend or point leaks into this compile. The other modes: compile_variants.py.
    return prepare_compiled(model, point, example_batch, scenario, mode=None)


BACKEND = Backend(
    name="compile",
    description="torch.compile (inductor, default mode)",
    prepare=_prepare,
)
