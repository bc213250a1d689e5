"""Diagnoses name the model, not a backend: a forward that scales its input in place, and one that
adds noise in eval mode, are caught by eager against itself, with the tensor and the size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from perfbench.measure.diagnose import diagnose, input_mutation, nondeterminism, tensor_paths
from perfbench.scenario.loading import Scenario, default_forward, default_optimizer


def scenario(forward: Any = default_forward, tolerance: float | None = None) -> Scenario:
    return Scenario(
        path=Path("test_scenario.py"),
        name="test",
        build_model=lambda: nn.Linear(8, 4),
        make_batch=lambda n: torch.randn(n, 8),
        forward=forward,
        loss_fn=None,
        build_optimizer=default_optimizer,
        make_dataset=None,
        sweep={},
        tolerance=tolerance,
        flops=None,
        doc="",
    )


class ScalesInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2.0)  # the bug: the caller's batch doubles every call
        return self.fc(x)


class NoisyInEval(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y + torch.randn_like(y)  # noise that ignores self.training


class MasksInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask[0] = 0.0  # only one element of one tensor changes
        return self.fc(x * mask)


def test_in_place_input_change_is_named_with_its_size() -> None:
    torch.manual_seed(0)
    batch = torch.randn(4, 8)
    kept = batch.clone()
    found = diagnose(scenario(), ScalesInput(), batch)
    assert len(found) == 1  # deterministic on a fresh copy: only the mutation is reported
    msg = found[0]
    assert msg.startswith("forward changes its input in place: batch changed by relative error 1")
    assert "32 of 32 elements" in msg
    assert torch.equal(batch, kept)  # the caller's batch is never touched


def test_path_in_a_dict_batch_is_named() -> None:
    torch.manual_seed(0)
    batch = {"x": torch.randn(2, 8), "mask": torch.ones(2, 8)}
    msg = input_mutation(scenario(), MasksInPlace(), batch)
    assert msg is not None
    assert "batch['mask'] changed" in msg and "8 of 16 elements" in msg
    assert "batch['x']" not in msg


def test_noise_in_eval_mode_is_called_non_determinism() -> None:
    torch.manual_seed(0)
    model = NoisyInEval().train()
    found = diagnose(scenario(), model, torch.randn(4, 8))
    assert len(found) == 1
    assert found[0].startswith(
        "the model is not deterministic in eval mode: two eager forwards on the same batch "
        "differ by relative error"
    )
    assert "tolerance 0.0001" in found[0]
    assert model.training  # the model's mode is restored


def test_a_clean_model_passes_both() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 4))
    assert diagnose(scenario(), model, torch.randn(4, 8)) == []  # dropout is off in eval mode


def test_tolerance_decides_non_determinism() -> None:
    """Noise of relative size ~1e-3 passes a 1e-2 tolerance and fails 1e-4."""
    torch.manual_seed(0)

    def forward(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        y = model(batch)
        return y + 1e-3 * y.abs().mean() * torch.randn_like(y)

    model = nn.Linear(8, 4)
    batch = torch.randn(64, 8)
    assert nondeterminism(scenario(forward), model, batch, tolerance=1e-2) is None
    assert nondeterminism(scenario(forward), model, batch, tolerance=1e-4) is not None
    assert diagnose(scenario(forward, tolerance=1e-2), model, batch) == []


@pytest.mark.parametrize(
    ("batch", "paths"),
    [
        (torch.zeros(1), ["batch"]),
        ((torch.zeros(1), torch.zeros(1)), ["batch[0]", "batch[1]"]),
        ({"a": [torch.zeros(1), 3]}, ["batch['a'][0]"]),
    ],
)
def test_tensor_paths(batch: Any, paths: list[str]) -> None:
    assert [p for p, _ in tensor_paths(batch)] == paths
