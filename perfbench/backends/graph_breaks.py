"""Graph breaks of a model under torch.compile, found with `torch._dynamo.explain`.

A graph break splits the compiled program into several graphs with eager Python in between: a
silent slowdown the user must see next to the timing. `explain` only traces (its backend runs the
captured graphs eagerly), so this costs one dynamo trace and no inductor compile.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import torch
from torch import nn

from perfbench.results import facts

MAX_REASONS = 10


def _short_reason(reason: Any) -> str:
    """First line of dynamo's reason plus the user-code location it points at."""
    text = str(getattr(reason, "reason", reason)).strip().splitlines()
    line = text[0][:160] if text else "unknown reason"
    stack = getattr(reason, "user_stack", None) or []
    if stack:
        frame = stack[-1]
        line += f" (at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
    return line


def count_graph_breaks(
    model: nn.Module, example_batch: Any, scenario: Any, no_grad: bool = True
) -> dict[str, Any]:
    """`{"graph_breaks": int, "graph_break_reasons": [str], "graphs": int}` for one forward.

    The scenario's `forward` decides how the batch becomes the model's arguments; a stand-in
    callable captures them and runs `explain` on the model alone, which is what torch.compile
    compiles. Buffers (BatchNorm running stats) are restored afterwards, since the traced graphs
    really run. Dynamo is reset before and after, so nothing leaks into the real compile.
    """
    captured: dict[str, Any] = {}

    def call_model(*args: Any, **kwargs: Any) -> Any:
        captured["explain"] = torch._dynamo.explain(model)(*args, **kwargs)
        return model(*args, **kwargs)  # the scenario may post-process the real output

    start = time.perf_counter()
    saved = {name: buf.detach().clone() for name, buf in model.named_buffers()}
    torch._dynamo.reset()
    try:
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            scenario.forward(call_model, example_batch)
    finally:
        torch._dynamo.reset()
        with torch.no_grad():
            for name, buf in model.named_buffers():
                if name in saved:
                    buf.copy_(saved[name])
    if "explain" not in captured:
        raise RuntimeError("graph-break count: the scenario's forward never called the model")
    out = captured["explain"]
    reasons = [_short_reason(r) for r in out.break_reasons]
    unique = list(dict.fromkeys(reasons))
    return {
        # explain counts graphs - 1: a forward dynamo captures nothing of (an LSTM) gave -1
        facts.GRAPH_BREAKS: max(0, int(out.graph_break_count)),
        facts.GRAPH_BREAK_REASONS: unique[:MAX_REASONS],
        facts.GRAPHS: int(out.graph_count),
        # part of the harness's prepare/cold-start time that is this probe, not compilation
        facts.GRAPH_BREAK_PROBE_S: round(time.perf_counter() - start, 3),
    }
