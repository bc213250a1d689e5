"""A microsecond-scale step for `scripts/process_audit.py`: a 64 -> 128 -> 64 MLP at batch 2.

Why it exists: at steps of ~10-20 µs the interval of one process does not cover what a rerun in
another process gives (issue 22); the default scenarios all step in milliseconds on a CPU.
Not a user scenario (it teaches nothing about fusion), so it lives beside the audit.
"""

import torch
import torch.nn.functional as F
from torch import nn

D = 64
SWEEP = {"backend": ["eager", "compile", "fx"], "batch_size": [2], "threads": [1]}


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(D, 2 * D)
        self.fc2 = nn.Linear(2 * D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


def build_model() -> nn.Module:
    return Tiny()


def make_batch(batch_size: int) -> tuple[torch.Tensor]:
    return (torch.randn(batch_size, D),)


def forward(model: nn.Module, batch: tuple[torch.Tensor]) -> torch.Tensor:
    return model(batch[0])
