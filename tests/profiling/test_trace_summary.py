"""Overview panes on a hand-made GPU trace, where every expected number is known."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from perfbench.profiling.trace_summary import (
    kernel_uses_tensor_cores,
    memory_timeline,
    summarize_trace,
    top_operators,
)

GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_cublas"
ELEMENTWISE = "void at::native::vectorized_elementwise_kernel<4, GeluFunctor>"


def _x(name: str, cat: str, ts: float, dur: float, tid: int = 1, **args: Any) -> dict[str, Any]:
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": 1,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def _mem(ts: float, total: int, device_type: int = 1) -> dict[str, Any]:
    return {
        "ph": "i",
        "cat": "cpu_instant_event",
        "name": "[memory]",
        "pid": 1,
        "tid": 1,
        "ts": ts,
        "args": {"Total Allocated": total, "Device Type": device_type, "Device Id": 0},
    }


def gpu_events() -> list[dict[str, Any]]:
    """Two 1000 us steps. Step 1: data wait 0-100, host op 100-400 with a launch 150-170,
    gemm 200-600, gelu 650-700, memcpy 700-750. Step 2 (1000-2000): host op 1000-1100 only."""
    return [
        _x("ProfilerStep#1", "user_annotation", 0, 1000),
        _x("ProfilerStep#1", "gpu_user_annotation", 200, 550, tid=7),  # its GPU-row copy
        _x(
            "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", "user_annotation", 0, 100
        ),
        _x("aten::stack", "cpu_op", 10, 50),  # collate, inside the data wait
        _x("aten::linear", "cpu_op", 100, 300),
        _x("aten::addmm", "cpu_op", 120, 200),
        _x("cudaLaunchKernel", "cuda_runtime", 150, 20),
        _x(GEMM, "kernel", 200, 400, tid=7, **{"est. achieved occupancy %": 50}),
        _x(ELEMENTWISE, "kernel", 650, 50, tid=7),
        _x("Memcpy DtoH (Device -> Pinned)", "gpu_memcpy", 700, 50, tid=7),
        _x("ProfilerStep#2", "user_annotation", 1000, 1000),
        _x("aten::addmm", "cpu_op", 1000, 100),
        _mem(100, 1_000),
        _mem(300, 5_000),
        _mem(800, 2_000),
        _mem(50, 64, device_type=0),
    ]


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"traceEvents": gpu_events()}))
    return path


def test_step_breakdown_follows_priority(trace_file: Path) -> None:
    steps = summarize_trace(trace_file)["steps"]
    assert steps["n_steps"] == 2 and steps["step_ms"] == pytest.approx(1.0)
    first = steps["per_step_ms"][0]
    assert first["device_compute"] == pytest.approx(0.45)  # 200-600 + 650-700
    assert first["device_memcpy"] == pytest.approx(0.05)
    assert first["runtime"] == pytest.approx(0.02)  # the launch, 150-170
    assert first["data_wait"] == pytest.approx(0.1)  # the collate op inside it is not host time
    assert first["cpu_host"] == pytest.approx(0.08)  # 100-150 and 170-200; 200-400 is under gemm
    assert first["idle"] == pytest.approx(0.3)  # 600-650 and 750-1000
    second = steps["per_step_ms"][1]
    assert second["cpu_host"] == pytest.approx(0.1) and second["idle"] == pytest.approx(0.9)
    assert steps["breakdown_ms"]["device_compute"] == pytest.approx(0.225)


def test_kernels_and_tensor_cores(trace_file: Path) -> None:
    summary = summarize_trace(trace_file)
    kernels = summary["top_kernels"]
    assert [k["name"] for k in kernels] == [GEMM, ELEMENTWISE]
    assert kernels[0]["tensor_core"] is True and kernels[1]["tensor_core"] is False
    assert kernels[0]["mean_occupancy_pct"] == 50 and kernels[0]["total_ms"] == pytest.approx(0.4)
    assert summary["tensor_core_pct"] == pytest.approx(400 / 450 * 100)
    assert kernel_uses_tensor_cores("ampere_sgemm_128x64_nn") is False
    assert kernel_uses_tensor_cores("nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NNT") is None
    assert kernel_uses_tensor_cores("cutlass_80_tensorop_s1688gemm_64x64_32x6_nn_align4") is True
    assert kernel_uses_tensor_cores("triton_poi_fused_add_0") is False


def test_top_operators_use_self_time() -> None:
    ops = {o["name"]: o for o in top_operators(gpu_events())}
    assert ops["aten::linear"]["self_ms"] == pytest.approx(0.1)  # 300 minus nested addmm 200
    assert ops["aten::addmm"]["calls"] == 2 and ops["aten::addmm"]["self_ms"] == pytest.approx(0.3)


def test_memory_peak_and_timeline() -> None:
    memory = memory_timeline(gpu_events())
    assert memory["peak_allocated_bytes"] == {"cuda:0": 5_000, "cpu": 64}
    assert memory["timeline"]["cuda:0"] == [[0.1, 1_000], [0.3, 5_000], [0.8, 2_000]]
    many = [_mem(float(i), i % 997) for i in range(5_000)]
    down = memory_timeline(many, limit=100)["timeline"]["cuda:0"]
    assert len(down) <= 100 and max(b for _, b in down) == 996


def test_gzipped_trace_and_no_steps(tmp_path: Path) -> None:
    events = [e for e in gpu_events() if not e["name"].startswith("ProfilerStep")]
    path = tmp_path / "t.json.gz"
    with gzip.open(path, "wt") as fh:
        json.dump({"traceEvents": events}, fh)
    steps = summarize_trace(path)["steps"]
    assert steps["n_steps"] == 1 and steps["step_ms"] == pytest.approx(1.1)
