"""The "panes users miss", computed from a Chrome/Perfetto trace written by torch.profiler.

torch-tb-profiler's overview (step-time breakdown, operator and kernel tables, memory curve) is
deprecated upstream, so the same views are computed here from the trace JSON alone, for the report.

Step-time breakdown follows the plugin's rule: each instant of a `ProfilerStep#N` window is given to
the highest-priority activity running then, in the order device compute (kernels) > memcpy > memset
> CUDA runtime > data wait (DataLoader `__next__`) > CPU-side host ops > idle. Device events are
clipped to the host step window; on an asynchronous GPU workload a kernel launched late in step N
can run in step N+1, so per-step figures may shift while the mean over steps stays right.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TOP_N = 15
MAX_TIMELINE_POINTS = 200

_KERNEL_CATS = {"kernel"}
_MEMCPY_CATS = {"gpu_memcpy"}
_MEMSET_CATS = {"gpu_memset"}
_RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "runtime"}
_HOST_CATS = {"cpu_op", "user_annotation", "python_function"}
# Priority order, highest first (torch-tb-profiler's overview order).
CATEGORIES = (
    "device_compute",
    "device_memcpy",
    "device_memset",
    "runtime",
    "data_wait",
    "cpu_host",
)
# Kernel names that show tensor-core (MMA) instructions; plain `gemm` alone does not (sgemm is SIMT).
_TENSOR_CORE = re.compile(
    r"hmma|wgmma|gmma|imma|tensorop|xmma|mma_|_mma|16816|1688|884gemm", re.IGNORECASE
)
_GEMM = re.compile(r"gemm|nvjet|matmul|cutlass", re.IGNORECASE)
_SIMT_GEMM = re.compile(r"[sd]gemm", re.IGNORECASE)  # fp32/fp64 SIMT cuBLAS kernels


def load_trace(path: Path) -> list[dict[str, Any]]:
    """The trace's event list (plain or gzipped JSON, dict with traceEvents or a bare list)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    return data.get("traceEvents", []) if isinstance(data, dict) else list(data)


def _is_data_wait(ev: dict[str, Any]) -> bool:
    return ev.get("cat") == "user_annotation" and "DataLoader" in ev.get("name", "")


def _is_step(ev: dict[str, Any]) -> bool:
    """A host step marker; on CUDA, Kineto repeats it on the GPU row as `gpu_user_annotation`,
    which must not count as a second step."""
    return ev.get("cat") == "user_annotation" and ev.get("name", "").startswith("ProfilerStep#")


def _category(ev: dict[str, Any]) -> str | None:
    cat = ev.get("cat")
    if cat in _KERNEL_CATS:
        return "device_compute"
    if cat in _MEMCPY_CATS:
        return "device_memcpy"
    if cat in _MEMSET_CATS:
        return "device_memset"
    if cat in _RUNTIME_CATS:
        return "runtime"
    if _is_data_wait(ev):
        return "data_wait"
    if cat in _HOST_CATS and not _is_step(ev):
        return "cpu_host"
    return None


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


def _durations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("ph") == "X" and "ts" in e and "dur" in e]


def step_breakdown(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean step time split by category (ms and % of the step), and the per-step splits."""
    spans = _durations(events)
    steps = sorted((e["ts"], e["ts"] + e["dur"]) for e in spans if _is_step(e))
    by_cat: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for ev in spans:
        cat = _category(ev)
        if cat is not None:
            by_cat[cat].append((ev["ts"], ev["ts"] + ev["dur"]))
    if not steps:  # no schedule: treat the host activity as one step
        host = [iv for cat in CATEGORIES for iv in by_cat[cat]]
        if not host:
            return {"n_steps": 0, "step_ms": None, "breakdown_ms": {}, "breakdown_pct": {}}
        steps = [(min(s for s, _ in host), max(e for _, e in host))]
    unions = {cat: _union(by_cat[cat]) for cat in CATEGORIES}
    per_step: list[dict[str, float]] = []
    for lo, hi in steps:
        covered: list[tuple[float, float]] = []
        split: dict[str, float] = {}
        for cat in CATEGORIES:
            clipped = [(max(s, lo), min(e, hi)) for s, e in unions[cat] if e > lo and s < hi]
            before = _length(covered)
            covered = _union(covered + clipped)
            split[cat] = (_length(covered) - before) / 1e3
        split["idle"] = max(0.0, (hi - lo) / 1e3 - sum(split.values()))
        split["step"] = (hi - lo) / 1e3
        per_step.append(split)
    n = len(per_step)
    mean = {k: sum(s[k] for s in per_step) / n for k in per_step[0]}
    step_ms = mean.pop("step")
    return {
        "n_steps": n,
        "step_ms": step_ms,
        "breakdown_ms": mean,
        "breakdown_pct": {k: (v / step_ms * 100 if step_ms > 0 else 0.0) for k, v in mean.items()},
        "per_step_ms": [{k: round(v, 6) for k, v in s.items()} for s in per_step],
    }


def top_operators(events: list[dict[str, Any]], n: int = TOP_N) -> list[dict[str, Any]]:
    """Host operators by self time (own duration minus nested ops on the same thread)."""
    ops = [e for e in _durations(events) if e.get("cat") == "cpu_op"]
    by_thread: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for ev in ops:
        by_thread[(ev.get("pid"), ev.get("tid"))].append(ev)
    agg: dict[str, dict[str, float]] = defaultdict(lambda: {"calls": 0, "self": 0.0, "total": 0.0})
    for thread_ops in by_thread.values():
        thread_ops.sort(key=lambda e: (e["ts"], -e["dur"]))
        selfs = [e["dur"] for e in thread_ops]
        stack: list[int] = []
        for i, ev in enumerate(thread_ops):
            while stack and thread_ops[stack[-1]]["ts"] + thread_ops[stack[-1]]["dur"] <= ev["ts"]:
                stack.pop()
            if stack:
                selfs[stack[-1]] -= ev["dur"]
            stack.append(i)
        for ev, self_us in zip(thread_ops, selfs, strict=True):
            row = agg[ev["name"]]
            row["calls"] += 1
            row["self"] += max(0.0, self_us)
            row["total"] += ev["dur"]
    rows = sorted(agg.items(), key=lambda kv: kv[1]["self"], reverse=True)[:n]
    return [
        {
            "name": name,
            "calls": int(r["calls"]),
            "self_ms": r["self"] / 1e3,
            "total_ms": r["total"] / 1e3,
        }
        for name, r in rows
    ]


def kernel_uses_tensor_cores(name: str) -> bool | None:
    """True when the name shows MMA/tensor-op instructions, None for a GEMM whose name does not
    say (cuBLAS `nvjet_*` kernels on Hopper, for one), False for any other kernel."""
    if _TENSOR_CORE.search(name):
        return True
    if _SIMT_GEMM.search(name):
        return False
    return None if _GEMM.search(name) else False


def top_kernels(events: list[dict[str, Any]], n: int = TOP_N) -> dict[str, Any]:
    """Device kernels by total time, with tensor-core use read from the kernel name."""
    kernels = [e for e in _durations(events) if e.get("cat") in _KERNEL_CATS]
    agg: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "total": 0.0, "occ": []})
    for ev in kernels:
        row = agg[ev["name"]]
        row["calls"] += 1
        row["total"] += ev["dur"]
        occ = ev.get("args", {}).get("est. achieved occupancy %")
        if isinstance(occ, (int, float)):
            row["occ"].append(occ)
    total = sum(r["total"] for r in agg.values())
    tc_time = sum(r["total"] for k, r in agg.items() if kernel_uses_tensor_cores(k))
    rows = sorted(agg.items(), key=lambda kv: kv[1]["total"], reverse=True)[:n]
    return {
        "total_ms": total / 1e3,
        "tensor_core_pct": tc_time / total * 100 if total > 0 else None,
        "kernels": [
            {
                "name": name,
                "calls": r["calls"],
                "total_ms": r["total"] / 1e3,
                "mean_us": r["total"] / r["calls"],
                "pct": r["total"] / total * 100 if total > 0 else 0.0,
                "tensor_core": kernel_uses_tensor_cores(name),
                "mean_occupancy_pct": sum(r["occ"]) / len(r["occ"]) if r["occ"] else None,
            }
            for name, r in rows
        ],
    }


def _device_name(args: dict[str, Any]) -> str:
    kind = args.get("Device Type")
    if kind == 0:
        return "cpu"
    if kind == 1:
        return f"cuda:{args.get('Device Id', 0)}"
    return f"device{kind}:{args.get('Device Id', 0)}"


def _downsample(points: list[tuple[float, int]], limit: int) -> list[list[float]]:
    """At most `limit` points, keeping the highest value per bucket so the peak survives."""
    if len(points) <= limit:
        return [[round(t, 4), b] for t, b in points]
    size = -(-len(points) // limit)
    out = []
    for i in range(0, len(points), size):
        t, b = max(points[i : i + size], key=lambda p: p[1])
        out.append([round(t, 4), b])
    return out


def memory_timeline(
    events: list[dict[str, Any]], limit: int = MAX_TIMELINE_POINTS
) -> dict[str, Any]:
    """Peak allocated bytes per device and the allocation curve (ms from the first event)."""
    mem = sorted(
        (
            e
            for e in events
            if e.get("name") == "[memory]" and "Total Allocated" in e.get("args", {})
        ),
        key=lambda e: e["ts"],
    )
    if not mem:
        return {"peak_allocated_bytes": {}, "timeline": {}, "n_events": 0}
    t0 = min(e["ts"] for e in _durations(events)) if _durations(events) else mem[0]["ts"]
    curves: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for ev in mem:
        args = ev["args"]
        curves[_device_name(args)].append(((ev["ts"] - t0) / 1e3, int(args["Total Allocated"])))
    return {
        "peak_allocated_bytes": {d: max(b for _, b in pts) for d, pts in curves.items()},
        "timeline": {d: _downsample(pts, limit) for d, pts in curves.items()},
        "n_events": len(mem),
    }


def summarize_trace(trace_path: Path) -> dict[str, Any]:
    """All the overview panes for one trace, JSON-able (times in ms unless named otherwise)."""
    events = load_trace(trace_path)
    kernels = top_kernels(events)
    return {
        "steps": step_breakdown(events),
        "top_ops": top_operators(events),
        "top_kernels": kernels["kernels"],
        "kernel_total_ms": kernels["total_ms"],
        "tensor_core_pct": kernels["tensor_core_pct"],
        "memory": memory_timeline(events),
        "n_events": len(events),
    }
