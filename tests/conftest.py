"""Shared fixtures: tiny scenario files written to tmp_path, and fast timing settings."""

from __future__ import annotations

import os

import torch

# Triton runs on a CPU only in its interpreter, and reads TRITON_INTERPRET when a kernel is
# decorated, i.e. when perfbench_kernels modules are first imported. Setting it here, before any
# test module is collected, makes that independent of which test happens to import them first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from perfbench.timing import TimingSettings

TINY_MLP = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

def make_batch(batch_size):
    return torch.randn(batch_size, 16)

def loss_fn(output, batch):
    return output.pow(2).mean()
"""


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a scenario file from (dedented) source; returns its path."""

    def write(source: str, name: str = "scenario.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def fast_timing() -> TimingSettings:
    return TimingSettings(budget_s=0.05, warmup_s=0.01, min_warmup=1, min_reps=3, max_reps=50)
