"""Arms of a group run on eager's own weight tensors where their backend leaves weights alone."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from perfbench.measure.group_sharing import shared_weights
from perfbench.measure.workload import build_workload
from perfbench.results.axes import Mode, Point
from perfbench.scenario.loading import load_scenario

TINY = """
import torch
def build_model():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
def make_batch(batch_size):
    return torch.randn(batch_size, 8)
def loss_fn(out, batch):
    return out.pow(2).mean()
"""


def _arm(backend: str, model: torch.nn.Module, control: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        task=SimpleNamespace(point=Point(backend=backend)),
        workload=SimpleNamespace(model=model),
        control=control,
    )


def _ptrs(model: torch.nn.Module) -> list[int]:
    return [p.data_ptr() for p in model.parameters()]


def test_control_and_compile_share_eager_weights_in_inference(write_scenario) -> None:
    scenario = load_scenario(write_scenario(TINY))
    eager = build_workload(scenario, Point(backend="eager", batch_size=2, threads=1))
    arms = [_arm("eager", eager.model)]
    for backend in ("eager", "compile"):
        assert shared_weights(Point(backend=backend), arms) is eager.model
    twin = build_workload(scenario, Point(backend="eager", batch_size=2, threads=1), 0, eager.model)
    assert _ptrs(twin.model) == _ptrs(eager.model)  # the same storage, not an equal copy
    alone = build_workload(scenario, Point(backend="eager", batch_size=2, threads=1))
    assert set(_ptrs(alone.model)).isdisjoint(_ptrs(eager.model))


def test_no_sharing_in_train_mode_or_for_backends_that_rewrite_weights() -> None:
    arms = [_arm("eager", torch.nn.Linear(2, 2))]
    assert shared_weights(Point(backend="eager", mode=Mode.TRAIN), arms) is None
    assert shared_weights(Point(backend="int8"), arms) is None
    assert shared_weights(Point(backend="fx"), arms) is None
    assert shared_weights(Point(backend="compile"), []) is None  # no eager arm yet
