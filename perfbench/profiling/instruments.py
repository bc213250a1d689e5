"""The glue between one point's measurement (perfbench.measure.point) and the profiling instruments, so
the harness needs only a few calls: phases, the wrapped step, before/after timing, `finish`.

Order inside a point, and why:
  build (+compile)  ->  warmup  ->  measure [GPU sampler running]  ->  row written
  ->  NVTX cost measurement  ->  profile pass
Everything after "measure" runs once the timed numbers and the data-wait counter are final, so it
cannot change them. Nothing in `finish` raises: a profiling failure is recorded in `extra`, the
point stays ok.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from perfbench.backends import BACKENDS
from perfbench.profiling import nvtx_ranges
from perfbench.profiling.gpu_sampler import GpuSampler, input_bound_hint
from perfbench.profiling.nvtx_ranges import range_name
from perfbench.results import facts, layout
from perfbench.results.axes import Point, plain

if TYPE_CHECKING:
    from perfbench.results.row import Row

# profiled steps per point: the op diff's noise floor is the spread over these (op_diff.py)
PROFILE_STEPS = 5

# `--profile-only` filters: ((axis, allowed typed values), ...), at most one entry per axis
ProfileFilter = tuple[tuple[str, tuple[Any, ...]], ...]


def profile_selects(point: Point, only: ProfileFilter) -> bool:
    """Whether `--profile-only` keeps this point's profiler pass: on every filtered axis its value
    is one of those listed (no filter: every point). A pass costs seconds and a trace per point, so
    a wide sweep is still timed whole but profiled only where someone will open the trace."""
    return all(getattr(point, axis) in values for axis, values in only)


@dataclass(frozen=True)
class ProfileOptions:
    """What the command line asked for (`--profile`, `--profile-only`, `--nvtx`, `--nvtx-modules`)."""

    profile: bool = False
    nvtx: bool = False
    nvtx_modules: bool = False
    gpu_interval_s: float = 0.05
    nvtx_overhead_s: float = 1.0  # time spent measuring the NVTX cost per point (both arms)
    profile_only: ProfileFilter = ()

    def for_point(self, point: Point) -> ProfileOptions:
        """These options for one point: no profiler pass where `--profile-only` leaves it out."""
        if self.profile and not profile_selects(point, self.profile_only):
            return replace(self, profile=False)
        return self


class PointInstruments:
    """Per-point state: open NVTX ranges, module hooks, the GPU sampler."""

    def __init__(
        self, options: ProfileOptions, label: str, point_id: int, run_dir: Path, device: str
    ) -> None:
        self.options = options
        self.label = label
        self.point_id = point_id
        self.run_dir = Path(run_dir)
        self.device = device
        self.phase_name = "warmup"
        self._open: list[str] = []
        self._handles: list[Any] = []
        self._sampler: GpuSampler | None = None
        self._module_note: str | None = None
        nvtx_ranges.set_active_point(label if options.nvtx else None)

    @contextlib.contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        """`with inst.phase("build"):` -> NVTX range `<label>/build` when --nvtx."""
        with nvtx_ranges.nvtx_range(range_name(self.label, phase), enabled=self.options.nvtx):
            yield

    def _push(self, phase: str) -> None:
        if self.options.nvtx:
            name = range_name(self.label, phase)
            nvtx_ranges.push(name)
            self._open.append(name)

    def _pop_all(self) -> None:
        while self._open:
            self._open.pop()
            nvtx_ranges.pop()

    def wrap_step(self, step: Callable[[], Any]) -> Callable[[], Any]:
        """The step the timer repeats: unchanged without --nvtx (no added call), else inside a
        `<label>/<phase>/step` range."""
        if not self.options.nvtx:
            return step
        push, pop = nvtx_ranges.push, nvtx_ranges.pop

        def step_in_range() -> Any:
            push(range_name(self.label, self.phase_name, step=True))
            try:
                return step()
            finally:
                pop()

        return step_in_range

    def start_warmup(self, model: Any, backend: str) -> None:
        """Open the warmup range; add per-module ranges (never on compiled models: hooks added
        after compiling force recompiles and graph breaks, which would change what is timed)."""
        if self.options.nvtx and self.options.nvtx_modules:
            if BACKENDS[backend].process_wide_state:  # compile backends
                self._module_note = f"no module ranges: backend {backend} compiles the model"
            elif isinstance(model, nn.Module):
                self._handles = nvtx_ranges.add_module_ranges(model)
            else:
                self._module_note = "no module ranges: the prepared model is not an nn.Module"
        self.phase_name = "warmup"
        self._push("warmup")

    def before_timing(self) -> None:
        """Between warm-up and timing: switch ranges to `measure`, start the GPU sampler."""
        self._pop_all()
        self.phase_name = "measure"
        self._push("measure")
        if self.device.startswith("cuda"):
            self._sampler = GpuSampler(_nvml_index(), interval_s=self.options.gpu_interval_s)
            self._sampler.start()

    def after_timing(self) -> None:
        """Stop the sampler, close ranges, remove module hooks (also on failure)."""
        if self._sampler is not None:
            self._sampler.stop()
        self._pop_all()
        nvtx_ranges.remove_module_ranges(self._handles)

    def finish(
        self,
        workload: Any,
        median_s: float,
        extra: dict[str, Any],
        data_wait_frac: float | None = None,
    ) -> None:
        """After the row's numbers are final: GPU summary, input-bound hint, NVTX cost, profile
        pass -> `extra`."""
        util = None
        if self._sampler is not None:
            extra[facts.GPU] = self._gpu_summary(self._sampler)
            util = extra[facts.GPU].get("mean_util_pct")
        hint = input_bound_hint(data_wait_frac, util)
        if hint:
            extra[facts.INPUT_BOUND_HINT] = hint
        if self._module_note:
            extra[facts.NVTX_MODULES] = self._module_note
        if self.options.nvtx:
            extra[facts.NVTX_OVERHEAD] = _guard(lambda: self._nvtx_overhead(workload, median_s))
        if self.options.profile:
            extra[facts.PROFILE] = _guard(lambda: self._profile(workload))

    def _gpu_summary(self, sampler: GpuSampler) -> dict[str, Any]:
        summary = sampler.summary()
        sampler.close()
        if sampler.available:
            path = sampler.write_timeline(self.run_dir / layout.GPU / f"{self.point_id}.csv")
            summary["timeline"] = path.relative_to(self.run_dir).as_posix()
        return summary

    def _nvtx_overhead(self, workload: Any, median_s: float) -> dict[str, Any]:
        reps = int(max(5, min(50, self.options.nvtx_overhead_s / 2 / max(median_s, 1e-6))))
        model = workload.prepared.model
        if not self.options.nvtx_modules or self._module_note or not isinstance(model, nn.Module):
            model = None
        return nvtx_ranges.measure_nvtx_overhead(workload.step, workload.sync, reps, model=model)

    def _profile(self, workload: Any) -> dict[str, Any]:
        from perfbench.profiling.kernel_profile import kernel_profiling
        from perfbench.profiling.torch_trace import profile_workload

        self.phase_name = "profile"
        # inductor's CPU kernels are recompiled with record-functions for this pass only
        with self.phase("profile"), kernel_profiling(workload) as (step, kernel_facts):
            result = profile_workload(
                self.wrap_step(step),
                workload.sync,
                self.run_dir,
                f"{self.point_id:03d}-{self.label}",
                self.device,
                active=PROFILE_STEPS,
            )
        if kernel_facts:
            result["kernel_profile"] = kernel_facts
        return result


def _nvml_index() -> int:
    """NVML's index of the current CUDA device: NVML ignores CUDA_VISIBLE_DEVICES, so device 0
    of this process may be NVML device 3. torch keeps that mapping (private helper; 0 if absent)."""
    try:
        import torch

        return int(torch.cuda._get_nvml_device_index(torch.cuda.current_device()))
    except Exception:  # no CUDA, or a torch without the helper: the first GPU
        return 0


def _guard(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run an instrument; its failure becomes {"error": ...} instead of failing the point."""
    start = time.perf_counter()
    try:
        return fn()
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}", "after_s": time.perf_counter() - start}


# -- run level (parent process) ------------------------------------------------------------------


def run_meta(options: ProfileOptions, flamegraph: bool, native: bool) -> dict[str, Any]:
    """What run.json says about profiling: switches, `--profile-only` filters, NVTX backend, GPU
    sampler availability."""
    sampler = GpuSampler()  # a probe: starts no thread
    sampler.close()
    return {
        "profile": options.profile,
        # points profiled: those whose value on each axis here is listed (None: every point)
        "profile_only": {axis: [plain(v) for v in values] for axis, values in options.profile_only}
        or None,
        "nvtx": options.nvtx,
        "nvtx_modules": options.nvtx_modules,
        "nvtx_backend": nvtx_ranges.backend_name(),
        "gpu_sampler": "available" if sampler.available else sampler.reason,
        "flamegraph": flamegraph,
        "native": native,
        "tensorboard": f"tensorboard --logdir RUN_DIR/{layout.TB} (torch-tb-profiler plugin)"
        if options.profile
        else None,
    }


def note_row(meta: dict[str, Any], row: Row, label: str, scenario_name: str) -> None:
    """Before the row is written: add the `nsys profile` command that records this point to its
    `extra`, and copy its NVTX cost into run.json's record (`meta["nvtx_overhead"]`), keeping the
    worst direct estimate, the figure the < 1% rule is checked against."""
    if row.status != "skipped" and row.command:
        out_name = f"{scenario_name}-{row.point_id or 0:03d}"
        row.extra[facts.NSYS_COMMAND] = nvtx_ranges.nsys_command(row.command, out_name, label)
    overhead = row.extra.get(facts.NVTX_OVERHEAD)
    if not isinstance(overhead, dict) or "overhead_pct_direct" not in overhead:
        return
    record = meta.setdefault("nvtx_overhead", {"by_point": {}, "max_overhead_pct_direct": 0.0})
    keys = ("off_ms", "on_ms", "overhead_pct", "overhead_pct_direct", "range_pair_us", "reps")
    record["by_point"][label] = {k: overhead.get(k) for k in keys}
    record["max_overhead_pct_direct"] = max(
        record["max_overhead_pct_direct"], overhead["overhead_pct_direct"]
    )
