"""Make inductor's generated CPU kernels visible to the profiler pass, and only to it.

On a CPU, inductor's C++ kernels (`cpp_fused_*`) run inside `## Call CompiledFxGraph ##` without a
profiler event of their own: their time shows up as the self time of that call. With
`torch._inductor.config.cpp.enable_kernel_profile` inductor wraps each kernel in a record-function
(`graph_<g>_cpp_fused_addmm_relu_0`), but that is a code-generation setting: it must be on while
the graph compiles, and the timed model must not carry it (every kernel call would pay for it).

So for a compiled point's profiler pass only: reset dynamo, which makes the same compiled module
compile again on its next call, with the setting patched on (a config patch context, never set
globally); run one step to compile; profile; reset dynamo again so nothing compiled with the
setting outlives the pass. The kernels are the same code plus the record-function call; the
recompile costs one compile (seconds on a cold inductor cache, less on a warm one) and is reported
as `recompile_s`, outside every timed number. On CUDA, kernels are visible through CUPTI anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from perfbench.results import facts


def needs_kernel_profile(workload: Any) -> bool:
    """True for a CPU point whose backend compiled with inductor (it records `compile_mode`)."""
    info = getattr(workload.prepared, "info", None) or {}
    return facts.COMPILE_MODE in info and workload.point.device.value == "cpu"


@contextlib.contextmanager
def kernel_profiling(workload: Any) -> Iterator[tuple[Callable[[], Any], dict[str, Any]]]:
    """Yield (the step to profile, facts about how it was prepared). For a point that does not
    need it: the workload's own step and {}."""
    if not needs_kernel_profile(workload):
        yield workload.step, {}
        return
    import torch._inductor.config as inductor_config

    how: dict[str, Any] = {"enable_kernel_profile": True}
    try:
        with inductor_config.patch({"cpp.enable_kernel_profile": True}):
            torch._dynamo.reset()  # the compiled module recompiles on its next call, patched
            start = time.perf_counter()
            try:
                workload.step()
                workload.sync()
            except Exception as err:  # keep profiling the plain compile; say why not the kernels
                how = {"enable_kernel_profile": False, "error": f"{type(err).__name__}: {err}"}
                torch._dynamo.reset()
            else:
                how["recompile_s"] = round(time.perf_counter() - start, 3)
            yield workload.step, how
    finally:
        torch._dynamo.reset()  # no graph compiled with record-functions outlives the pass
