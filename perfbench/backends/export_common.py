"""What the exporting backends (`onnxruntime`, `aoti`) share: the model call captured from the
scenario's `forward`, the exporter's own message in one line, and when exporting applies.

An exported graph is a snapshot of one inference call: float32 (autocast cannot reach into an
ONNX or AOTInductor graph), no autograd, shapes fixed to the example batch.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from perfbench.results.axes import Amp, Mode

ANSI = re.compile(r"\x1b\[[0-9;]*m")
USER_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.+)')
MAX_REASON = 500


@dataclass
class CapturedCall:
    """The positional and keyword arguments the scenario's forward passed to the model, keyword
    arguments in the order of the model's signature (what both ONNX exporters assume), and the
    eager output of that call (its structure is what the exported graph must return)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


def capture_call(model: nn.Module, scenario: Any, example_batch: Any) -> CapturedCall:
    """Run the scenario's forward once with a stand-in that records the model's arguments."""
    seen: dict[str, Any] = {}

    def call_model(*args: Any, **kwargs: Any) -> Any:
        seen["args"], seen["kwargs"] = args, kwargs
        seen["output"] = model(*args, **kwargs)
        return seen["output"]

    with torch.no_grad():
        scenario.forward(call_model, example_batch)
    if "args" not in seen:
        raise RuntimeError("export: the scenario's forward never called the model")
    return CapturedCall(seen["args"], signature_ordered(model, seen["kwargs"]), seen["output"])


def signature_ordered(model: nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """kwargs in the order the model's forward declares them; unknown names (**kwargs) last."""
    try:
        names = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return dict(kwargs)
    rank = {name: i for i, name in enumerate(names)}
    return {k: kwargs[k] for k in sorted(kwargs, key=lambda k: rank.get(k, len(rank)))}


def describe_export_error(err: BaseException) -> str:
    """The exporter's own message in one line: the innermost cause's type and first line, and
    the user's line that raised it where the message names one."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = ANSI.sub("", str(inner))
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    reason = f"{type(inner).__name__}: {first}"
    frame = USER_FRAME.search(text)
    if frame:
        path, line, func, code = frame.groups()
        reason += f" (at {path}:{line} in {func}: {code.strip()})"
    return reason[:MAX_REASON]


def export_skip_reason(point: Any, backend: str) -> str | None:
    """Why an exported inference graph does not fit this point, or None (shapes=dynamic is
    refused for every non-compile backend in perfbench.measure.knobs)."""
    if point.mode != Mode.INFER:
        return f"{backend} runs an exported inference graph: needs mode=infer"
    if point.amp != Amp.OFF:
        return f"{backend} runs the exported float32 graph; autocast cannot reach into it: needs amp=off"
    return None
