"""NVTX ranges around phases, steps and (optionally) modules, and a measurement of what they cost.

NVTX ranges are free-standing markers that Nsight Systems shows on its timeline; without a
collector attached they are near no-ops, but "near" is a claim, so `measure_nvtx_overhead` times it.
On CUDA the ranges go through `torch.cuda.nvtx` (same NVTX library the CUDA kernels are recorded
with); elsewhere through the `nvtx` package, so a CPU run under `nsys` still shows them; with
neither installed, or when disabled, the context manager does nothing at all.

The push/pop functions are looked up on each call (not bound at import), so a test can replace them
at the module boundary, and so a collector attached later is seen.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

try:
    import nvtx as _nvtx_pkg
except ImportError:  # the package is a declared dependency, but NVTX must never be required
    _nvtx_pkg = None

_use_torch_cuda: bool | None = None  # decided once: torch.cuda.is_available() is not free


def _torch_cuda_nvtx() -> bool:
    global _use_torch_cuda
    if _use_torch_cuda is None:
        _use_torch_cuda = torch.cuda.is_available()
    return _use_torch_cuda


def backend_name() -> str:
    """Which NVTX implementation the ranges go to: "torch.cuda.nvtx", "nvtx" or "none"."""
    if _torch_cuda_nvtx():
        return "torch.cuda.nvtx"
    return "nvtx" if _nvtx_pkg is not None else "none"


def push(name: str) -> None:
    """Open a range on the current thread (NVTX ranges nest per thread)."""
    if _torch_cuda_nvtx():
        torch.cuda.nvtx.range_push(name)
    elif _nvtx_pkg is not None:
        _nvtx_pkg.push_range(name)


def pop() -> None:
    """Close the innermost range opened by `push` on this thread."""
    if _torch_cuda_nvtx():
        torch.cuda.nvtx.range_pop()
    elif _nvtx_pkg is not None:
        _nvtx_pkg.pop_range()


@contextlib.contextmanager
def nvtx_range(name: str, enabled: bool = True) -> Iterator[None]:
    """`with nvtx_range("mlp_bs64/measure"):` marks the block; disabled means not even a call."""
    if not enabled or backend_name() == "none":
        yield
        return
    push(name)
    try:
        yield
    finally:
        pop()


def add_module_ranges(model: nn.Module, prefix: str = "") -> list[RemovableHandle]:
    """One range per module call, named by its qualified name (`encoder.layers.0.attn`), so an
    Nsight Systems timeline reads like the model. The root module is named `prefix` or its class.

    Hooks fire on the forward only; the backward runs on autograd's threads and has no ranges.
    """
    handles: list[RemovableHandle] = []
    for qualname, module in model.named_modules():
        name = qualname or type(module).__name__
        if prefix:
            name = f"{prefix}/{name}"

        def pre_hook(_module: nn.Module, _args: Any, _name: str = name) -> None:
            push(_name)

        def post_hook(_module: nn.Module, _args: Any, _out: Any) -> None:
            pop()

        handles.append(module.register_forward_pre_hook(pre_hook))
        # always_call: the range closes even when forward raises, so the nesting stays valid
        handles.append(module.register_forward_hook(post_hook, always_call=True))
    return handles


def remove_module_ranges(handles: list[RemovableHandle]) -> None:
    """Undo `add_module_ranges` (before timing without ranges, or before compiling)."""
    for handle in handles:
        handle.remove()
    handles.clear()


def range_pair_cost_us(n: int = 20_000) -> float:
    """Direct cost of one push+pop pair in microseconds: far more precise than a difference of
    two noisy step medians, and what each step or module range adds."""
    if backend_name() == "none":
        return 0.0
    start = time.perf_counter()
    for _ in range(n):
        push("perfbench/cost")
        pop()
    return (time.perf_counter() - start) / n * 1e6


def module_range_cost_us(n: int = 5_000) -> float:
    """Direct extra cost per module call of the pre/post hooks with their ranges, in microseconds
    (hook dispatch in Python costs more than the push/pop itself)."""
    probe = nn.Identity()
    x = torch.zeros(1)

    def per_call() -> float:
        start = time.perf_counter()
        for _ in range(n):
            probe(x)
        return (time.perf_counter() - start) / n

    bare = min(per_call() for _ in range(3))
    handles = add_module_ranges(probe)
    try:
        hooked = min(per_call() for _ in range(3))
    finally:
        remove_module_ranges(handles)
    return max(0.0, hooked - bare) * 1e6


def measure_nvtx_overhead(
    step: Callable[[], Any],
    sync: Callable[[], None],
    reps: int,
    model: nn.Module | None = None,
) -> dict[str, Any]:
    """Time `step` with ranges off and on, interleaved (off/on, on/off, ...) so drift hits both
    alike, and compare medians. With `model`, "on" also has per-module ranges (--nvtx-modules).

    overhead_pct is the difference of medians, so it is as noisy as the step itself (it can come
    out negative); overhead_pct_direct = (one step range + modules x measured per-module hook and
    range cost) / median step time, which is the figure to trust when the step is noisy.
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    n_modules = len(list(model.modules())) if model is not None else 0
    off: list[float] = []
    on: list[float] = []

    def timed(enabled: bool) -> float:
        handles = add_module_ranges(model) if (enabled and model is not None) else []
        try:
            sync()
            start = time.perf_counter()
            with nvtx_range("perfbench/overhead/step", enabled=enabled):
                step()
            sync()
            return time.perf_counter() - start
        finally:
            remove_module_ranges(handles)

    for i in range(reps):
        order = (False, True) if i % 2 == 0 else (True, False)
        for enabled in order:
            (on if enabled else off).append(timed(enabled))
    off_ms = statistics.median(off) * 1e3
    on_ms = statistics.median(on) * 1e3
    pair_us = range_pair_cost_us()
    module_us = module_range_cost_us() if n_modules else 0.0
    direct_us = pair_us + n_modules * module_us
    return {
        "off_ms": off_ms,
        "on_ms": on_ms,
        "overhead_pct": (on_ms - off_ms) / off_ms * 100 if off_ms > 0 else float("nan"),
        "range_pair_us": pair_us,
        "module_range_us": module_us,
        "ranges_per_step": 1 + n_modules,
        "overhead_pct_direct": direct_us / (off_ms * 1e3) * 100 if off_ms > 0 else float("nan"),
        "reps": reps,
        "backend": backend_name(),
    }


# -- naming and the Nsight Systems command -------------------------------------------------------

PHASES = ("build", "compile", "warmup", "measure", "profile")


def range_name(label: str, phase: str, step: bool = False) -> str:
    """`<point label>/<phase>`, or `<point label>/<phase>/step` for one step inside a phase."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; phases are {', '.join(PHASES)}")
    return f"{label}/{phase}/step" if step else f"{label}/{phase}"


def nsys_command(rerun_command: str, out_name: str, label: str | None = None) -> str:
    """The `nsys profile` command line that records one point.

    With `label`, capture starts and stops on that point's `measure` range (`--capture-range=nvtx`),
    so the timeline holds steady-state steps only; the ranges come from non-registered NVTX
    strings, which nsys ignores for capture unless NSYS_NVTX_PROFILER_REGISTER_ONLY=0. `--nvtx`
    is appended to the rerun command when missing, since without ranges there is nothing to
    capture. CPU sampling is off: py-spy covers Python stacks at far lower overhead.
    """
    import shlex

    env, command = _split_env(rerun_command)
    command = command if " --nvtx" in f" {command}" else f"{command} --nvtx"
    parts = ["nsys", "profile", "--trace=cuda,nvtx,osrt", "--sample=none", "--cpuctxsw=none"]
    if label is not None:
        parts += [
            "--capture-range=nvtx",
            f"--nvtx-capture={range_name(label, 'measure')}",
            "--capture-range-end=stop",
            "--env-var=NSYS_NVTX_PROFILER_REGISTER_ONLY=0",
        ]
    parts += ["--force-overwrite=true", "-o", out_name]
    return f"{env}{shlex.join(parts)} {command}"


def _split_env(command: str) -> tuple[str, str]:
    """`KEY=V perfbench run ...` -> ("KEY=V ", "perfbench run ..."): the environment a rerun
    command sets must come before `nsys`, which would otherwise try to run `KEY=V`."""
    import shlex

    assignment = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
    if not assignment.match(command):
        return "", command
    words = shlex.split(command)
    n = 0
    while n < len(words) and assignment.match(words[n]):
        n += 1
    key_values = [w.partition("=") for w in words[:n]]
    env = " ".join(f"{key}={shlex.quote(value)}" for key, _, value in key_values)
    return f"{env} ", shlex.join(words[n:])


_active_label: str | None = None  # the point being measured in this process, when --nvtx


def set_active_point(label: str | None) -> None:
    """Name the point whose phases `point_phase` marks (None: mark nothing)."""
    global _active_label
    _active_label = label


@contextlib.contextmanager
def point_phase(phase: str) -> Iterator[None]:
    """`<active point label>/<phase>` range for code that does not know the point's options
    (the backend's compile inside the workload build); nothing when no point is active."""
    label = _active_label
    with nvtx_range(range_name(label, phase) if label else "", enabled=label is not None):
        yield
