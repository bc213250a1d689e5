"""Launch-side checks and launch settings shared by every kernel in this package.

Why a module of its own: each launcher must refuse inputs the kernel would silently mis-read (wrong
device, dtype, layout), with a message that says what to do, and the rules must be the same for all.
Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar

import torch

FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# Largest row block kept in registers in one piece: 64 KiB of input per row, as in the Triton
# layer-norm tutorial and Liger-Kernel (`MAX_FUSED_SIZE = 65536 // x.element_size()`). Longer rows
# are processed in a loop over blocks of this size (one extra read of the row).
MAX_FUSED_BYTES = 65536


def interpreter_active() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1).

    The variable must be set before `triton.jit` decorates the kernels, i.e. before the kernel
    modules are imported; tests/kernels/conftest.py does that.
    """
    # the values triton's own knob reads as true
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def check_device(op: str, *tensors: torch.Tensor) -> None:
    """Inputs must be on one CUDA device, or on the CPU under the interpreter."""
    devices = {t.device for t in tensors}
    assert len(devices) == 1, (
        f"{op}: all inputs must be on the same device, got {sorted(map(str, devices))}"
    )
    device = next(iter(devices))
    if device.type == "cuda":
        return
    assert interpreter_active(), (
        f"{op}: input is on {device}; Triton kernels need CUDA tensors (move them with .cuda()), "
        "or set TRITON_INTERPRET=1 before importing perfbench_kernels to run them on the CPU "
        "interpreter (correct but slow)"
    )


def check_rows(op: str, name: str, x: torch.Tensor) -> None:
    """`x` is a float tensor of shape (..., N), N >= 1, contiguous: the kernels index rows as r * N."""
    assert x.dtype in FLOAT_DTYPES, (
        f"{op}: {name} has dtype {x.dtype}; supported are float32, bfloat16, float16 "
        f"(convert with {name}.to(torch.bfloat16) or similar)"
    )
    assert x.dim() >= 1 and x.shape[-1] >= 1, (
        f"{op}: {name} must have shape (..., N) with N >= 1, got {tuple(x.shape)}"
    )
    assert x.is_contiguous(), (
        f"{op}: {name} must be contiguous (kernels read rows at stride N); call {name}.contiguous()"
    )


def check_same(op: str, name: str, t: torch.Tensor, like: torch.Tensor, like_name: str) -> None:
    """`t` matches `like` in shape and dtype (second inputs of elementwise and residual kernels)."""
    assert t.shape == like.shape, (
        f"{op}: {name} has shape {tuple(t.shape)} but {like_name} has {tuple(like.shape)}; "
        "they must match (broadcast explicitly and call .contiguous())"
    )
    assert t.dtype == like.dtype, (
        f"{op}: {name} has dtype {t.dtype} but {like_name} has {like.dtype}; cast one to the other"
    )


def check_vector(op: str, name: str, v: torch.Tensor, n: int) -> None:
    """A per-column parameter (weight, bias): 1-D, length N, contiguous, any supported float dtype."""
    assert v.dtype in FLOAT_DTYPES, (
        f"{op}: {name} has dtype {v.dtype}; use float32/bfloat16/float16"
    )
    assert v.dim() == 1 and v.shape[0] == n, (
        f"{op}: {name} must have shape ({n},) to match the last dim of the input, got {tuple(v.shape)}"
    )
    assert v.is_contiguous(), f"{op}: {name} must be contiguous; call {name}.contiguous()"


def check_no_grad(op: str, *tensors: torch.Tensor) -> None:
    """Forward-only kernels refuse inputs that need a gradient instead of silently cutting the graph."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        raise RuntimeError(
            f"{op} is forward-only (HAS_BACKWARD = False): call it under torch.no_grad(), "
            f"detach the inputs, or use {op}_ref where a gradient is needed"
        )


def row_block(n: int, element_size: int, block_n: int | None = None) -> int:
    """Column block for row-wise kernels: the whole row when it fits 64 KiB, else 64 KiB chunks.

    `block_n` overrides it (a power of two): tests use it to exercise the loop over blocks with
    small rows, and it is the knob to tune on a GPU.
    """
    import triton  # deferred: importing this module must not need triton

    if block_n is not None:
        assert block_n >= 1 and block_n & (block_n - 1) == 0, (
            f"block_n must be a power of two, got {block_n}"
        )
        return block_n
    return min(triton.next_power_of_2(n), MAX_FUSED_BYTES // element_size)


_WARPS_OVERRIDE: ContextVar[int | None] = ContextVar("perfbench_num_warps", default=None)


@contextlib.contextmanager
def warps_override(num_warps: int | None) -> Iterator[None]:
    """Within the block every launcher of this package uses `num_warps` warps per program.

    The tuning knob of `bench --tune`: the defaults below are Liger-Kernel's heuristics, not tuned
    here, and a sweep over warps measures what each kernel would gain on the machine at hand.
    """
    assert num_warps is None or (num_warps >= 1 and num_warps & (num_warps - 1) == 0), (
        f"num_warps must be a power of two, got {num_warps}"
    )
    token = _WARPS_OVERRIDE.set(num_warps)
    try:
        yield
    finally:
        _WARPS_OVERRIDE.reset(token)


def launch_warps(default: int) -> int:
    """`default`, unless a `warps_override` block is active."""
    override = _WARPS_OVERRIDE.get()
    return default if override is None else override


def num_warps_for(block: int) -> int:
    """Warps per program by block size (Liger-Kernel's `calculate_settings`; not re-tuned here)."""
    if block >= 32768:
        return 32
    if block >= 8192:
        return 16
    if block >= 2048:
        return 8
    return 4


def num_warps_bwd(block: int) -> int:
    """Warps for the one-program-per-SM backward kernels: 256 columns per warp, 4 to 32.

    Those kernels hold three full-row float32 vectors (weight, dweight, dbias) across their row
    loop, and with one program per SM extra warps cost no occupancy. Compiled for sm_90 in bf16
    (`cuobjdump -res-usage`; not a timing), N = 8192 with Liger's 16 warps spilled 136 B
    (layer_norm) and 208 B (rms_norm) per thread to the stack; with 32 warps 144 B and none;
    N = 16384: 1224 B / 2184 B with 16 warps, 464 B / 168 B with 32.
    """
    return max(4, min(32, block // 256))


def row_programs(rows: int, device: torch.device) -> tuple[int, int]:
    """(programs, rows_per_program) for backward kernels that reduce weight grads over rows.

    One program per SM, each owning a contiguous chunk of rows, accumulates its weight-grad partial
    in registers and writes it once: (programs, N) float32 partials summed by torch afterwards,
    instead of one partial per row (rows x N x 4 bytes) or contended atomics.
    """
    import triton

    if rows == 0:
        return 0, 1
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
    else:
        sms = 4  # interpreter: few programs keep the CPU run short
    per_program = triton.cdiv(rows, max(1, min(rows, sms)))
    return triton.cdiv(rows, per_program), per_program
