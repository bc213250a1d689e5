"""A long chain of pointwise ops (scale, shift, SiLU, clamp, residual mix), repeated: fusion's best case.

What it teaches: eager runs every pointwise op as its own kernel, which reads the whole
activation from memory and writes a new one, so a chain of N such ops moves the tensor 2N times
and does almost no arithmetic per byte. torch.compile (inductor) fuses the whole chain into one
loop: read the input once, keep every intermediate in registers, write the output once. On the
2-core development CPU, quiet, 2 threads, interleaved at batch 64 (64 x 16384 floats, 4 MiB per
activation), five groups: eager 16.2-16.8 ms, torch.compile 6.3 ms, 2.6x faster (95% intervals
between 2.45 and 2.83). The same chain at width 4096 (1 MiB activations, inside the 2 MiB L2 of
a core) gained 1.8x, at 65536 (16 MiB) 4.9x: the further the intermediates spill out of L2, the
more each of eager's 56 passes costs, while the fused loop still makes one.

No matmul anywhere: after fusion what remains is the arithmetic itself (eight sigmoids per
element), which is why the win is so much larger than on the MLP, where matmuls are the step
and fusion only removes the bias/ReLU passes.
"""

import torch
from torch import nn

WIDTH = 16384
REPEATS = 8  # 7 pointwise ops per repeat: a chain of 56 (dynamo captures 56 ops, 1 graph)

SWEEP = {"backend": ["eager", "compile"], "batch_size": [64]}


class PointwiseChain(nn.Module):
    def __init__(self, width: int = WIDTH, repeats: int = REPEATS) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, width))
        self.shift = nn.Parameter(torch.linspace(-0.1, 0.1, width))
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.repeats):
            h = x * self.scale + self.shift  # 2 ops: each reads and writes the whole activation
            h = h * torch.sigmoid(h)  # SiLU: 2 more
            x = 0.5 * x + torch.clamp(h, -3.0, 3.0)  # residual mix keeps values bounded: 3 more
        return x


def build_model() -> nn.Module:
    return PointwiseChain()


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, WIDTH)


def FLOPS(batch_size: int) -> int:
    """About one FLOP per op per element (7 ops per repeat, sigmoid counted as one)."""
    return 7 * REPEATS * batch_size * WIDTH
