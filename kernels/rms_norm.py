"""RMSNorm and residual-add + RMSNorm over the last dim, forward and backward.

Why a kernel: RMSNorm written as composed ops (the usual model code) reached 9% of copy bandwidth
on H100 in eager and 98% under torch.compile; residual add + RMSNorm 12% and 100% (docs/design.md).
Fusing the residual add saves a full write and re-read of the sum: forward reads x and residual,
writes the normed output and the new residual, nothing else.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import (
    check_device,
    check_rows,
    check_same,
    check_vector,
    launch_warps,
    num_warps_bwd,
    num_warps_for,
    row_block,
    row_programs,
)

HAS_BACKWARD = True


def rms_norm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eager baseline as model code writes it: composed ops, float32 statistics, x's dtype out."""
    compute = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64 (tests)
    xf = x.to(compute)
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y * weight.to(compute)).to(x.dtype)


def add_rms_norm_ref(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager baseline: `h = x + residual; return rms_norm_ref(h), h`."""
    h = x + residual
    return rms_norm_ref(h, weight, eps), h


@triton.jit
def _rms_norm_fwd_kernel(
    x_ptr,
    r_ptr,
    w_ptr,
    y_ptr,
    h_ptr,
    rstd_ptr,
    stride_row,
    N,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SINGLE_BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    off = row * stride_row
    cols = tl.arange(0, BLOCK_N)
    if SINGLE_BLOCK:
        # read x (and residual), write y (and h): one pass
        mask = cols < N
        x = tl.load(x_ptr + off + cols, mask=mask, other=0.0)
        if HAS_RESIDUAL:
            # round h to the storage dtype before normalising, as eager `rms_norm(x + r)` does
            h = x.to(tl.float32) + tl.load(r_ptr + off + cols, mask=mask, other=0.0).to(tl.float32)
            h = h.to(h_ptr.dtype.element_ty)
            tl.store(h_ptr + off + cols, h, mask=mask)
            x = h
        x = x.to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / N + eps)
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_ptr + off + cols, (x * rstd * w).to(y_ptr.dtype.element_ty), mask=mask)
    else:
        # long rows: sum of squares (writing h on the way), then normalise: 2 reads
        acc = tl.zeros([BLOCK_N], dtype=tl.float32)
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            x = tl.load(x_ptr + off + start + cols, mask=mask, other=0.0)
            if HAS_RESIDUAL:
                r = tl.load(r_ptr + off + start + cols, mask=mask, other=0.0)
                x = (x.to(tl.float32) + r.to(tl.float32)).to(h_ptr.dtype.element_ty)
                tl.store(h_ptr + off + start + cols, x, mask=mask)
            x = x.to(tl.float32)
            acc += x * x
        rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / N + eps)
        for start in range(0, N, BLOCK_N):
            mask = start + cols < N
            if HAS_RESIDUAL:
                x = tl.load(h_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
            else:
                x = tl.load(x_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
            w = tl.load(w_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
            tl.store(
                y_ptr + off + start + cols, (x * rstd * w).to(y_ptr.dtype.element_ty), mask=mask
            )
    tl.store(rstd_ptr + row, rstd)


@triton.jit
def _rms_norm_bwd_kernel(
    x_ptr,
    w_ptr,
    dy_ptr,
    dh_ptr,
    dx_ptr,
    rstd_ptr,
    dw_part_ptr,
    stride_row,
    N,
    n_rows,
    rows_per_program,
    HAS_DH: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SINGLE_BLOCK: tl.constexpr,
):
    # dx = rstd * (w*dy - xhat * mean(w*dy*xhat)) (+ dh, the gradient arriving at the new
    # residual); dw = sum_rows dy*xhat
    pid = tl.program_id(0)
    row_start = pid * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    cols = tl.arange(0, BLOCK_N)
    part = pid.to(tl.int64) * N
    if SINGLE_BLOCK:
        # per row: read x, dy (and dh); write dx. dw stays in registers: one write per program
        mask = cols < N
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        dw = tl.zeros([BLOCK_N], dtype=tl.float32)
        for row in range(row_start, row_end):
            off = tl.cast(row, tl.int64) * stride_row
            x = tl.load(x_ptr + off + cols, mask=mask, other=0.0).to(tl.float32)
            dy = tl.load(dy_ptr + off + cols, mask=mask, other=0.0).to(tl.float32)
            rstd = tl.load(rstd_ptr + row)
            xhat = x * rstd
            wdy = w * dy
            dx = (wdy - xhat * (tl.sum(xhat * wdy, axis=0) / N)) * rstd
            if HAS_DH:
                dx += tl.load(dh_ptr + off + cols, mask=mask, other=0.0).to(tl.float32)
            tl.store(dx_ptr + off + cols, dx.to(dx_ptr.dtype.element_ty), mask=mask)
            dw += dy * xhat
        tl.store(dw_part_ptr + part + cols, dw, mask=mask)
    else:
        # long rows: the row sum first, then dx and this program's (zero-initialised) partial
        for row in range(row_start, row_end):
            off = tl.cast(row, tl.int64) * stride_row
            rstd = tl.load(rstd_ptr + row)
            acc = tl.zeros([BLOCK_N], dtype=tl.float32)
            for start in range(0, N, BLOCK_N):
                mask = start + cols < N
                x = tl.load(x_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                dy = tl.load(dy_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                w = tl.load(w_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
                acc += x * rstd * w * dy
            c = tl.sum(acc, axis=0) / N
            for start in range(0, N, BLOCK_N):
                mask = start + cols < N
                x = tl.load(x_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                dy = tl.load(dy_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                w = tl.load(w_ptr + start + cols, mask=mask, other=0.0).to(tl.float32)
                xhat = x * rstd
                dx = (w * dy - xhat * c) * rstd
                if HAS_DH:
                    dx += tl.load(dh_ptr + off + start + cols, mask=mask, other=0.0).to(tl.float32)
                tl.store(dx_ptr + off + start + cols, dx.to(dx_ptr.dtype.element_ty), mask=mask)
                p = part + start + cols
                tl.store(
                    dw_part_ptr + p, tl.load(dw_part_ptr + p, mask=mask) + dy * xhat, mask=mask
                )


def _forward(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor,
    eps: float,
    block_n: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    n = x.shape[-1]
    rows = x.numel() // n
    y = torch.empty_like(x)
    h = torch.empty_like(x) if residual is not None else None
    rstd = torch.empty(rows, device=x.device, dtype=torch.float32)
    block = row_block(n, x.element_size(), block_n)
    if rows > 0:
        _rms_norm_fwd_kernel[(rows,)](
            x, residual if residual is not None else x, weight, y, h if h is not None else y,
            rstd, n, n, eps,
            HAS_RESIDUAL=residual is not None, BLOCK_N=block, SINGLE_BLOCK=block >= n,
            num_warps=launch_warps(num_warps_for(block)),
        )  # fmt: skip
    return y, h, rstd


def _backward(
    dy: torch.Tensor,
    dh: torch.Tensor | None,
    x: torch.Tensor,
    weight: torch.Tensor,
    rstd: torch.Tensor,
    block_n: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[-1]
    rows = x.numel() // n
    dy = dy.contiguous()
    dh = dh.contiguous() if dh is not None else None
    dx = torch.empty_like(x)
    programs, per_program = row_programs(rows, x.device)
    block = row_block(n, x.element_size(), block_n)
    # float32 partials, one row per program: every row written by the single-block path; zeros
    # where the long-row path accumulates in place (and for 0 rows)
    alloc = torch.empty if block >= n and rows > 0 else torch.zeros
    dw_part = alloc(max(programs, 1), n, device=x.device, dtype=torch.float32)
    if rows > 0:
        _rms_norm_bwd_kernel[(programs,)](
            x, weight, dy, dh if dh is not None else dy, dx, rstd, dw_part, n, n, rows,
            per_program,
            HAS_DH=dh is not None, BLOCK_N=block, SINGLE_BLOCK=block >= n,
            num_warps=launch_warps(num_warps_bwd(block)),
        )  # fmt: skip
    return dx, dw_part.sum(0).to(weight.dtype)


class _RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps, block_n):  # type: ignore[override]
        y, _, rstd = _forward(x, None, weight, eps, block_n)
        ctx.save_for_backward(x, weight, rstd)
        ctx.block_n = block_n
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, weight, rstd = ctx.saved_tensors
        dx, dw = _backward(dy, None, x, weight, rstd, ctx.block_n)
        need = ctx.needs_input_grad
        return dx if need[0] else None, dw if need[1] else None, None, None


class _AddRMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, residual, weight, eps, block_n):  # type: ignore[override]
        y, h, rstd = _forward(x, residual, weight, eps, block_n)
        ctx.save_for_backward(h, weight, rstd)  # h is an output: saving it costs no memory
        ctx.block_n = block_n
        ctx.set_materialize_grads(False)  # no zeros tensor when h's gradient is unused
        return y, h

    @staticmethod
    def backward(ctx, dy, dh):  # type: ignore[override]
        h, weight, rstd = ctx.saved_tensors
        if dy is None:
            dy = torch.zeros_like(h)
        dx, dw = _backward(dy, dh, h, weight, rstd, ctx.block_n)
        need = ctx.needs_input_grad
        # d(x + residual) is the same for both inputs; autograd copies before accumulating
        return dx if need[0] else None, dx if need[1] else None, dw if need[2] else None, None, None


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, *, block_n: int | None = None
) -> torch.Tensor:
    """RMSNorm of `x` (..., N) over the last dim, scaled by `weight` (N,); x's dtype out.

    Differentiable in x and weight. `block_n` forces the column block (a power of two): for tests
    and tuning.
    """
    check_rows("rms_norm", "x", x)
    check_vector("rms_norm", "weight", weight, x.shape[-1])
    check_device("rms_norm", x, weight)
    return _RMSNormFunction.apply(x, weight, float(eps), block_n)


def add_rms_norm(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    *,
    block_n: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(rms_norm(x + residual), x + residual)` in one pass; x's dtype out.

    The sum is rounded to x's dtype before normalising, as the eager composition does.
    Differentiable in x, residual and weight, through both outputs.
    """
    check_rows("add_rms_norm", "x", x)
    check_same("add_rms_norm", "residual", residual, x, "x")
    check_rows("add_rms_norm", "residual", residual)
    check_vector("add_rms_norm", "weight", weight, x.shape[-1])
    check_device("add_rms_norm", x, residual, weight)
    return _AddRMSNormFunction.apply(x, residual, weight, float(eps), block_n)
