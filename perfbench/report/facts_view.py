"""Backend facts for the profiling section, compact: what a backend did (rewrites, exporter,
ONNX Runtime threads), formatted, one line per backend where every point agrees.

Issue 21: without `--profile` this section was a row per point per `extra` key, raw JSON floats
and Python `None`/`False` (about 3000 px for six points). The harness's own bookkeeping
(contention sampling, interleaving, the A/A control, verdict level, timing counters, byte counts)
is shown where it belongs (verdict notes, results) or not at all, never here; empty values are
dropped; numbers get 4 significant digits, booleans yes/no, dicts `key value` pairs.
"""

from __future__ import annotations

from typing import Any

# harness bookkeeping in a row's `extra`: not facts about the backend
BOOKKEEPING = {
    "aa_control", "interleaved", "contended", "contention", "others_cores", "nivcsw_per_s",
    "psi_some_frac", "steal_frac", "speedup_ci_level", "too_noisy", "changes", "changes_what",
    "compiled_after_build", "recompiled_during_timing", "step_bytes", "throughput_basis",
    "output_lines", "output_bytes", "output_log", "output_cut_bytes",
    "printed_during_timing_bytes", "compile_ids", "graph_break_probe_s", "throttle",
}  # fmt: skip
MAX_TEXT = 160


def fact_text(value: Any) -> str:
    """A value for a reader: '' for nothing, yes/no, 4 significant digits, `k v` pairs."""
    if value is None or value == "" or value == {} or value == []:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        parts = [f"{k} {t}" for k, v in value.items() if (t := fact_text(v))]
        text = ", ".join(parts)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(t for v in value if (t := fact_text(v)))
    else:
        text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def point_facts(extra: dict[str, Any], keys: list[str]) -> dict[str, str]:
    """The shown facts of one point, formatted, empty ones dropped."""
    out = {}
    for key in keys:
        if key in BOOKKEEPING:
            continue
        text = fact_text(extra.get(key))
        if text:
            out[key] = text
    return out


def grouped(per_point: list[tuple[str, str, dict[str, str]]]) -> list[tuple[str, str]]:
    """(backend, label, facts) -> (who, "key value · key value") lines: the facts every point of
    a backend shares once under the backend's name, the rest under each point's label."""
    by_backend: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for backend, label, facts in per_point:
        by_backend.setdefault(backend, []).append((label, facts))
    lines = []
    for backend, points in by_backend.items():
        keys = list(dict.fromkeys(k for _, facts in points for k in facts))
        common = {
            k: points[0][1][k]
            for k in keys
            if all(facts.get(k) == points[0][1].get(k) for _, facts in points)
        }
        if common:
            who = f"{backend} (all {len(points)} points)" if len(points) > 1 else points[0][0]
            lines.append((who, _joined(common)))
        for label, facts in points:
            own = {k: v for k, v in facts.items() if k not in common}
            if own:
                lines.append((label, _joined(own)))
    return lines


def _joined(facts: dict[str, str]) -> str:
    return " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in facts.items())
