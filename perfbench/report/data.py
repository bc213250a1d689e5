"""What the report says, computed from the run folder alone (DESIGN rule 7: never re-measure).

Kept apart from the charts and the HTML so the numbers can be tested without rendering, the same
split torch.utils.benchmark makes between `Measurement` and `Compare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.axes import AXES, Point
from perfbench.rundir import RunDir
from perfbench.timing import is_significant

# Columns that hold a measurement: blanked for any row whose status is not ok, so a failed
# point's time can never be read as a result (DESIGN rule 1).
TIME_COLUMNS = (
    "median_ms iqr_ms p05_ms p95_ms reps noise throughput tflops rel_err cold_start_s "
    "first_call_s peak_mem_bytes data_wait_frac"
).split()

# Axes other than backend: "equal settings" for a speedup means equal on all of these.
OTHER_AXES = tuple(a for a in AXES if a != "backend")

CORRECTNESS_ONLY_NOTE = "interpreter timing, not performance"


def load_results(run: RunDir) -> pd.DataFrame:
    """results.csv with failed points' numbers removed and a readable `label` per point."""
    df = run.read_results()
    defaults = Point().as_dict()
    for col in AXES:
        if col not in df:  # an axis added after this run was written: it ran at the default
            df[col] = defaults[col] if col in ("memory_format", "shapes") else ""
    for col in ("status", "reason", "error", "command"):
        if col not in df:
            df[col] = ""
        df[col] = df[col].fillna("")
    if "correctness_only" not in df:
        df["correctness_only"] = False
    df["correctness_only"] = df["correctness_only"].map(lambda v: str(v) == "True")
    if "extra" not in df:
        df["extra"] = [{} for _ in range(len(df))]
    df["extra"] = df["extra"].map(lambda e: e if isinstance(e, dict) else {})
    not_ok = df["status"] != "ok"
    for col in TIME_COLUMNS:
        if col not in df:  # a results.csv from an older perfbench: the column is just empty
            df[col] = math.nan
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        df.loc[not_ok, col] = math.nan
    df["label"] = [point_label(r) for r in df.to_dict("records")]
    return df.reset_index(drop=True)


def point_label(row: dict[str, Any]) -> str:
    """Short name of a point: the axes that usually vary first, the rest only when not default."""
    parts = [str(row.get("backend", "")), f"bs{_int(row.get('batch_size'))}"]
    parts.append(f"t{_int(row.get('threads'))}")
    parts.append(f"amp-{row.get('amp', '')}")
    parts.append(str(row.get("mode", "")))
    parts.append(str(row.get("device", "")))
    if row.get("pin_memory") is True:
        parts.append("pin")
    workers = _int(row.get("num_workers"))
    if workers not in ("0", ""):
        parts.append(f"w{workers}")
    if row.get("memory_format") == "channels_last":
        parts.append("cl")
    if row.get("shapes") == "dynamic":
        parts.append("dyn")
    return " ".join(p for p in parts if p)


def _int(value: Any) -> str:
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return "" if value is None else str(value)


def axes_key(row: dict[str, Any], axes: tuple[str, ...] = AXES) -> tuple[str, ...]:
    """Axes of a row as comparable strings (CSV round trips turn 64 into 64.0 or "64")."""
    out = []
    for axis in axes:
        value = row.get(axis)
        if isinstance(value, float) and not math.isnan(value) and value.is_integer():
            value = int(value)
        out.append(
            "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        )
    return tuple(out)


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """Each ok non-eager point against the ok eager point with the same other axes.

    speedup = eager median / backend median (>1 means faster than eager), both from this run
    (DESIGN rule 8: compare ratios measured in one run).
    """
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()]
    eager = {axes_key(r, OTHER_AXES): r for r in ok[ok["backend"] == "eager"].to_dict("records")}
    rows = []
    for r in ok[ok["backend"] != "eager"].to_dict("records"):
        base = eager.get(axes_key(r, OTHER_AXES))
        if base is None:
            continue
        rows.append(
            {
                "label": r["label"],
                "backend": r["backend"],
                "settings": point_label({**r, "backend": ""}),
                "eager_ms": base["median_ms"],
                "median_ms": r["median_ms"],
                "speedup": base["median_ms"] / r["median_ms"],
                # rule 8: a difference counts only when it exceeds the noise of both points
                "significant": is_significant(
                    r["median_ms"] / base["median_ms"], _noise(base), _noise(r)
                ),
                "correctness_only": bool(r["correctness_only"]),
            }
        )
    cols = [
        "label",
        "backend",
        "settings",
        "eager_ms",
        "median_ms",
        "speedup",
        "significant",
        "correctness_only",
    ]
    return pd.DataFrame(rows, columns=cols)


def _noise(row: dict[str, Any]) -> float:
    """IQR / median of one point; NaN when unknown (then nothing is called significant)."""
    noise = row.get("noise")
    if noise is None or (isinstance(noise, float) and math.isnan(noise)):
        iqr, med = row.get("iqr_ms"), row.get("median_ms")
        return float(iqr) / float(med) if iqr is not None and med else math.nan
    return float(noise)


def speedup_summary(sp: pd.DataFrame) -> list[dict[str, Any]]:
    """Per backend: how many settings were compared, geometric-mean speedup, worst and best.

    The geometric mean, because speedups are ratios: 2x faster and 2x slower average to 1x."""
    out = []
    for backend, g in sp.groupby("backend", sort=False):
        worst = g.loc[g["speedup"].idxmin()]
        best = g.loc[g["speedup"].idxmax()]
        out.append(
            {
                "backend": backend,
                "n": len(g),
                "n_significant": int(g["significant"].sum()),
                "geomean": float(math.exp(g["speedup"].map(math.log).mean())),
                "worst": float(worst["speedup"]),
                "worst_at": worst["settings"],
                "best": float(best["speedup"]),
                "best_at": best["settings"],
                "correctness_only": bool(g["correctness_only"].any()),
            }
        )
    return out


def best_per_backend(df: pd.DataFrame) -> pd.DataFrame:
    """The highest-throughput ok point of each backend (lowest median where throughput is absent)."""
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()].copy()
    if ok.empty:
        return ok
    ok["_score"] = ok["throughput"].fillna(-1.0) if "throughput" in ok else -1.0
    ok = ok.sort_values(["_score", "median_ms"], ascending=[False, True])
    return ok.groupby("backend", sort=False).head(1).drop(columns="_score")


def not_ok(df: pd.DataFrame) -> pd.DataFrame:
    """Points that did not produce a result, with the reason or error as `why`."""
    bad = df[df["status"] != "ok"].copy()
    bad["why"] = [
        (r["error"] or r["reason"] or "(no reason recorded)") for r in bad.to_dict("records")
    ]
    bad["traceback"] = [str(e.get("traceback") or "") for e in bad["extra"]]
    return bad


# plain-words advice the harness attaches to a point (e.g. "input-bound: ..."), shown in the verdict
HINT_KEYS = ("input_bound_hint",)


def hints(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, hint) for ok points the harness attached advice to."""
    return [
        (r["label"], str(r["extra"][k]))
        for r in df[df["status"] == "ok"].to_dict("records")
        for k in HINT_KEYS
        if r["extra"].get(k)
    ]


def noisy(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, warning) for ok points whose spread the harness flagged (IQR/median > 10%)."""
    out = []
    for r in df[df["status"] == "ok"].to_dict("records"):
        warning = r["extra"].get("noise_warning")
        if warning:
            out.append((r["label"], str(warning)))
    return out


@dataclass
class Profiling:
    """Everything the profiling section shows; paths are relative to the run folder."""

    top_ops: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    traces: list[tuple[str, str]] = field(default_factory=list)
    tb_dir: str | None = None
    flamegraphs: list[tuple[str, str]] = field(default_factory=list)  # (relative path, svg text)
    graph_breaks: list[tuple[str, Any, list[str]]] = field(default_factory=list)
    facts: list[tuple[str, str, str]] = field(default_factory=list)  # (point, key, value)
    breakdown: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # step time, %
    nsys: list[tuple[str, str]] = field(default_factory=list)  # (point, nsys command)
    coverage: list[dict[str, str]] = field(default_factory=list)  # triton backend, per point


# `extra` keys shown as plain per-point facts; anything else unknown is shown too, these first.
FACT_KEYS = ("rewrites", "int8_impl", "nvtx_overhead_pct")
# the triton backend's keys, shown in their own table (`coverage_row`)
COVERAGE_KEYS = {"coverage", "patterns", "loss_cross_entropy", "softmax_dim_at_run"}
# shown elsewhere (charts, profiling, notes, tracebacks) or timing bookkeeping of the harness
HIDDEN_EXTRA = {
    "times_ms", "profile", "gpu", "graph_breaks", "graph_break_reasons", "flamegraph",
    "noise_warning", "traceback", "median_ci_ms", "number", "warmup_calls", "stop_reason",
    "prepare_s", "flops_per_step", "peak_mem_kind", "timed_calls", "nsys_command",
    "input_bound_hint",
}  # fmt: skip


def profiling(df: pd.DataFrame, run_path: Path) -> Profiling:
    """Collect top ops, trace links, TensorBoard dir, flame graphs and graph breaks."""
    prof = Profiling()
    for r in df.to_dict("records"):
        extra: dict[str, Any] = r["extra"]
        info = extra.get("profile")
        if isinstance(info, dict):
            summary = info.get("summary") if isinstance(info.get("summary"), dict) else {}
            # per side when the harness split them, else the one list it wrote (never both)
            sides = [(k, info.get(k)) for k in ("top_ops_device", "top_ops_cpu")]
            sides = [(k, v) for k, v in sides if isinstance(v, list) and v]
            if not sides:
                ops = info.get("top_ops") or summary.get("top_ops")
                sides = [("top_ops", ops)] if isinstance(ops, list) and ops else []
            for key, ops in sides:
                side = {"top_ops_device": " (device)", "top_ops_cpu": " (CPU)"}.get(key, "")
                prof.top_ops.append((f"{r['label']}{side}", *_op_table(ops)))
            if isinstance(info.get("trace"), str):
                prof.traces.append((r["label"], _relative(info["trace"], run_path)))
            tb = info.get("tb_logdir") or info.get("tb_dir")
            if isinstance(tb, str) and prof.tb_dir is None:
                prof.tb_dir = _relative(tb, run_path)
            steps = summary.get("steps") if isinstance(summary.get("steps"), dict) else {}
            pct = steps.get("breakdown_pct")
            if isinstance(pct, dict) and pct:
                prof.breakdown.append((r["label"], {str(k): v for k, v in pct.items()}))
        if isinstance(extra.get("nsys_command"), str):
            prof.nsys.append((r["label"], extra["nsys_command"]))
        breaks = extra.get("graph_breaks")
        reasons = extra.get("graph_break_reasons") or []
        if breaks not in (None, 0) or reasons:
            prof.graph_breaks.append((r["label"], breaks, [str(x) for x in reasons]))
        has_coverage = isinstance(extra.get("coverage"), dict)
        if has_coverage:
            prof.coverage.append(coverage_row(r["label"], extra))
        shown = [k for k in FACT_KEYS if k in extra]
        skip = HIDDEN_EXTRA | set(FACT_KEYS) | (COVERAGE_KEYS if has_coverage else set())
        shown += sorted(k for k in extra if k not in skip)
        for key in shown:
            prof.facts.append((r["label"], key, _short(extra[key])))
    if prof.tb_dir is None and (run_path / "tb").is_dir():
        prof.tb_dir = "tb"
    fg_dir = run_path / "flamegraphs"
    if fg_dir.is_dir():
        for svg in sorted(fg_dir.glob("*.svg")):
            prof.flamegraphs.append((f"flamegraphs/{svg.name}", svg.read_text(errors="replace")))
    return prof


def _counts(counts: Any) -> str:
    """{"kernel": 12, "eager": 1} -> "kernel 12, eager 1"."""
    if not isinstance(counts, dict) or not counts:
        return ""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())


AT_RUN = (("loss_cross_entropy", "F.cross_entropy"), ("softmax_dim_at_run", "softmax, dim >= 0"))


def coverage_row(label: str, extra: dict[str, Any]) -> dict[str, str]:
    """The triton backend's coverage of one point in words: what ran in our kernels, what stayed
    eager and why (no backward in train mode, kernel not importable)."""
    cov = extra["coverage"]
    patterns = []
    for name, c in (extra.get("patterns") or {}).items():
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
        import json

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
        gpu = r["extra"].get("gpu")
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
        gpu = r["extra"].get("gpu")
        if not isinstance(gpu, dict):
            continue
        if gpu.get("unavailable"):
            unavailable = str(gpu["unavailable"])
        elif any(gpu.get(k) is not None for k in GPU_STATS):
            rows.append((r["label"], {k: gpu.get(k) for k in GPU_STATS}))
    return rows, unavailable
