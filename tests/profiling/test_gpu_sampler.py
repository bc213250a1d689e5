"""GPU sampler: the real no-driver path here, the sampling loop against a mocked pynvml."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from perfbench.profiling import gpu_sampler
from perfbench.profiling.gpu_sampler import FIELDS, GpuSampler


def _sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "perfbench-gpu-sampler"]


def test_no_driver_path_costs_nothing(tmp_path: Path) -> None:
    sampler = GpuSampler()
    if sampler.available:
        pytest.skip("an NVIDIA driver is present: the no-driver path cannot be exercised here")
    assert sampler.reason is not None and sampler.reason.startswith("unavailable: ")
    with sampler:
        assert _sampler_threads() == []
    assert sampler.samples == []
    assert sampler.summary() == {"unavailable": sampler.reason}
    out = sampler.write_timeline(tmp_path / "gpu" / "0.csv")
    assert out.read_text().strip() == ",".join(FIELDS)


def test_missing_pynvml_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(gpu_sampler, "_load_pynvml", missing)
    sampler = GpuSampler()
    assert not sampler.available
    assert "pynvml" in (sampler.reason or "")


class NotSupported(Exception):
    pass


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Replace the pynvml functions the sampler calls (the module boundary)."""
    import pynvml

    state = SimpleNamespace(inits=0, shutdowns=0, calls=0)

    def init() -> None:
        state.inits += 1

    def shutdown() -> None:
        state.shutdowns += 1

    def util(handle: object) -> SimpleNamespace:
        state.calls += 1
        return SimpleNamespace(gpu=40 + state.calls % 3 * 10, memory=5)

    def power(handle: object) -> int:
        raise NotSupported("power readings not supported")

    patches = {
        "nvmlInit": init,
        "nvmlShutdown": shutdown,
        "nvmlDeviceGetHandleByIndex": lambda i: ("gpu", i),
        "nvmlDeviceGetUtilizationRates": util,
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(used=1_000 + state.calls, total=8e9),
        "nvmlDeviceGetClockInfo": lambda h, kind: 1755,
        "nvmlDeviceGetPowerUsage": power,
        "nvmlDeviceGetTemperature": lambda h, kind: 61,
    }
    for name, fn in patches.items():
        monkeypatch.setattr(pynvml, name, fn)
    return state


def test_sampling_loop_with_mocked_nvml(fake_nvml: SimpleNamespace, tmp_path: Path) -> None:
    sampler = GpuSampler(device_index=0, interval_s=0.01)
    assert sampler.available and sampler.reason is None
    with sampler:
        time.sleep(0.15)
        assert len(_sampler_threads()) == 1
    assert _sampler_threads() == []  # stopped and joined
    assert fake_nvml.shutdowns == 1
    n = len(sampler.samples)
    assert n >= 3
    time.sleep(0.05)
    assert len(sampler.samples) == n  # nothing sampled after stop
    first = sampler.samples[0]
    assert set(first) == set(FIELDS)
    assert first["sm_clock_mhz"] == 1755 and first["temp_c"] == 61 and first["power_w"] is None
    times = [s["t"] for s in sampler.samples]
    assert times == sorted(times) and times[0] >= 0
    summary = sampler.summary()
    assert summary["n_samples"] == n
    assert 40 <= summary["mean_util_pct"] <= 60 and summary["max_util_pct"] <= 60
    assert summary["peak_mem_used_bytes"] == max(s["mem_used_bytes"] for s in sampler.samples)
    assert summary["mean_power_w"] is None
    assert "NotSupported" in summary["query_errors"]["power"]
    assert 0 <= summary["sampler_busy_pct"] < 100
    rows = list(csv.DictReader(sampler.write_timeline(tmp_path / "t.csv").open()))
    assert len(rows) == n and rows[0]["power_w"] == "" and rows[0]["util_pct"] != ""


def test_no_gpu_at_index_is_a_reason(
    fake_nvml: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynvml

    def no_such(index: int) -> None:
        raise NotSupported(f"invalid index {index}")

    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", no_such)
    sampler = GpuSampler(device_index=3)
    assert not sampler.available and "no GPU 3" in (sampler.reason or "")
    assert fake_nvml.shutdowns == 1


def test_point_instruments_sample_the_timed_phase(
    fake_nvml: SimpleNamespace, tmp_path: Path
) -> None:
    """A CUDA point's timed phase (between before_timing and after_timing) is sampled, and the
    summary plus the timeline path land in the row's extra."""
    from perfbench.profiling.instruments import PointInstruments, ProfileOptions

    inst = PointInstruments(ProfileOptions(gpu_interval_s=0.01), "lbl", 3, tmp_path, "cuda")
    inst.start_warmup(None, "eager")
    inst.before_timing()
    time.sleep(0.1)
    inst.after_timing()
    assert _sampler_threads() == []
    extra: dict = {}
    inst.finish(None, 0.01, extra)
    assert extra["gpu"]["n_samples"] >= 3 and extra["gpu"]["timeline"] == "gpu/3.csv"
    assert (tmp_path / "gpu" / "3.csv").is_file()
    assert fake_nvml.shutdowns == 1


def test_input_bound_hint() -> None:
    from perfbench.profiling.gpu_sampler import input_bound_hint

    assert input_bound_hint(None, None) is None
    assert input_bound_hint(0.1, 20.0) is None
    assert input_bound_hint(0.6, 90.0) is None
    hint = input_bound_hint(0.6, 20.0) or ""
    assert hint.startswith("input-bound: 60%") and "num_workers" in hint and "20%" in hint
    assert "GPU" not in (input_bound_hint(0.5, None) or "GPU")
