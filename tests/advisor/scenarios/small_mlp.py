"""A small MLP for the threads sweep and bf16 autocast: 256 -> 1024 -> 256."""

import torch
from torch import nn

SWEEP = {"backend": ["eager"], "batch_size": [64], "threads": [1, 2]}


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 256))


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 256)
