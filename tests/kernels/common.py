"""Shared by the kernel tests: tolerances by dtype, shape strategies, output poisoning."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from hypothesis import settings
from hypothesis import strategies as st
from perfbench_kernels._launch import interpreter_active

# (dtype, atol, rtol) against a float64 reference on the same (upcast) inputs: the kernels compute in
# float32 and round once, so the budget is about one rounding of the output dtype (float64, not
# float32, because eager float32 backward is itself off by ~1e-5 where rstd is large, e.g. N = 1).
TOLERANCES = [
    (torch.float32, 1e-5, 1e-5),
    (torch.bfloat16, 2e-2, 2e-2),
    (torch.float16, 2e-3, 2e-3),
]

# Where the kernels run: the GPU when there is one (conftest then leaves TRITON_INTERPRET unset),
# else the CPU under the interpreter. conftest makes it the default device of every kernel test.
DEVICE = "cuda" if torch.cuda.is_available() and not interpreter_active() else "cpu"

# Interpreter-sized shapes: rows 1..8, N 1..300 (non-powers of two included by construction).
ROWS = st.integers(min_value=1, max_value=8)
COLS = st.integers(min_value=1, max_value=300)
FAST = settings(max_examples=15, deadline=None)


@contextmanager
def poisoned() -> Iterator[None]:
    """torch.empty/empty_like return NaN-filled float tensors: an element a kernel forgets to
    write (a wrong mask, a missed tail block) shows up as NaN and fails the comparison."""
    empty, empty_like = torch.empty, torch.empty_like

    def fill(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            t.fill_(math.nan)
        return t

    torch.empty = lambda *a, **k: fill(empty(*a, **k))  # type: ignore[assignment]
    torch.empty_like = lambda *a, **k: fill(empty_like(*a, **k))  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.empty, torch.empty_like = empty, empty_like


def cpu_generator(seed: int) -> torch.Generator:
    """Seeded CPU generator: draw on the CPU, then move, so the values match on every device."""
    return torch.Generator().manual_seed(seed)


def randn(
    shape: tuple[int, ...], dtype: torch.dtype, seed: int, grad: bool = False
) -> torch.Tensor:
    """Seeded normal input in `dtype` (leaf, optionally requiring grad)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, device="cpu").to(device=DEVICE, dtype=dtype)
    return x.requires_grad_(grad)


def upcast(*ts: torch.Tensor) -> list[torch.Tensor]:
    """float64 leaf copies of the inputs for the reference (same values, own grads)."""
    return [t.detach().double().requires_grad_(t.requires_grad) for t in ts]


def rstd_scale(x: torch.Tensor, eps: float, centered: bool) -> float:
    """max(1, largest 1/std of a row): how much a norm's dx amplifies rounding error.

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) cancels to ~0 on rows of nearly equal values
    (n = 2 gives exactly 0), so its absolute error in the input dtype grows with rstd: a row of
    two close values has rstd ~90 and float32 dx errors ~2e-4. dx tolerances are multiplied by
    this; on well-conditioned rows (rstd <= 1) they stay as given."""
    x64 = x.detach().double()
    if centered:
        x64 = x64 - x64.mean(-1, keepdim=True)
    rstd = (x64.pow(2).mean(-1) + eps).rsqrt()
    return max(1.0, float(rstd.max())) if rstd.numel() else 1.0


def close(
    actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float, what: str
) -> None:
    """`actual` (any float dtype) equals the float64 `expected` within tolerance; NaN fails."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    torch.testing.assert_close(
        actual.double(), expected.double(), atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}"
    )
