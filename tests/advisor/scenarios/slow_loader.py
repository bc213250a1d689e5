"""A tiny model behind a DataLoader whose items take 2 ms each to produce: the step waits for
data almost all the time, at any backend."""

import time

import torch
from torch import nn

SWEEP = {"backend": ["eager"], "batch_size": [8], "num_workers": [0]}


class SlowDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(0.002)  # stands in for decoding and augmenting one sample
        return torch.full((32,), float(index))


def build_model() -> nn.Module:
    return nn.Linear(32, 4)


def make_batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 32)


def make_dataset() -> torch.utils.data.Dataset:
    return SlowDataset()
