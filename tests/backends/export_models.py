"""Models and scenario sources shared by the exporting backends' tests (onnxruntime, aoti)."""

from __future__ import annotations

import torch
from torch import nn

# A dict batch whose keys are not in the forward's signature order, and a tuple output holding a
# dict: the exported graph must take and give back the same structure.
DICT_BATCH_TUPLE_OUTPUT = """
import torch
from torch import nn

class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.cls = nn.Linear(16, 3)
        self.reg = nn.Linear(16, 1)

    def forward(self, x, mask):
        h = torch.relu(self.body(x)) * mask
        return self.cls(h), {"score": self.reg(h).squeeze(-1)}

def build_model():
    return TwoHeads()

def make_batch(batch_size):
    return {"mask": (torch.rand(batch_size, 16) > 0.3).float(), "x": torch.randn(batch_size, 8)}
"""


class DataDependent(nn.Module):
    """Control flow on a tensor's value: torch.export refuses it, a trace would bake one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.sum() > 0:
            return y * 2
        return y - 1


DATA_DEPENDENT_LINE = "if y.sum() > 0:"


def check_structure(out: object, batch_size: int) -> None:
    """The TwoHeads output structure: (logits, {"score": scores})."""
    assert isinstance(out, tuple) and len(out) == 2
    logits, rest = out
    assert isinstance(logits, torch.Tensor) and logits.shape == (batch_size, 3)
    assert isinstance(rest, dict) and list(rest) == ["score"]
    assert rest["score"].shape == (batch_size,)
