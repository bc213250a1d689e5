"""SM clock and throttle reasons around a group's rounds: read through NVML (a fake here, no GPU
on CI), throttling reasons flag the point like contention; idle is not throttling."""

from __future__ import annotations

from types import SimpleNamespace

from perfbench.profiling.gpu_throttle import (
    THROTTLING,
    clocks_for,
    mark_throttled,
    read_clocks,
    throttle_facts,
)


class FakeNvml:
    NVML_CLOCK_SM = 1

    def __init__(self, clock: int, reasons: int) -> None:
        self.clock, self.reasons, self.calls = clock, reasons, []

    def nvmlInit(self) -> None:
        self.calls.append("init")

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetClockInfo(self, handle: str, which: int) -> int:
        assert which == self.NVML_CLOCK_SM
        return self.clock

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: str) -> int:
        return self.reasons


def test_read_clocks_through_nvml_and_shut_it_down() -> None:
    nvml = FakeNvml(1980, 0x1)
    assert read_clocks(0, nvml) == {"sm_clock_mhz": 1980, "throttle_reasons": 0x1}
    assert nvml.calls == ["init", "shutdown"]


def test_no_gpu_no_facts() -> None:
    assert clocks_for("cpu") is None
    assert throttle_facts(None, {"sm_clock_mhz": 1, "throttle_reasons": 0}) == {}


def test_idle_is_not_throttling_a_power_cap_is() -> None:
    idle = {"sm_clock_mhz": 1980, "throttle_reasons": 0x1}  # gpu_idle
    capped = {"sm_clock_mhz": 1410, "throttle_reasons": THROTTLING["sw_power_cap"]}
    quiet = throttle_facts(idle, idle)
    assert quiet == {
        "sm_clock_mhz": [1980, 1980],
        "gpu_throttle_reasons": [],
        "gpu_throttled": False,
    }
    hot = throttle_facts(idle, capped)
    assert hot["gpu_throttled"] and hot["gpu_throttle_reasons"] == ["sw_power_cap"]
    assert hot["sm_clock_mhz"] == [1980, 1410]


def test_a_throttled_point_is_flagged_like_contention() -> None:
    row = SimpleNamespace(extra={"contention": ""}, contended=False)
    facts = throttle_facts(
        {"sm_clock_mhz": 1980, "throttle_reasons": 0},
        {"sm_clock_mhz": 1200, "throttle_reasons": THROTTLING["hw_thermal_slowdown"]},
    )
    mark_throttled(row, facts)
    assert row.contended is True
    assert row.extra["contention"] == "GPU throttled: hw_thermal_slowdown"
    calm = SimpleNamespace(extra={}, contended=False)
    mark_throttled(calm, throttle_facts({"sm_clock_mhz": 1, "throttle_reasons": 0}, None))
    assert calm.contended is False and calm.extra == {}
