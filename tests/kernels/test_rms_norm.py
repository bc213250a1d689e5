"""rms_norm and add_rms_norm against the composed-ops references in float64, forward and backward."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from perfbench_kernels.rms_norm import (
    HAS_BACKWARD,
    add_rms_norm,
    add_rms_norm_ref,
    rms_norm,
    rms_norm_ref,
)

from tests.kernels.common import (
    COLS,
    FAST,
    ROWS,
    TOLERANCES,
    close,
    poisoned,
    randn,
    rstd_scale,
    upcast,
)


def _check_rms(shape: tuple[int, ...], dtype: torch.dtype, atol: float, rtol: float, **kw) -> None:
    n, seed = shape[-1], sum(shape)
    x = randn(shape, dtype, seed, grad=True)
    w = (1 + randn((n,), dtype, seed + 1)).requires_grad_()
    dy = randn(shape, dtype, seed + 2)
    with poisoned():
        y = rms_norm(x, w, 1e-6, **kw)
        dx, dw = torch.autograd.grad(y, (x, w), dy)
    x32, w32 = upcast(x, w)
    y32 = rms_norm_ref(x32, w32, 1e-6)
    dx32, dw32 = torch.autograd.grad(y32, (x32, w32), dy.double())
    what = f"rms_norm {shape} {dtype}"
    assert y.dtype == dx.dtype == dw.dtype == dtype
    close(y, y32, atol, rtol, what)
    close(dx, dx32, atol * rstd_scale(x, 1e-6, centered=False), rtol, f"{what} dx")
    close(dw, dw32, atol * (x.numel() // n), rtol, f"{what} dweight")  # summed over rows


def _check_add(shape: tuple[int, ...], dtype: torch.dtype, atol: float, rtol: float, **kw) -> None:
    n, seed = shape[-1], sum(shape) + 7
    x, r = randn(shape, dtype, seed, grad=True), randn(shape, dtype, seed + 1, grad=True)
    w = (1 + randn((n,), dtype, seed + 2)).requires_grad_()
    dy, dh = randn(shape, dtype, seed + 3), randn(shape, dtype, seed + 4)
    with poisoned():
        y, h = add_rms_norm(x, r, w, 1e-6, **kw)
        grads = torch.autograd.grad((y, h), (x, r, w), (dy, dh))
    # the kernel rounds x + r to the storage dtype before normalising, as eager code does: shift the
    # float64 reference onto that rounded sum with a constant (gradients are unchanged)
    x32, r32, w32 = upcast(x, r, w)
    delta = ((x32 + r32).to(dtype).double() - (x32 + r32)).detach()
    y32, h32 = add_rms_norm_ref(x32, r32 + delta, w32, 1e-6)
    grads32 = torch.autograd.grad((y32, h32), (x32, r32, w32), (dy.double(), dh.double()))
    what = f"add_rms_norm {shape} {dtype}"
    close(h, h32, atol, rtol, f"{what} new_residual")
    close(y, y32, atol, rtol, what)
    for name, g, g32 in zip(("dx", "dresidual", "dweight"), grads, grads32, strict=True):
        k = x.numel() // n if name == "dweight" else rstd_scale(h, 1e-6, centered=False)
        close(g, g32, atol * k, rtol, f"{what} {name}")


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, n=COLS)
@example(rows=1, n=1)
@example(rows=8, n=257)
@example(rows=7, n=33)  # 4 programs of 2 rows, the last with 1
def test_rms_norm_forward_and_backward(dtype, atol, rtol, rows, n):
    _check_rms((rows, n), dtype, atol, rtol)


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, n=COLS)
@example(rows=1, n=1)
def test_add_rms_norm_forward_and_backward(dtype, atol, rtol, rows, n):
    _check_add((rows, n), dtype, atol, rtol)


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
def test_long_rows_loop_over_blocks(dtype, atol, rtol):
    _check_rms((5, 300), dtype, atol, rtol, block_n=64)
    _check_add((5, 300), dtype, atol, rtol, block_n=64)


def test_n_32768_and_leading_dims():
    _check_rms((1, 32768), torch.float32, 1e-4, 1e-4)  # fp32: 16384-column blocks, loop of 2
    _check_add((2, 3, 40), torch.bfloat16, 2e-2, 2e-2)


def test_add_rms_norm_without_residual_grad():
    """Only the normed output used: backward gets no gradient for h (materialize_grads off)."""
    x, r = torch.randn(3, 9, requires_grad=True), torch.randn(3, 9)
    w = torch.ones(9)
    y, _ = add_rms_norm(x, r, w)
    (dx,) = torch.autograd.grad(y.pow(2).sum(), (x,))
    y32, _ = add_rms_norm_ref(x, r, w)
    (dx32,) = torch.autograd.grad(y32.pow(2).sum(), (x,))
    close(dx, dx32, 1e-5, 1e-5, "add_rms_norm dx via y only")


def test_launcher_errors():
    assert HAS_BACKWARD is True
    x, w = torch.randn(2, 5), torch.ones(5)
    with pytest.raises(AssertionError, match="dtype"):
        rms_norm(x.to(torch.int32), w)
    with pytest.raises(AssertionError, match="weight must have shape"):
        rms_norm(x, torch.ones(6))
    with pytest.raises(AssertionError, match="contiguous"):
        rms_norm(torch.randn(5, 2).t(), torch.ones(5))
    with pytest.raises(AssertionError, match="residual has shape"):
        add_rms_norm(x, torch.randn(2, 4), w)
    with pytest.raises(AssertionError, match="residual has dtype"):
        add_rms_norm(x, torch.randn(2, 5, dtype=torch.float16), w)
