"""`compile-freezing`: torch.compile with inductor's freezing, for inference.

Freezing turns the parameters into constants of the compiled graph, so inductor can fold them:
BatchNorm into the preceding conv, weight layout changes (prepacking) done once instead of every
call, constant subexpressions computed at compile time.

How it is switched on, per compile and without leaking: the compile runs here, in prepare, inside
`torch._inductor.config.patch(freezing=True)`, and the patch ends with prepare. It must be on
while dynamo traces the model (dynamo decides then whether parameters are constants), not only
inside inductor: `torch.compile(options={"freezing": True})` patches inductor alone, and on torch
2.13 it calls inductor's freeze() but leaves every parameter a graph input, so nothing is frozen
(checked on a Conv-BN-Linear model: parameters stayed inputs, BatchNorm was not folded). Setting
the global `torch._inductor.config.freezing` would work too, and leak into every later compile in
the worker. Evidence that it took effect: a post-grad pass counts the frozen constants in every
compiled graph (`info["frozen_constants"]`).

The compile happens in prepare rather than at the harness's first call, so both land in cold
start as for `compile`. Guards hold afterwards (same shapes, no_grad, same autocast state), so no
recompile without freezing happens in the timed steps; dynamo is reset after every point.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
from torch import fx, nn

from perfbench.backends.base import Backend, Prepared
from perfbench.backends.compile_variants import prepare_compiled, reset_dynamo, shared_dynamo
from perfbench.results import facts
from perfbench.results.axes import Amp, Mode

AUTOCAST_DTYPES = {Amp.BF16: torch.bfloat16, Amp.FP16: torch.float16}


class FrozenConstantCounter:
    """Inductor post-grad pass that changes nothing and counts, per compiled graph, the frozen
    parameters (`get_attr` nodes named `_frozen_param*`) and the remaining graph inputs."""

    def __init__(self) -> None:
        self.graphs = 0
        self.constants = 0
        self.inputs = 0

    def __call__(self, graph: fx.Graph) -> None:
        self.graphs += 1
        for node in graph.nodes:
            if node.op == "get_attr" and str(node.target).startswith("_frozen_param"):
                self.constants += 1
            elif node.op == "placeholder":
                self.inputs += 1


def _autocast(point: Any) -> contextlib.AbstractContextManager[Any]:
    """The harness's autocast state for the point: the compile must see the same state as the
    timed calls, or they would recompile without freezing."""
    if point.amp == Amp.OFF:
        return contextlib.nullcontext()
    return torch.autocast(device_type=point.device.value, dtype=AUTOCAST_DTYPES[point.amp])


def _applies(point: Any, scenario: Any) -> str | None:
    if point.mode != Mode.INFER:
        return "freezing makes the weights constants: inference only, needs mode=infer"
    return None


def _prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    # options: a compile wrapper unequal to plain `compile`'s, so that dynamo, which shares
    # compiled code between models of one class compiled by equal wrappers, never hands this
    # model another arm's unfrozen graph (or that arm this one's) in a comparison group
    options = {"freezing": True}
    prepared = prepare_compiled(model, point, example_batch, scenario, None, options)
    counter = FrozenConstantCounter()
    start = time.perf_counter()
    patch = torch._inductor.config.patch(freezing=True, post_grad_custom_post_pass=counter)
    with torch.no_grad(), _autocast(point), patch:
        scenario.forward(prepared.model, example_batch)  # dynamo traces and inductor freezes here
    info = prepared.info
    info.update(
        freezing=True,
        compile_in_prepare_s=round(time.perf_counter() - start, 3),
        compiled_graphs=counter.graphs,
        frozen_constants=counter.constants,
        graph_inputs_left=counter.inputs,
    )
    if counter.constants == 0:
        info[facts.NOTE] = "freezing folded no parameter into a constant (none reached inductor)"
    prepared.changes = counter.graphs
    prepared.changes_what = "graphs compiled with frozen weights"
    return prepared


BACKEND = Backend(
    name="compile-freezing",
    description="torch.compile with inductor freezing (weights as constants: folding, prepacking)",
    prepare=_prepare,
    applies=_applies,
    teardown=reset_dynamo,
    process_wide_state=True,
    group_scope=shared_dynamo,
    shapes_axis=True,
    reuses_weights=True,
)
