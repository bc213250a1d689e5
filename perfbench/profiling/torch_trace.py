"""A separate torch.profiler pass over one point's step: Chrome/Perfetto trace, TensorBoard logs,
top operators and the overview panes (trace_summary).

Runs after timing, never during it (measurement rule 5): the profiler's per-op bookkeeping and the
memory recording slow every op, so none of its times are results; the trace is for finding why.

One pass writes both artefacts: Kineto can save a trace only once, so the TensorBoard handler
(`tensorboard_trace_handler`, whose `*.pt.trace.json` files the torch-tb-profiler plugin lists
under `tensorboard --logdir RUN_DIR/tb`) writes it, and that same file is copied to
`traces/<label>.json`, which Perfetto (ui.perfetto.dev) and chrome://tracing open offline.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from perfbench.profiling.trace_summary import TOP_N, summarize_trace
from perfbench.results import layout


def safe_label(label: str) -> str:
    """A file-name-safe version of a point label (letters, digits, `.`, `_`, `-`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "point"


def _activities(device: str) -> list[ProfilerActivity]:
    acts = [ProfilerActivity.CPU]
    if device.startswith("cuda") and torch.cuda.is_available():
        acts.append(ProfilerActivity.CUDA)
    return acts


def _op_rows(prof: profile, by_device: bool, n: int = TOP_N) -> list[dict[str, Any]]:
    """Top operators from the profiler's own aggregation (self time, so nesting is not counted
    twice). Times in ms; memory in bytes, as allocated by the op itself."""
    rows = []
    for ev in prof.key_averages():
        if ev.key.startswith("ProfilerStep"):
            continue
        rows.append(
            {
                "name": ev.key,
                "calls": int(ev.count),
                "self_cpu_ms": ev.self_cpu_time_total / 1e3,
                "cpu_total_ms": ev.cpu_time_total / 1e3,
                "self_device_ms": ev.self_device_time_total / 1e3,
                "device_total_ms": ev.device_time_total / 1e3,
                "self_cpu_mem_bytes": int(ev.self_cpu_memory_usage),
                "self_device_mem_bytes": int(ev.self_device_memory_usage),
            }
        )
    key = "self_device_ms" if by_device else "self_cpu_ms"
    rows = [r for r in rows if r[key] > 0]
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:n]


def profile_workload(
    step: Callable[[], Any],
    sync: Callable[[], None],
    out_dir: Path,
    label: str,
    device: str,
    wait: int = 1,
    warmup: int = 1,
    active: int = 3,
    record_shapes: bool = True,
    profile_memory: bool = True,
) -> dict[str, Any]:
    """Profile `wait + warmup + active` calls of `step` and write the artefacts under `out_dir`
    (the run folder). Returns JSON-able facts with paths relative to `out_dir`. Raises what the
    step or the profiler raises: the caller records it against the point."""
    if active < 1:
        raise ValueError(f"active must be >= 1, got {active}")
    out_dir = Path(out_dir)
    name = safe_label(label)
    tb_dir = out_dir / layout.TB / name
    trace_path = out_dir / layout.TRACES / f"{name}.json"
    tb_dir.mkdir(parents=True, exist_ok=True)
    trace_path.parent.mkdir(parents=True, exist_ok=True)
    before = set(tb_dir.glob("*.pt.trace.json*"))
    tb_handler = tensorboard_trace_handler(str(tb_dir), worker_name=name)
    written: list[Path] = []

    def on_trace_ready(prof: profile) -> None:
        tb_handler(prof)
        new = sorted(set(tb_dir.glob("*.pt.trace.json*")) - before - set(written))
        written.extend(new)

    started = time.perf_counter()
    with profile(
        activities=_activities(device),
        schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=1),
        on_trace_ready=on_trace_ready,
        record_shapes=record_shapes,
        profile_memory=profile_memory,
        with_stack=False,
    ) as prof:
        for _ in range(wait + warmup + active):
            step()
            sync()
            prof.step()
    profile_s = time.perf_counter() - started
    if not written:
        raise RuntimeError(f"torch.profiler wrote no trace into {tb_dir}")
    shutil.copyfile(written[-1], trace_path)
    on_device = len(_activities(device)) > 1
    return {
        "trace": trace_path.relative_to(out_dir).as_posix(),
        "tb_dir": tb_dir.relative_to(out_dir).as_posix(),
        "tb_logdir": layout.TB,
        "schedule": {"wait": wait, "warmup": warmup, "active": active},
        "profile_s": profile_s,
        "top_ops_cpu": _op_rows(prof, by_device=False),
        "top_ops_device": _op_rows(prof, by_device=True) if on_device else [],
        "summary": summarize_trace(trace_path),
    }
