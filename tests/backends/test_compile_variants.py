"""compile variants: which points they apply to, and graph-break counting (one real compile)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from perfbench.backends import BACKENDS
from perfbench.backends.graph_breaks import count_graph_breaks
from perfbench.measure.correctness import relative_error
from perfbench.results.axes import Device, Mode, Point
from perfbench.scenario.loading import default_forward

SCENARIO = SimpleNamespace(forward=default_forward)
VARIANTS = ("compile", "compile-reduce-overhead", "compile-max-autotune")


class Breaks(nn.Module):
    """A data-dependent branch on `.item()`: dynamo must break the graph there."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.fc(x))
        if y.sum().item() > 0:
            y = y * 2
        return y.relu()


def test_applies_on_cpu() -> None:
    cpu = Point(device=Device.CPU)
    assert BACKENDS["compile"].applies(cpu, SCENARIO) is None
    assert BACKENDS["compile-max-autotune"].applies(cpu, SCENARIO) is None
    reason = BACKENDS["compile-reduce-overhead"].applies(cpu, SCENARIO)
    assert reason == "reduce-overhead uses CUDA graphs: needs device=cuda"
    assert BACKENDS["compile-reduce-overhead"].applies(Point(device=Device.CUDA), SCENARIO) is None
    assert not any(BACKENDS[n].correctness_only(cpu) for n in VARIANTS)


def test_graph_breaks_counted_with_reason_and_buffers_restored() -> None:
    model = Breaks().train()
    before = model.bn.running_mean.clone()
    found = count_graph_breaks(model, torch.randn(3, 4), SCENARIO, no_grad=False)
    assert found["graph_breaks"] >= 1
    assert any("item" in r for r in found["graph_break_reasons"])
    assert any("test_compile_variants.py" in r for r in found["graph_break_reasons"])
    assert torch.equal(model.bn.running_mean, before)  # explain really ran the forward


def test_no_graph_break_in_plain_mlp() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    found = count_graph_breaks(model, torch.randn(2, 4), SCENARIO)
    assert found["graph_breaks"] == 0 and found["graph_break_reasons"] == []
    assert found["graphs"] == 1


def test_compile_backend_records_breaks_and_matches_eager() -> None:
    """The one real torch.compile of this folder: a tiny model, two graphs."""
    torch.manual_seed(0)
    model = Breaks().eval()
    x = torch.randn(3, 4)
    prepared = BACKENDS["compile"].prepare(model, Point(mode=Mode.INFER), x, SCENARIO)
    assert prepared.info["compile_mode"] == "default"
    assert prepared.info["graph_breaks"] >= 1
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-5
    torch._dynamo.reset()


def test_registry_lists_every_backend() -> None:
    names = ("eager", "compile", "compile-reduce-overhead", "compile-max-autotune", "fx")
    new = ("compile-freezing", "onnxruntime", "aoti")
    assert tuple(BACKENDS) == (*names, "triton", "int8", "int8-ao", *new)
