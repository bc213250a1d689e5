"""Linear layer with the bias + activation fused into the matmul epilogue, forward only.

Why: `bias_act` after a cuBLAS matmul still writes the (M, N) product and reads it back; done in
the matmul's epilogue, the accumulator tile gets bias and activation in registers and is written
once. Worth it where the layer is memory-bound (small K, e.g. M=8192, N=4096, K=1024: the output
is as large as both inputs); at large K the matmul dominates and cuBLAS may win, so measure
before choosing. The kernel is Triton tutorial 03 (grouped tile order for L2 reuse, autotuned
tiles) with our epilogue. Forward only (`HAS_BACKWARD = False`): raises if a gradient is needed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from perfbench_kernels._launch import (
    FLOAT_DTYPES,
    check_device,
    check_no_grad,
    check_vector,
    interpreter_active,
)
from perfbench_kernels.bias_act import ACTIVATIONS, bias_act_ref

HAS_BACKWARD = False

# Tutorial 03's CUDA search space (fp16/bf16); untuned here. Autotuning is keyed on the shape.
CONFIGS = [
    triton.Config(
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8}, num_stages=s, num_warps=w
    )
    for bm, bn, bk, s, w in (
        (128, 256, 64, 3, 8),
        (64, 256, 32, 4, 4),
        (128, 128, 32, 4, 4),
        (128, 64, 32, 4, 4),
        (64, 128, 32, 4, 4),
        (128, 32, 32, 4, 4),
        (64, 32, 32, 5, 2),
        (32, 64, 32, 5, 2),
    )
]
# The interpreter runs one small config: autotuning there would time configs on the CPU.
INTERPRETER_CONFIG = {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_M": 2}


def linear_act_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> torch.Tensor:
    """Eager baseline: `act(F.linear(x, weight) + bias)` (the pattern the fx pass rewrites)."""
    y = torch.nn.functional.linear(x, weight)
    if bias is None:
        bias = torch.zeros(y.shape[-1], device=y.device, dtype=y.dtype)
    return bias_act_ref(y, bias, activation)


@triton.jit
def _linear_act_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_ym,
    HAS_BIAS: tl.constexpr,
    ACTIVATION: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    UPCAST_TILES: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    # grouped order: GROUP_M row-tiles share each column strip of W while it sits in L2
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    group = pid // (GROUP_M * num_n)
    first_m = group * GROUP_M
    group_size = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % (GROUP_M * num_n)) % group_size
    pid_n = (pid % (GROUP_M * num_n)) // group_size

    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # x is (M, K) row-major; W is (N, K) as nn.Linear stores it, read as the (K, N) transpose
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :]
    w_ptrs = w_ptr + offs_n[None, :] * stride_wn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        x = tl.load(x_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
        w = tl.load(w_ptrs, mask=(offs_n[None, :] < N) & (offs_k[:, None] < k_left), other=0.0)
        if UPCAST_TILES:  # interpreter only, see the launcher
            x = x.to(tl.float32)
            w = w.to(tl.float32)
        acc = tl.dot(x, w, acc, input_precision=INPUT_PRECISION)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K

    # epilogue in registers: the (M, N) product is never written before the activation
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    if ACTIVATION == "relu":
        acc = tl.maximum(acc, 0.0)
    elif ACTIVATION == "gelu":
        acc = 0.5 * acc * (1.0 + tl.math.erf(acc * 0.7071067811865476))  # 1/sqrt(2)
    else:
        u = 0.7978845608028654 * (acc + 0.044715 * acc * acc * acc)  # sqrt(2/pi)
        acc = 0.5 * acc * (1.0 + (2.0 * tl.sigmoid(2.0 * u) - 1.0))  # tanh via sigmoid
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :]
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mask)


_linear_act_autotuned = triton.autotune(configs=CONFIGS, key=["M", "N", "K"])(_linear_act_kernel)


def linear_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str,
    *,
    config: dict[str, int] | None = None,
) -> torch.Tensor:
    """`act(x @ weight.T + bias)` for x (..., K), weight (N, K), bias (N,) or None; x's dtype out.

    Activation "relu", "gelu" (exact erf) or "gelu_tanh"; float32 accumulation. Forward only:
    raises RuntimeError if an input requires grad with grad mode on. `config` (BLOCK_M, BLOCK_N,
    BLOCK_K, GROUP_M; dot tiles need sizes >= 16) skips autotuning: for tests and tuning.
    """
    assert activation in ACTIVATIONS, (
        f"linear_act: activation must be one of {ACTIVATIONS}, got {activation!r}"
    )
    assert x.dtype in FLOAT_DTYPES, f"linear_act: x has dtype {x.dtype}; use float32/bf16/fp16"
    assert weight.dtype == x.dtype, (
        f"linear_act: weight has dtype {weight.dtype} but x has {x.dtype}; cast one to the other"
    )
    assert x.dim() >= 1 and weight.dim() == 2 and weight.shape[1] == x.shape[-1], (
        f"linear_act: weight must be (N, K) with K = x.shape[-1] = {x.shape[-1]}, "
        f"got {tuple(weight.shape)}"
    )
    assert x.is_contiguous() and weight.is_contiguous(), (
        "linear_act: x and weight must be contiguous; call .contiguous()"
    )
    n, k = weight.shape
    tensors = [x, weight]
    if bias is not None:
        check_vector("linear_act", "bias", bias, n)
        tensors.append(bias)
    check_device("linear_act", *tensors)
    check_no_grad("linear_act", *tensors)
    x2 = x.view(-1, k)
    m = x2.shape[0]
    y = torch.empty((*x.shape[:-1], n), device=x.device, dtype=x.dtype)
    if m == 0 or n == 0:
        return y
    args = (x2, weight, bias if bias is not None else weight, y, m, n, k, k, k, n)
    # float32 stays IEEE float32 (torch's default for matmul), not TF32
    precision = "ieee" if x.dtype == torch.float32 else "tf32"
    flags = {"HAS_BIAS": bias is not None, "ACTIVATION": activation, "INPUT_PRECISION": precision}
    # triton 3.9's interpreter multiplies bf16 tiles as raw 16-bit integers (garbage out);
    # float32 tiles give the exact products of the bf16 values, as the GPU's bf16 MMA does
    flags["UPCAST_TILES"] = interpreter_active() and x.dtype == torch.bfloat16
    if config is None and interpreter_active():
        config = INTERPRETER_CONFIG
    if config is not None:
        grid = (triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(n, config["BLOCK_N"]),)
        _linear_act_kernel[grid](*args, **flags, **config)
    else:

        def grid(meta: dict) -> tuple[int]:
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

        _linear_act_autotuned[grid](*args, **flags)
    return y
