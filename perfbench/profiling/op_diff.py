"""Op-level diff of two profiler traces of the same workload: which ops a backend fused away,
which it added, which got slower, each with a noise floor from the profiled steps.

Input is what the `--profile` pass writes (`traces/<NNN>-<label>.json`, torch.profiler's Chrome
trace of `active` steps, each inside a `ProfilerStep#N` window). With pandas over its events:

1. Host side (`side="host"`): every `cpu_op` and `user_annotation` event gets its *self* time (its
   duration minus the events nested in it on the same thread), and is put into the step window it
   starts in. Device side (`side="device"`, CUDA traces): every kernel, memcpy and memset gets its
   duration, and the step of the host launch it correlates with (a kernel can run after its
   launching step ends).
2. Per op name: self time in each step, so `ms_per_step` is the mean over the profiled steps
   ("profile several steps, scale to one") and the spread over steps is known.
3. Per op, the two sides are joined. `status`: `vanished` (called in A, never in B: fused away or
   replaced), `appeared` (only in B: a compiled region, an inductor kernel, a quantized linear),
   and for ops on both sides `slower` / `faster` when the difference exceeds the noise floor, else
   `same`. The noise floor of an op is the larger of its two step-to-step ranges (max - min of the
   per-step self time), at least `MIN_FLOOR_MS`: a difference the op's own steps can show apart.

Which aten ops went into a generated kernel is read from inductor itself, not guessed from which
names vanished: inductor names a fused kernel after the `original_aten` ops of the FX nodes it was
made from, sorted and joined with `_` (`torch._inductor.utils.get_fused_kernel_name` with the
default `descriptive_names="original_aten"`), so `cpp_fused_addmm_relu_0` holds parts of
`aten.addmm` and `aten.relu`. `kernel_ops` splits that name back into real aten op names (checked
against `torch.ops.aten`). On a CPU these kernels only appear in a trace when inductor compiled
them with `torch._inductor.config.cpp.enable_kernel_profile` (see `kernel_profile.py`); their
events are then named `graph_<g>_cpp_fused_..._<n>`.

HolisticTraceAnalysis' `TraceDiff` (`hta.trace_diff`) serves GPU traces better: it compares kernels
across ranks and streams, attributes them to the CPU ops that launched them, and handles multi-
rank distributed traces; we need only one process's trace, on a CPU as well as a GPU, with a noise
floor per op, which it does not give. On a GPU run, load the two `traces/*.json` into HTA for the
stream- and rank-level view.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.profiling.trace_summary import load_trace

HOST_CATS = {"cpu_op", "user_annotation"}
DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "runtime"}
MIN_FLOOR_MS = 0.001  # 1 µs: below the profiler's own per-event cost, nothing is a difference

# inductor's generated kernel names: an optional `graph_<g>_` prefix (enable_kernel_profile), the
# kernel kind, `fused_`, the sorted original aten ops joined with `_`, and a counter
_KERNEL = re.compile(
    r"^(?:graph_\d+_)?(?P<kind>cpp|triton_(?:poi|per|red|tem|for|mix))_fused_(?P<ops>.+?)_(?P<n>\d+)$"
)
_COMPILED_CALL = re.compile(r"^## Call CompiledFxGraph (\S+) ##$")
_STEP = re.compile(r"^ProfilerStep#\d+$")
# events of torch.compile's own runtime around the generated code (guards, wrappers)
_RUNTIME_PREFIXES = (
    "Torch-Compiled Region",
    "TorchDynamo",
    "CompiledFxGraph",
    "AOTDispatcher",
    "Pregraph bytecode",
    "CompiledFunction",
)

COLUMNS = [
    "op",
    "kind",
    "status",
    "a_ms_per_step",
    "b_ms_per_step",
    "diff_ms_per_step",
    "noise_floor_ms",
    "a_calls_per_step",
    "b_calls_per_step",
    "a_shapes",
    "b_shapes",
    "fused_from",
    "fused_into",
]


@dataclass
class OpSteps:
    """One trace reduced to ops: `self_ms` (op x step, ms), `calls` (op x step), the most common
    input shapes per op, each step's wall time, and the trace it came from."""

    self_ms: pd.DataFrame
    calls: pd.DataFrame
    shapes: dict[str, str]
    step_ms: list[float]
    source: str
    # op -> ops nested in it or around it (aten::linear <-> aten::addmm, aten::t), for fused_into
    related: dict[str, set[str]] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.step_ms)


def op_name(name: str) -> str:
    """A name comparable across traces: drop inductor's per-graph `graph_<g>_` prefix and the
    hash in `## Call CompiledFxGraph <hash> ##`."""
    if _COMPILED_CALL.match(name):
        return "CompiledFxGraph (call)"
    return re.sub(r"^graph_\d+_(?=(cpp|triton)_)", "", name)


def op_kind(name: str) -> str:
    """`inductor kernel`, `compiled-graph runtime` (guards, wrappers), `op` or `other`."""
    if _KERNEL.match(name):
        return "inductor kernel"
    if name.startswith(_RUNTIME_PREFIXES):
        return "compiled-graph runtime"
    if name.startswith(("aten::", "quantized::", "mkldnn::", "onednn::", "torchao::")):
        return "op"
    return "other"


@functools.lru_cache(maxsize=4096)
def _is_op(name: str) -> bool:
    import torch

    if not name or name.startswith("__"):
        return False
    for namespace in (torch.ops.aten, torch.ops.prims):
        try:
            getattr(namespace, name)
        except (AttributeError, RuntimeError):
            continue
        return True
    return False


def kernel_ops(name: str) -> list[str] | None:
    """The aten ops inductor says a generated kernel was made from, or None for another name.

    `cpp_fused__softmax_add_native_layer_norm_3` -> ["_softmax", "add", "native_layer_norm"]. The
    name is inductor's sorted `_`-join of op names that may contain `_` themselves; the split kept
    is the one into the fewest real `torch.ops.aten` (or `prims`, for casts) names in sorted order. Tokens that no aten op
    explains (a higher-order op, a name cut at inductor's `kernel_name_max_ops`) are kept as is."""
    match = _KERNEL.match(name)
    if not match:
        return None
    tokens = match["ops"].split("_")
    best = _split(tuple(tokens))
    return best if best is not None else [t for t in tokens if t]


@functools.lru_cache(maxsize=1024)
def _split(tokens: tuple[str, ...]) -> list[str] | None:
    """Fewest sorted aten-op pieces that join back to `tokens` (None when there is no split)."""
    n = len(tokens)
    # best[i]: fewest pieces covering tokens[i:], as a list; filled from the end
    best: list[list[str] | None] = [None] * n + [[]]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n + 1):
            piece = "_".join(tokens[i:j])
            rest = best[j]
            if rest is None or not _is_op(piece):
                continue
            if rest and piece > rest[0]:
                continue  # inductor sorts the names: a split out of order is not its name
            if best[i] is None or 1 + len(rest) < len(best[i]):  # type: ignore[arg-type]
                best[i] = [piece, *rest]
    return best[0]


def _events_frame(events: list[dict[str, Any]], cats: set[str]) -> pd.DataFrame:
    rows = [
        (e["name"], e.get("cat"), e.get("pid"), e.get("tid"), float(e["ts"]), float(e["dur"]),
         _shape_text(e.get("args") or {}), (e.get("args") or {}).get("correlation"))
        for e in events
        if e.get("ph") == "X" and e.get("cat") in cats and "ts" in e and "dur" in e
    ]  # fmt: skip
    cols = ["name", "cat", "pid", "tid", "ts", "dur", "shapes", "correlation"]
    return pd.DataFrame(rows, columns=cols)


def _shape_text(args: dict[str, Any]) -> str:
    dims = args.get("Input Dims")
    if not isinstance(dims, list):
        return ""
    return ", ".join("x".join(str(d) for d in dim) for dim in dims if isinstance(dim, list) and dim)


def _self_times(df: pd.DataFrame, related: dict[str, set[str]]) -> pd.Series:
    """Self duration of each event: its duration minus its direct children on the same thread.
    Fills `related[name]` with the names of the events nesting in it and those it nests in."""
    self_us = dict(zip(df.index, df["dur"], strict=True))
    names = df["name"].map(op_name)
    for _, group in df.groupby(["pid", "tid"], sort=False, dropna=False):
        order = group.sort_values(["ts", "dur"], ascending=[True, False])
        stack: list[tuple[Any, float]] = []  # (index, end) of the open events
        for idx, ts, dur in zip(order.index, order["ts"], order["dur"], strict=True):
            while stack and stack[-1][1] <= ts:
                stack.pop()
            if stack:
                self_us[stack[-1][0]] -= dur
            for parent, _ in stack:
                related[names[parent]].add(names[idx])
                related[names[idx]].add(names[parent])
            stack.append((idx, ts + dur))
    return pd.Series(self_us).reindex(df.index).clip(lower=0.0)


def _step_windows(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    steps = [
        (float(e["ts"]), float(e["ts"]) + float(e["dur"]))
        for e in events
        if e.get("ph") == "X"
        and e.get("cat") == "user_annotation"
        and _STEP.match(e.get("name", ""))
    ]
    return sorted(steps)


def _assign(ts: pd.Series, windows: list[tuple[float, float]]) -> pd.Series:
    """Index of the step window each timestamp falls in; -1 outside every window."""
    out = pd.Series(-1, index=ts.index, dtype="int64")
    for k, (lo, hi) in enumerate(windows):
        out[(ts >= lo) & (ts < hi)] = k
    return out


def op_steps(trace: Path | list[dict[str, Any]], side: str = "host") -> OpSteps:
    """Reduce one trace to per-op, per-step self times (ms). `side`: "host" or "device"."""
    events = load_trace(Path(trace)) if not isinstance(trace, list) else trace
    source = str(trace) if not isinstance(trace, list) else "(events)"
    windows = _step_windows(events)
    if not windows:
        raise ValueError(
            f"{source}: no ProfilerStep# windows; was it written by the --profile pass?"
        )
    related: dict[str, set[str]] = defaultdict(set)
    if side == "host":
        df = _events_frame(events, HOST_CATS)
        df = df[~df["name"].str.match(_STEP)]
        if not df.empty:
            df["self"] = _self_times(df, related)
            df["step"] = _assign(df["ts"], windows)
    elif side == "device":
        df = _events_frame(events, DEVICE_CATS)
        if not df.empty:
            df["self"] = df["dur"]
            launches = _events_frame(events, RUNTIME_CATS).dropna(subset=["correlation"])
            launch_ts = dict(zip(launches["correlation"], launches["ts"], strict=True))
            at = df["correlation"].map(launch_ts).fillna(df["ts"])
            df["step"] = _assign(at, windows)
    else:
        raise ValueError(f"side must be 'host' or 'device', got {side!r}")
    cols = list(range(len(windows)))
    if df.empty:
        empty = pd.DataFrame(columns=cols, dtype=float)
        return OpSteps(empty, empty.copy(), {}, [(hi - lo) / 1e3 for lo, hi in windows], source)
    step_ms = [(hi - lo) / 1e3 for lo, hi in windows]
    df = df[df["step"] >= 0].copy()
    df["op"] = df["name"].map(op_name)
    self_ms = df.pivot_table(
        index="op", columns="step", values="self", aggfunc="sum", fill_value=0.0
    )
    calls = df.pivot_table(index="op", columns="step", values="self", aggfunc="count", fill_value=0)
    self_ms = self_ms.reindex(columns=cols, fill_value=0.0) / 1e3
    calls = calls.reindex(columns=cols, fill_value=0)
    shapes = {
        op: g["shapes"].value_counts().index[0] for op, g in df.groupby("op") if g["shapes"].any()
    }
    return OpSteps(self_ms, calls, shapes, step_ms, source, dict(related))


def diff_ops(a: OpSteps, b: OpSteps) -> pd.DataFrame:
    """One row per op seen in either trace, columns `COLUMNS`, sorted by |difference|."""
    ops = sorted(set(a.self_ms.index) | set(b.self_ms.index))
    kernels = {op: kernel_ops(op) for op in ops}
    rows = []
    for op in ops:
        a_ms, a_calls, a_range = _side(a, op)
        b_ms, b_calls, b_range = _side(b, op)
        floor = max(a_range, b_range, MIN_FLOOR_MS)
        diff = b_ms - a_ms
        if a_calls and not b_calls:
            status = "vanished"
        elif b_calls and not a_calls:
            status = "appeared"
        elif abs(diff) <= floor:
            status = "same"
        else:
            status = "slower" if diff > 0 else "faster"
        rows.append(
            {
                "op": op,
                "kind": op_kind(op),
                "status": status,
                "a_ms_per_step": a_ms,
                "b_ms_per_step": b_ms,
                "diff_ms_per_step": diff,
                "noise_floor_ms": floor,
                "a_calls_per_step": a_calls,
                "b_calls_per_step": b_calls,
                "a_shapes": a.shapes.get(op, ""),
                "b_shapes": b.shapes.get(op, ""),
                "fused_from": " ".join(kernels[op] or []),
                "fused_into": " ".join(_fused_into(op, kernels, a, b)),
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    order = out["diff_ms_per_step"].abs().sort_values(ascending=False).index
    return out.loc[order].reset_index(drop=True)


def _side(steps: OpSteps, op: str) -> tuple[float, float, float]:
    """(mean ms per step, mean calls per step, max - min ms over steps) of `op`; zeros if absent."""
    if op not in steps.self_ms.index or steps.n_steps == 0:
        return 0.0, 0.0, 0.0
    per_step = steps.self_ms.loc[op]
    calls = float(steps.calls.loc[op].mean()) if op in steps.calls.index else 0.0
    return float(per_step.mean()), calls, float(per_step.max() - per_step.min())


def _fused_into(op: str, kernels: dict[str, list[str] | None], a: OpSteps, b: OpSteps) -> list[str]:
    """Kernels of trace B whose inductor origins include this aten op; if none does, those whose
    origins include an aten op nested in it or around it in trace A (`aten::linear` -> its
    `aten::addmm` -> `cpp_fused_addmm_relu_0`; `aten::clamp_min` -> its `aten::relu`)."""
    if not op.startswith("aten::"):
        return []
    in_b = {k: set(ops) for k, ops in kernels.items() if ops and k in b.self_ms.index}
    short = op.removeprefix("aten::")
    exact = [k for k, ops in in_b.items() if short in ops]
    if exact:
        return exact
    family = {n.removeprefix("aten::") for n in a.related.get(op, ()) if n.startswith("aten::")}
    return [k for k, ops in in_b.items() if family & ops]


def diff_traces(trace_a: Path, trace_b: Path, side: str = "host") -> pd.DataFrame:
    """`diff_ops` of two trace files; A is the baseline (eager), B the backend."""
    return diff_ops(op_steps(trace_a, side), op_steps(trace_b, side))


def totals(a: OpSteps, b: OpSteps) -> dict[str, float]:
    """Mean profiled step (ms) of each side and its step-to-step range: the whole-step context a
    per-op difference is read against (profiled steps run slower than timed ones)."""

    def stats(values: list[float]) -> tuple[float, float]:
        if not values:
            return math.nan, math.nan
        return sum(values) / len(values), max(values) - min(values)

    a_mean, a_range = stats(a.step_ms)
    b_mean, b_range = stats(b.step_ms)
    return {"a_step_ms": a_mean, "a_step_range_ms": a_range, "b_step_ms": b_mean,
            "b_step_range_ms": b_range, "a_steps": a.n_steps, "b_steps": b.n_steps}  # fmt: skip


def headline(diff: pd.DataFrame, n: int = 8) -> list[dict[str, Any]]:
    """The rows a reader needs first: every vanished/appeared/slower/faster op, largest |diff|
    first, at most n; `same` rows never (they are inside their noise floor)."""
    changed = diff[diff["status"] != "same"]
    return changed.head(n).to_dict("records")


def fusion_summary(diff: pd.DataFrame) -> dict[str, list[str]]:
    """{kernel: aten ops inductor fused into it} for the kernels that appeared, and which vanished
    aten ops they account for."""
    out: dict[str, list[str]] = defaultdict(list)
    for r in diff[diff["kind"] == "inductor kernel"].to_dict("records"):
        out[r["op"]] = r["fused_from"].split()
    return dict(out)
