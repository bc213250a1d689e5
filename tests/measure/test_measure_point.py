"""One point in-process: each status it can produce, with messages that point into the scenario."""

from __future__ import annotations

import pytest

from perfbench.measure.point import PointTask, measure_point
from perfbench.measure.workload import skip_reason
from perfbench.results.axes import Amp, Mode, Point
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP


def run_point(path, fast_timing, **axes):
    scenario = load_scenario(path)
    point = Point(threads=1, batch_size=4, **axes)
    task = PointTask(str(path), point, 0, 0, fast_timing, str(path.parent))
    return measure_point(scenario, task)


def test_ok_point_has_every_measurement(write_scenario, fast_timing):
    row = run_point(write_scenario(TINY_MLP), fast_timing)
    assert row.status == "ok", row.error
    assert row.median_ms > 0 and row.iqr_ms >= 0 and row.reps >= 3
    assert row.p05_ms <= row.median_ms <= row.p95_ms
    assert row.throughput == pytest.approx(4 / (row.median_ms / 1e3))
    assert row.rel_err == 0.0 and row.tolerance == 1e-4
    assert row.cold_start_s >= row.first_call_s > 0
    assert row.timer == "perf_counter" and row.timer_overhead_us > 0
    assert row.tflops > 0  # from torch's flop counter
    assert row.extra["flops_per_step"] == 2 * 4 * (16 * 32 + 32 * 4)
    assert len(row.times_ms) == row.reps


def test_train_point_runs_optimizer_steps(write_scenario, fast_timing):
    row = run_point(write_scenario(TINY_MLP), fast_timing, mode=Mode.TRAIN)
    assert row.status == "ok", row.error
    assert row.extra["flops_per_step"] == 3 * 2 * 4 * (16 * 32 + 32 * 4)


def test_exception_in_build_model_names_file_and_line(write_scenario, fast_timing):
    path = write_scenario(
        TINY_MLP.replace(
            "return nn.Sequential(", "raise RuntimeError('no weights')\n    return nn.Sequential("
        )
    )
    row = run_point(path, fast_timing)
    assert row.status == "failed"
    assert row.error.startswith(f"{path}:5: RuntimeError: no weights")
    assert "traceback" in row.extra


def test_nan_output_fails_the_point(write_scenario, fast_timing):
    path = write_scenario(
        TINY_MLP + "\ndef forward(model, batch):\n    return model(batch) * float('nan')\n"
    )
    row = run_point(path, fast_timing)
    assert row.status == "failed"
    assert "non-finite" in row.error
    assert row.median_ms is None  # a failed point's time is not a result


def test_wrong_output_from_backend_fails_the_check(write_scenario, fast_timing, monkeypatch):
    from perfbench import backends
    from perfbench.backends.base import Backend, Prepared

    def prepare(model, point, batch, scenario):
        return Prepared(model=lambda x: model(x) * 1.01)

    monkeypatch.setitem(backends.BACKENDS, "wrong", Backend("wrong", "off by 1%", prepare))
    row = run_point(write_scenario(TINY_MLP), fast_timing, backend="wrong")
    assert row.status == "failed"
    assert "relative error 0.01" in row.error and "tolerance 0.0001" in row.error


def test_memory_error_is_oom(write_scenario, fast_timing):
    path = write_scenario(
        TINY_MLP.replace("return torch.randn(batch_size, 16)", "raise MemoryError('48 GiB')")
    )
    scenario = load_scenario(path)
    task = PointTask(str(path), Point(batch_size=4, threads=1), 0, 0, fast_timing, str(path.parent))
    # make_batch is called after the model is built: a MemoryError there is an oom point
    row = measure_point(scenario, task)
    assert row.status == "oom"
    assert "48 GiB" in row.error


def test_bf16_autocast_is_checked_with_its_tolerance(write_scenario, fast_timing):
    row = run_point(write_scenario(TINY_MLP), fast_timing, amp=Amp.BF16)
    assert row.status == "ok", row.error
    assert 0 < row.rel_err < row.tolerance == 5e-2


@pytest.mark.parametrize(
    ("axes", "reason"),
    [
        ({"amp": Amp.FP16}, "fp16 autocast on CPU"),
        ({"pin_memory": True}, "pin_memory only speeds host-to-device"),
        ({"num_workers": 2}, "num_workers needs a DataLoader"),
    ],
)
def test_points_that_make_no_sense_are_skipped_with_a_reason(write_scenario, axes, reason):
    scenario = load_scenario(write_scenario(TINY_MLP))
    assert reason in skip_reason(Point(**axes), scenario)


def test_train_without_loss_fn_is_skipped(write_scenario):
    scenario = load_scenario(write_scenario(TINY_MLP.replace("def loss_fn", "def _loss")))
    assert "loss_fn" in skip_reason(Point(mode=Mode.TRAIN), scenario)


def test_dataset_scenario_reports_data_wait(write_scenario, fast_timing):
    path = write_scenario(
        TINY_MLP
        + """
import time
class Slow(torch.utils.data.Dataset):
    def __len__(self):
        return 64
    def __getitem__(self, i):
        time.sleep(0.001)
        return torch.randn(16)

def make_dataset():
    return Slow()
"""
    )
    row = run_point(path, fast_timing)
    assert row.status == "ok", row.error
    assert 0.5 < row.data_wait_frac <= 1.0  # 4 ms of sleeping per batch dwarfs a tiny MLP


def test_cpu_peak_memory_is_the_points_own_growth(write_scenario, fast_timing):
    """A model holding 64 MB of weights shows at least that much peak, not the ~400 MB process."""
    path = write_scenario(
        """
        import torch
        from torch import nn

        class Big(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(16, 4)
                self.big = nn.Parameter(torch.ones(16_000_000))  # 64 MB, touched

            def forward(self, x):
                return self.lin(x)

        def build_model():
            return Big()

        def make_batch(batch_size):
            return torch.randn(batch_size, 16)
        """
    )
    row = run_point(path, fast_timing)
    assert row.status == "ok", row.error
    if row.extra["peak_mem_kind"] != "cpu_rss_growth":
        pytest.skip("this kernel does not allow resetting the RSS high-water mark")
    assert 64e6 <= row.peak_mem_bytes < 300e6
