"""Three-layer MLP, 1024 -> 4096 -> 4096 -> 1024: the default scenario.

What it teaches: the same model is launch-bound at a small batch and matmul-bound at a large one.
At batch 8 each layer is a tiny matmul followed by a separate bias-add/ReLU pass, so per-op overhead
dominates: torch.compile fuses bias + ReLU into the matmul epilogue, and CUDA graphs remove the
launches (on an H100: eager 111 us, compile 133 us, compile + CUDA graphs 66 us). At batch 4096 all
variants take about 320 us (~650 TFLOP/s): the matmuls are the step and fusion has nothing to win.

Why these SWEEP sizes: the shape is kept at the reference numbers, but on a 2-core CPU one step at
batch 64 already does 3.2 GFLOP (~50 ms), so the default sweep uses batch 8 (overhead-visible) and
64 (matmul-bound) to finish well under a minute with torch.compile included. On a GPU, sweep
`--set batch_size=8,4096` to reproduce the reference numbers.

What ONNX Runtime wins here, and why (`--set backend=eager,onnxruntime --set batch_size=64`):
on the 2-core dev CPU (Xeon with AVX-512 and AMX, shared with other jobs, so noisy), timed
interleaved with eager at batch 64 and the threads matched (ONNX Runtime intra-op = torch threads,
inter-op 1, no spinning), it was 1.32x faster at 1 thread (46.7 vs 62.1 ms, 72 pairs, pair-ratio
IQR 31%) and 1.89x at 2 threads (pair IQR 77%). The op profile (1 thread) says why: eager
spends 97% of its time in aten::addmm (MKL sgemm) and 1% in the ReLUs, so ONNX Runtime's fusion
(its optimized graph: 2 FusedGemm with the ReLU inside + 1 Gemm, for eager's 3 addmm + 2 relu) can
win at most that 1%; the rest is its own GEMM (MLAS) against MKL's on this CPU.

Train mode regresses onto a random target carried in the batch (MSE), so `mode=train` works.
"""

import torch
import torch.nn.functional as F
from torch import nn

D_IN, D_HIDDEN, D_OUT = 1024, 4096, 1024

SWEEP = {"backend": ["eager", "compile"], "batch_size": [8, 64]}


class MLP(nn.Module):
    def __init__(self, d_in: int = D_IN, d_hidden: int = D_HIDDEN, d_out: int = D_OUT) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_hidden)
        self.fc3 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # each relu(fc(x)) is matmul + bias-add + relu: three passes over the activation in eager
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def build_model() -> nn.Module:
    return MLP()


def make_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, regression target); the target only feeds loss_fn."""
    return torch.randn(batch_size, D_IN), torch.randn(batch_size, D_OUT)


def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return model(batch[0])


def loss_fn(output: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.mse_loss(output, batch[1])


def FLOPS(batch_size: int) -> int:
    """Forward FLOPs: 2 * batch * (sum of the three weight sizes); bias and ReLU are negligible."""
    return 2 * batch_size * (D_IN * D_HIDDEN + D_HIDDEN * D_HIDDEN + D_HIDDEN * D_OUT)
