"""softmax against torch.softmax in float64: shapes, dtypes, the long-row loop, launcher errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from perfbench_kernels.softmax import HAS_BACKWARD, softmax, softmax_ref

from tests.kernels.common import COLS, FAST, ROWS, TOLERANCES, close, poisoned, randn


def _check(shape: tuple[int, ...], dtype: torch.dtype, atol: float, rtol: float, **kw) -> None:
    x = randn(shape, dtype, seed=sum(shape)) * 3
    with poisoned():
        y = softmax(x, **kw)
    assert y.dtype == dtype
    close(y, softmax_ref(x.double()), atol, rtol, f"softmax {shape} {dtype}")


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, n=COLS)
@example(rows=1, n=1)
@example(rows=8, n=257)
def test_matches_reference(dtype, atol, rtol, rows, n):
    _check((rows, n), dtype, atol, rtol)


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
def test_long_rows_loop_over_blocks(dtype, atol, rtol):
    _check((3, 300), dtype, atol, rtol, block_n=64)  # 5 blocks, ragged tail


def test_n_32768_and_leading_dims():
    _check((1, 32768), torch.float32, 1e-6, 1e-5)  # fp32: 16384-column blocks, loop of 2
    _check((2, 1, 33), torch.bfloat16, 2e-2, 2e-2)


def test_large_logits_do_not_overflow():
    x = torch.tensor([[1000.0, 0.0, -1000.0]])
    close(softmax(x), softmax_ref(x), 1e-6, 1e-6, "softmax large values")
    close(softmax(x, block_n=1), softmax_ref(x), 1e-6, 1e-6, "softmax large values, loop")


def test_forward_only():
    assert HAS_BACKWARD is False
    x = torch.randn(2, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="forward-only"):
        softmax(x)
    with torch.no_grad():
        softmax(x)


def test_launcher_errors():
    with pytest.raises(AssertionError, match="dtype"):
        softmax(torch.randn(2, 5, dtype=torch.float64))
    with pytest.raises(AssertionError, match="contiguous"):
        softmax(torch.randn(5, 4).t())
    with pytest.raises(AssertionError, match="shape"):
        softmax(torch.randn(2, 0))
    with pytest.raises(AssertionError, match="power of two"):
        softmax(torch.randn(2, 5), block_n=48)
