"""A backend that cannot handle a model (fx cannot trace a data-dependent `if`) makes the point
`skipped` with the tracer's reason and the model's file:line, not `failed`."""

from __future__ import annotations

from perfbench.check.ladder import run_check
from perfbench.measure.point import PointTask, measure_point
from perfbench.results.axes import Point
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP

UNTRACEABLE = (
    TINY_MLP
    + """

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:  # data-dependent: symbolic_trace cannot follow it
            return y
        return -y


def build_model():
    return Branchy()
"""
)


def _if_line(path) -> int:
    return next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "y.sum() > 0" in t)


def test_untraceable_fx_point_is_skipped_with_reason_and_line(write_scenario, fast_timing):
    path = write_scenario(UNTRACEABLE)
    task = PointTask(
        str(path), Point(backend="fx", batch_size=4), 0, 0, fast_timing, str(path.parent)
    )
    row = measure_point(load_scenario(path), task)
    assert row.status == "skipped", row
    assert "symbolic_trace cannot trace Branchy" in row.reason
    assert f"{path}:{_if_line(path)}" in row.reason
    assert not row.error and row.median_ms is None  # every column is present


def test_check_ladder_reports_untraceable_backend_as_not_applicable(write_scenario):
    report = run_check(load_scenario(write_scenario(UNTRACEABLE)), backends=("eager", "fx"))
    per_backend = report.rung(6).values["backends"]
    assert per_backend["fx"]["status"] == "n/a"
    assert (
        "skipped: fx backend: torch.fx.symbolic_trace cannot trace" in per_backend["fx"]["detail"]
    )
    assert report.rung(6).status == "pass"  # eager passed; fx could not apply
