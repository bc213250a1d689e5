"""linear_act (matmul with bias + activation epilogue) against F.linear + act in float64."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from perfbench_kernels.linear_act import HAS_BACKWARD, linear_act, linear_act_ref

from tests.kernels.common import FAST, TOLERANCES, close, poisoned, randn

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
# one small tile for the many shapes below (on a GPU, autotuning each shape would take minutes)
SMALL = {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_M": 2}


def _check(m: int, k: int, n: int, dtype, atol, rtol, activation: str, bias: bool = True) -> None:
    seed = m * 10_000 + k * 100 + n
    x = randn((m, k), dtype, seed)
    w = (randn((n, k), dtype, seed + 1).float() / k**0.5).to(dtype)  # outputs of order 1
    b = randn((n,), dtype, seed + 2) if bias else None
    with poisoned():
        y = linear_act(x, w, b, activation, config=SMALL)
    expected = linear_act_ref(x.double(), w.double(), None if b is None else b.double(), activation)
    assert y.dtype == dtype
    # a K-long float32 dot product, then one rounding: 4x the elementwise budget
    close(y, expected, 4 * atol, rtol, f"linear_act {m}x{k}x{n} {dtype} {activation}")


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES)
@FAST
@given(
    m=st.integers(1, 40),
    k=st.integers(1, 70),
    n=st.integers(1, 70),
    activation=st.sampled_from(["relu", "gelu", "gelu_tanh"]),
)
@example(m=1, k=1, n=1, activation="gelu")
@example(m=33, k=64, n=65, activation="relu")  # ragged M and N tiles, exact K tiles
def test_matches_reference(dtype, atol, rtol, m, k, n, activation):
    _check(m, k, n, dtype, atol, rtol, activation)


def test_autotuned_path():
    """Without `config`: the autotuned kernel on a GPU, the interpreter's fixed tile on the CPU."""
    x, w, b = torch.randn(64, 48), torch.randn(80, 48) / 7, torch.randn(80)
    close(linear_act(x, w, b, "gelu"), linear_act_ref(x, w, b, "gelu"), 1e-4, 1e-4, "autotuned")


def test_without_bias_and_leading_dims():
    _check(5, 20, 7, torch.float32, 1e-5, 1e-5, "relu", bias=False)
    x, w = torch.randn(2, 3, 8), torch.randn(6, 8)
    close(linear_act(x, w, None, "gelu"), linear_act_ref(x, w, None, "gelu"), 1e-5, 1e-5, "3-D x")


def test_forward_only_and_errors():
    assert HAS_BACKWARD is False
    x, w, b = torch.randn(4, 8), torch.randn(6, 8), torch.randn(6)
    with pytest.raises(RuntimeError, match="forward-only"):
        linear_act(x, w.requires_grad_(), b, "relu")
    w = w.detach()
    with pytest.raises(AssertionError, match=r"weight must be \(N, K\)"):
        linear_act(x, torch.randn(6, 7), b, "relu")
    with pytest.raises(AssertionError, match="weight has dtype"):
        linear_act(x, w.half(), b, "relu")
    with pytest.raises(AssertionError, match="contiguous"):
        linear_act(x, torch.randn(8, 6).t(), b, "relu")
    with pytest.raises(AssertionError, match=r"bias must have shape \(6,\)"):
        linear_act(x, w, torch.randn(5), "relu")
    with pytest.raises(AssertionError, match="activation"):
        linear_act(x, w, b, "tanh")
