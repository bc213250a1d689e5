"""Custom Triton kernels, one module per op, each with a plain-PyTorch `<op>_ref` eager baseline.

| module | public API | backward |
| --- | --- | --- |
| `bias_act` | `bias_act(x, bias, activation)` ("relu", "gelu", "gelu_tanh") | no |
| `softmax` | `softmax(x)` over the last dim | no |
| `layer_norm` | `layer_norm(x, weight, bias, eps=1e-5)` | x, weight, bias |
| `rms_norm` | `rms_norm(x, weight, eps=1e-6)`, `add_rms_norm(x, residual, weight, eps=1e-6)` | all inputs |
| `swiglu` | `swiglu(a, b)` = silu(a) * b | a, b |
| `cross_entropy` | `cross_entropy(logits, target, reduction="mean", ignore_index=-100)` | logits |
| `linear_act` | `linear_act(x, weight, bias, activation)`: matmul with the bias_act epilogue | no |

Each module has `HAS_BACKWARD`. Inputs are (..., N), float32/bfloat16/float16, contiguous, on CUDA
(or on the CPU with TRITON_INTERPRET=1 set before these modules are imported); outputs keep the
input dtype, math is float32. `python -m perfbench_kernels.bench --out DIR` times them on a GPU.
`python -m perfbench_kernels.traffic` counts the bytes they move, on the CPU interpreter.
Import the submodule you need: nothing here imports triton.
"""
