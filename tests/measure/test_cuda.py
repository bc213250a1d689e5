"""GPU paths of the harness. Skipped with a reason where CUDA is absent (CI never has a GPU)."""

from __future__ import annotations

import time

import pytest
import torch

from perfbench.measure.point import PointTask, measure_point
from perfbench.measure.timing import CudaEventTimer, TimingSettings, measure
from perfbench.results.axes import Device, Point
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA: no NVIDIA GPU on this machine"
)


def test_cuda_event_timer_agrees_with_synchronised_host_clock():
    a = torch.randn(4096, 4096, device="cuda")

    def fn():
        return a @ a

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    host = (time.perf_counter() - start) / 20
    events = CudaEventTimer()(fn, 20)
    assert events == pytest.approx(host, rel=0.2)


def test_measure_uses_events_on_cuda():
    a = torch.randn(2048, 2048, device="cuda")
    m = measure(lambda: a @ a, device="cuda", settings=TimingSettings(budget_s=0.2))
    assert m.timer == "cuda_event" and m.median > 0


def test_cuda_point_end_to_end(write_scenario):
    path = write_scenario(TINY_MLP)
    scenario = load_scenario(path)
    settings = TimingSettings(budget_s=0.1, warmup_s=0.01)
    task = PointTask(
        str(path), Point(device=Device.CUDA, batch_size=8), 0, 0, settings, str(path.parent)
    )
    row = measure_point(scenario, task)
    assert row.status == "ok", row.error
    assert row.timer == "cuda_event"
    assert row.peak_mem_bytes > 0
