"""Compile every kernel specialisation for sm_90 (H100) without a GPU; exit 1 on the first error.

The interpreter accepts code the GPU compiler rejects (Python ints where tensors are needed, loop-
carried type changes), so the interpreter tests alone do not prove the kernels build. Triton's
wheel ships ptxas, so the full source -> cubin pipeline runs on a CPU-only machine.
Run with TRITON_INTERPRET unset (the JIT functions must not be interpreter wrappers).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import warnings

import triton
from perfbench_kernels import (
    bias_act,
    cross_entropy,
    layer_norm,
    linear_act,
    rms_norm,
    softmax,
    swiglu,
)
from perfbench_kernels._launch import num_warps_bwd, num_warps_for
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

TARGET = GPUTarget("cuda", 90, 32)
P, F, I64 = "*bf16", "*fp32", "*i64"
ROW = {"stride_row": "i32", "N": "i32"}
BWD = {**ROW, "n_rows": "i32", "rows_per_program": "i32"}


def build(fn, signature: dict[str, str], constexprs: dict, launch: int | tuple[int, int]) -> bytes:
    """Compile one specialisation to a cubin; `launch` is num_warps or (num_warps, num_stages)."""
    warps, stages = launch if isinstance(launch, tuple) else (launch, 3)
    sig = {**signature, **dict.fromkeys(constexprs, "constexpr")}
    src = ASTSource(fn=fn, signature=sig, constexprs=constexprs)
    compiled = triton.compile(
        src, target=TARGET, options={"num_warps": warps, "num_stages": stages}
    )
    return compiled.asm["cubin"]


def resources(cubin: bytes) -> tuple[int, int] | None:
    """(registers, stack bytes) per thread from `cuobjdump -res-usage`, None if unavailable."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(tool):
        return None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", out)
    return (int(found[1]), int(found[2])) if found else None


def cases():
    for single, block in ((True, 8192), (False, 1024)):
        # the launchers' own warp counts for this block
        warps, bwd_warps = num_warps_for(block), num_warps_bwd(block)
        c = {"BLOCK_N": block, "SINGLE_BLOCK": single}
        for ptr in (P, F):
            yield softmax._softmax_fwd_kernel, {"x_ptr": ptr, "y_ptr": ptr, **ROW}, c, warps
        ln = {"x_ptr": P, "w_ptr": P, "b_ptr": P, "y_ptr": P, "mean_ptr": F, "rstd_ptr": F}
        yield layer_norm._layer_norm_fwd_kernel, {**ln, **ROW, "eps": "fp32"}, c, warps
        ln_bwd = {"x_ptr": P, "w_ptr": P, "dy_ptr": P, "dx_ptr": P, "mean_ptr": F, "rstd_ptr": F}
        ln_bwd |= {"dw_part_ptr": F, "db_part_ptr": F, **BWD}
        yield layer_norm._layer_norm_bwd_kernel, ln_bwd, c, bwd_warps
        for flag in (True, False):
            rf = {"x_ptr": P, "r_ptr": P, "w_ptr": P, "y_ptr": P, "h_ptr": P, "rstd_ptr": F}
            yield (
                rms_norm._rms_norm_fwd_kernel,
                {**rf, **ROW, "eps": "fp32"},
                {**c, "HAS_RESIDUAL": flag},
                warps,
            )
            rb = {"x_ptr": P, "w_ptr": P, "dy_ptr": P, "dh_ptr": P, "dx_ptr": P, "rstd_ptr": F}
            yield (
                rms_norm._rms_norm_bwd_kernel,
                {**rb, "dw_part_ptr": F, **BWD},
                {**c, "HAS_DH": flag},
                bwd_warps,
            )
    n = {"n_elements": "i32"}
    yield swiglu._swiglu_fwd_kernel, {"a_ptr": P, "b_ptr": P, "c_ptr": P, **n}, {"BLOCK": 1024}, 4
    sw = {"dc_ptr": P, "a_ptr": P, "b_ptr": P, "da_ptr": P, "db_ptr": P, **n}
    yield swiglu._swiglu_bwd_kernel, sw, {"BLOCK": 1024}, 4
    for act in bias_act.ACTIVATIONS:
        sig = {"x_ptr": P, "b_ptr": P, "y_ptr": P, "n_rows": "i32", "N": "i32"}
        yield (
            bias_act._bias_act_fwd_kernel,
            sig,
            {"ACTIVATION": act, "BLOCK_M": 2, "BLOCK_N": 1024},
            4,
        )
    ce = {"logits_ptr": P, "target_ptr": I64, "loss_ptr": F, "lse_ptr": F}
    ce |= {"stride_row": "i32", "V": "i32", "ignore_index": "i32"}
    yield cross_entropy._cross_entropy_fwd_kernel, ce, {"BLOCK_V": 4096}, 8
    ceb = {"logits_ptr": P, "target_ptr": I64, "lse_ptr": F, "g_ptr": F, "g_stride": "i32"}
    ceb |= {"dx_ptr": P, "stride_row": "i32", "V": "i32", "ignore_index": "i32"}
    yield cross_entropy._cross_entropy_bwd_kernel, ceb, {"BLOCK_V": 4096}, 8
    mm = {"M": "i32", "N": "i32", "K": "i32", "stride_xm": "i32", "stride_wn": "i32"}
    mm |= {"stride_ym": "i32"}
    # the largest and the smallest tile of the search space; float32 with the small one only
    configs = linear_act.CONFIGS
    for ptr, precision, cfg in (
        (P, "tf32", configs[0]),
        (P, "tf32", configs[-1]),
        (F, "ieee", configs[-1]),
    ):
        sig = {"x_ptr": ptr, "w_ptr": ptr, "b_ptr": ptr, "y_ptr": ptr, **mm}
        flags = {"HAS_BIAS": True, "ACTIVATION": "gelu", "INPUT_PRECISION": precision}
        flags |= {"UPCAST_TILES": False, **cfg.kwargs}
        yield linear_act._linear_act_kernel, sig, flags, (cfg.num_warps, cfg.num_stages)


def main() -> int:
    """Compile all; print registers and stack (spills) per thread; fail on an error, or on a
    forward kernel that spills (they hold at most one row per program: a spill is a regression)."""
    warnings.filterwarnings("ignore")
    spilled = []
    for fn, sig, constexprs, warps in cases():
        try:
            cubin = build(fn, sig, constexprs, warps)
        except Exception as err:
            print(f"{fn.__name__} {constexprs}: {type(err).__name__}: {err}")
            return 1
        res = resources(cubin)
        print(f"{fn.__name__} {constexprs} warps={warps}: regs, stack bytes = {res}")
        if res is not None and res[1] > 0 and "_fwd_" in fn.__name__:
            spilled.append(f"{fn.__name__} {constexprs}")
    if spilled:
        print("forward kernels spilling registers:", *spilled, sep="\n  ")
        return 1
    print("all kernels compiled for sm_90")
    return 0


if __name__ == "__main__":
    sys.exit(main())
