"""The shipped scenarios load, build a float32 CPU model, run forward (and backward where they
train), and their datasets collate into batches the forward accepts. Kept fast: batch size 2."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from perfbench.scenario.loading import Scenario, load_scenario, probe_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
NAMES = ["mlp", "transformer", "convnet", "llm_block", "input_bound", "pointwise_chain"]


@pytest.fixture(scope="module", params=NAMES)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    loaded = load_scenario(SCENARIOS / f"{request.param}.py")
    probe_scenario(loaded)
    return loaded


def test_every_shipped_scenario_is_listed() -> None:
    assert sorted(p.stem for p in SCENARIOS.glob("*.py")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_no_work_at_import_time(name: str) -> None:
    """Module level holds only imports, definitions and constants: no calls into torch."""
    tree = ast.parse((SCENARIOS / f"{name}.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
            names = {ast.unparse(c.func) for c in calls}
            assert names <= {"ModelArgs"}, f"{name}: module-level call(s) {names}"
        else:
            assert isinstance(
                node,
                (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Expr),
            ), f"{name}: unexpected top-level {type(node).__name__}"


def test_docstring_says_what_it_teaches(scenario: Scenario) -> None:
    assert "teaches" in scenario.doc


def test_sweep_is_small(scenario: Scenario) -> None:
    points = math.prod(len(v) for v in scenario.sweep.values())
    assert scenario.sweep and points <= 8


def test_model_is_float32_on_cpu(scenario: Scenario) -> None:
    torch.manual_seed(0)
    model = scenario.build_model()
    assert isinstance(model, torch.nn.Module)
    tensors = list(model.parameters()) + list(model.buffers())
    assert all(t.device.type == "cpu" for t in tensors)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_forward_and_backward(scenario: Scenario) -> None:
    torch.manual_seed(0)
    model = scenario.build_model()
    batch = scenario.make_batch(2)
    model.eval()
    with torch.no_grad():
        out = scenario.forward(model, batch)
    assert isinstance(out, torch.Tensor) and out.shape[0] == 2
    assert torch.isfinite(out).all()
    if scenario.loss_fn is None:
        return
    model.train()
    loss = scenario.loss_fn(scenario.forward(model, batch), batch)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    loss.backward()
    assert any(p.grad is not None and p.grad.any() for p in model.parameters())


def test_dataset_items_collate_to_a_batch(scenario: Scenario) -> None:
    if scenario.make_dataset is None:
        pytest.skip("no make_dataset")
    dataset = scenario.make_dataset()
    assert isinstance(dataset, torch.utils.data.Dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    batch = next(iter(loader))
    made = scenario.make_batch(2)
    assert [(t.shape, t.dtype) for t in batch] == [(t.shape, t.dtype) for t in made]
    model = scenario.build_model().eval()
    with torch.no_grad():
        assert torch.isfinite(scenario.forward(model, batch)).all()


def test_flops_is_positive_and_linear_in_batch(scenario: Scenario) -> None:
    if scenario.flops is None:
        pytest.skip("no FLOPS")
    assert scenario.flops(2) == 2 * scenario.flops(1) > 0
