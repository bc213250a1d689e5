"""GPU utilisation, memory, SM clock, power and temperature sampled in the background via NVML.

Used around a point's timed phase: a low utilisation with a high data wait is the signature of an
input-bound workload. NVML's utilisation figure is itself an average over the driver's own sample
period (1/6 s to 1 s depending on the GPU), so a 50 ms interval oversamples it; the timeline still
shows when the GPU idles between phases.

With no NVIDIA driver (or no `pynvml`), the sampler says why in `.reason` and starts no thread: it
costs nothing. Each sample's NVML calls are timed, so the sampler reports its own cost
(`sampler_busy_pct`: share of wall time the thread spent in NVML, holding the GIL).
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

FIELDS = ("t", "util_pct", "mem_used_bytes", "sm_clock_mhz", "power_w", "temp_c")


def _load_pynvml() -> ModuleType:
    import pynvml  # from nvidia-ml-py; imported lazily so a missing package is a reason, not a crash

    return pynvml


class GpuSampler:
    """`with GpuSampler(0) as s: ...` then `s.summary()` and `s.write_timeline(path)`.

    NVML is initialised on construction (to know `.available` before anything runs) and released
    on leaving the `with` block or on `close()`; one sampler covers one timed phase.
    """

    def __init__(self, device_index: int = 0, interval_s: float = 0.05) -> None:
        self.device_index = device_index
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self.available = False
        self.reason: str | None = None
        self._nvml: ModuleType | None = None
        self._handle: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._t0 = 0.0
        self._elapsed_s = 0.0
        self._busy_s = 0.0
        self._errors: dict[str, str] = {}
        self._probe()

    def _probe(self) -> None:
        try:
            nvml = _load_pynvml()
        except ImportError as err:
            self.reason = f"unavailable: pynvml (nvidia-ml-py) not installed ({err})"
            return
        try:
            nvml.nvmlInit()
        except Exception as err:  # NVMLError_LibraryNotFound / DriverNotLoaded: no driver here
            self.reason = f"unavailable: NVML could not start ({type(err).__name__}: {err})"
            return
        try:
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.device_index)
        except Exception as err:
            self.reason = f"unavailable: no GPU {self.device_index} ({type(err).__name__}: {err})"
            _shutdown(nvml)
            return
        self._nvml = nvml
        self.available = True

    # -- sampling -------------------------------------------------------------------------------

    def _read(self, what: str, fn: Any) -> Any:
        """One NVML query; a query this GPU does not support becomes None (reason kept once)."""
        try:
            return fn()
        except Exception as err:
            self._errors.setdefault(what, f"{type(err).__name__}: {err}")
            return None

    def sample_once(self) -> dict[str, Any]:
        """Take one sample now (the thread calls this every interval)."""
        nvml, h = self._nvml, self._handle
        assert nvml is not None
        begin = time.perf_counter()
        util = self._read("util", lambda: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        mem = self._read("mem", lambda: nvml.nvmlDeviceGetMemoryInfo(h).used)
        clock = self._read("sm_clock", lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))
        power_mw = self._read("power", lambda: nvml.nvmlDeviceGetPowerUsage(h))
        temp = self._read(
            "temp", lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
        )
        end = time.perf_counter()
        self._busy_s += end - begin
        sample = {
            "t": round(begin - self._t0, 6),
            "util_pct": util,
            "mem_used_bytes": mem,
            "sm_clock_mhz": clock,
            "power_w": power_mw / 1000.0 if power_mw is not None else None,
            "temp_c": temp,
        }
        self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        while True:
            self.sample_once()
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> GpuSampler:
        """Start the thread; does nothing when unavailable, closed or already running."""
        if self._nvml is None or self._thread is not None:
            return self
        self._stop.clear()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(
            target=self._loop, name="perfbench-gpu-sampler", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and join the thread (takes one last sample at most one interval later)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=max(5.0, 10 * self.interval_s))
        self._elapsed_s = time.perf_counter() - self._t0
        self._thread = None

    def close(self) -> None:
        """Stop, then release NVML."""
        self.stop()
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- results --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Per-point figures for the results row (JSON-able)."""
        if self.reason is not None:
            return {"unavailable": self.reason}
        utils = [s["util_pct"] for s in self.samples if s["util_pct"] is not None]
        mems = [s["mem_used_bytes"] for s in self.samples if s["mem_used_bytes"] is not None]
        powers = [s["power_w"] for s in self.samples if s["power_w"] is not None]
        clocks = [s["sm_clock_mhz"] for s in self.samples if s["sm_clock_mhz"] is not None]
        out: dict[str, Any] = {
            "n_samples": len(self.samples),
            "interval_s": self.interval_s,
            "mean_util_pct": sum(utils) / len(utils) if utils else None,
            "max_util_pct": max(utils) if utils else None,
            "peak_mem_used_bytes": max(mems) if mems else None,
            "mean_power_w": sum(powers) / len(powers) if powers else None,
            "mean_sm_clock_mhz": sum(clocks) / len(clocks) if clocks else None,
            "sampler_busy_pct": (
                self._busy_s / self._elapsed_s * 100 if self._elapsed_s > 0 else None
            ),
        }
        if self._errors:
            out["query_errors"] = dict(self._errors)
        return out

    def write_timeline(self, path: Path) -> Path:
        """Write the samples as CSV (one row per sample, columns FIELDS); header only if none."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            for sample in self.samples:
                writer.writerow({k: ("" if sample[k] is None else sample[k]) for k in FIELDS})
        return path


def _shutdown(nvml: ModuleType) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:  # shutting down a library that half-started: nothing left to report
        pass


def input_bound_hint(data_wait_frac: float | None, mean_util_pct: float | None) -> str | None:
    """A plain-words hint for a point that mostly waits for its input: data wait over 30% of
    step time and, where the GPU was sampled, utilisation under 50%. None when it does not apply."""
    if data_wait_frac is None or data_wait_frac < 0.3:
        return None
    if mean_util_pct is not None and mean_util_pct >= 50:
        return None
    util = (
        f" while the GPU was busy {mean_util_pct:.0f}% of the time"
        if mean_util_pct is not None
        else ""
    )
    return (
        f"input-bound: {data_wait_frac:.0%} of each step waits for the DataLoader{util}. Try more "
        "num_workers, pin_memory=True (on CUDA), or a larger batch so each wait buys more compute."
    )
