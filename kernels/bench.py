"""Time each kernel against its eager reference and torch.compile of that reference, on one GPU.

    python -m perfbench_kernels.bench --out DIR [--small] [--tune]

One run measures the machine's ceilings first (device-to-device copy bandwidth, bf16 matmul), then
for every op: checks each implementation against a float32 reference on the same bf16 inputs
(a failed check is reported and not timed), times it with `triton.testing.do_bench` (median), and
reports achieved GB/s over the op's ideal bytes (each input read once, each output written once)
and that as a % of the measured copy bandwidth; cross-entropy also reports peak memory. Ratios are
only meaningful within one run (docs/design.md rule 8). Writes results.csv (row by row, as measured),
results.md and env.json to DIR and prints the table. Exits 2 without CUDA.

`--tune` adds rows `ours w=K`: our kernel again with K warps per program for K in TUNE_WARPS
(`_launch.warps_override`), each checked and timed like the others, so one run shows what the
untuned default leaves on the table. The matmul (`linear_act`) has its own autotuner and is left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

ROWS, COLS = 16384, 8192  # row-wise ops (docs/design.md reference shape)
CE_ROWS, CE_VOCAB = 8192, 32768  # cross-entropy logits
COPY_BYTES = 1 << 30  # 1 GiB source for the copy ceiling: far beyond L2
MATMUL_N = 8192
BF16 = 2  # bytes per element
LINEAR_M, LINEAR_K, LINEAR_N = 8192, 1024, 4096  # an MLP up-projection: output as big as inputs
TUNE_WARPS = (2, 4, 8, 16, 32)
FIELDS = [
    "op",
    "impl",
    "shape",
    "status",
    "median_ms",
    "gb_per_s",
    "pct_of_copy",
    "tflop_per_s",
    "peak_mib",
]


def ideal_bytes(op: str, rows: int, n: int, itemsize: int = BF16) -> int:
    """Bytes an op must move at least: each input read once, each output written once."""
    mn, vec = rows * n * itemsize, n * itemsize
    table = {
        "bias_gelu": 2 * mn + vec,  # read x, bias; write y
        "softmax": 2 * mn,  # read x; write y
        "layer_norm": 2 * mn + 2 * vec,  # read x, weight, bias; write y
        "rms_norm": 2 * mn + vec,  # read x, weight; write y
        "add_rms_norm": 4 * mn + vec,  # read x, residual, weight; write y, new residual
        "swiglu": 3 * mn,  # read a, b; write c (n = the gate width)
        "cross_entropy": mn + 8 * rows + itemsize,  # read logits, int64 targets; write the loss
        "cross_entropy_fwd_bwd": 2 * mn + 8 * rows,  # read logits, targets; write d logits
    }
    if op not in table:
        raise KeyError(f"no ideal-bytes formula for {op!r}; known: {sorted(table)}")
    return table[op]


def linear_bytes(m: int, k: int, n: int, itemsize: int = BF16) -> int:
    """Ideal bytes of act(x @ W.T + b): read x (m, k), W (n, k), bias (n); write y (m, n)."""
    return (m * k + n * k + n + m * n) * itemsize


def gb_per_s(nbytes: int, ms: float) -> float:
    return nbytes / (ms * 1e-3) / 1e9


@dataclass(frozen=True)
class Case:
    """One op: bf16 inputs, the three implementations, and the bytes it must move."""

    op: str
    shape: str
    make_inputs: Callable[[], tuple]
    ours: Callable
    ref: Callable
    nbytes: int
    grad: bool = False  # time forward + backward (w.r.t. the first input)
    track_memory: bool = False
    flops: int = 0  # reported as TFLOP/s where nonzero (matmul cases)


def _cases(device: torch.device, small: bool) -> list[Case]:
    from perfbench_kernels import (
        bias_act,
        cross_entropy,
        layer_norm,
        linear_act,
        rms_norm,
        softmax,
        swiglu,
    )

    m, n = (ROWS // 8, COLS) if small else (ROWS, COLS)
    cm, cv = (CE_ROWS // 8, CE_VOCAB) if small else (CE_ROWS, CE_VOCAB)
    g = torch.Generator(device=device).manual_seed(0)

    def rnd(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(shape, generator=g, device=device) * scale).to(torch.bfloat16)

    def ce_inputs() -> tuple:
        target = torch.randint(0, cv, (cm,), generator=g, device=device)
        return rnd(cm, cv, scale=4.0), target

    rows = f"{m}x{n}"
    lm, lk, ln = (LINEAR_M // 8 if small else LINEAR_M), LINEAR_K, LINEAR_N
    return [
        Case("bias_gelu", rows, lambda: (rnd(m, n), rnd(n)),
             lambda x, b: bias_act.bias_act(x, b, "gelu"),
             lambda x, b: bias_act.bias_act_ref(x, b, "gelu"), ideal_bytes("bias_gelu", m, n)),
        Case("softmax", rows, lambda: (rnd(m, n, scale=4.0),), softmax.softmax,
             softmax.softmax_ref, ideal_bytes("softmax", m, n)),
        Case("layer_norm", rows, lambda: (rnd(m, n), rnd(n), rnd(n)), layer_norm.layer_norm,
             layer_norm.layer_norm_ref, ideal_bytes("layer_norm", m, n)),
        Case("rms_norm", rows, lambda: (rnd(m, n), rnd(n)), rms_norm.rms_norm,
             rms_norm.rms_norm_ref, ideal_bytes("rms_norm", m, n)),
        Case("add_rms_norm", rows, lambda: (rnd(m, n), rnd(m, n), rnd(n)), rms_norm.add_rms_norm,
             rms_norm.add_rms_norm_ref, ideal_bytes("add_rms_norm", m, n)),
        Case("swiglu", rows, lambda: (rnd(m, n), rnd(m, n)), swiglu.swiglu, swiglu.swiglu_ref,
             ideal_bytes("swiglu", m, n)),
        Case("cross_entropy", f"{cm}x{cv}", ce_inputs, cross_entropy.cross_entropy,
             cross_entropy.cross_entropy_ref, ideal_bytes("cross_entropy", cm, cv),
             track_memory=True),
        Case("cross_entropy_fwd_bwd", f"{cm}x{cv}", ce_inputs, cross_entropy.cross_entropy,
             cross_entropy.cross_entropy_ref, ideal_bytes("cross_entropy_fwd_bwd", cm, cv),
             grad=True, track_memory=True),
        Case("linear_gelu", f"{lm}x{lk}x{ln}",
             lambda: (rnd(lm, lk), rnd(ln, lk, scale=lk**-0.5), rnd(ln)),
             lambda x, w, b: linear_act.linear_act(x, w, b, "gelu"),
             lambda x, w, b: linear_act.linear_act_ref(x, w, b, "gelu"),
             linear_bytes(lm, lk, ln), flops=2 * lm * lk * ln),
    ]  # fmt: skip


def _call(fn: Callable, inputs: tuple, grad: bool) -> tuple:
    """Forward (under no_grad), or forward + backward returning the first input's gradient."""
    if not grad:
        with torch.no_grad():
            out = fn(*inputs)
        return out if isinstance(out, tuple) else (out,)
    x = inputs[0].detach().requires_grad_()
    out = fn(x, *inputs[1:])
    return torch.autograd.grad(out, (x,))


def _check(case: Case, fn: Callable, inputs: tuple, expected: tuple) -> str | None:
    """None when `fn` matches the float32 reference (bf16 tolerance), else the mismatch."""
    got = _call(fn, inputs, case.grad)
    for a, e in zip(got, expected, strict=True):
        if not torch.isfinite(a).all():
            return "non-finite output"
        # bf16 output: one rounding (~2^-8 relative), with atol for values near zero
        # (gradients of a mean loss are ~1/rows: scale atol to them)
        atol = 2e-2 * e.abs().max().item() if case.grad else 2e-2
        try:
            torch.testing.assert_close(a.float(), e.float(), atol=atol, rtol=2e-2)
        except AssertionError as err:
            return str(err).splitlines()[0] + " " + " ".join(str(err).splitlines()[2:4])
    return None


def _measure(
    case: Case, impl: str, fn: Callable, inputs: tuple, expected: tuple, copy_gbs: float
) -> dict:
    from triton.testing import do_bench

    row = {"op": case.op, "impl": impl, "shape": case.shape}
    try:
        problem = _check(case, fn, inputs, expected)
        if problem is not None:
            return {**row, "status": f"failed check: {problem}"}
        if case.track_memory:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            _call(fn, inputs, case.grad)
            torch.cuda.synchronize()
            row["peak_mib"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
        ms = do_bench(lambda: _call(fn, inputs, case.grad), return_mode="median")
    except torch.cuda.OutOfMemoryError:
        return {**row, "status": "CUDA OOM"}
    except Exception as err:  # recorded per measurement, the run goes on
        return {**row, "status": f"error: {type(err).__name__}: {str(err)[:200]}"}
    gbs = gb_per_s(case.nbytes, ms)
    return {
        **row,
        "status": "ok",
        "median_ms": round(ms, 4),
        "gb_per_s": round(gbs, 1),
        "pct_of_copy": round(100 * gbs / copy_gbs, 1),
        **({"tflop_per_s": round(case.flops / (ms * 1e-3) / 1e12, 1)} if case.flops else {}),
    }


def _with_warps(fn: Callable, num_warps: int) -> Callable:
    from perfbench_kernels._launch import warps_override

    def run(*inputs: torch.Tensor):
        with warps_override(num_warps):
            return fn(*inputs)

    return run


def _run_case(case: Case, copy_gbs: float, tune_warps: tuple[int, ...] = ()) -> Iterator[dict]:
    """Ours, eager and compiled on the same inputs, each checked against one float32 result;
    then ours at each of `tune_warps` (not for the autotuned matmul)."""
    torch._dynamo.reset()  # each op compiles afresh, no recompile-limit carry-over
    impls = {"ours": case.ours, "eager": case.ref, "compile": torch.compile(case.ref)}
    if not case.flops:
        impls |= {f"ours w={w}": _with_warps(case.ours, w) for w in tune_warps}
    try:
        inputs = case.make_inputs()
        upcast = tuple(t.float() if t.is_floating_point() else t for t in inputs)
        expected = _call(case.ref, upcast, case.grad)
        del upcast
    except Exception as err:
        for impl in impls:
            yield {
                "op": case.op,
                "impl": impl,
                "shape": case.shape,
                "status": f"setup error: {err}",
            }
        return
    for impl, fn in impls.items():
        yield _measure(case, impl, fn, inputs, expected, copy_gbs)
    del inputs, expected
    torch.cuda.empty_cache()


def ceilings() -> dict:
    """Measured copy bandwidth (bytes read + written) and bf16 matmul throughput."""
    from triton.testing import do_bench

    src = torch.empty(COPY_BYTES // BF16, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = do_bench(lambda: dst.copy_(src), return_mode="median")
    a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    mm_ms = do_bench(lambda: a @ b, return_mode="median")
    return {
        "copy_gb_per_s": round(gb_per_s(2 * COPY_BYTES, copy_ms), 1),
        "matmul_tflop_per_s": round(2 * MATMUL_N**3 / (mm_ms * 1e-3) / 1e12, 1),
    }


def markdown(rows: list[dict], ceil: dict, device: str) -> str:
    lines = [
        f"Device: {device}. Copy ceiling {ceil['copy_gb_per_s']} GB/s (read + write), "
        f"bf16 {MATMUL_N}^3 matmul {ceil['matmul_tflop_per_s']} TFLOP/s.",
        "",
        "| " + " | ".join(FIELDS) + " |",
        "| " + " | ".join("---" for _ in FIELDS) + " |",
    ]
    cell = lambda r, f: str(r.get(f, "")).replace("|", "/").replace("\n", " ")  # noqa: E731
    lines += ["| " + " | ".join(cell(r, f) for f in FIELDS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perfbench_kernels.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for results.csv/.md")
    parser.add_argument("--small", action="store_true", help="1/8 of the rows: a quick smoke run")
    parser.add_argument(
        "--tune", action="store_true", help=f"also time ours with num_warps in {TUNE_WARPS}"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "perfbench_kernels.bench needs a CUDA GPU: torch.cuda.is_available() is False on this "
            "machine. The interpreter (TRITON_INTERPRET=1) checks correctness only; its timings "
            "mean nothing. Run this on a GPU machine.",
            file=sys.stderr,
        )
        return 2
    import triton

    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name()
    env = {
        "device": device,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "command": " ".join([sys.executable, "-m", "perfbench_kernels.bench", *sys.argv[1:]]),
    }
    ceil = ceilings()
    (args.out / "env.json").write_text(json.dumps({**env, **ceil}, indent=2) + "\n")
    rows: list[dict] = []
    with (args.out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for case in _cases(torch.device("cuda"), args.small):
            for row in _run_case(case, ceil["copy_gb_per_s"], TUNE_WARPS if args.tune else ()):
                rows.append(row)
                writer.writerow(row)
                f.flush()  # a crash loses nothing already measured
    table = markdown(rows, ceil, device)
    (args.out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
