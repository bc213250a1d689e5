"""`aoti`: torch.export + AOTInductor, the ahead-of-time path torch offers for serving without
Python (`aoti_compile_and_package` writes a .pt2 package; C++ loads it with
`AOTIModelPackageLoader`, here `aoti_load_package` loads it back into Python to time it).

Inference only, float32, static shapes. A model torch.export cannot capture (data-dependent
control flow, unsupported ops) is skipped with the exporter's own message: that is only found out
by trying, so prepare raises `BackendNotApplicable`. Compiling the package takes tens of seconds
on a 2-core CPU (24 s for a one-Linear model, measured), all of it cold start: `aoti` is left out
of the shipped scenarios' default sweeps.

The compiled CPU kernels use the OpenMP thread count torch has when they are compiled, which the
harness has already set to the point's `threads`.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch
from torch import nn

from perfbench.backends.base import Backend, BackendNotApplicable, Prepared
from perfbench.backends.export_common import (
    capture_call,
    describe_export_error,
    export_skip_reason,
)


class LoadedPackage:
    """The loaded AOTInductor package, called like the eager model; keeps its folder alive."""

    def __init__(self, runner: Any, folder: tempfile.TemporaryDirectory[str]) -> None:
        self.runner = runner
        self._folder = folder

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.runner(*args, **kwargs)


def export_program(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """torch.export of one inference call; an export failure becomes BackendNotApplicable."""
    try:
        with torch.no_grad():
            return torch.export.export(model, args, kwargs)
    except Exception as err:
        raise BackendNotApplicable(f"torch.export failed: {describe_export_error(err)}") from None


def _applies(point: Any, scenario: Any) -> str | None:
    return export_skip_reason(point, "aoti")


def _prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    call = capture_call(model, scenario, example_batch)
    start = time.perf_counter()
    program = export_program(model, call.args, call.kwargs)
    export_s = time.perf_counter() - start
    folder = tempfile.TemporaryDirectory(prefix="perfbench-aoti-")
    path = os.path.join(folder.name, "model.pt2")
    start = time.perf_counter()
    with torch.no_grad():
        torch._inductor.aoti_compile_and_package(program, package_path=path)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    runner = torch._inductor.aoti_load_package(path)
    info = {
        "export_s": round(export_s, 3),
        "aoti_compile_s": round(compile_s, 3),
        "aoti_load_s": round(time.perf_counter() - start, 3),
        "aoti_package_bytes": os.path.getsize(path),
        "graph_nodes": len(program.graph.nodes),
    }
    return Prepared(
        model=LoadedPackage(runner, folder),
        info=info,
        changes=1,
        changes_what="model compiled ahead of time into an AOTInductor package",
    )


BACKEND = Backend(
    name="aoti",
    description="torch.export + AOTInductor package (aoti_compile_and_package), inference",
    prepare=_prepare,
    applies=_applies,
)
