"""`onnxruntime`: threads matched to the point, exporter fallback said out loud, structures kept,
and skipped with the reason where it cannot run. Each export takes 1-2 s on the 2-core CPU."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from perfbench.backends import BACKENDS
from perfbench.backends import onnx_export as onnx_export_module
from perfbench.backends.base import BackendNotApplicable
from perfbench.backends.onnxruntime_backend import session_options
from perfbench.measure.correctness import relative_error
from perfbench.measure.workload import build_workload, skip_reason
from perfbench.results.axes import Amp, Device, MemoryFormat, Mode, Point
from perfbench.scenario.loading import default_forward, load_scenario
from tests.backends.export_models import (
    DATA_DEPENDENT_LINE,
    DICT_BATCH_TUPLE_OUTPUT,
    DataDependent,
    check_structure,
)

pytest.importorskip("onnxruntime")  # the [onnx] extra; CI installs it through [dev]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = ["mlp", "transformer", "convnet", "llm_block", "input_bound"]
BACKEND = BACKENDS["onnxruntime"]
PLAIN = SimpleNamespace(forward=default_forward)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_session_options_follow_the_point(threads: int) -> None:
    import onnxruntime as ort

    options = session_options(threads)
    assert options.intra_op_num_threads == threads
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_prepared_session_runs_with_the_points_threads() -> None:
    """What the session really got, read back from ONNX Runtime, not from our own options."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).eval()
    x = torch.randn(3, 8)
    prepared = BACKEND.prepare(model, Point(backend="onnxruntime", threads=2), x, PLAIN)
    got = prepared.model.session.get_session_options()
    assert got.intra_op_num_threads == 2 and got.inter_op_num_threads == 1
    assert got.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert got.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    info = prepared.info
    assert info["ort_provider"] == "CPUExecutionProvider"
    assert info["onnx_exporter"].startswith("torch.export-based")
    assert info["onnx_opset"] >= 18 and info["onnx_graph_nodes"] >= 2
    assert prepared.changes == 1
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-6


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_match_eager(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.py")
    point = Point(backend="onnxruntime", batch_size=2, threads=1)
    assert skip_reason(point, scenario) is None
    workload = build_workload(scenario, point)
    assert workload.check.rel_err <= workload.check.tolerance  # build_workload checked it too
    assert workload.info["onnx_exporter"].startswith("torch.export-based")
    assert torch.isfinite(workload.step()).all()
    workload.close()


def test_dict_batch_and_tuple_output(write_scenario) -> None:
    scenario = load_scenario(write_scenario(DICT_BATCH_TUPLE_OUTPUT))
    workload = build_workload(scenario, Point(backend="onnxruntime", batch_size=5))
    assert workload.check.rel_err < 1e-5
    check_structure(workload.step(), 5)
    assert workload.prepared.model.input_names == ["input_0", "input_1"]


def test_data_dependent_model_is_skipped_with_both_exporters_messages() -> None:
    with pytest.raises(BackendNotApplicable) as caught:
        BACKEND.prepare(DataDependent().eval(), Point(), torch.randn(3, 4), PLAIN)
    message = str(caught.value)
    assert message.startswith("ONNX export failed. torch.export-based exporter: ")
    assert "GuardOnDataDependentSymNode" in message and DATA_DEPENDENT_LINE in message
    assert "TorchScript exporter: RuntimeError: the trace depends on the data" in message
    assert "\x1b[" not in message  # the exporter's colours are stripped


def test_torchscript_fallback_runs_only_when_the_first_fails(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("unsupported op: aten::made_up")

    monkeypatch.setattr(onnx_export_module, "_export_dynamo", fail)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU()).eval()
    x = torch.randn(2, 4)
    prepared = BACKEND.prepare(model, Point(), x, PLAIN)
    assert prepared.info["onnx_exporter"].startswith("TorchScript")
    assert prepared.info["onnx_exporter_why"] == (
        "dynamo=True failed: RuntimeError: unsupported op: aten::made_up"
    )
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-5


def test_missing_package_is_skipped_with_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    reason = BACKEND.applies(Point(backend="onnxruntime"), PLAIN)
    assert reason == "needs onnxruntime (the onnx extra): pip install -e '.[onnx]'"


@pytest.mark.parametrize(
    ("axes", "words"),
    [
        ({"mode": Mode.TRAIN}, "needs mode=infer"),
        ({"amp": Amp.BF16}, "needs amp=off"),
        ({"memory_format": MemoryFormat.CHANNELS_LAST}, "needs memory_format=contiguous"),
    ],
)
def test_points_it_cannot_run_are_skipped_with_a_reason(axes: dict, words: str) -> None:
    reason = BACKEND.applies(Point(backend="onnxruntime", **axes), PLAIN)
    assert reason is not None and words in reason


def test_cuda_needs_the_gpu_build(monkeypatch) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    reason = BACKEND.applies(Point(backend="onnxruntime", device=Device.CUDA), PLAIN)
    assert reason is not None and "onnxruntime-gpu" in reason
