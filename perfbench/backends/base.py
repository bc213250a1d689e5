"""The backend contract: what a backend does, and what it reports about itself.

A backend is one `Backend` record in the registry (`perfbench/backends/__init__.py`):

- `applies(point, scenario) -> reason or None`: None when the point can run, else why it is
  skipped (kept in the results as `skipped` with that reason, never silently dropped).
- `prepare(model, point, example_batch, scenario) -> Prepared`: turns the eager float32 model into
  whatever it runs (a compiled module, an fx-rewritten GraphModule, a model whose layers call our
  Triton kernels, ...). The harness checks the prepared model's output against the eager reference
  before timing it (`workload.prepare_checked`, the one path the sweep, `perfbench check` rung 6
  and the pytest plugin share), so a backend never needs its own correctness check.

What a backend reports about itself:

- `Prepared.changes` / `changes_what`: how many things it changed in this model and what they are
  (graphs captured, rewrites fired, ops replaced, layers quantized), counted from facts it computes
  anyway. 0 means the eager model ran unchanged under this backend's name: the verdict says
  "no change", never "faster". None: the question does not apply (eager), or the count could not
  be taken (the reason is in `info`).
- `Prepared.info`: per-point facts worth reporting (graph breaks, rewrites that fired, kernel
  coverage, which int8 implementation ran); lands in the results row's `extra` column and the report.
- `worker_env()`: environment the measuring worker needs before it imports anything (the Triton
  interpreter on a machine without CUDA). Called in the parent: it must be cheap.
- `teardown()`: cleanup once a point (or a comparison group) is done with the backend, called
  whether or not prepare succeeded (dynamo's caches for the compile backends).
- `process_wide_state`: prepare changes state shared by every model in the process (dynamo's
  caches): arms sharing one worker are all prepared before any is timed, `teardown` runs once the
  group is done, and instrumentation that would force a recompile (module hooks) stays off.
- `correctness_only(point)`: timings on this device are not performance (Triton interpreter).
- `group_scope()`: a context the harness enters once around building a comparison group's arms in
  one process (`group_sharing.group_scopes`), for what the arms of one backend family share there
  (the compile backends' graph-break probe); the state lives in the backend, entered only here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from perfbench.results.axes import Point
    from perfbench.scenario.loading import Scenario


class BackendNotApplicable(Exception):
    """Raised by `prepare` when the backend cannot handle this model at all, which can only be
    found out by trying (fx cannot trace its forward; torch.export refuses data-dependent control
    flow): the point is `skipped` with this message as its reason, like an `applies` refusal.
    `failed` stays for a backend that ran and went wrong. The message names the cause and, where
    known, the model's file:line."""


@dataclass
class Prepared:
    """What a backend hands the harness: the module to call in place of the eager model."""

    model: torch.nn.Module | Callable[..., Any]
    info: dict[str, Any] = field(default_factory=dict)
    # Max relative error against the eager float32 reference for this backend's output, when it
    # must differ from the scenario's TOLERANCE or the default by amp (int8 quantisation).
    tolerance: float | None = None
    # Replaces the scenario's loss_fn in train steps (the triton backend routes cross-entropy to
    # our kernel this way); the harness checks its loss against the scenario's before timing.
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None
    # How many things the backend changed in this model, and what they are ("graphs captured",
    # "rewrites", "ops replaced", "layers quantized"). 0 means the backend ran the eager model
    # unchanged, which the verdict reports as "no change", never as a speedup; None means the
    # question does not apply (eager itself) or the count could not be taken (why: in info).
    changes: int | None = None
    changes_what: str = ""


@dataclass(frozen=True)
class Backend:
    """A registry entry. `applies` returns None when the point can run, else why it is skipped."""

    name: str
    description: str
    prepare: Callable[[torch.nn.Module, Point, Any, Scenario], Prepared]
    applies: Callable[[Point, Scenario], str | None] = lambda point, scenario: None
    # True when timings of this backend on this device are not performance (e.g. Triton under
    # TRITON_INTERPRET=1 on CPU): the report says so next to the number.
    correctness_only: Callable[[Point], bool] = lambda point: False
    # Environment the measuring worker needs before it imports anything (the Triton interpreter
    # on a machine without CUDA: TRITON_INTERPRET=1). Decided in the parent, recorded in run.json
    # and put into every rerun command, so a point reruns under the same environment.
    worker_env: Callable[[], dict[str, str]] = lambda: {}
    # Cleanup after a point or a comparison group is done with this backend (dynamo's caches).
    teardown: Callable[[], None] = lambda: None
    # True when prepare changes state shared by every model in the process (dynamo's caches,
    # inductor config): arms sharing one worker must then be prepared before any is timed, and
    # `teardown` must run once the group is done.
    process_wide_state: bool = False
    # True when prepare leaves the model's weight tensors as they are (it may wrap the module):
    # an inference arm of a comparison group then runs on eager's own tensors, so no arm is
    # faster or slower only because of where its copy of the weights landed in memory.
    reuses_weights: bool = False
    # True when the backend honours the `shapes` axis (the torch.compile backends compile with
    # dynamic=True at shapes=dynamic) or is the baseline measured against it (eager); every other
    # backend skips shapes=dynamic with a reason.
    shapes_axis: bool = False
    # Entered once around building a comparison group's arms in one process (the module docstring);
    # backends that share one scope pass the same function, so it is entered once per group.
    group_scope: Callable[[], AbstractContextManager[None]] = nullcontext
