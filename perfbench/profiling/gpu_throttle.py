"""SM clock and clock-throttle reasons before and after a group's timed rounds (NVML), so a point
timed while the GPU slowed itself down (power cap, thermal limit) is flagged, not trusted.

Only the reasons that mean "slower than it could be because of the environment" throttle a point:
software power cap, hardware slowdown, hardware thermal and power-brake slowdown, software
thermal slowdown. `gpu_idle` and `applications_clocks_setting` are normal states, not a fault.
Without a GPU, NVML or pynvml, `read_clocks` returns None and nothing is recorded.
"""

from __future__ import annotations

from typing import Any

from perfbench.results import facts

# NVML's clocks-throttle-reason bits (nvml.h: nvmlClocksThrottleReason*), by the name we record
THROTTLING = {
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
}


def read_clocks(device_index: int = 0, nvml: Any | None = None) -> dict[str, Any] | None:
    """{"sm_clock_mhz", "throttle_reasons"} now, or None where NVML cannot be read."""
    try:
        if nvml is None:
            import pynvml as nvml  # nvidia-ml-py; absent or driverless: nothing to record
        nvml.nvmlInit()
    except Exception:
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
        return {
            "sm_clock_mhz": int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            "throttle_reasons": int(nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)),
        }
    except Exception:
        return None
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def clocks_for(device: str) -> dict[str, Any] | None:
    """The current CUDA device's clocks for a CUDA point; None on any other device."""
    if device != "cuda":
        return None
    import torch

    return read_clocks(torch.cuda.current_device())


def throttle_facts(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Facts for a row's `extra`: clocks before and after, and which throttling reasons were
    active at either end (`gpu_throttled` True when any was)."""
    if before is None or after is None:
        return {}
    active = sorted(
        name
        for name, bit in THROTTLING.items()
        if (before["throttle_reasons"] | after["throttle_reasons"]) & bit
    )
    return {
        facts.SM_CLOCK_MHZ: [before["sm_clock_mhz"], after["sm_clock_mhz"]],
        facts.GPU_THROTTLE_REASONS: active,
        facts.GPU_THROTTLED: bool(active),
    }


def mark_throttled(row: Any, throttle: dict[str, Any]) -> None:
    """Put the facts in a results row's `extra`; a throttled point is flagged like a contended
    one (`contended`, and the reason in `extra["contention"]`): its time is not trustworthy."""
    row.extra.update(throttle)
    if not throttle.get(facts.GPU_THROTTLED):
        return
    row.contended = True
    reason = "GPU throttled: " + ", ".join(throttle[facts.GPU_THROTTLE_REASONS])
    contention = (row.extra.get(facts.CONTENTION), reason)
    row.extra[facts.CONTENTION] = "; ".join(r for r in contention if r)
