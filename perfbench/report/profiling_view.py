"""The profiling section of the report and the GPU view, from the run folder alone: top operators,
trace and TensorBoard links, flame graphs, graph breaks, backend facts (the Triton coverage table),
and the NVML sampler's timelines and summaries. Everything here reads a row's `extra`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.report import facts_view
from perfbench.results import facts, layout


@dataclass
class Profiling:
    """Everything the profiling section shows; paths are relative to the run folder."""

    top_ops: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    traces: list[tuple[str, str]] = field(default_factory=list)
    tb_dir: str | None = None
    flamegraphs: list[tuple[str, str]] = field(default_factory=list)  # (relative path, svg text)
    graph_breaks: list[tuple[str, Any, list[str]]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)  # (backend or point, facts text)
    point_facts: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    breakdown: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # step time, %
    breakdown_columns: list[str] = field(default_factory=list)  # categories any point shows
    nsys: list[tuple[str, str]] = field(default_factory=list)  # (point, nsys command)
    coverage: list[dict[str, str]] = field(default_factory=list)  # triton backend, per point


# `extra` keys shown as plain per-point facts; anything else unknown is shown too, these first.
FACT_KEYS = (facts.REWRITES, facts.INT8_IMPL)
# the triton backend's keys, shown in their own table (`coverage_row`)
COVERAGE_KEYS = {facts.COVERAGE, facts.PATTERNS, facts.LOSS_CROSS_ENTROPY, facts.SOFTMAX_DIM_AT_RUN}
# shown elsewhere (charts, profiling, notes, tracebacks) or timing bookkeeping of the harness
HIDDEN_EXTRA = {
    facts.TIMES_MS, facts.PROFILE, facts.GPU, facts.GRAPH_BREAKS, facts.GRAPH_BREAK_REASONS,
    facts.NOISE_WARNING, facts.TRACEBACK, facts.MEDIAN_CI_MS, facts.NUMBER, facts.WARMUP_CALLS,
    facts.STOP_REASON, facts.PREPARE_S, facts.FLOPS_PER_STEP, facts.PEAK_MEM_KIND,
    facts.TIMED_CALLS, facts.NSYS_COMMAND, facts.INPUT_BOUND_HINT, facts.FLOPS_UNKNOWN,
}  # fmt: skip


# step-breakdown categories that only a GPU has (kernels, copies, the CUDA runtime/driver API):
# a CPU point's 0.0% there is no finding, so its row leaves them out
GPU_CATEGORIES = ("device_compute", "device_memcpy", "device_memset", "runtime")


def is_gpu(row: dict[str, Any]) -> bool:
    """The point ran on a GPU (its `device` axis is cuda or cuda:N)."""
    return str(row.get("device") or "").startswith("cuda")


def profiling(df: pd.DataFrame, run_path: Path) -> Profiling:
    """Collect top ops, trace links, TensorBoard dir, flame graphs and graph breaks.

    GPU-only content (Nsight Systems commands, the device columns of the step breakdown) is
    kept for GPU points only: on a CPU point `nsys --trace=cuda` records nothing."""
    prof = Profiling()
    for r in df.to_dict("records"):
        label, extra = r["label"], r["extra"]
        if isinstance(extra.get(facts.PROFILE), dict):
            _add_profile(prof, label, extra[facts.PROFILE], run_path, is_gpu(r))
        if isinstance(extra.get(facts.NSYS_COMMAND), str) and is_gpu(r):
            prof.nsys.append((label, extra[facts.NSYS_COMMAND]))
        breaks = extra.get(facts.GRAPH_BREAKS)
        reasons = extra.get(facts.GRAPH_BREAK_REASONS) or []
        if breaks not in (None, 0) or reasons:
            prof.graph_breaks.append((label, breaks, [str(x) for x in reasons]))
        _add_facts(prof, label, extra, str(r.get("backend") or ""))
    prof.facts = facts_view.grouped(prof.point_facts)
    for _, pct in prof.breakdown:
        prof.breakdown_columns += [k for k in pct if k not in prof.breakdown_columns]
    if prof.tb_dir is None and (run_path / layout.TB).is_dir():
        prof.tb_dir = layout.TB
    fg_dir = run_path / layout.FLAMEGRAPHS
    if fg_dir.is_dir():
        for svg in sorted(fg_dir.glob("*.svg")):
            prof.flamegraphs.append(
                (f"{layout.FLAMEGRAPHS}/{svg.name}", svg.read_text(errors="replace"))
            )
    return prof


def _add_profile(
    prof: Profiling, label: str, info: dict[str, Any], run_path: Path, gpu: bool
) -> None:
    """One point's --profile pass: its top ops, trace link, TensorBoard dir, step breakdown."""
    summary = info.get("summary") if isinstance(info.get("summary"), dict) else {}
    # per side when the harness split them, else the one list it wrote (never both)
    sides = [(k, info.get(k)) for k in ("top_ops_device", "top_ops_cpu")]
    sides = [(k, v) for k, v in sides if isinstance(v, list) and v]
    if not sides:
        ops = info.get("top_ops") or summary.get("top_ops")
        sides = [("top_ops", ops)] if isinstance(ops, list) and ops else []
    for key, ops in sides:
        side = {"top_ops_device": " (device)", "top_ops_cpu": " (CPU)"}.get(key, "")
        prof.top_ops.append((f"{label}{side}", *_op_table(ops)))
    if isinstance(info.get("trace"), str):
        prof.traces.append((label, _relative(info["trace"], run_path)))
    tb = info.get("tb_logdir") or info.get("tb_dir")
    if isinstance(tb, str) and prof.tb_dir is None:
        prof.tb_dir = _relative(tb, run_path)
    steps = summary.get("steps") if isinstance(summary.get("steps"), dict) else {}
    pct = steps.get("breakdown_pct")
    if isinstance(pct, dict) and pct:
        keep = {str(k): v for k, v in pct.items() if gpu or str(k) not in GPU_CATEGORIES}
        prof.breakdown.append((label, keep))


def _add_facts(prof: Profiling, label: str, extra: dict[str, Any], backend: str) -> None:
    """The Triton coverage table, and the `extra` keys no other section shows, as facts."""
    has_coverage = isinstance(extra.get(facts.COVERAGE), dict)
    if has_coverage:
        prof.coverage.append(coverage_row(label, extra))
    shown = [k for k in FACT_KEYS if k in extra]
    skip = HIDDEN_EXTRA | set(FACT_KEYS) | (COVERAGE_KEYS if has_coverage else set())
    shown += sorted(k for k in extra if k not in skip)
    point_facts = facts_view.point_facts(extra, shown)
    if point_facts:
        prof.point_facts.append((backend, label, point_facts))


def _counts(counts: Any) -> str:
    """{"kernel": 12, "eager": 1} -> "kernel 12, eager 1"."""
    if not isinstance(counts, dict) or not counts:
        return ""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())


AT_RUN = (
    (facts.LOSS_CROSS_ENTROPY, "F.cross_entropy"),
    (facts.SOFTMAX_DIM_AT_RUN, "softmax, dim >= 0"),
)


def coverage_row(label: str, extra: dict[str, Any]) -> dict[str, str]:
    """The triton backend's coverage of one point in words: what ran in our kernels, what stayed
    eager and why (no backward in train mode, kernel not importable)."""
    cov = extra[facts.COVERAGE]
    patterns = []
    for name, c in (extra.get(facts.PATTERNS) or {}).items():
        if not isinstance(c, dict):
            continue
        why = [
            f"{c[k]} eager ({k.removeprefix('eager_').replace('_', ' ')})"
            for k in ("eager_no_backward", "eager_no_kernel")
            if c.get(k)
        ]
        found = f"{name} {c.get('replaced', 0)}/{c.get('candidates', 0)}"
        patterns.append(found + (f" ({', '.join(why)})" if why else ""))
    pct = cov.get("ops_in_our_kernels_pct")
    at_run = [f"{what}: {_counts(extra[key])}" for key, what in AT_RUN if extra.get(key)]
    return {
        "point": label,
        "pct": "" if pct is None else f"{pct:g}%",
        "replaced": f"{cov.get('replaced', 0)}/{cov.get('candidates', 0)}",
        "patterns": "; ".join(patterns) or "no supported pattern found",
        "at_run": "; ".join(at_run),
        "basis": str(cov.get("basis", "")),
    }


# top-op columns worth a reviewer's eye, in this order; others (memory bytes ...) are left out
OP_COLUMNS = ("name", "calls", "self_device_ms", "device_total_ms", "self_cpu_ms", "cpu_total_ms",
              "self_ms", "total_ms")  # fmt: skip
MAX_OPS = 10


def _op_table(ops: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """top_ops as a header and rows, whether the harness wrote dicts or plain strings.

    Columns that are zero for every op (device times on a CPU run) are dropped."""
    ops = ops[:MAX_OPS]
    if all(isinstance(o, dict) for o in ops):
        keys: list[str] = []
        for o in ops:
            keys += [k for k in o if k not in keys]
        header = [k for k in OP_COLUMNS if k in keys] or keys
        header = [k for k in header if any(o.get(k) not in (None, 0, 0.0, "") for o in ops)]
        return header, [[_short(o.get(k, "")) for k in header] for o in ops]
    return ["op"], [[_short(o)] for o in ops[:MAX_OPS]]


def _relative(path: str, run_path: Path) -> str:
    """A link that works when the run folder is moved: relative to the folder when inside it."""
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(run_path.resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


def _short(value: Any, limit: int = 300) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gpu_timelines(df: pd.DataFrame, run_path: Path) -> list[tuple[str, list[float], list[float]]]:
    """(label, seconds, utilisation %) per ok point whose extra.gpu.timeline is readable.

    The harness writes the sampler's samples to a CSV in the run folder (`gpu/<point>.csv`, columns
    t, util_pct, ...) and puts its relative path in `timeline`; inline lists [[t, util], ...] or
    {"t": [...], "util_pct": [...]} are read too, so the report does not break over the format.
    """
    out = []
    for r in df[df["status"] == "ok"].to_dict("records"):
        gpu = r["extra"].get(facts.GPU)
        tl = gpu.get("timeline") if isinstance(gpu, dict) else None
        try:
            ts, us = _timeline(tl, run_path)
        except (OSError, TypeError, ValueError, IndexError, KeyError, pd.errors.ParserError):
            continue
        if ts and len(ts) == len(us):
            out.append((r["label"], ts, us))
    return out


def _timeline(tl: Any, run_path: Path) -> tuple[list[float], list[float]]:
    if isinstance(tl, str):
        csv = pd.read_csv(run_path / tl)
        csv = csv[["t", "util_pct"]].apply(pd.to_numeric, errors="coerce").dropna()
        return csv["t"].tolist(), csv["util_pct"].tolist()
    if isinstance(tl, dict):
        ts = [float(x) for x in tl.get("t", [])]
        return ts, [float(x) for x in tl.get("util_pct", tl.get("util", []))]
    ts, us = [], []
    for item in tl or []:
        if isinstance(item, dict):
            ts.append(float(item["t"]))
            us.append(float(item.get("util_pct", item.get("util"))))
        else:
            ts.append(float(item[0]))
            us.append(float(item[1]))
    return ts, us


GPU_STATS = (
    "mean_util_pct",
    "max_util_pct",
    "peak_mem_used_bytes",
    "mean_power_w",
    "mean_sm_clock_mhz",
)


def gpu_stats(df: pd.DataFrame) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """Per ok point, the sampler's summary while the point was timed; and why there is none."""
    rows, unavailable = [], None
    for r in df[df["status"] == "ok"].to_dict("records"):
        gpu = r["extra"].get(facts.GPU)
        if not isinstance(gpu, dict):
            continue
        if gpu.get("unavailable"):
            unavailable = str(gpu["unavailable"])
        elif any(gpu.get(k) is not None for k in GPU_STATS):
            rows.append((r["label"], {k: gpu.get(k) for k in GPU_STATS}))
    return rows, unavailable
