"""Count the bytes each Triton kernel loads and stores, on the CPU interpreter.

    python -m perfbench_kernels.traffic [--rows R]      (prints a markdown table)

Why: a memory-bound kernel can reach a share of copy bandwidth only if it moves no more than the
op's ideal bytes (`bench.ideal_bytes`: each input read once, each output written once). Whether it
does is a property of the kernel's code, not of the GPU, so it is counted here without one: every
`tl.load` / `tl.store` the interpreter executes is attributed to the tensor argument it touches,
with its mask applied. The row count does not change bytes per row, so a few rows at the
benchmark's row length (N = 8192, V = 32768) give the per-row traffic of the full shape.

This is a count, not a timing, and caches are not modelled, with one rule: a 1-D tensor (weight,
bias, per-row statistics) counts its distinct bytes once, since every row reads the same vector
and on a GPU it stays in L2; every access to a tensor of 2 or more dims counts in full, so a second
pass over a row shows as a second read. Work done by torch inside a launcher (allocations, the
sum of the backward's weight-grad partials) is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from perfbench_kernels._launch import interpreter_active


@dataclass
class TensorTraffic:
    """Accesses to one tensor argument of one launch."""

    name: str
    shape: tuple[int, ...]
    itemsize: int
    loaded: int = 0  # bytes, every access
    stored: int = 0
    touched: np.ndarray = field(init=False)  # per element: loaded (bit 0) / stored (bit 1)

    def __post_init__(self) -> None:
        self.touched = np.zeros(int(np.prod(self.shape, dtype=np.int64)), dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return self.touched.size * self.itemsize

    def distinct(self, bit: int) -> int:
        return int(np.count_nonzero(self.touched & bit)) * self.itemsize

    def counted(self) -> int:
        """Bytes under the cache rule: 1-D tensors count distinct bytes once, others every access."""
        if len(self.shape) <= 1:
            return self.distinct(1) + self.distinct(2)
        return self.loaded + self.stored


@dataclass
class Launch:
    """One kernel launch: its grid and the traffic of each tensor argument."""

    kernel: str
    grid: tuple[int, ...]
    tensors: list[TensorTraffic] = field(default_factory=list)
    _ranges: list[tuple[int, int, TensorTraffic]] = field(default_factory=list)

    def add(self, name: str, t: torch.Tensor) -> None:
        assert t.is_contiguous(), f"{self.kernel}: argument {name} is not contiguous"
        tt = TensorTraffic(name, tuple(t.shape), t.element_size())
        self.tensors.append(tt)
        self._ranges.append((t.data_ptr(), t.data_ptr() + tt.nbytes, tt))

    def record(self, ptrs: np.ndarray, mask: np.ndarray, itemsize: int, store: bool) -> None:
        addrs = ptrs[np.broadcast_to(mask, ptrs.shape)].astype(np.int64).ravel()
        if addrs.size == 0:
            return
        for lo, hi, tt in self._ranges:
            inside = (addrs >= lo) & (addrs < hi)
            if not inside.any():
                continue
            idx = (addrs[inside] - lo) // tt.itemsize
            nbytes = int(idx.size) * itemsize
            if store:
                tt.stored += nbytes
                tt.touched[idx] |= 2
            else:
                tt.loaded += nbytes
                tt.touched[idx] |= 1
            addrs = addrs[~inside]
            if addrs.size == 0:
                return
        raise AssertionError(
            f"{self.kernel}: {addrs.size} accesses outside every tensor argument "
            f"(first address {hex(int(addrs[0]))}): an out-of-bounds pointer"
        )


@contextlib.contextmanager
def count_traffic() -> Iterator[list[Launch]]:
    """Within the block, every interpreted kernel launch appends a `Launch` to the yielded list.

    Patches triton's interpreter (its builder's masked load/store and the host copy of launch
    arguments), which is internal API: if triton changes it, this fails loudly rather than
    counting nothing (a launch with no access raises).
    """
    assert interpreter_active(), (
        "count_traffic needs the Triton interpreter: set TRITON_INTERPRET=1 before importing "
        "triton and perfbench_kernels (python -m perfbench_kernels.traffic does)"
    )
    from triton.runtime import interpreter as interp

    launches: list[Launch] = []
    builder = interp.InterpreterBuilder
    orig_load, orig_store = builder.create_masked_load, builder.create_masked_store
    orig_init = interp.GridExecutor._init_args_hst

    def itemsize_of(ptrs) -> int:
        return ptrs.get_element_ty().primitive_bitwidth // 8

    def load(self, ptrs, mask, other, *args, **kwargs):
        launches[-1].record(ptrs.data, mask.data, itemsize_of(ptrs), store=False)
        return orig_load(self, ptrs, mask, other, *args, **kwargs)

    def store(self, ptrs, value, mask, *args, **kwargs):
        launches[-1].record(ptrs.data, mask.data, itemsize_of(ptrs), store=True)
        return orig_store(self, ptrs, value, mask, *args, **kwargs)

    def init_args(self, args_dev, kwargs):
        args_hst, kwargs_hst = orig_init(self, args_dev, kwargs)
        names = inspect.getcallargs(self.fn, *args_hst, **kwargs_hst)
        grid = self.grid if isinstance(self.grid, tuple) else ()
        launch = Launch(self.fn.__name__, tuple(grid))
        for name, value in names.items():
            if isinstance(value, torch.Tensor):
                launch.add(name, value)
        launches.append(launch)
        return args_hst, kwargs_hst

    builder.create_masked_load, builder.create_masked_store = load, store
    interp.GridExecutor._init_args_hst = init_args
    try:
        yield launches
    finally:
        builder.create_masked_load, builder.create_masked_store = orig_load, orig_store
        interp.GridExecutor._init_args_hst = orig_init
    for launch in launches:
        assert any(t.loaded or t.stored for t in launch.tensors), (
            f"{launch.kernel}: no load or store was counted; has triton's interpreter changed?"
        )


@dataclass(frozen=True)
class Audit:
    """One op's counted traffic against its ideal bytes."""

    op: str
    shape: str
    launches: list[Launch]
    ideal: int | None

    @property
    def counted(self) -> int:
        return sum(t.counted() for launch in self.launches for t in launch.tensors)

    @property
    def ratio(self) -> float | None:
        return None if not self.ideal else self.counted / self.ideal

    def per_element(self) -> str:
        """Reads (r) and writes (w) per element of each 2-D+ tensor: `x r1 · y w1`."""
        parts = []
        for launch in self.launches:
            for t in launch.tensors:
                if len(t.shape) < 2 or not (t.loaded or t.stored):
                    continue
                rw = []
                if t.loaded:
                    rw.append(f"r{t.loaded / t.nbytes:g}")
                if t.stored:
                    rw.append(f"w{t.stored / t.nbytes:g}")
                parts.append(f"{t.name} {' '.join(rw)}")
        return " · ".join(parts)


def audit(op: str, shape: str, fn: Callable[[], object], ideal: int | None) -> Audit:
    """Run `fn` (which launches kernels) and collect its traffic."""
    with count_traffic() as launches:
        fn()
    return Audit(op, shape, launches, ideal)


def audits(rows: int, n: int, vocab: int) -> list[Audit]:
    """Every kernel's forward (under no_grad) and, where it has one, its backward, in bf16."""
    from perfbench_kernels import bias_act, cross_entropy, layer_norm, rms_norm, softmax, swiglu
    from perfbench_kernels.bench import ideal_bytes

    g = torch.Generator().manual_seed(0)
    bf = torch.bfloat16

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g).to(bf)

    x, r, w, b = rnd(rows, n), rnd(rows, n), rnd(n), rnd(n)
    logits = rnd(rows, vocab) * 4
    target = torch.randint(0, vocab, (rows,), generator=g)
    rn, rv = f"{rows}x{n}", f"{rows}x{vocab}"

    def backward(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> Callable[[], object]:
        """The backward launches alone: the forward runs here, outside the count."""
        leaves = [t.detach().requires_grad_() for t in inputs]
        out = fn(*leaves)
        outs = out if isinstance(out, tuple) else (out,)
        grads = [torch.ones_like(o) for o in outs]
        return lambda: torch.autograd.backward(outs, grads)

    with torch.no_grad():
        fwd = [
            audit("bias_gelu", rn, lambda: bias_act.bias_act(x, b, "gelu"),
                  ideal_bytes("bias_gelu", rows, n)),
            audit("softmax", rn, lambda: softmax.softmax(x), ideal_bytes("softmax", rows, n)),
            audit("layer_norm", rn, lambda: layer_norm.layer_norm(x, w, b),
                  ideal_bytes("layer_norm", rows, n)),
            audit("rms_norm", rn, lambda: rms_norm.rms_norm(x, w), ideal_bytes("rms_norm", rows, n)),
            audit("add_rms_norm", rn, lambda: rms_norm.add_rms_norm(x, r, w),
                  ideal_bytes("add_rms_norm", rows, n)),
            audit("swiglu", rn, lambda: swiglu.swiglu(x, r), ideal_bytes("swiglu", rows, n)),
            audit("cross_entropy", rv, lambda: cross_entropy.cross_entropy(logits, target),
                  ideal_bytes("cross_entropy", rows, vocab)),
        ]  # fmt: skip
    mn, vec = rows * n * 2, n * 2
    bwd = [
        # read x, dy, weight; write dx, dweight, dbias (per-row mean/rstd not counted as ideal)
        audit("layer_norm backward", rn, backward(layer_norm.layer_norm, x, w, b),
              3 * mn + 3 * vec),
        audit("rms_norm backward", rn, backward(rms_norm.rms_norm, x, w), 3 * mn + 2 * vec),
        # read h, dy, dh, weight; write dx (= d residual, one tensor), dweight
        audit("add_rms_norm backward", rn, backward(rms_norm.add_rms_norm, x, r, w),
              4 * mn + 2 * vec),
        audit("swiglu backward", rn, backward(swiglu.swiglu, x, r), 5 * mn),  # dc, a, b -> da, db
        audit("cross_entropy backward", rv,
              backward(lambda lg: cross_entropy.cross_entropy(lg, target), logits),
              # the pair's floor is the backward's alone: read logits, targets; write d logits
              ideal_bytes("cross_entropy_fwd_bwd", rows, vocab)),
    ]  # fmt: skip
    return fwd + bwd


def markdown(audits: list[Audit]) -> str:
    head = "| op | shape | kernels (grid) | counted MiB | ideal MiB | counted ÷ ideal | 2-D tensors: reads / writes per element |"
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
    for a in audits:
        kernels = ", ".join(f"{k.kernel}{list(k.grid)}" for k in a.launches)
        ideal = f"{a.ideal / 2**20:.3f}" if a.ideal else "—"
        ratio = f"{a.ratio:.3f}" if a.ratio is not None else "—"
        lines.append(
            f"| {a.op} | {a.shape} | {kernels} | {a.counted / 2**20:.3f} | {ideal} | {ratio} "
            f"| {a.per_element()} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perfbench_kernels.traffic", description=__doc__
    )
    parser.add_argument(
        "--rows", type=int, default=16, help="rows per op (bytes per row are fixed)"
    )
    parser.add_argument("--n", type=int, default=8192, help="row length of the row-wise ops")
    parser.add_argument("--vocab", type=int, default=32768, help="cross-entropy vocabulary")
    args = parser.parse_args(argv)
    if "perfbench_kernels.softmax" not in sys.modules:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are decorated
    if not interpreter_active():
        print("traffic counting needs TRITON_INTERPRET=1 set before the kernels are imported",
              file=sys.stderr)  # fmt: skip
        return 2
    print(markdown(audits(args.rows, args.n, args.vocab)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
