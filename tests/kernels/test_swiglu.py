"""swiglu against F.silu(a) * b in float64, forward and grads of a and b."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from perfbench_kernels.swiglu import HAS_BACKWARD, swiglu, swiglu_ref

from tests.kernels.common import COLS, FAST, ROWS, TOLERANCES, close, poisoned, randn, upcast


def _check(shape: tuple[int, ...], dtype: torch.dtype, atol: float, rtol: float) -> None:
    seed = sum(shape)
    a, b = randn(shape, dtype, seed, grad=True), randn(shape, dtype, seed + 1, grad=True)
    dc = randn(shape, dtype, seed + 2)
    with poisoned():
        c = swiglu(a, b)
        da, db = torch.autograd.grad(c, (a, b), dc)
    a32, b32 = upcast(a, b)
    c32 = swiglu_ref(a32, b32)
    da32, db32 = torch.autograd.grad(c32, (a32, b32), dc.double())
    what = f"swiglu {shape} {dtype}"
    assert c.dtype == da.dtype == db.dtype == dtype
    close(c, c32, atol, rtol, what)
    close(da, da32, atol, rtol, f"{what} da")
    close(db, db32, atol, rtol, f"{what} db")


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, n=COLS)
@example(rows=1, n=1)
@example(rows=8, n=257)
def test_forward_and_backward(dtype, atol, rtol, rows, n):
    _check((rows, n), dtype, atol, rtol)


def test_several_blocks_and_leading_dims():
    _check((3, 1500), torch.bfloat16, 2e-2, 2e-2)  # 4500 elements: 5 blocks of 1024, ragged tail
    _check((2, 3, 5), torch.float32, 1e-5, 1e-5)


def test_launcher_errors():
    assert HAS_BACKWARD is True
    a = torch.randn(2, 5)
    with pytest.raises(AssertionError, match="b has shape"):
        swiglu(a, torch.randn(1, 5))  # no broadcasting
    with pytest.raises(AssertionError, match="b has dtype"):
        swiglu(a, a.half())
    with pytest.raises(AssertionError, match="dtype"):
        swiglu(a.double(), a.double())
    with pytest.raises(AssertionError, match="contiguous"):
        swiglu(torch.randn(5, 2).t(), torch.randn(2, 5))
