"""An LSTM tagger that torch.compile cannot capture: dynamo does not trace nn.LSTM (it breaks the
graph at the call, `torch._dynamo.config.allow_rnn` is off), so only the layers around it compile."""

import torch
from torch import nn

SWEEP = {"backend": ["eager", "compile"], "batch_size": [8]}


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 32)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        out, _ = self.lstm(h)  # dynamo: "Attempted to wrap RNN, GRU, or LSTM"
        return self.head(out)


def build_model() -> nn.Module:
    return Tagger()


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 12, 16)
