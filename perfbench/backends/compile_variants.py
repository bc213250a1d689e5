"""torch.compile variants: `compile-reduce-overhead` (CUDA graphs) and `compile-max-autotune`
(inductor's autotuned kernels, no CUDA graphs); `compile` (default mode, compiled.py) shares
`prepare_compiled`.

Every variant records the graph-break count and reasons (`graph_breaks`, `graph_break_reasons`)
found by a cheap `torch._dynamo.explain` trace before the real compile (its time is recorded as
`graph_break_probe_s` and kept out of cold start).
`Prepared.changes` is the probe's graph count: 0 when dynamo captures nothing (an LSTM, which
dynamo deliberately leaves to eager), so such a point is reported as no change, not as compiled.
Compilation is lazy (first call), so the harness's cold-start measurement includes it and the
steady state does not. Each point compiles afresh for its own batch size, with static shapes, as
a user running at that size would; dynamo is reset around every point so nothing leaks between
them. Inside a comparison group (`shared_dynamo`), several compiled arms live in one process and
are timed in alternation: there the probe (whose `explain` resets dynamo) runs for the first
compiled arm only and later arms reuse its counts, because a reset would throw away the earlier
arms' compiled code (they would recompile while timed, and `compile-freezing` without freezing). Recompiling for the next batch size is cheap because inductor's on-disk caches hit
(measured on the 2-core dev CPU, MLP 1024-4096-4096-1024: first compile 24-37 s, the next batch
size 0.9-1.7 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from perfbench.backends.base import Backend, Prepared
from perfbench.backends.compile_facts import track_compiles
from perfbench.backends.graph_breaks import count_graph_breaks
from perfbench.results import facts
from perfbench.results.axes import Device, Mode, Shapes

PROBE_KEYS = (facts.GRAPH_BREAKS, facts.GRAPH_BREAK_REASONS, facts.GRAPHS)
# graph-break counts per (scenario, point less its backend) while a group builds its arms: set
# only inside `shared_dynamo`, which the harness enters through `Backend.group_scope`
_group_probes: ContextVar[dict[tuple[str, Any], dict[str, Any]] | None] = ContextVar(
    "perfbench_group_probes", default=None
)


def prepare_compiled(
    model: nn.Module,
    point: Any,
    example_batch: Any,
    scenario: Any,
    mode: str | None,
    options: dict[str, Any] | None = None,
) -> Prepared:
    """Count graph breaks (trace only), reset dynamo (not inside `shared_dynamo` once an arm
    compiled), and return the lazily compiled model."""
    info: dict[str, Any] = {facts.COMPILE_MODE: mode or "default"}
    probes = _group_probes.get()
    key = _probe_key(point, scenario) if probes is not None else None
    if probes is not None and key in probes:
        # an earlier arm of this group compiled already: no explain, no reset (module docstring)
        info.update(probes[key])
        info.update({facts.GRAPH_BREAK_PROBE_S: 0.0, facts.GRAPH_BREAK_PROBE: "shared"})
    else:
        info.update(_probe(model, point, example_batch, scenario))
        torch._dynamo.reset()  # no state from explain or an earlier backend leaks into this compile
        if probes is not None and key is not None:
            probes[key] = {k: info[k] for k in PROBE_KEYS if k in info}
    # shapes=static: specialise on this point's shapes, never turn dynamic behind the user's back
    dynamic = point.shapes == Shapes.DYNAMIC
    info[facts.DYNAMIC_SHAPES] = dynamic
    track_compiles(info)  # compiles, recompiles, inductor cache hit/miss, as they happen
    graphs = info.get(facts.GRAPHS)  # what the probe captured is what torch.compile will compile
    return Prepared(
        model=torch.compile(model, mode=mode, dynamic=dynamic, options=options),
        info=info,
        changes=int(graphs) if graphs is not None else None,
        changes_what="graphs captured",
    )


def _probe_key(point: Any, scenario: Any) -> tuple[str, Any]:
    """Arms of one group differ only in backend: they share the probe's counts."""
    return str(getattr(scenario, "path", id(scenario))), replace(point, backend="")


def _probe(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> dict[str, Any]:
    try:
        return count_graph_breaks(model, example_batch, scenario, no_grad=point.mode == Mode.INFER)
    except Exception as err:  # the count is diagnostic: record why it is missing, still compile
        why = f"explain failed: {type(err).__name__}: {str(err)[:200]}"
        return {facts.GRAPH_BREAKS: None, facts.GRAPH_BREAK_REASONS: [why]}


@contextmanager
def shared_dynamo() -> Iterator[None]:
    """While one comparison group's arms are built in one process: dynamo is reset (by the
    graph-break probe) before the first compiled arm only, so every compiled arm keeps the code
    its own prepare compiled. The group's end still runs the backends' teardown (a reset)."""
    token = _group_probes.set({})
    try:
        yield
    finally:
        _group_probes.reset(token)


def reset_dynamo() -> None:
    """Every compile backend's teardown: the next point compiles from scratch, as in a sweep."""
    torch._dynamo.reset()


def _prepare_with(mode: str | None) -> Callable[[nn.Module, Any, Any, Any], Prepared]:
    def prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
        return prepare_compiled(model, point, example_batch, scenario, mode)

    return prepare


def _needs_cuda(point: Any, scenario: Any) -> str | None:
    if point.device != Device.CUDA:
        return "reduce-overhead uses CUDA graphs: needs device=cuda"
    return None


REDUCE_OVERHEAD = Backend(
    name="compile-reduce-overhead",
    description="torch.compile mode=reduce-overhead (CUDA graphs: cuts launch overhead)",
    prepare=_prepare_with("reduce-overhead"),
    applies=_needs_cuda,
    teardown=reset_dynamo,
    process_wide_state=True,
    group_scope=shared_dynamo,
    shapes_axis=True,
    reuses_weights=True,
)

MAX_AUTOTUNE = Backend(
    name="compile-max-autotune",
    description="torch.compile mode=max-autotune-no-cudagraphs (autotuned kernels, long compile)",
    prepare=_prepare_with("max-autotune-no-cudagraphs"),
    teardown=reset_dynamo,
    process_wide_state=True,
    group_scope=shared_dynamo,
    shapes_axis=True,
    reuses_weights=True,
)
