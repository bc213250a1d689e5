"""The traffic counter counts what kernels touch, and our forward kernels move their ideal bytes.

The counter runs on the interpreter only: on a GPU machine these tests skip (the GPU has its own
timing benchmark)."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import interpreter_active
from perfbench_kernels.bench import ideal_bytes
from perfbench_kernels.traffic import audits, count_traffic, main

pytestmark = pytest.mark.skipif(
    not interpreter_active(), reason="traffic is counted on the Triton interpreter (CPU) only"
)

BF16 = torch.bfloat16


@triton.jit
def _copy_kernel(x_ptr, y_ptr, N, PASSES: tl.constexpr, BLOCK: tl.constexpr):
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for _ in range(PASSES):
        acc += tl.load(x_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + cols, acc.to(y_ptr.dtype.element_ty), mask=mask)


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_counts_every_masked_access_and_nothing_else(passes):
    x = torch.randn(37, dtype=BF16)  # a 64-wide block, 27 lanes masked off
    y = torch.empty(37, dtype=BF16)
    with count_traffic() as launches:
        _copy_kernel[(1,)](x, y, 37, PASSES=passes, BLOCK=64)
    (launch,) = launches
    tx, ty = launch.tensors
    assert (tx.name, tx.loaded, tx.stored) == ("x_ptr", passes * 37 * 2, 0)
    assert (ty.name, ty.loaded, ty.stored) == ("y_ptr", 0, 37 * 2)
    assert tx.distinct(1) == ty.distinct(2) == 37 * 2
    # 1-D tensors count distinct bytes: a re-read vector (a weight) is cached on a GPU
    assert tx.counted() == 37 * 2


def test_two_dim_tensors_count_every_access():
    from perfbench_kernels.softmax import softmax

    x = torch.randn(3, 100, dtype=BF16)
    with torch.no_grad(), count_traffic() as one_block:
        softmax(x)
    with torch.no_grad(), count_traffic() as looped:
        softmax(x, block_n=32)  # rows longer than the block: an online pass, then a second read
    assert one_block[0].tensors[0].counted() == x.numel() * 2
    assert looped[0].tensors[0].counted() == 2 * x.numel() * 2


ROWS, N, VOCAB = 3, 1000, 3000  # not powers of two: masked tails must not count
FORWARD = ("bias_gelu", "softmax", "layer_norm", "rms_norm", "add_rms_norm", "swiglu")
FORWARD += ("cross_entropy",)
BACKWARD = ("layer_norm", "rms_norm", "add_rms_norm", "swiglu", "cross_entropy")


@pytest.fixture(scope="module")
def counted() -> dict:
    """The same audits as `python -m perfbench_kernels.traffic`, at small odd shapes, by op."""
    return {a.op: a for a in audits(ROWS, N, VOCAB)}


@pytest.mark.parametrize("op", FORWARD)
def test_forward_kernels_move_their_ideal_bytes(op, counted):
    """Each input read once, each output written once (+ per-row statistics for the backward)."""
    a = counted[op]
    assert len(a.launches) == 1, [launch.kernel for launch in a.launches]
    width = VOCAB if op == "cross_entropy" else N
    assert a.ideal == ideal_bytes(op, ROWS, width)
    # extra allowed: float32 mean/rstd/lse and per-row losses (8 B/row), the target logit's re-read
    assert a.ideal <= a.counted <= a.ideal + 12 * ROWS, (a.counted, a.ideal)
    for t in a.launches[0].tensors:
        if len(t.shape) == 2:
            assert t.loaded in (0, t.nbytes) or op == "cross_entropy", (t.name, t.loaded)
            assert t.stored in (0, t.nbytes), (t.name, t.stored)


def test_cli_prints_a_row_per_op(capsys):
    assert main(["--rows", "2", "--n", "64", "--vocab", "128"]) == 0
    out = capsys.readouterr().out
    for op in ("softmax", "cross_entropy backward", "swiglu backward", "layer_norm backward"):
        assert f"| {op} |" in out


@pytest.mark.parametrize("op", BACKWARD)
def test_backward_kernels_touch_each_row_tensor_once(op, counted):
    """x, dy, dx (and a, b, da, db; logits, d logits): one read or one write per element."""
    a = counted[f"{op} backward"]
    assert len(a.launches) == 1, (op, [launch.kernel for launch in a.launches])
    row_shapes = {(ROWS, N), (ROWS, VOCAB)}
    touched = [t for t in a.launches[0].tensors if t.shape in row_shapes and t.loaded + t.stored]
    assert len(touched) >= 2, op  # (an unused placeholder argument is not touched)
    for t in touched:
        assert (t.loaded, t.stored) in ((t.nbytes, 0), (0, t.nbytes)), (op, t.name)
