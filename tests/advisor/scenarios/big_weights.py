"""An MLP whose weights (2 x 4096 x 4096 float32: 134 MB) exceed the last-level cache: at batch 1
and 2 each step reads every weight from memory, so the step is flat in the batch because it is
memory-bound, not because of a fixed dispatch cost (advisor/bound.py must say memory-bound)."""

import torch
from torch import nn

WIDTH = 4096
SWEEP = {"backend": ["eager"], "batch_size": [1, 2], "threads": [1]}


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH))


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, WIDTH)
