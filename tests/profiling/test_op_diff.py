"""Op-level diff: self times per step from hand-built traces, the status of each op against its
noise floor, inductor kernel names split into aten ops, and a real eager-vs-compile pass."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from perfbench.profiling.op_diff import (
    diff_ops,
    diff_traces,
    kernel_ops,
    op_kind,
    op_name,
    op_steps,
)


def _ev(name: str, ts: float, dur: float, cat: str = "cpu_op", **args: Any) -> dict[str, Any]:
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": 1,
        "tid": 1,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def _trace(steps: list[list[tuple[str, float, float]]]) -> list[dict[str, Any]]:
    """One ProfilerStep window of 1000 µs per entry; ops given as (name, start offset, dur)."""
    events = []
    for k, ops in enumerate(steps):
        base = 10_000.0 * (k + 1)
        events.append(_ev(f"ProfilerStep#{k + 2}", base, 1000.0, cat="user_annotation"))
        events += [_ev(name, base + start, dur) for name, start, dur in ops]
    return events


EAGER_STEP = [("aten::linear", 10, 300), ("aten::addmm", 20, 250), ("aten::relu", 400, 50)]


def test_self_time_subtracts_nested_ops_and_scales_to_one_step() -> None:
    steps = op_steps(_trace([EAGER_STEP, EAGER_STEP]))
    assert steps.n_steps == 2
    per_step = steps.self_ms.mean(axis=1)
    assert per_step["aten::linear"] == pytest.approx(0.050)  # 300 µs minus the nested addmm
    assert per_step["aten::addmm"] == pytest.approx(0.250)
    assert steps.calls.loc["aten::relu"].tolist() == [1, 1]
    assert "aten::addmm" in steps.related["aten::linear"]


def test_statuses_against_the_noise_floor() -> None:
    eager = _trace([EAGER_STEP, EAGER_STEP, [(n, s, d * 1.1) for n, s, d in EAGER_STEP]])
    kernel = "graph_1_cpp_fused_relu_0"
    backend_step = [("aten::linear", 10, 300), ("aten::addmm", 20, 251), (kernel, 400, 5)]
    slow_step = [("aten::linear", 10, 900), ("aten::addmm", 20, 251), (kernel, 400, 5)]
    backend = _trace([backend_step, backend_step, backend_step])
    diff = diff_ops(op_steps(eager), op_steps(backend)).set_index("op")
    assert diff.loc["aten::relu", "status"] == "vanished"
    assert diff.loc["aten::relu", "fused_into"] == "cpp_fused_relu_0"
    assert diff.loc["cpp_fused_relu_0", "status"] == "appeared"
    assert diff.loc["cpp_fused_relu_0", "fused_from"] == "relu"
    # 1 µs slower, but eager's own steps spread 25 µs: inside the noise floor
    assert diff.loc["aten::addmm", "status"] == "same"
    assert diff.loc["aten::addmm", "noise_floor_ms"] == pytest.approx(0.025)
    slower = diff_ops(op_steps(eager), op_steps(_trace([slow_step] * 3))).set_index("op")
    assert slower.loc["aten::linear", "status"] == "slower"  # 650 µs more self time per step


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(1, 500), min_size=1, max_size=4), st.integers(1, 4))
def test_a_trace_against_itself_changes_nothing(durs: list[float], n: int) -> None:
    ops = [(f"aten::op{i}", 10 + 600 * i / len(durs), d) for i, d in enumerate(durs)]
    trace = _trace([ops] * n)
    diff = diff_ops(op_steps(trace), op_steps(trace))
    assert set(diff["status"]) == {"same"}
    assert (diff["diff_ms_per_step"] == 0).all()


def test_device_kernels_go_to_the_step_that_launched_them() -> None:
    events = _trace([[("aten::mm", 10, 100)], [("aten::mm", 10, 100)]])
    for k in range(2):
        launch = 10_000.0 * (k + 1) + 50
        events.append(_ev("cudaLaunchKernel", launch, 5, cat="cuda_runtime", correlation=k))
        # the kernel of step 0 runs after step 0's host window ended
        events.append(_ev("sm90_gemm", launch + 2_000, 40, cat="kernel", correlation=k))
    steps = op_steps(events, side="device")
    assert steps.calls.loc["sm90_gemm"].tolist() == [1, 1]


def test_trace_without_steps_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ProfilerStep"):
        op_steps([_ev("aten::mm", 0, 1)])


@pytest.mark.parametrize(
    "name, ops",
    [
        ("cpp_fused_addmm_relu_0", ["addmm", "relu"]),
        ("graph_3_cpp_fused__softmax_add_native_layer_norm_12", ["_softmax", "add", "native_layer_norm"]),
        ("triton_poi_fused__to_copy_add_mul_rsqrt_0", ["_to_copy", "add", "mul", "rsqrt"]),
        ("cpp_fused_convert_element_type_2", ["convert_element_type"]),
        ("aten::addmm", None),
    ],
)  # fmt: skip
def test_kernel_names_split_into_aten_ops(name: str, ops: list[str] | None) -> None:
    assert kernel_ops(name) == ops


def test_op_names_comparable_across_traces() -> None:
    assert op_name("graph_2_cpp_fused_relu_0") == "cpp_fused_relu_0"
    assert op_name("## Call CompiledFxGraph fabc123 ##") == "CompiledFxGraph (call)"
    assert op_kind("graph_2_cpp_fused_relu_0") == "inductor kernel"
    assert (
        op_kind("Pregraph bytecode")
        == op_kind("TorchDynamo Cache Lookup")
        == "compiled-graph runtime"
    )
    assert op_kind("aten::addmm") == "op"


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 128), nn.Linear(128, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


@pytest.mark.slow
def test_compile_vs_eager_shows_which_ops_inductor_fused(tmp_path: Path) -> None:
    """The real pass: eager and a compiled model's kernel-profiled pass; inductor's kernel appears
    with the aten ops it was made from, and the eager relu it replaced is marked fused into it."""
    from perfbench.profiling.kernel_profile import kernel_profiling
    from perfbench.profiling.torch_trace import profile_workload

    model, x = _MLP().eval(), torch.randn(8, 64)
    compiled = torch.compile(model)
    traces = {}
    for name, target, info in (
        ("eager", model, {}),
        ("compile", compiled, {"compile_mode": "default"}),
    ):

        def step(target: Any = target) -> Any:
            with torch.no_grad():
                return target(x)

        workload = SimpleNamespace(
            step=step, sync=lambda: None, prepared=SimpleNamespace(info=info),
            point=SimpleNamespace(device=SimpleNamespace(value="cpu")),
        )  # fmt: skip
        with kernel_profiling(workload) as (profiled_step, facts):
            result = profile_workload(profiled_step, lambda: None, tmp_path, name, "cpu", active=4)
        assert bool(facts) == (name == "compile")
        traces[name] = tmp_path / result["trace"]
    diff = diff_traces(traces["eager"], traces["compile"]).set_index("op")
    kernels = diff[diff["kind"] == "inductor kernel"]
    assert len(kernels) >= 1 and set(kernels["status"]) == {"appeared"}
    assert any("relu" in f.split() for f in kernels["fused_from"])
    assert diff.loc["aten::relu", "status"] == "vanished"
    assert diff.loc["aten::relu", "fused_into"].startswith("cpp_fused_")
    assert diff.loc["Torch-Compiled Region: 0/0", "status"] == "appeared"
