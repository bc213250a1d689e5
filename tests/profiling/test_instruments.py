"""The profiling options wired through one point (measure_point) and through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from perfbench.cli.main import main
from perfbench.measure.point import PointTask, measure_point
from perfbench.measure.timing import TimingSettings
from perfbench.profiling import nvtx_ranges
from perfbench.profiling.flamegraph import py_spy_available
from perfbench.profiling.instruments import ProfileOptions
from perfbench.results.axes import Point
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP

DATASET_MLP = (
    TINY_MLP
    + """
def make_dataset():
    return torch.utils.data.TensorDataset(torch.randn(64, 16))

def forward(model, batch):
    return model(batch[0] if isinstance(batch, (list, tuple)) else batch)
"""
)


def test_point_with_nvtx_modules_and_profile(
    write_scenario: Callable[..., Path],
    fast_timing: TimingSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    monkeypatch.setattr(nvtx_ranges, "_use_torch_cuda", False)
    monkeypatch.setattr(
        nvtx_ranges._nvtx_pkg, "push_range", lambda message=None, **kw: log.append(message)
    )
    monkeypatch.setattr(nvtx_ranges._nvtx_pkg, "pop_range", lambda domain=None: log.append(None))
    scenario = load_scenario(write_scenario(DATASET_MLP))
    point = Point(backend="eager", batch_size=4, threads=1)
    task = PointTask(
        scenario_path=str(scenario.path),
        point=point,
        point_id=7,
        seed=0,
        timing=fast_timing,
        run_dir=str(tmp_path / "run"),
        profiling=ProfileOptions(profile=True, nvtx=True, nvtx_modules=True, nvtx_overhead_s=0.05),
    )
    row = measure_point(scenario, task)
    assert row.status == "ok", row.error
    label = point.label()
    pushes = [m for m in log if m is not None]
    assert pushes.count(None) == 0 and len(pushes) == log.count(None)  # balanced
    for phase in ("build", "compile", "warmup", "measure", "profile"):
        assert f"{label}/{phase}" in pushes, phase
    assert f"{label}/measure/step" in pushes and f"{label}/profile/step" in pushes
    assert "0" in pushes  # a module range (the first Linear)
    extra = row.extra
    assert extra["nvtx_overhead"]["ranges_per_step"] > 1
    profile = extra["profile"]
    assert "error" not in profile, profile
    assert (tmp_path / "run" / profile["trace"]).is_file()
    assert profile["trace"] == f"traces/007-{label}.json"
    assert profile["summary"]["steps"]["breakdown_ms"]["data_wait"] > 0
    assert "gpu" not in extra  # CPU point: no sampler
    nvtx_ranges.set_active_point(None)


def test_cli_run_with_profiling_flags(write_scenario: Callable[..., Path], tmp_path: Path) -> None:
    ok, reason = py_spy_available()
    path = write_scenario(TINY_MLP)
    out = tmp_path / "run"
    argv = ["run", str(path), "--set", "batch_size=4", "--set", "threads=1", "--out", str(out)]
    argv += ["--budget", "0.05", "--profile", "--nvtx", "--flamegraph", "-q"]
    assert main(argv) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["profiling"]["profile"] and meta["profiling"]["nvtx"]
    assert meta["profiling"]["gpu_sampler"]  # "available" or the reason it is not
    assert meta["nvtx_overhead"]["max_overhead_pct_direct"] >= 0
    if ok:
        assert meta["flamegraph"]["error"] is None, meta["flamegraph"]
        assert (out / meta["flamegraph"]["svg"]).is_file()
    else:
        assert meta["flamegraph"]["error"], reason
    extra = RunDir(out).read_results()["extra"][0]
    assert extra["nsys_command"].startswith("nsys profile")
    assert (out / extra["profile"]["trace"]).is_file()
    assert list((out / "tb").glob("*/*.pt.trace.json"))


def test_native_needs_flamegraph(write_scenario: Callable[..., Path]) -> None:
    assert main(["run", str(write_scenario(TINY_MLP)), "--native", "-q"]) == 2
