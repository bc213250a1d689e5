"""layer_norm against F.layer_norm in float64: forward, grads of x/weight/bias, long rows, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from perfbench_kernels.layer_norm import HAS_BACKWARD, layer_norm, layer_norm_ref

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


def _check(shape: tuple[int, ...], dtype: torch.dtype, atol: float, rtol: float, **kw) -> None:
    n, seed = shape[-1], sum(shape)
    x = randn(shape, dtype, seed, grad=True)
    w = (1 + randn((n,), dtype, seed + 1)).requires_grad_()
    b = randn((n,), dtype, seed + 2, grad=True)
    dy = randn(shape, dtype, seed + 3)
    with poisoned():
        y = layer_norm(x, w, b, 1e-5, **kw)
        grads = torch.autograd.grad(y, (x, w, b), dy)
    x32, w32, b32 = upcast(x, w, b)
    y32 = layer_norm_ref(x32, w32, b32, 1e-5)
    grads32 = torch.autograd.grad(y32, (x32, w32, b32), dy.double())
    what = f"layer_norm {shape} {dtype}"
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    close(y, y32, atol, rtol, what)
    # weight/bias grads sum over rows: scale the tolerance by the row count
    rows = x.numel() // n
    for name, g, g32 in zip(("dx", "dweight", "dbias"), grads, grads32, strict=True):
        k = rstd_scale(x, 1e-5, centered=True) if name == "dx" else rows
        close(g, g32, atol * k, rtol, f"{what} {name}")


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, n=COLS)
@example(rows=1, n=1)
@example(rows=8, n=257)
@example(rows=7, n=33)  # 4 programs of 2 rows, the last with 1
@example(rows=6, n=2)  # a row of two close values: rstd 90, float32 dx error 2e-4 (CI, once)
def test_forward_and_backward(dtype, atol, rtol, rows, n):
    _check((rows, n), dtype, atol, rtol)


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
def test_long_rows_loop_over_blocks(dtype, atol, rtol):
    _check((5, 300), dtype, atol, rtol, block_n=64)


def test_n_32768_and_leading_dims():
    _check((1, 32768), torch.float32, 1e-4, 1e-4)  # fp32: 16384-column blocks, loop of 2
    _check((2, 3, 40), torch.float16, 2e-3, 2e-3)


def test_weight_only_grad():
    x = torch.randn(3, 7)
    w = torch.ones(7, requires_grad=True)
    (gw,) = torch.autograd.grad(layer_norm(x, w, torch.zeros(7)).sum(), (w,))
    (gw32,) = torch.autograd.grad(layer_norm_ref(x, w, torch.zeros(7)).sum(), (w,))
    close(gw, gw32, 1e-5, 1e-5, "dweight alone")


def test_launcher_errors():
    assert HAS_BACKWARD is True
    x, w = torch.randn(2, 5), torch.ones(5)
    with pytest.raises(AssertionError, match="dtype"):
        layer_norm(x.double(), w, w)
    with pytest.raises(AssertionError, match=r"weight must have shape \(5,\)"):
        layer_norm(x, torch.ones(4), w)
    with pytest.raises(AssertionError, match="bias must have shape"):
        layer_norm(x, w, torch.ones(5, 1))
    with pytest.raises(AssertionError, match="contiguous"):
        layer_norm(torch.randn(5, 2).t(), w, w)
    with pytest.raises(AssertionError, match="contiguous"):
        layer_norm(x, torch.ones(10)[::2], w)
