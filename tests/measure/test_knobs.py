"""The compiler-knob axes: memory_format and shapes, from parsing to the measured point."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from perfbench.backends import BACKENDS, backend_names
from perfbench.backends.base import Backend, BackendNotApplicable, Prepared
from perfbench.measure.knobs import batch_to_memory_format, knob_skip_reason
from perfbench.measure.point import PointTask, measure_point
from perfbench.measure.workload import build_workload, skip_reason
from perfbench.plan.sweep import default_sweep, expand, rerun_command, resolve_sweep
from perfbench.report.data import load_results
from perfbench.results.axes import AxisError, MemoryFormat, Point, Shapes, parse_axis_value
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

TINY_CONV = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )

def make_batch(batch_size):
    return {"x": torch.randn(batch_size, 3, 8, 8)}

def forward(model, batch):
    return model(batch["x"])
"""


def test_default_sweep_does_not_grow() -> None:
    sweep = resolve_sweep([], backend_names())
    assert sweep["memory_format"] == [MemoryFormat.CONTIGUOUS]
    assert sweep["shapes"] == [Shapes.STATIC]
    assert len(expand(sweep)) == 1
    assert set(default_sweep()) == set(sweep)


@pytest.mark.parametrize(
    ("axis", "raw", "typed"),
    [
        ("memory_format", "channels_last", MemoryFormat.CHANNELS_LAST),
        ("memory_format", " Contiguous", MemoryFormat.CONTIGUOUS),
        ("shapes", "dynamic", Shapes.DYNAMIC),
        ("shapes", "STATIC", Shapes.STATIC),
    ],
)
def test_axis_values_parse(axis: str, raw: str, typed: object) -> None:
    assert parse_axis_value(axis, raw, backend_names()) is typed


@given(
    st.text(min_size=1, max_size=12).filter(
        lambda s: s.strip().lower() not in ("static", "dynamic")
    )
)
def test_unknown_shapes_value_lists_the_valid_ones(raw: str) -> None:
    with pytest.raises(AxisError, match="static, dynamic"):
        parse_axis_value("shapes", raw, backend_names())


def test_label_and_rerun_command_carry_the_axes() -> None:
    point = Point(
        backend="compile", memory_format=MemoryFormat.CHANNELS_LAST, shapes=Shapes.DYNAMIC
    )
    assert point.label().endswith("_cl_dyn")
    assert Point().label() == "eager_bs32_t1_amp-off_infer_cpu"
    command = rerun_command("s.py", point)
    assert "--set memory_format=channels_last" in command and "--set shapes=dynamic" in command


def test_shapes_dynamic_applies_to_compile_backends_and_eager_only() -> None:
    scenario = load_scenario(SCENARIOS / "mlp.py")
    dynamic = Point(shapes=Shapes.DYNAMIC)
    follows = {n for n, b in BACKENDS.items() if b.shapes_axis}
    assert follows == {
        "eager", "compile", "compile-max-autotune", "compile-reduce-overhead", "compile-freezing"
    }  # fmt: skip
    for name, backend in BACKENDS.items():
        reason = knob_skip_reason(dynamic.replace(backend=name), scenario, backend)
        if name in follows:
            assert reason is None
        else:
            assert reason is not None and "shapes=dynamic" in reason and name in reason


def test_channels_last_needs_a_4d_input() -> None:
    mlp = load_scenario(SCENARIOS / "mlp.py")
    convnet = load_scenario(SCENARIOS / "convnet.py")
    point = Point(memory_format=MemoryFormat.CHANNELS_LAST)
    reason = skip_reason(point, mlp)
    assert reason is not None and "4-D" in reason and "Tensor(shape=(2, 1024)" in reason
    assert skip_reason(point, convnet) is None
    assert skip_reason(Point(), mlp) is None


def test_batch_conversion_touches_only_4d_tensors() -> None:
    point = Point(memory_format=MemoryFormat.CHANNELS_LAST)
    batch = {"img": torch.randn(2, 3, 4, 5), "ids": torch.arange(6).view(2, 3)}
    out = batch_to_memory_format(batch, point)
    assert out["img"].is_contiguous(memory_format=torch.channels_last)
    assert not out["img"].is_contiguous()
    assert out["ids"] is batch["ids"]
    assert batch_to_memory_format(batch, Point()) is batch


def test_eager_channels_last_runs_in_the_layout_and_matches_the_reference(write_scenario) -> None:
    scenario = load_scenario(write_scenario(TINY_CONV))
    point = Point(batch_size=3, memory_format=MemoryFormat.CHANNELS_LAST)
    workload = build_workload(scenario, point)
    conv = workload.model[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    fed = workload.feed.next_batch()["x"]
    assert fed.is_contiguous(memory_format=torch.channels_last) and not fed.is_contiguous()
    assert workload.check.rel_err < 1e-5  # against the contiguous eager reference
    workload.step()


@pytest.mark.parametrize(("shapes", "dynamic"), [(Shapes.STATIC, False), (Shapes.DYNAMIC, True)])
@pytest.mark.parametrize("name", ["compile", "compile-max-autotune"])
def test_compile_backends_pass_the_shapes_axis(monkeypatch, name, shapes, dynamic) -> None:
    seen = {}

    def fake_compile(model, **kwargs):
        seen.update(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    scenario = load_scenario(SCENARIOS / "mlp.py")
    model = torch.nn.Linear(4, 4)
    x = (torch.randn(2, 4), torch.randn(2, 4))
    prepared = BACKENDS[name].prepare(model, Point(backend=name, shapes=shapes), x, scenario)
    assert seen["dynamic"] is dynamic
    assert prepared.info["dynamic_shapes"] is dynamic


def test_not_applicable_during_prepare_is_a_skipped_row(monkeypatch, write_scenario, fast_timing):
    def refuse(model, point, batch, scenario) -> Prepared:
        raise BackendNotApplicable("torch.export failed: GuardOnDataDependentSymNode: ...")

    monkeypatch.setitem(BACKENDS, "refuses", Backend("refuses", "test", prepare=refuse))
    path = write_scenario(TINY_MLP)
    point = Point(backend="refuses", batch_size=2)
    row = measure_point(load_scenario(path), PointTask(str(path), point, 0, 0, fast_timing, "."))
    assert row.status == "skipped"
    assert row.reason.startswith("torch.export failed: GuardOnDataDependentSymNode")
    assert row.median_ms is None and not row.error


def test_results_from_before_the_axes_read_back_at_the_defaults(tmp_path) -> None:
    old_columns = ["point_id", "backend", "batch_size", "threads", "amp", "pin_memory"]
    old_columns += ["num_workers", "mode", "device", "status", "median_ms"]
    with (tmp_path / "results.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(old_columns)
        writer.writerow([0, "eager", 8, 1, "off", False, 0, "infer", "cpu", "ok", 1.5])
    df = load_results(RunDir(tmp_path))
    assert df.loc[0, "memory_format"] == "contiguous" and df.loc[0, "shapes"] == "static"
    assert df.loc[0, "label"] == "eager bs8 t1 amp-off infer cpu"
