"""Measure one point end to end and turn the outcome into a results row.

Runs inside the worker process. Every failure is captured here as a row (status failed / oom)
with a message that points into the scenario file where the traceback passes through it, so one
bad point never stops the sweep. Timing-only facts go to columns; backend facts go to `extra`.
"""

from __future__ import annotations

import ctypes
import resource
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from perfbench.axes import Point
from perfbench.backends.base import BackendNotApplicable
from perfbench.correctness import MismatchError
from perfbench.profiling.instruments import PointInstruments, ProfileOptions
from perfbench.scenario import Scenario, ScenarioError, describe_exception
from perfbench.timing import TimingSettings, measure, timer_overhead_s
from perfbench.workload import Workload, build_workload, count_flops


@dataclass(frozen=True)
class PointTask:
    """What the parent sends the worker for one point."""

    scenario_path: str
    point: Point
    point_id: int
    seed: int
    timing: TimingSettings
    run_dir: str
    profiling: ProfileOptions = field(default_factory=ProfileOptions)  # --profile, --nvtx ...


class CpuPeakMemory:
    """Peak resident memory a point needed on the CPU: the process's RSS high-water mark, reset at
    the point's start (Linux `clear_refs` 5), minus the RSS at that moment. Where the mark cannot be
    reset, the peak since the worker started is reported instead, and `kind` says so."""

    def __init__(self) -> None:
        _release_free_memory()  # else memory freed by earlier points is reused unseen by RSS
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.kind = "cpu_rss_growth"
        except OSError:
            self.kind = "cpu_max_rss_since_worker_start"
        self.baseline = _status_kib("VmRSS") * 1024 if self.kind == "cpu_rss_growth" else 0

    def peak_bytes(self) -> int:
        if self.kind == "cpu_rss_growth":
            return max(_status_kib("VmHWM") * 1024 - self.baseline, 0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _release_free_memory() -> None:
    """Hand the allocator's free pages back to the OS (glibc malloc_trim), so a point's
    allocations show up as RSS growth instead of silently reusing an earlier point's pages."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _error_row(scenario: Scenario | None, path: Path, err: BaseException) -> dict[str, Any]:
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return {"status": "oom", "error": f"out of memory: {err}"}
    if isinstance(err, ScenarioError):
        return {"status": "failed", "error": str(err)}
    if isinstance(err, BackendNotApplicable):  # found out only by trying (torch.export)
        return {"status": "skipped", "reason": str(err)}
    if isinstance(err, MismatchError):
        return {"status": "failed", "error": f"correctness check failed: {err}"}
    message = describe_exception(path, err)
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=-6))
    return {"status": "failed", "error": message, "extra": {"traceback": tb[-4000:]}}


def measure_point(scenario: Scenario, task: PointTask) -> dict[str, Any]:
    """Build, check, warm up and time one point; always returns a row (never raises)."""
    point = task.point
    started = time.perf_counter()
    row: dict[str, Any] = {"point_id": task.point_id, **point.as_dict()}
    workload: Workload | None = None
    cpu_memory = CpuPeakMemory() if point.device.value == "cpu" else None
    inst = PointInstruments(
        task.profiling, point.label(), task.point_id, Path(task.run_dir), point.device.value
    )
    try:
        with inst.phase("build"):
            workload = build_workload(scenario, point, seed=task.seed)
        device = point.device.value
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        feed = workload.feed

        def reset_counters() -> None:
            feed.wait_s = 0.0
            inst.before_timing()  # NVTX warmup -> measure, GPU sampler on

        inst.start_warmup(workload.prepared.model, point.backend)
        try:
            m = measure(
                inst.wrap_step(workload.step),
                device=device,
                settings=task.timing,
                sync=workload.sync,
                before_timing=reset_counters,
            )
        finally:
            inst.after_timing()
        timed_calls = len(m.times_s) * m.number
        total_step_s = sum(m.times_s) * m.number
        flops = None
        try:
            flops = count_flops(scenario, point, workload)
        except Exception as err:  # the flop count is a nicety: record why it is missing
            row.setdefault("extra", {})["flops_error"] = f"{type(err).__name__}: {err}"
        median = m.median
        lo, hi = m.median_ci()
        extra = dict(row.get("extra", {}))
        extra.update(workload.info)
        extra.update(
            {
                "times_ms": [round(t * 1e3, 6) for t in m.times_s],
                "median_ci_ms": [lo * 1e3, hi * 1e3],
                "number": m.number,
                "warmup_calls": m.warmup_calls,
                "stop_reason": m.stop_reason,
                "prepare_s": workload.prepare_s,
                "flops_per_step": flops,
                "peak_mem_kind": cpu_memory.kind if cpu_memory else "cuda_max_allocated",
            }
        )
        warning = m.noise_warning()
        if warning:
            extra["noise_warning"] = warning
        backend_correctness_only = _correctness_only(point)
        row.update(
            status="ok",
            median_ms=median * 1e3,
            iqr_ms=m.iqr * 1e3,
            p05_ms=m.quantile(0.05) * 1e3,
            p95_ms=m.quantile(0.95) * 1e3,
            reps=len(m.times_s),
            noise=m.noise,
            throughput=_throughput(point.batch_size, m.times_s, feed.uses_loader),
            tflops=(flops / median / 1e12) if flops and median > 0 else None,
            rel_err=workload.check.rel_err,
            tolerance=workload.check.tolerance,
            cold_start_s=workload.cold_start_s,
            first_call_s=workload.first_call_s,
            peak_mem_bytes=(
                cpu_memory.peak_bytes() if cpu_memory else torch.cuda.max_memory_allocated()
            ),
            data_wait_frac=(
                feed.wait_s / total_step_s if feed.uses_loader and total_step_s > 0 else None
            ),
            timer_overhead_us=timer_overhead_s(device) * 1e6,
            timer=m.timer,
            correctness_only=backend_correctness_only,
            extra=extra,
        )
        if feed.uses_loader:
            extra["timed_calls"] = timed_calls
            extra["throughput_basis"] = "mean step time: DataLoader prefetch makes steps bimodal"
        # GPU summary, input-bound hint, NVTX cost, --profile pass; never raises
        inst.finish(workload, median, extra, row.get("data_wait_frac"))
    except Exception as err:
        row.update(_error_row(scenario, scenario.path, err))
        if device_is_cuda(point):
            torch.cuda.empty_cache()
    finally:
        if workload is not None:
            workload.close()
        if point.backend.startswith("compile"):
            torch._dynamo.reset()
    row["wall_s"] = time.perf_counter() - started
    return row


def _throughput(batch_size: int, times_s: list[float], uses_loader: bool) -> float | None:
    """Samples/s. With a DataLoader, prefetching makes step times bimodal (a stall, then batches
    that were ready), so the sustained rate is samples over total time, not over the median."""
    per_step = sum(times_s) / len(times_s) if uses_loader else statistics.median(times_s)
    return batch_size / per_step if per_step > 0 else None


def device_is_cuda(point: Point) -> bool:
    return point.device.value == "cuda" and torch.cuda.is_available()


def _correctness_only(point: Point) -> bool:
    from perfbench.backends import BACKENDS

    return bool(BACKENDS[point.backend].correctness_only(point))
