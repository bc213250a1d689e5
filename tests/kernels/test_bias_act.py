"""bias_act against `act(x + bias)` in float64 for relu, exact gelu and tanh gelu."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from perfbench_kernels.bias_act import ACTIVATIONS, HAS_BACKWARD, bias_act, bias_act_ref

from tests.kernels.common import COLS, FAST, ROWS, TOLERANCES, close, poisoned, randn

# tanh-GELU as 2*sigmoid(2u) - 1: the interpreter's numpy exp overflows to inf for large |u|,
# which gives the right limit (as on the GPU) but warns
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")


def _check(shape: tuple[int, ...], dtype, atol, rtol, activation: str) -> None:
    n, seed = shape[-1], sum(shape)
    x, bias = randn(shape, dtype, seed) * 3, randn((n,), dtype, seed + 1)
    with poisoned():
        y = bias_act(x, bias, activation)
    assert y.dtype == dtype
    close(
        y,
        bias_act_ref(x.double(), bias.double(), activation),
        atol,
        rtol,
        f"bias_act {activation} {shape} {dtype}",
    )


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(rows=ROWS, n=COLS, activation=st.sampled_from(ACTIVATIONS))
@example(rows=1, n=1, activation="gelu")
@example(rows=8, n=257, activation="relu")
def test_matches_reference(dtype, atol, rtol, rows, n, activation):
    _check((rows, n), dtype, atol, rtol, activation)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_wide_rows_and_leading_dims(activation):
    _check((3, 1500), torch.bfloat16, 2e-2, 2e-2, activation)  # two column blocks of 1024
    _check((2, 3, 7), torch.float32, 1e-5, 1e-5, activation)


def test_gelu_is_exact_erf_gelu():
    x = torch.linspace(-4, 4, 101).reshape(1, -1)
    y = bias_act(x, torch.zeros(101), "gelu")
    close(y, torch.nn.GELU()(x), 1e-6, 1e-6, "exact gelu")
    assert (y - torch.nn.GELU(approximate="tanh")(x)).abs().max() > 1e-5  # not the tanh one


def test_forward_only_and_errors():
    assert HAS_BACKWARD is False
    x, b = torch.randn(2, 5), torch.randn(5)
    with pytest.raises(RuntimeError, match="forward-only"):
        bias_act(x.requires_grad_(), b, "gelu")
    x = x.detach()
    with pytest.raises(AssertionError, match="activation"):
        bias_act(x, b, "silu")
    with pytest.raises(AssertionError, match=r"bias must have shape \(5,\)"):
        bias_act(x, torch.randn(4), "relu")
    with pytest.raises(AssertionError, match="dtype"):
        bias_act(x, b.double(), "relu")
    with pytest.raises(AssertionError, match="contiguous"):
        bias_act(torch.randn(5, 2).t(), torch.randn(2), "relu")
