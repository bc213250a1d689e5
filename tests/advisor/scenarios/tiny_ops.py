"""Forty tiny elementwise ops on a (batch, 16) tensor and 1 KB of weights: the step is almost all
per-op dispatch, flat in the batch because of a fixed cost (advisor/bound.py: overhead-bound);
a compiler that fuses the chain into one kernel wins clearly."""

import torch
from torch import nn


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        for _ in range(20):
            x = torch.tanh(x) * 0.9 + 0.1
        return x


SWEEP = {"backend": ["eager"], "batch_size": [1, 2], "threads": [1]}


def build_model() -> nn.Module:
    return Chain()


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 16)
