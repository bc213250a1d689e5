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

from perfbench.results import facts

# harness bookkeeping in a row's `extra`: not facts about the backend
BOOKKEEPING = {
    facts.AA_CONTROL, facts.INTERLEAVED, facts.CONTENDED, facts.CONTENTION, facts.OTHERS_CORES,
    facts.NIVCSW_PER_S, facts.PSI_SOME_FRAC, facts.STEAL_FRAC, facts.SPEEDUP_CI_LEVEL,
    facts.TOO_NOISY, facts.CHANGES, facts.CHANGES_WHAT, facts.COMPILED_AFTER_BUILD,
    facts.RECOMPILED_DURING_TIMING, facts.STEP_BYTES, facts.THROUGHPUT_BASIS, facts.OUTPUT_LINES,
    facts.OUTPUT_BYTES, facts.OUTPUT_LOG, facts.OUTPUT_CUT_BYTES, facts.PRINTED_DURING_TIMING_BYTES,
    facts.COMPILE_IDS, facts.GRAPH_BREAK_PROBE_S,
    # a throttled GPU makes the row contended, and the caveat says so
    facts.SM_CLOCK_MHZ, facts.GPU_THROTTLE_REASONS, facts.GPU_THROTTLED,
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
    for backend, label, shown in per_point:
        by_backend.setdefault(backend, []).append((label, shown))
    lines = []
    for backend, points in by_backend.items():
        keys = list(dict.fromkeys(k for _, shown in points for k in shown))
        common = {
            k: points[0][1][k]
            for k in keys
            if all(shown.get(k) == points[0][1].get(k) for _, shown in points)
        }
        if common:
            who = f"{backend} (all {len(points)} points)" if len(points) > 1 else points[0][0]
            lines.append((who, _joined(common)))
        for label, shown in points:
            own = {k: v for k, v in shown.items() if k not in common}
            if own:
                lines.append((label, _joined(own)))
    return lines


def _joined(shown: dict[str, str]) -> str:
    return " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown.items())
