"""`aoti`: torch.export + AOTInductor. Compiling a package takes 8-25 s per model on the 2-core
CPU, so every test that compiles one is marked slow; refusals are found before any compile."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from perfbench.backends import BACKENDS
from perfbench.backends.base import BackendNotApplicable
from perfbench.measure.workload import build_workload, skip_reason
from perfbench.plan.sweep import resolve_sweep
from perfbench.results.axes import Amp, Mode, Point, Shapes
from perfbench.scenario.loading import default_forward, load_scenario
from tests.backends.export_models import (
    DATA_DEPENDENT_LINE,
    DICT_BATCH_TUPLE_OUTPUT,
    DataDependent,
    check_structure,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = ["mlp", "transformer", "convnet", "llm_block", "input_bound"]
BACKEND = BACKENDS["aoti"]
PLAIN = SimpleNamespace(forward=default_forward)


def test_data_dependent_model_is_skipped_with_the_exporters_message() -> None:
    with pytest.raises(BackendNotApplicable) as caught:
        BACKEND.prepare(DataDependent().eval(), Point(backend="aoti"), torch.randn(3, 4), PLAIN)
    message = str(caught.value)
    assert message.startswith("torch.export failed: GuardOnDataDependentSymNode: ")
    assert "test_aoti.py" not in message  # the user's line is the model's, in export_models.py
    assert "export_models.py" in message and DATA_DEPENDENT_LINE in message


@pytest.mark.parametrize(
    ("axes", "words"),
    [({"mode": Mode.TRAIN}, "needs mode=infer"), ({"amp": Amp.BF16}, "needs amp=off")],
)
def test_points_it_cannot_run_are_skipped_with_a_reason(axes: dict, words: str) -> None:
    reason = BACKEND.applies(Point(backend="aoti", **axes), PLAIN)
    assert reason is not None and words in reason


def test_dynamic_shapes_and_default_sweeps_leave_it_out() -> None:
    scenario = load_scenario(SCENARIOS / "mlp.py")
    reason = skip_reason(Point(backend="aoti", shapes=Shapes.DYNAMIC), scenario)
    assert reason is not None and "shapes=dynamic" in reason
    for name in SHIPPED:
        sweep = load_scenario(SCENARIOS / f"{name}.py").sweep
        assert "aoti" not in resolve_sweep([("SWEEP", sweep)], tuple(BACKENDS))["backend"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_match_eager(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.py")
    point = Point(backend="aoti", batch_size=2, threads=1)
    assert skip_reason(point, scenario) is None
    workload = build_workload(scenario, point)
    assert workload.check.rel_err <= workload.check.tolerance
    assert workload.info["aoti_package_bytes"] > 0
    assert torch.isfinite(workload.step()).all()
    workload.close()


@pytest.mark.slow
def test_dict_batch_and_tuple_output(write_scenario) -> None:
    scenario = load_scenario(write_scenario(DICT_BATCH_TUPLE_OUTPUT))
    workload = build_workload(scenario, Point(backend="aoti", batch_size=5))
    assert workload.check.rel_err < 1e-5
    check_structure(workload.step(), 5)
