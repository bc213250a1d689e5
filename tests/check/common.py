"""A healthy tiny scenario that each test edits to break exactly one rung."""

from __future__ import annotations

from perfbench.check.context import Ctx

# A healthy 4-class classifier; each failing variant in the tests edits one line of it.
HEALTHY = """
import random
import time
import torch
import torch.nn.functional as F
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 64)
        self.fc2 = nn.Linear(64, 4)
        self.drop = nn.Dropout(0.1)
        # EXTRA_INIT

    def forward(self, x):
        out = self.fc2(self.drop(F.relu(self.fc1(x))))
        # EXTRA_FORWARD
        return out

def build_model():
    return Net()

def make_batch(batch_size):
    return torch.randn(batch_size, 8), torch.randint(0, 4, (batch_size,))

def forward(model, batch):
    return model(batch[0])

def loss_fn(out, batch):
    return F.cross_entropy(out, batch[1])
"""


def ctx_for(scenario: object, **kw: object) -> Ctx:
    return Ctx(scenario=scenario, **kw)  # type: ignore[arg-type]
