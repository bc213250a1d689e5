"""KernelBench problem files run as scenarios unchanged, with the sweep's batch size in place of
theirs. The problems in tests/kernelbench_problems/ were written for these tests in that format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.measure.workload import build_workload, skip_reason
from perfbench.results.axes import MemoryFormat, Point
from perfbench.scenario.loading import ScenarioError, load_scenario, probe_scenario

PROBLEMS = Path(__file__).resolve().parents[1] / "kernelbench_problems"
GEMM = PROBLEMS / "gemm_gelu_scale.py"
CONV = PROBLEMS / "conv_bias_clamp.py"


def test_problem_becomes_a_scenario_with_its_own_batch_size_as_default() -> None:
    scenario = load_scenario(GEMM)
    probe_scenario(scenario)
    assert scenario.sweep == {"batch_size": [16]}
    assert "KernelBench problem gemm_gelu_scale.py" in scenario.doc
    torch.manual_seed(0)
    model = scenario.build_model()
    assert model.gemm.in_features == 64 and model.scale == 0.5  # Model(*get_init_inputs())


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=64))
def test_the_sweeps_batch_size_replaces_theirs(batch_size: int) -> None:
    scenario = load_scenario(GEMM)
    batch = scenario.make_batch(batch_size)
    assert [t.shape for t in batch] == [torch.Size([batch_size, 64])]
    assert scenario.make_batch(3)[0].shape[0] == 3  # and the next call sees the next size


def test_non_tensor_inputs_are_passed_at_their_position() -> None:
    scenario = load_scenario(CONV)
    batch = scenario.make_batch(4)
    assert len(batch) == 1 and batch[0].shape == (4, 3, 12, 12)  # the batch holds tensors only
    torch.manual_seed(0)
    model = scenario.build_model().eval()
    with torch.no_grad():
        out = scenario.forward(model, batch)
        assert torch.equal(out, model(batch[0], 0.75))
    assert out.abs().max() <= 0.75


def test_harness_runs_it_in_channels_last_too() -> None:
    scenario = load_scenario(CONV)
    point = Point(batch_size=3, memory_format=MemoryFormat.CHANNELS_LAST)
    assert skip_reason(point, scenario) is None
    workload = build_workload(scenario, point)
    assert workload.check.rel_err < 1e-5
    assert workload.step().shape == (3, 8, 12, 12)


def test_missing_batch_size_names_the_file(write_scenario) -> None:
    source = GEMM.read_text().replace("batch_size = 16\n", "")
    source = source.replace("randn(batch_size,", "randn(16,")
    path = write_scenario(source, name="no_batch.py")
    with pytest.raises(ScenarioError, match=r"no_batch\.py: .*KernelBench.*lacks batch_size"):
        load_scenario(path)


def test_a_scenario_with_its_own_functions_is_not_adapted(write_scenario) -> None:
    source = GEMM.read_text() + (
        "\n\ndef build_model():\n    return Model(4, 2, 1.0)\n"
        "\n\ndef make_batch(n):\n    return torch.randn(n, 4)\n"
    )
    scenario = load_scenario(write_scenario(source, name="both.py"))
    assert scenario.sweep == {} and scenario.make_batch(2).shape == (2, 4)


@pytest.mark.slow
def test_perfbench_run_on_a_problem_file(tmp_path: Path) -> None:
    """The command a user types, with eager and ONNX Runtime (a few seconds of export)."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "run"
    args = ["run", str(GEMM), "--out", str(out), "--budget", "0.05", "-q"]
    args += ["--set", "backend=eager,onnxruntime", "--set", "batch_size=5", "--set", "threads=1"]
    proc = subprocess.run(
        [sys.executable, "-m", "perfbench.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv")
    assert list(df.status) == ["ok", "ok"] and list(df.batch_size) == [5, 5]
    assert df.rel_err.max() < 1e-5
