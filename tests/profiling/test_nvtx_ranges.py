"""NVTX ranges: calls reach the NVTX module boundary, balanced, and their cost is measured."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from perfbench.profiling import nvtx_ranges
from perfbench.profiling.nvtx_ranges import (
    add_module_ranges,
    measure_nvtx_overhead,
    nsys_command,
    nvtx_range,
    range_name,
    remove_module_ranges,
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Record push/pop at the `nvtx` package boundary (the CPU path)."""
    log: list[tuple[str, str | None]] = []
    monkeypatch.setattr(nvtx_ranges, "_use_torch_cuda", False)
    assert nvtx_ranges._nvtx_pkg is not None, "the nvtx package is a declared dependency"
    monkeypatch.setattr(
        nvtx_ranges._nvtx_pkg,
        "push_range",
        lambda message=None, **kw: log.append(("push", message)),
    )
    monkeypatch.setattr(
        nvtx_ranges._nvtx_pkg, "pop_range", lambda domain=None: log.append(("pop", None))
    )
    return log


def test_range_pushes_and_pops(calls: list[tuple[str, str | None]]) -> None:
    with nvtx_range("mlp/measure"):
        calls.append(("body", None))
    assert calls == [("push", "mlp/measure"), ("body", None), ("pop", None)]


def test_range_pops_when_the_body_raises(calls: list[tuple[str, str | None]]) -> None:
    with pytest.raises(RuntimeError), nvtx_range("x"):
        raise RuntimeError("boom")
    assert calls == [("push", "x"), ("pop", None)]


def test_disabled_range_makes_no_call(calls: list[tuple[str, str | None]]) -> None:
    with nvtx_range("x", enabled=False):
        pass
    assert calls == []


def test_no_backend_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvtx_ranges, "_use_torch_cuda", False)
    monkeypatch.setattr(nvtx_ranges, "_nvtx_pkg", None)
    assert nvtx_ranges.backend_name() == "none"
    with nvtx_range("x"):
        pass
    assert nvtx_ranges.range_pair_cost_us() == 0.0


def test_cuda_path_uses_torch_cuda_nvtx(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    monkeypatch.setattr(nvtx_ranges, "_use_torch_cuda", True)
    monkeypatch.setattr(torch.cuda.nvtx, "range_push", lambda msg: log.append(f"push {msg}"))
    monkeypatch.setattr(torch.cuda.nvtx, "range_pop", lambda: log.append("pop"))
    with nvtx_range("step"):
        pass
    assert nvtx_ranges.backend_name() == "torch.cuda.nvtx"
    assert log == ["push step", "pop"]


def test_module_ranges_follow_the_model(calls: list[tuple[str, str | None]]) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    handles = add_module_ranges(model)
    model(torch.randn(3, 4))
    pushes = [name for op, name in calls if op == "push"]
    assert pushes == ["Sequential", "0", "1", "2"]
    assert sum(op == "pop" for op, _ in calls) == 4
    remove_module_ranges(handles)
    assert handles == []
    calls.clear()
    model(torch.randn(3, 4))
    assert calls == []


def test_overhead_is_measured_on_a_small_mlp() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64)).eval()
    x = torch.randn(16, 64)

    def step() -> None:
        with torch.no_grad():
            model(x)

    result = measure_nvtx_overhead(step, lambda: None, reps=20, model=model)
    for key in ("off_ms", "on_ms", "overhead_pct", "range_pair_us", "overhead_pct_direct"):
        assert math.isfinite(result[key]), key
    assert result["off_ms"] > 0 and result["ranges_per_step"] == 1 + 4


def test_names_and_nsys_command() -> None:
    assert range_name("eager_bs8", "measure") == "eager_bs8/measure"
    assert range_name("eager_bs8", "warmup", step=True) == "eager_bs8/warmup/step"
    with pytest.raises(ValueError, match="phases are"):
        range_name("x", "timing")
    cmd = nsys_command("perfbench run s.py --set batch_size=8", "one", label="eager_bs8")
    assert cmd.startswith("nsys profile --trace=cuda,nvtx,osrt")
    assert "--nvtx-capture=eager_bs8/measure" in cmd and "--capture-range=nvtx" in cmd
    assert "-o one perfbench run s.py --set batch_size=8 --nvtx" in cmd
    assert nsys_command("perfbench run s.py --nvtx", "x").count("--nvtx") == 1
