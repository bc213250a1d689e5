"""`compile`: torch.compile with the default mode (inductor).

Cold start, static shapes per point and recompiles across batch sizes: see compile_variants.py,
which every compile backend shares.
"""

from __future__ import annotations

from perfbench.backends.base import Backend, Prepared
from perfbench.backends.compile_variants import prepare_compiled, reset_dynamo, shared_dynamo


def _prepare(model, point, example_batch, scenario) -> Prepared:
    # Counts graph breaks first (trace only), then resets dynamo so no state from explain, an
    # earlier backend or point leaks into this compile. The other modes: compile_variants.py.
    return prepare_compiled(model, point, example_batch, scenario, mode=None)


BACKEND = Backend(
    name="compile",
    description="torch.compile (inductor, default mode)",
    prepare=_prepare,
    teardown=reset_dynamo,
    process_wide_state=True,
    group_scope=shared_dynamo,
    shapes_axis=True,
    reuses_weights=True,
)
