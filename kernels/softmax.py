"""Row softmax over the last dim, forward only.

Why a kernel: eager `torch.softmax` on bf16 reached 34% of copy bandwidth on H100 and
torch.compile 57% (docs/design.md reference numbers); the op is memory-bound, so the floor is one read
and one write of the tensor. When a row fits in one block (up to 64 KiB of input, e.g. N = 32768
in bf16) the kernel does exactly that; longer rows take an online max/sum pass and a second read.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import (
    check_device,
    check_no_grad,
    check_rows,
    launch_warps,
    num_warps_for,
    row_block,
)

HAS_BACKWARD = False


def softmax_ref(x: torch.Tensor) -> torch.Tensor:
    """Eager baseline: `torch.softmax` over the last dim, in the input dtype."""
    return torch.softmax(x, dim=-1)


@triton.jit
def _softmax_fwd_kernel(
    x_ptr,
    y_ptr,
    stride_row,
    N,
    BLOCK_N: tl.constexpr,
    SINGLE_BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_row
    y_row = y_ptr + row * stride_row
    cols = tl.arange(0, BLOCK_N)
    if SINGLE_BLOCK:
        # read N, write N: the whole row stays in registers
        mask = cols < N
        x = tl.load(x_row + cols, mask=mask, other=-float("inf")).to(tl.float32)
        e = tl.exp(x - tl.max(x, axis=0))
        y = e / tl.sum(e, axis=0)
        tl.store(y_row + cols, y.to(y_ptr.dtype.element_ty), mask=mask)
    else:
        # pass 1, read N: online max and sum of exp (rescale the sum when the max grows)
        m = tl.full([], -float("inf"), tl.float32)
        d = tl.full([], 0.0, tl.float32)
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            x = tl.load(x_row + start + cols, mask=mask, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, axis=0))
            d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
            m = m_new
        # pass 2, read N, write N
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            x = tl.load(x_row + start + cols, mask=mask, other=-float("inf")).to(tl.float32)
            y = tl.exp(x - m) / d
            tl.store(y_row + start + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor, *, block_n: int | None = None) -> torch.Tensor:
    """Softmax of `x` (..., N) over the last dim, in x's dtype (float32 math).

    Forward only: raises if `x` requires grad with grad mode on (use `softmax_ref` there).
    `block_n` forces the column block (a power of two): for tests and tuning.
    """
    check_rows("softmax", "x", x)
    check_device("softmax", x)
    check_no_grad("softmax", x)
    n = x.shape[-1]
    x2 = x.view(-1, n)
    out = torch.empty_like(x)
    block = row_block(n, x.element_size(), block_n)
    if x2.shape[0] > 0:
        _softmax_fwd_kernel[(x2.shape[0],)](
            x2,
            out,
            n,
            n,
            BLOCK_N=block,
            SINGLE_BLOCK=block >= n,
            num_warps=launch_warps(num_warps_for(block)),
        )
    return out
