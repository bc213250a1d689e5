"""Shared fixtures: tiny scenario files written to tmp_path, and fast timing settings."""

from __future__ import annotations

import os

import torch

# Triton runs on a CPU only in its interpreter, and reads TRITON_INTERPRET when a kernel is
# decorated, i.e. when perfbench_kernels modules are first imported. Setting it here, before any
# test module is collected, makes that independent of which test happens to import them first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The run history (perfbench.history) is off for the suite, subprocesses included: tests must not
# write the user's cache. The history tests name their own store.
os.environ["PERFBENCH_HISTORY"] = "off"

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from perfbench.measure.timing import TimingSettings

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


def ok_row(point_id: int, backend: str, median_ms: float, iqr_ms: float) -> dict:
    """A results row of an ok point with default axes, for building run folders by hand."""
    return {
        "point_id": point_id,
        "backend": backend,
        "batch_size": 8,
        "threads": 1,
        "amp": "off",
        "pin_memory": False,
        "num_workers": 0,
        "mode": "infer",
        "device": "cpu",
        "status": "ok",
        "median_ms": median_ms,
        "iqr_ms": iqr_ms,
        "noise": iqr_ms / median_ms,
    }
