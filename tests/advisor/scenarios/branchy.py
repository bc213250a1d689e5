"""A data-dependent branch: the forward asks the data which way to go, so dynamo must leave the
graph at the `if` (a graph break) and resume in a second graph."""

import torch
from torch import nn

SWEEP = {"backend": ["eager", "compile"], "batch_size": [8]}


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(32, 32)
        self.b = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if h.sum() > 0:  # a Python bool from a tensor: data-dependent control flow
            h = torch.relu(h)
        return self.b(h)


def build_model() -> nn.Module:
    return Branchy()


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 32)
