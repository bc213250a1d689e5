"""`compile-freezing`: inductor freezing per compile, with evidence that it froze, and no leak."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from perfbench.backends import BACKENDS
from perfbench.measure.correctness import relative_error
from perfbench.measure.workload import build_workload, skip_reason
from perfbench.results.axes import Mode, Point, Shapes
from perfbench.scenario.loading import default_forward, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = ["mlp", "transformer", "convnet", "llm_block", "input_bound"]
BACKEND = BACKENDS["compile-freezing"]
PLAIN = SimpleNamespace(forward=default_forward)


def conv_bn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten())
    model.append(nn.Linear(8 * 6 * 6, 4))
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so folding matters
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize(
    "shapes", [Shapes.STATIC, pytest.param(Shapes.DYNAMIC, marks=pytest.mark.slow)]
)
def test_freezes_the_weights_and_leaves_no_global_behind(shapes: Shapes) -> None:
    config = torch._inductor.config
    before = (config.freezing, config.post_grad_custom_post_pass)
    model, x = conv_bn(), torch.randn(2, 3, 8, 8)
    point = Point(backend="compile-freezing", shapes=shapes)
    prepared = BACKEND.prepare(model, point, x, PLAIN)
    assert (config.freezing, config.post_grad_custom_post_pass) == before
    info = prepared.info
    assert info["freezing"] is True and info["dynamic_shapes"] is (shapes is Shapes.DYNAMIC)
    assert info["compiled_graphs"] == prepared.changes == 1
    assert info["frozen_constants"] >= 4  # conv weight and bias, linear weight and bias
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-5
    torch._dynamo.reset()


def test_a_plain_compile_after_it_is_not_frozen() -> None:
    """The patch ended with prepare: the next compile in the same process freezes nothing."""
    model, x = conv_bn(), torch.randn(2, 3, 8, 8)
    BACKEND.prepare(model, Point(backend="compile-freezing"), x, PLAIN)
    torch._dynamo.reset()
    seen = []

    def count_frozen(graph: torch.fx.Graph) -> None:
        seen.append(sum(str(n.target).startswith("_frozen_param") for n in graph.nodes))

    compiled = torch.compile(model)
    with torch.no_grad(), torch._inductor.config.patch(post_grad_custom_post_pass=count_frozen):
        compiled(x)
    assert seen == [0]
    torch._dynamo.reset()


def test_inference_only() -> None:
    reason = BACKEND.applies(Point(backend="compile-freezing", mode=Mode.TRAIN), PLAIN)
    assert reason is not None and "needs mode=infer" in reason


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_match_eager(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.py")
    point = Point(backend="compile-freezing", batch_size=2, threads=1)
    assert skip_reason(point, scenario) is None
    workload = build_workload(scenario, point)
    assert workload.check.rel_err <= workload.check.tolerance
    assert workload.info["frozen_constants"] > 0
    assert torch.isfinite(workload.step()).all()
    workload.close()
    torch._dynamo.reset()
