"""Exporting a model to ONNX for the `onnxruntime` backend.

`torch.onnx.export(..., dynamo=True)`, the torch.export-based exporter (the default since torch
2.9), runs first. The TorchScript exporter (`dynamo=False`, deprecated upstream) runs only where
the first fails, and `info["onnx_exporter"]` says which one produced the graph and why. A
TorchScript trace that hit data-dependent control flow (a TracerWarning: the branch taken on the
example batch is baked in) is refused: it would pass the correctness check on that very batch and
be wrong on the next one. When neither exporter gives a faithful graph the point is skipped
(`BackendNotApplicable`) with both exporters' messages.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from perfbench.backends.base import BackendNotApplicable
from perfbench.backends.export_common import CapturedCall, describe_export_error

DYNAMO = "torch.export-based (torch.onnx.export dynamo=True)"
TORCHSCRIPT = "TorchScript (torch.onnx.export dynamo=False, deprecated upstream)"


def input_names(call: CapturedCall) -> list[str]:
    """One name per tensor the model is called with, in the flattened (args, kwargs) order."""
    leaves = pytree.tree_leaves((call.args, call.kwargs))
    return [f"input_{i}" for i in range(sum(isinstance(t, torch.Tensor) for t in leaves))]


def export_onnx(model: nn.Module, call: CapturedCall) -> tuple[Any, dict[str, Any]]:
    """The ONNX ModelProto of one inference call and the facts of how it was made."""
    names = input_names(call)
    start = time.perf_counter()
    try:
        proto, strategy = _export_dynamo(model, call, names)
        info: dict[str, Any] = {"onnx_exporter": DYNAMO, "onnx_capture": strategy}
    except Exception as dynamo_err:
        first = describe_export_error(dynamo_err)
        try:
            proto = _export_torchscript(model, call, names)
        except Exception as ts_err:
            raise BackendNotApplicable(
                f"ONNX export failed. torch.export-based exporter: {first}. "
                f"TorchScript exporter: {describe_export_error(ts_err)}"
            ) from None
        info = {"onnx_exporter": TORCHSCRIPT, "onnx_exporter_why": f"dynamo=True failed: {first}"}
    info["onnx_export_s"] = round(time.perf_counter() - start, 3)
    info.update(graph_facts(proto))
    return proto, info


@contextlib.contextmanager
def _quiet_registry_log() -> Iterator[None]:
    """The exporter logs a warning per torchvision op it cannot register (torchvision is not a
    dependency here): not about the user's model, so kept out of the worker's output."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _export_dynamo(model: nn.Module, call: CapturedCall, names: list[str]) -> tuple[Any, str]:
    with warnings.catch_warnings(), _quiet_registry_log():
        warnings.simplefilter("ignore")  # deprecation chatter from inside torch, not the model
        program = torch.onnx.export(
            model, call.args, kwargs=call.kwargs, dynamo=True, verbose=False, input_names=names
        )
    assert program is not None
    # which torch.export mode captured the graph (non-strict first, then strict)
    return program.model_proto, str(getattr(program, "_capture_strategy", "unknown"))


def _export_torchscript(model: nn.Module, call: CapturedCall, names: list[str]) -> Any:
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(
            model, call.args, buffer, kwargs=call.kwargs, dynamo=False, input_names=names
        )
    traced = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    if traced:
        first = str(traced[0].message).splitlines()[0][:200]
        where = f"{traced[0].filename}:{traced[0].lineno}"
        raise RuntimeError(f"the trace depends on the data ({where}): {first}")
    return onnx.load_from_string(buffer.getvalue())


def graph_facts(proto: Any) -> dict[str, Any]:
    """Opset and graph size of an ONNX model (top-level nodes; local functions counted apart)."""
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "onnx_opset": opset,
        "onnx_graph_nodes": len(proto.graph.node),
        "onnx_functions": len(proto.functions),
        "onnx_function_nodes": sum(len(f.node) for f in proto.functions),
    }
