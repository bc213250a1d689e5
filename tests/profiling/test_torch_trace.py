"""A real torch.profiler pass on CPU: trace, TensorBoard logs, top ops and the overview panes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from perfbench.profiling.torch_trace import profile_workload, safe_label


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One training step of a tiny MLP fed by a DataLoader, profiled once for all tests here."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    data = torch.utils.data.TensorDataset(torch.randn(256, 32))
    batches = iter(torch.utils.data.DataLoader(data, batch_size=16))

    def step() -> None:
        (x,) = next(batches)
        opt.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()
        opt.step()

    run_dir = tmp_path_factory.mktemp("run")
    result = profile_workload(step, lambda: None, run_dir, "eager_bs16/train cpu", device="cpu")
    return run_dir, result


def test_trace_is_valid_json_with_expected_events(profiled: tuple[Path, dict[str, Any]]) -> None:
    run_dir, result = profiled
    assert result["trace"] == "traces/eager_bs16_train_cpu.json"
    events = json.loads((run_dir / result["trace"]).read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    assert sum(str(n).startswith("ProfilerStep#") for n in names) == 3  # active=3
    assert "aten::addmm" in names and "[memory]" in names
    assert any("DataLoader" in str(n) for n in names)
    ops = [e for e in events if e.get("name") == "aten::addmm"]
    assert "Input Dims" in ops[0]["args"]  # record_shapes


def test_tensorboard_logs_written(profiled: tuple[Path, dict[str, Any]]) -> None:
    run_dir, result = profiled
    assert result["tb_dir"] == "tb/eager_bs16_train_cpu"
    logs = list((run_dir / result["tb_dir"]).glob("*.pt.trace.json"))
    assert len(logs) == 1
    json.loads(logs[0].read_text())


def test_result_is_json_with_top_ops_and_panes(profiled: tuple[Path, dict[str, Any]]) -> None:
    _, result = profiled
    json.dumps(result, allow_nan=False)
    top = result["top_ops_cpu"]
    assert 0 < len(top) <= 15
    assert {"name", "self_cpu_ms", "calls"} <= set(top[0])
    assert [r["self_cpu_ms"] for r in top] == sorted((r["self_cpu_ms"] for r in top), reverse=True)
    assert not any(r["name"].startswith("ProfilerStep") for r in top)
    assert result["top_ops_device"] == []
    summary = result["summary"]
    steps = summary["steps"]
    assert steps["n_steps"] == 3 and steps["step_ms"] > 0
    assert steps["breakdown_ms"]["cpu_host"] > 0 and steps["breakdown_ms"]["data_wait"] > 0
    assert steps["breakdown_ms"]["device_compute"] == 0
    assert sum(steps["breakdown_pct"].values()) == pytest.approx(100, abs=0.5)
    assert summary["top_ops"] and summary["top_kernels"] == []
    assert summary["memory"]["peak_allocated_bytes"]["cpu"] > 0
    assert summary["memory"]["timeline"]["cpu"]


def test_safe_label() -> None:
    assert safe_label("compile/bs 8:amp=bf16") == "compile_bs_8_amp_bf16"
    assert safe_label("///") == "point"
