"""`compile`: torch.compile with the default mode (inductor).

Compilation is lazy (first call), so the harness's cold-start measurement includes it and the
steady state does not. Each point compiles afresh for its own batch size, with static shapes, as
a user running at that size would; dynamo is reset around every point so nothing leaks between
them. Recompiling for the next batch size is cheap because inductor's on-disk caches hit
(measured on the 2-core dev CPU, MLP 1024-4096-4096-1024: first compile 24-37 s, the next batch
size 0.9-1.7 s).
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
