"""Bias add + activation over the last dim (the Linear-output epilogue), forward only.

Why a kernel: after a matmul without bias, eager runs `x + bias` and the activation as two kernels
with a full-size intermediate; bias + GELU reached 33% of copy bandwidth on H100 in eager and 82%
under torch.compile (docs/design.md). Fused it is one read of x (plus the N-element bias, once per tile)
and one write of y.

Forward only (`HAS_BACKWARD = False`): calling it on inputs that require grad with grad mode on
raises a RuntimeError instead of silently cutting the autograd graph; use `bias_act_ref` there.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import (
    check_device,
    check_no_grad,
    check_rows,
    check_vector,
    launch_warps,
)

HAS_BACKWARD = False
ACTIVATIONS = ("relu", "gelu", "gelu_tanh")

# Tile of TILE elements (4 KiB of bf16), BLOCK_N <= 1024 columns wide, 4 warps: 16 elements per
# thread, enough bytes in flight for an elementwise kernel. Not tuned on a GPU yet.
TILE = 2048
MAX_BLOCK_N = 1024


def bias_act_ref(x: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    """Eager baseline: `act(x + bias)` as two ops ("gelu" is exact erf GELU, nn.GELU's default)."""
    y = x + bias
    if activation == "relu":
        return torch.relu(y)
    if activation == "gelu":
        return torch.nn.functional.gelu(y)
    if activation == "gelu_tanh":
        return torch.nn.functional.gelu(y, approximate="tanh")
    raise ValueError(f"bias_act_ref: activation must be one of {ACTIVATIONS}, got {activation!r}")


@triton.jit
def _bias_act_fwd_kernel(
    x_ptr,
    b_ptr,
    y_ptr,
    n_rows,
    N,
    ACTIVATION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # read BLOCK_M x BLOCK_N, write the same; the bias slice is read once per tile
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N
    mask = (rows[:, None] < n_rows) & col_mask[None, :]
    offs = rows[:, None] * N + cols[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    z = x + b[None, :]
    if ACTIVATION == "relu":
        y = tl.maximum(z, 0.0)
    elif ACTIVATION == "gelu":
        y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))  # 1/sqrt(2)
    else:
        # tanh(u) = 2*sigmoid(2u) - 1; sqrt(2/pi) = 0.7978845608028654
        u = 0.7978845608028654 * (z + 0.044715 * z * z * z)
        y = 0.5 * z * (1.0 + (2.0 * tl.sigmoid(2.0 * u) - 1.0))
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def bias_act(x: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    """`act(x + bias)` for `x` (..., N) and `bias` (N,), activation "relu", "gelu" or "gelu_tanh".

    x's dtype out, float32 math. Forward only: raises RuntimeError if an input requires grad
    with grad mode on (use `bias_act_ref`, or run under torch.no_grad()).
    """
    assert activation in ACTIVATIONS, (
        f"bias_act: activation must be one of {ACTIVATIONS}, got {activation!r}"
    )
    check_rows("bias_act", "x", x)
    n = x.shape[-1]
    check_vector("bias_act", "bias", bias, n)
    check_device("bias_act", x, bias)
    check_no_grad("bias_act", x, bias)
    y = torch.empty_like(x)
    rows = x.numel() // n
    block_n = min(triton.next_power_of_2(n), MAX_BLOCK_N)
    block_m = max(1, TILE // block_n)
    if rows > 0:
        grid = (triton.cdiv(rows, block_m), triton.cdiv(n, block_n))
        _bias_act_fwd_kernel[grid](
            x, bias, y, rows, n, ACTIVATION=activation, BLOCK_M=block_m, BLOCK_N=block_n,
            num_warps=launch_warps(4),  # triton's default
        )  # fmt: skip
    return y
