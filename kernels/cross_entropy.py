"""Cross-entropy over a large vocabulary without materialising the softmax, forward and backward.

Why a kernel: eager `F.cross_entropy` writes the full (rows, V) log-softmax, reads it again for the
loss and keeps it for backward: 8% of copy bandwidth on H100 for 8192 x 32768 logits, 52% under
torch.compile (docs/design.md), and a (rows, V) tensor of extra memory. Here the forward reads the logits
once with an online softmax (running max and rescaled sum in float32) and keeps only one float32
log-sum-exp per row; the backward reads the logits once more and writes the gradient once.
Not supported: class weights and label smoothing (use `cross_entropy_ref`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import check_device, check_rows, launch_warps

HAS_BACKWARD = True
REDUCTIONS = ("mean", "sum", "none")

# Vocabulary block per loop step: 4096 columns (8 KiB of bf16), 8 warps. A whole 32768 row would
# also fit in registers, but the forward is one pass either way and a smaller block keeps register
# pressure low; not tuned on a GPU yet.
MAX_BLOCK_V = 4096


def cross_entropy_ref(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean", ignore_index: int = -100
) -> torch.Tensor:
    """Eager baseline: `F.cross_entropy` on logits flattened to (rows, V)."""
    v = logits.shape[-1]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, v), target.reshape(-1), reduction=reduction, ignore_index=ignore_index
    )
    return loss.reshape(target.shape) if reduction == "none" else loss


@triton.jit
def _cross_entropy_fwd_kernel(
    logits_ptr,
    target_ptr,
    loss_ptr,
    lse_ptr,
    stride_row,
    V,
    ignore_index,
    BLOCK_V: tl.constexpr,
):
    # read V logits once (+ the target's logit, a cached re-read of one element); write 2 floats
    row = tl.program_id(0).to(tl.int64)
    x_row = logits_ptr + row * stride_row
    cols = tl.arange(0, BLOCK_V)
    m = tl.full([], -float("inf"), tl.float32)
    d = tl.full([], 0.0, tl.float32)
    for start in range(0, V, BLOCK_V):
        mask = start + cols < V
        x = tl.load(x_row + start + cols, mask=mask, other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    lse = m + tl.log(d)
    t = tl.load(target_ptr + row).to(tl.int64)
    valid = t != ignore_index
    # out-of-range targets are not checked on the device (that needs a sync); the mask only keeps
    # the load in bounds
    x_t = tl.load(x_row + t, mask=valid & (t >= 0) & (t < V), other=0.0).to(tl.float32)
    tl.store(loss_ptr + row, tl.where(valid, lse - x_t, 0.0))
    tl.store(lse_ptr + row, lse)


@triton.jit
def _cross_entropy_bwd_kernel(
    logits_ptr,
    target_ptr,
    lse_ptr,
    g_ptr,
    g_stride,
    dx_ptr,
    stride_row,
    V,
    ignore_index,
    BLOCK_V: tl.constexpr,
):
    # d loss_row / d logits = softmax - onehot(target), scaled by the row's incoming gradient
    # read V, write V
    row = tl.program_id(0).to(tl.int64)
    t = tl.load(target_ptr + row).to(tl.int64)
    lse = tl.load(lse_ptr + row)
    g = tl.load(g_ptr + row * g_stride).to(tl.float32)
    g = tl.where(t != ignore_index, g, 0.0)
    x_row = logits_ptr + row * stride_row
    dx_row = dx_ptr + row * stride_row
    cols = tl.arange(0, BLOCK_V)
    for start in range(0, V, BLOCK_V):
        idx = start + cols
        mask = idx < V
        x = tl.load(x_row + idx, mask=mask, other=0.0).to(tl.float32)
        p = tl.exp(x - lse)
        dx = (p - tl.where(idx == t, 1.0, 0.0)) * g
        tl.store(dx_row + idx, dx.to(dx_ptr.dtype.element_ty), mask=mask)


def _block_v(v: int, block_n: int | None) -> int:
    if block_n is not None:
        assert block_n >= 1 and block_n & (block_n - 1) == 0, "block_n must be a power of two"
        return block_n
    return min(triton.next_power_of_2(v), MAX_BLOCK_V)


def _warps(block: int) -> int:
    return launch_warps(8 if block >= 2048 else 4)


class _CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, reduction, ignore_index, block_n):  # type: ignore[override]
        v = logits.shape[-1]
        x2 = logits.view(-1, v)
        t = target.reshape(-1)
        rows = x2.shape[0]
        loss_rows = torch.empty(rows, device=logits.device, dtype=torch.float32)
        lse = torch.empty(rows, device=logits.device, dtype=torch.float32)
        block = _block_v(v, block_n)
        if rows > 0:
            _cross_entropy_fwd_kernel[(rows,)](
                x2, t, loss_rows, lse, v, v, ignore_index, BLOCK_V=block, num_warps=_warps(block)
            )
        n_valid = (t != ignore_index).sum()  # mean over non-ignored rows, as torch does
        ctx.save_for_backward(logits, t, lse, n_valid)
        ctx.reduction, ctx.ignore_index, ctx.block = reduction, ignore_index, block
        if reduction == "none":
            return loss_rows.to(logits.dtype).reshape(target.shape)
        total = loss_rows.sum()
        if reduction == "mean":
            total = total / n_valid  # 0 / 0 = nan when every row is ignored, like torch
        return total.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        logits, t, lse, n_valid = ctx.saved_tensors
        v = logits.shape[-1]
        rows = t.numel()
        if ctx.reduction == "none":
            g, g_stride = grad.reshape(-1).float().contiguous(), 1
        elif ctx.reduction == "sum":
            g, g_stride = grad.reshape(1).float(), 0
        else:
            g, g_stride = (grad.float() / n_valid).reshape(1), 0
        dx = torch.empty_like(logits)
        if rows > 0:
            _cross_entropy_bwd_kernel[(rows,)](
                logits, t, lse, g, g_stride, dx, v, v, ctx.ignore_index,
                BLOCK_V=ctx.block, num_warps=_warps(ctx.block),
            )  # fmt: skip
        return dx, None, None, None, None


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    reduction: str = "mean",
    ignore_index: int = -100,
    *,
    block_n: int | None = None,
) -> torch.Tensor:
    """Cross-entropy of `logits` (..., V) against class indices `target` (...), float32 math.

    Same result as `F.cross_entropy` on the flattened logits; returns logits' dtype (a scalar for
    "mean"/"sum", target's shape for "none"). Differentiable in logits. Targets equal to
    `ignore_index` contribute 0 and are left out of the mean; other targets must lie in [0, V)
    (not checked: that would cost a device sync). `block_n` forces the vocabulary block (a power
    of two): for tests and tuning.
    """
    assert reduction in REDUCTIONS, f"cross_entropy: reduction must be one of {REDUCTIONS}"
    check_rows("cross_entropy", "logits", logits)
    assert target.dtype in (torch.int64, torch.int32), (
        f"cross_entropy: target must hold class indices as int64 (or int32), got {target.dtype}; "
        "use target.long()"
    )
    assert target.shape == logits.shape[:-1], (
        f"cross_entropy: target shape {tuple(target.shape)} must equal logits.shape[:-1] = "
        f"{tuple(logits.shape[:-1])}"
    )
    check_device("cross_entropy", logits, target)
    return _CrossEntropyFunction.apply(logits, target, reduction, int(ignore_index), block_n)
