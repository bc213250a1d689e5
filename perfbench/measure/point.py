"""Measure one point end to end and turn the outcome into a results row (`perfbench.results.row.Row`).

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

from perfbench.backends import BACKENDS
from perfbench.backends.base import BackendNotApplicable
from perfbench.measure.after_rounds import OutputChanged, output_after_timing
from perfbench.measure.contention import Contention, CpuSnapshot, judge_contention, snapshot
from perfbench.measure.correctness import MismatchError
from perfbench.measure.flops import flops_missing
from perfbench.measure.step_bytes import step_bytes
from perfbench.measure.timing import Measurement, TimingSettings, measure, timer_overhead_s
from perfbench.measure.worker_output import TimedOutput
from perfbench.measure.workload import Workload, build_workload, count_flops
from perfbench.profiling.instruments import PointInstruments, ProfileOptions
from perfbench.results import facts
from perfbench.results.axes import Point
from perfbench.results.row import Row
from perfbench.scenario.loading import ModelError, Scenario, ScenarioError, describe_exception


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


def error_columns(path: Path, err: BaseException) -> dict[str, Any]:
    """What a failure leaves in the row: the status, a message naming the scenario's file and line,
    and for an unexpected exception the end of its traceback (it replaces `extra`)."""
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return {"status": "oom", "error": f"out of memory: {err}"}
    if isinstance(err, ModelError):  # the same for every point: the runner stops the run
        return {"status": "failed", "error": str(err), "extra": {facts.MODEL_ERROR: True}}
    if isinstance(err, ScenarioError):
        return {"status": "failed", "error": str(err)}
    if isinstance(err, BackendNotApplicable):  # cannot handle this model: not a failure
        return {"status": "skipped", "reason": str(err)}
    if isinstance(err, OutputChanged):
        return {"status": "failed", "error": str(err)}
    if isinstance(err, MismatchError):
        return {"status": "failed", "error": f"correctness check failed: {err}"}
    message = describe_exception(path, err)
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=-6))
    return {"status": "failed", "error": message, "extra": {facts.TRACEBACK: tb[-4000:]}}


def measure_point(scenario: Scenario, task: PointTask) -> Row:
    """Build, check, warm up and time one point; always returns its row (never raises). The
    `Row` itself crosses the worker pipe (or the Ray stream) to the run folder."""
    point = task.point
    started = time.perf_counter()
    row = Row.for_point(task.point_id, point)
    workload: Workload | None = None
    cpu_memory = CpuPeakMemory() if point.device.value == "cpu" else None
    inst = PointInstruments(
        task.profiling, point.label(), task.point_id, Path(task.run_dir), point.device.value
    )
    try:
        with inst.phase("build"):
            workload = build_workload(scenario, point, seed=task.seed)
        if point.device.value == "cuda":
            torch.cuda.reset_peak_memory_stats()
        printed = TimedOutput()
        m, contention = _timed(workload, task, inst, printed)
        changed = output_after_timing(workload)  # state carried across calls: no time shown
        if changed is not None:
            raise OutputChanged(changed)
        record_ok(row, scenario, point, workload, m, peak_memory(cpu_memory))
        row.extra.update(printed.facts())  # the time includes writing that output
        if contention is not None:
            row.contended = contention.contended
            row.extra.update(contention.as_dict())
        # GPU summary, input-bound hint, NVTX cost, --profile pass; never raises
        inst.finish(workload, m.median, row.extra, row.data_wait_frac)
    except Exception as err:
        row.update(**error_columns(scenario.path, err))
        if device_is_cuda(point):
            torch.cuda.empty_cache()
    finally:
        if workload is not None:
            workload.close()
        BACKENDS[point.backend].teardown()  # dynamo's caches: nothing leaks into the next point
    row.wall_s = time.perf_counter() - started
    return row


def _timed(
    workload: Workload, task: PointTask, inst: PointInstruments, printed: TimedOutput
) -> tuple[Measurement, Contention | None]:
    """Warm up, then time the steady state; the instruments switch to their timed phase (NVTX
    range, GPU sampler) only once warmup is over, and DataLoader waits count from there. Others'
    CPU over the timed steps comes back with the measurement (perfbench.measure.contention)."""
    feed = workload.feed
    cpu_marks: list[CpuSnapshot] = []

    def reset_counters() -> None:
        feed.wait_s = 0.0
        inst.before_timing()  # NVTX warmup -> measure, GPU sampler on
        printed.start()  # bytes the step writes to stdout/stderr while it is timed
        cpu_marks.append(
            snapshot()
        )  # others' CPU over the timed steps (perfbench.measure.contention)

    inst.start_warmup(workload.prepared.model, task.point.backend)
    try:
        m = measure(
            inst.wrap_step(workload.step),
            device=task.point.device.value,
            settings=task.timing,
            sync=workload.sync,
            before_timing=reset_counters,
        )
    finally:
        printed.stop()
        inst.after_timing()
    if cpu_marks:  # a point timed alone is flagged like an interleaved group's arms
        contention = judge_contention(cpu_marks[-1], snapshot(), float(task.point.threads))
        return m, contention
    return m, None


def peak_memory(cpu_memory: CpuPeakMemory | None) -> tuple[str, int]:
    """(kind, bytes) of the peak memory since `cpu_memory` started (CPU) or since the CUDA peak
    statistics were last reset."""
    if cpu_memory is not None:
        return cpu_memory.kind, cpu_memory.peak_bytes()
    return "cuda_max_allocated", torch.cuda.max_memory_allocated()


def record_ok(
    row: Row,
    scenario: Scenario,
    point: Point,
    workload: Workload,
    m: Measurement,
    peak: tuple[str, int],
) -> None:
    """An ok point's measurement columns, and the timing facts that only `extra` keeps; `peak`
    is (kind, bytes) from `peak_memory`."""
    feed = workload.feed
    total_step_s = sum(m.times_s) * m.number
    flops = None
    try:
        flops = count_flops(scenario, point, workload)
    except Exception as err:  # the flop count is a nicety: record why it is missing
        row.extra.update(flops_missing(err))  # "unknown" says which ops
    median = m.median
    lo, hi = m.median_ci()
    extra = row.extra
    extra.update(workload.info)
    extra.update(
        {
            facts.MEDIAN_CI_MS: [lo * 1e3, hi * 1e3],
            facts.NUMBER: m.number,
            facts.WARMUP_CALLS: m.warmup_calls,
            facts.STOP_REASON: m.stop_reason,
            facts.PREPARE_S: workload.prepare_s,
            facts.FLOPS_PER_STEP: flops,
            facts.PEAK_MEM_KIND: peak[0],
        }
    )
    warning = m.noise_warning()
    if warning:
        extra[facts.NOISE_WARNING] = warning
    row.update(
        status="ok",
        times_ms=[round(t * 1e3, 6) for t in m.times_s],
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
        peak_mem_bytes=peak[1],
        data_wait_frac=(
            feed.wait_s / total_step_s if feed.uses_loader and total_step_s > 0 else None
        ),
        timer_overhead_us=timer_overhead_s(point.device.value) * 1e6,
        timer=m.timer,
        correctness_only=_correctness_only(point),
    )
    # bytes a step must move (weights + batch): the advisor tells memory- from overhead-bound
    extra[facts.STEP_BYTES] = step_bytes(
        workload.model, None if feed.uses_loader else feed.next_batch()
    )
    if feed.uses_loader:
        extra[facts.TIMED_CALLS] = len(m.times_s) * m.number
        extra[facts.THROUGHPUT_BASIS] = "mean step time: DataLoader prefetch makes steps bimodal"


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
