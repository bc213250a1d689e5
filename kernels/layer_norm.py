"""LayerNorm over the last dim, forward and backward (grads for x, weight, bias).

Why a kernel: the op is memory-bound; eager reached 62% of copy bandwidth on H100 and
torch.compile 98% (docs/design.md), so the target is to match torch.compile: one read of x and one
write of y in forward, and in backward one read of x and dy, one write of dx, with the weight and
bias gradients reduced per program in registers (Triton tutorial 05 / Liger-Kernel layout).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import (
    check_device,
    check_rows,
    check_vector,
    launch_warps,
    num_warps_bwd,
    num_warps_for,
    row_block,
    row_programs,
)

HAS_BACKWARD = True


def layer_norm_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Eager baseline: `F.layer_norm` over the last dim."""
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)


@triton.jit
def _layer_norm_fwd_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    mean_ptr,
    rstd_ptr,
    stride_row,
    N,
    eps,
    BLOCK_N: tl.constexpr,
    SINGLE_BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_row
    y_row = y_ptr + row * stride_row
    cols = tl.arange(0, BLOCK_N)
    if SINGLE_BLOCK:
        # read N (+ weight, bias), write N
        mask = cols < N
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        mean = tl.sum(x, axis=0) / N
        xc = tl.where(mask, x - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=0) / N + eps)
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_row + cols, (xc * rstd * w + b).to(y_ptr.dtype.element_ty), mask=mask)
    else:
        # long rows: mean, then centred variance (two-pass, no cancellation), then write: 3 reads
        acc = tl.zeros([BLOCK_N], dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            acc += tl.load(x_row + start + cols, mask=mask, other=0.0).to(tl.float32)
        mean = tl.sum(acc, axis=0) / N
        acc = tl.zeros([BLOCK_N], dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            x = tl.load(x_row + start + cols, mask=mask, other=0.0).to(tl.float32)
            xc = tl.where(mask, x - mean, 0.0)
            acc += xc * xc
        rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / N + eps)
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            x = tl.load(x_row + start + cols, mask=mask, other=0.0).to(tl.float32)
            w = tl.load(w_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
            b = tl.load(b_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
            y = (x - mean) * rstd * w + b
            tl.store(y_row + start + cols, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(mean_ptr + row, mean)
    tl.store(rstd_ptr + row, rstd)


@triton.jit
def _layer_norm_bwd_kernel(
    x_ptr,
    w_ptr,
    dy_ptr,
    dx_ptr,
    mean_ptr,
    rstd_ptr,
    dw_part_ptr,
    db_part_ptr,
    stride_row,
    N,
    n_rows,
    rows_per_program,
    BLOCK_N: tl.constexpr,
    SINGLE_BLOCK: tl.constexpr,
):
    # dx = rstd * (w*dy - mean(w*dy) - xhat * mean(w*dy*xhat)); dw = sum_rows dy*xhat; db = sum dy
    pid = tl.program_id(0)
    row_start = pid * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    cols = tl.arange(0, BLOCK_N)
    part = pid.to(tl.int64) * N
    if SINGLE_BLOCK:
        # per row: read x, dy; write dx. dw, db stay in registers: one write per program
        mask = cols < N
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        dw = tl.zeros([BLOCK_N], dtype=tl.float32)
        db = tl.zeros([BLOCK_N], dtype=tl.float32)
        for row in range(row_start, row_end):
            off = tl.cast(row, tl.int64) * stride_row
            x = tl.load(x_ptr + off + cols, mask=mask, other=0.0).to(tl.float32)
            dy = tl.load(dy_ptr + off + cols, mask=mask, other=0.0).to(tl.float32)
            mean = tl.load(mean_ptr + row)
            rstd = tl.load(rstd_ptr + row)
            xhat = tl.where(mask, (x - mean) * rstd, 0.0)
            wdy = w * dy
            c1 = tl.sum(xhat * wdy, axis=0) / N
            c2 = tl.sum(wdy, axis=0) / N
            dx = (wdy - (xhat * c1 + c2)) * rstd
            tl.store(dx_ptr + off + cols, dx.to(dx_ptr.dtype.element_ty), mask=mask)
            dw += dy * xhat
            db += dy
        tl.store(dw_part_ptr + part + cols, dw, mask=mask)
        tl.store(db_part_ptr + part + cols, db, mask=mask)
    else:
        # long rows: row sums first (read x, dy), then dx and the partials (read again, write dx;
        # partials are zero-initialised and updated in place, this program's row only)
        for row in range(row_start, row_end):
            off = tl.cast(row, tl.int64) * stride_row
            mean = tl.load(mean_ptr + row)
            rstd = tl.load(rstd_ptr + row)
            acc1 = tl.zeros([BLOCK_N], dtype=tl.float32)
            acc2 = tl.zeros([BLOCK_N], dtype=tl.float32)
            for start in range(0, N, BLOCK_N):
                mask = start + cols < N
                x = tl.load(x_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                dy = tl.load(dy_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                w = tl.load(w_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
                xhat = tl.where(mask, (x - mean) * rstd, 0.0)
                acc1 += xhat * w * dy
                acc2 += w * dy
            c1 = tl.sum(acc1, axis=0) / N
            c2 = tl.sum(acc2, axis=0) / N
            for start in range(0, N, BLOCK_N):
                mask = start + cols < N
                x = tl.load(x_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                dy = tl.load(dy_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                w = tl.load(w_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
                xhat = tl.where(mask, (x - mean) * rstd, 0.0)
                dx = (w * dy - (xhat * c1 + c2)) * rstd
                tl.store(dx_ptr + off + start + cols, dx.to(dx_ptr.dtype.element_ty), mask=mask)
                p = part + start + cols
                tl.store(
                    dw_part_ptr + p, tl.load(dw_part_ptr + p, mask=mask) + dy * xhat, mask=mask
                )
                tl.store(db_part_ptr + p, tl.load(db_part_ptr + p, mask=mask) + dy, mask=mask)


def _forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, block_n: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = x.shape[-1]
    x2 = x.view(-1, n)
    rows = x2.shape[0]
    y = torch.empty_like(x)
    mean = torch.empty(rows, device=x.device, dtype=torch.float32)
    rstd = torch.empty(rows, device=x.device, dtype=torch.float32)
    block = row_block(n, x.element_size(), block_n)
    if rows > 0:
        _layer_norm_fwd_kernel[(rows,)](
            x2, weight, bias, y, mean, rstd, n, n, eps,
            BLOCK_N=block, SINGLE_BLOCK=block >= n, num_warps=launch_warps(num_warps_for(block)),
        )  # fmt: skip
    return y, mean, rstd


def _backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    block_n: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = x.shape[-1]
    rows = x.numel() // n
    dy = dy.contiguous()
    dx = torch.empty_like(x)
    programs, per_program = row_programs(rows, x.device)
    block = row_block(n, x.element_size(), block_n)
    # float32 partials, one row per program: every row written by the single-block path; zeros
    # where the long-row path accumulates in place (and for 0 rows)
    alloc = torch.empty if block >= n and rows > 0 else torch.zeros
    dw_part = alloc(max(programs, 1), n, device=x.device, dtype=torch.float32)
    db_part = alloc(max(programs, 1), n, device=x.device, dtype=torch.float32)
    if rows > 0:
        _layer_norm_bwd_kernel[(programs,)](
            x, weight, dy, dx, mean, rstd, dw_part, db_part, n, n, rows, per_program,
            BLOCK_N=block, SINGLE_BLOCK=block >= n, num_warps=launch_warps(num_warps_bwd(block)),
        )  # fmt: skip
    return dx, dw_part.sum(0).to(weight.dtype), db_part.sum(0).to(weight.dtype)


class _LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, block_n):  # type: ignore[override]
        y, mean, rstd = _forward(x, weight, bias, eps, block_n)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.block_n = block_n
        ctx.bias_dtype = bias.dtype
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = _backward(dy, x, weight, mean, rstd, ctx.block_n)
        need = ctx.needs_input_grad
        return (
            dx if need[0] else None,
            dw if need[1] else None,
            db.to(ctx.bias_dtype) if need[2] else None,
            None,
            None,
        )


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-5,
    *,
    block_n: int | None = None,
) -> torch.Tensor:
    """LayerNorm of `x` (..., N) over the last dim with affine `weight`, `bias` (N,).

    Returns x's dtype (float32 statistics); differentiable in x, weight and bias.
    `block_n` forces the column block (a power of two): for tests and tuning.
    """
    check_rows("layer_norm", "x", x)
    n = x.shape[-1]
    check_vector("layer_norm", "weight", weight, n)
    check_vector("layer_norm", "bias", bias, n)
    check_device("layer_norm", x, weight, bias)
    return _LayerNormFunction.apply(x, weight, bias, float(eps), block_n)
