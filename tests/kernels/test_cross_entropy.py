"""cross_entropy against F.cross_entropy in float64: reductions, ignore_index, grads, memory."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from perfbench_kernels.cross_entropy import (
    HAS_BACKWARD,
    REDUCTIONS,
    cross_entropy,
    cross_entropy_ref,
)

from tests.kernels.common import (
    COLS,
    DEVICE,
    FAST,
    ROWS,
    TOLERANCES,
    close,
    cpu_generator,
    poisoned,
    randn,
    upcast,
)


def _check(shape, dtype, atol, rtol, reduction: str, ignore_first: bool = True, **kw) -> None:
    v, seed = shape[-1], sum(shape)
    logits = (randn(shape, dtype, seed) * 4).requires_grad_()
    target = torch.randint(0, v, shape[:-1], generator=cpu_generator(seed), device="cpu")
    target = target.to(DEVICE)
    if ignore_first and target.numel() > 1:
        target.view(-1)[0] = -100
    shape_g = target.shape if reduction == "none" else ()
    grad_out = torch.randn(shape_g, generator=cpu_generator(seed + 1), device="cpu")
    grad_out = grad_out.to(device=DEVICE, dtype=dtype)
    with poisoned():
        loss = cross_entropy(logits, target, reduction, **kw)
        (dlogits,) = torch.autograd.grad(loss, (logits,), grad_out)
    (l32,) = upcast(logits)
    loss32 = cross_entropy_ref(l32, target, reduction)
    (d32,) = torch.autograd.grad(loss32, (l32,), grad_out.double())
    what = f"cross_entropy {shape} {dtype} {reduction}"
    assert loss.dtype == dlogits.dtype == dtype
    # the loss is a log-sum-exp of values up to ~16: one rounding of that magnitude
    close(loss, loss32, atol * 16, rtol, what)
    close(dlogits, d32, atol, rtol, f"{what} dlogits")


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, v=COLS, reduction=st.sampled_from(REDUCTIONS))
@example(rows=1, v=1, reduction="mean")
@example(rows=8, v=257, reduction="none")
def test_forward_and_backward(dtype, atol, rtol, rows, v, reduction):
    _check((rows, v), dtype, atol, rtol, reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_vocabulary_loop_over_blocks(reduction):
    _check((4, 300), torch.float32, 1e-5, 1e-5, reduction, block_n=64)
    _check((4, 300), torch.bfloat16, 2e-2, 2e-2, reduction, block_n=64)


def test_vocab_32768_and_leading_dims():
    _check((1, 32768), torch.float32, 1e-5, 1e-5, "sum", ignore_first=False)  # 8 blocks of 4096
    _check((2, 3, 50), torch.float16, 2e-3, 2e-3, "none")


def test_all_ignored_mean_is_nan_like_torch():
    logits, target = torch.randn(3, 5), torch.full((3,), -100)
    assert torch.isnan(cross_entropy(logits, target)) and torch.isnan(
        cross_entropy_ref(logits, target)
    )
    assert cross_entropy(logits, target, "sum") == 0


def test_forward_keeps_no_rows_by_vocab_tensor():
    """Peak-memory argument checkable on CPU: besides the logits themselves, the forward saves only
    per-row tensors for backward (eager saves its (rows, V) log-softmax)."""
    rows, v = 4, 1000
    logits, target = torch.randn(rows, v, requires_grad=True), torch.randint(0, v, (rows,))
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        cross_entropy(logits, target)
    others = [t for t in saved if t.data_ptr() != logits.data_ptr()]
    assert sum(t.numel() for t in others) <= 2 * rows + 1, [tuple(t.shape) for t in others]
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        cross_entropy_ref(logits, target)
    assert any(t.numel() == rows * v and t.data_ptr() != logits.data_ptr() for t in saved)


def test_launcher_errors():
    assert HAS_BACKWARD is True
    logits = torch.randn(3, 5)
    with pytest.raises(AssertionError, match="int64"):
        cross_entropy(logits, torch.zeros(3))
    with pytest.raises(AssertionError, match="target shape"):
        cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    with pytest.raises(AssertionError, match="dtype"):
        cross_entropy(logits.double(), torch.zeros(3, dtype=torch.long))
    with pytest.raises(AssertionError, match="contiguous"):
        cross_entropy(torch.randn(5, 3).t(), torch.zeros(3, dtype=torch.long))
    with pytest.raises(AssertionError, match="reduction"):
        cross_entropy(logits, torch.zeros(3, dtype=torch.long), "avg")
