"""What `perfbench --help` lists: the backends and the sweep axes, as static data.

Importing the backend registry imports torch (seconds); `--help` must answer in a fraction of a
second, so the names and one-line descriptions are copied here. `tests/cli/test_help.py` asserts this
table equals the registry (`perfbench.backends.BACKEND_HELP`, `perfbench.results.axes.AXES`): adding a backend
or an axis without listing it here fails that test. Nothing here imports torch.
"""

from __future__ import annotations

import textwrap

from perfbench.results.axes import Amp, Device, MemoryFormat, Mode, Shapes

# name -> Backend.description, in registry order
BACKEND_HELP: dict[str, str] = {
    "eager": "plain PyTorch eager mode",
    "compile": "torch.compile (inductor, default mode)",
    "compile-reduce-overhead": (
        "torch.compile mode=reduce-overhead (CUDA graphs: cuts launch overhead)"
    ),
    "compile-max-autotune": (
        "torch.compile mode=max-autotune-no-cudagraphs (autotuned kernels, long compile)"
    ),
    "fx": "torch.fx passes: BatchNorm folding (infer) and Linear+ReLU/GELU fusion",
    "triton": "supported patterns swapped for perfbench_kernels Triton kernels",
    "int8": "dynamic int8 quantisation of nn.Linear (torchao, else torch.ao), CPU inference",
    "int8-ao": "dynamic int8 quantisation of nn.Linear with torch.ao (deprecated), CPU inference",
    "compile-freezing": (
        "torch.compile with inductor freezing (weights as constants: folding, prepacking)"
    ),
    "onnxruntime": "torch.onnx.export (torch.export-based) run by ONNX Runtime, threads matched",
    "aoti": "torch.export + AOTInductor package (aoti_compile_and_package), inference",
}


def _values(enum_type: type) -> str:
    return ", ".join(m.value for m in enum_type)


# axis -> what its values are, in perfbench.results.axes.AXES order
AXES: dict[str, str] = {
    "backend": "one or more of the backends above",
    "batch_size": "integers > 0",
    "threads": "torch intra-op threads, integers > 0",
    "amp": f"autocast: {_values(Amp)}",
    "pin_memory": "true, false (a DataLoader's pinned host memory; needs make_dataset and cuda)",
    "num_workers": "DataLoader worker processes, integers >= 0 (> 0 needs make_dataset)",
    "mode": f"{_values(Mode)} (train needs loss_fn)",
    "device": _values(Device),
    "memory_format": f"{_values(MemoryFormat)} (4-D inputs; eager runs in the same layout)",
    "shapes": f"{_values(Shapes)} (compile backends; eager is the baseline of both)",
}


def help_epilog(columns: int = 100) -> str:
    """The backends and axes as two aligned lists, for argparse's epilog (raw formatting)."""
    width = max(map(len, (*BACKEND_HELP, *AXES))) + 4

    def rows(table: dict[str, str]) -> list[str]:
        wrap = textwrap.TextWrapper(width=columns, subsequent_indent=" " * width)
        return [wrap.fill(f"  {name:<{width - 2}}{text}") for name, text in table.items()]

    lines = ["backends (--set backend=A,B):", *rows(BACKEND_HELP), ""]
    lines += ["axes (--set AXIS=V1,V2, a scenario's SWEEP, or a --config [sweep] table):"]
    return "\n".join([*lines, *rows(AXES)])
