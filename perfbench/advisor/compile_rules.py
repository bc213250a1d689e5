"""Backends that changed nothing, torch.compile's graph breaks and recompilations, and compile's
break-even: how many steps its cold start takes to pay back, and whether its cache was warm."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from perfbench.advisor.data import RunData, compare, ms, settings
from perfbench.advisor.finding import Finding
from perfbench.results import facts

MAX_REASONS = 5


def changes_of(row: dict[str, Any]) -> tuple[int | None, str]:
    """How many things the backend changed (`Prepared.changes` when the harness records it, else
    the backend's own facts) and what they are; (None, "") when unknown or not applicable."""
    extra = row.get("extra") or {}
    if isinstance(extra.get(facts.CHANGES), (int, float)):
        return int(extra[facts.CHANGES]), str(extra.get(facts.CHANGES_WHAT) or "changes")
    if str(row.get("verdict") or "") == "no change":
        return 0, str(extra.get(facts.CHANGES_WHAT) or "changes")
    if facts.COMPILE_MODE in extra and isinstance(extra.get(facts.GRAPHS), int):
        return extra[facts.GRAPHS], "graphs captured"
    if isinstance(extra.get(facts.REWRITES), dict):
        return int(sum(int(v) for v in extra[facts.REWRITES].values())), "fx rewrites"
    if isinstance(extra.get(facts.COVERAGE), dict) and "replaced" in extra[facts.COVERAGE]:
        return int(extra[facts.COVERAGE]["replaced"]), "ops replaced by our kernels"
    return None, ""


def no_change(data: RunData) -> list[Finding]:
    """A backend whose own count of changes is 0: whatever its timing says is noise."""
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for r in data.ok():
        n, _ = changes_of(r)
        if r.get("backend") != "eager" and n == 0:
            by_backend.setdefault(str(r["backend"]), []).append(r)
    out = []
    for backend, rows in by_backend.items():
        _, what = changes_of(rows[0])
        note = str((rows[0].get("extra") or {}).get(facts.NOTE) or f"0 {what}")
        evidence = [f"{r['label']}: 0 {what} [results.csv extra]" for r in rows[:5]]
        for r in rows[:3]:
            a = data.same_but(r, backend="eager")
            if a is not None:
                evidence.append(
                    f"{r['label']} against eager: {compare(a, r).text()}: not a speedup"
                )
        command = data.command(rows[0], backend="eager,compile")
        if backend.startswith("compile"):
            command = data.command(rows[0], prefix="TORCH_LOGS=graph_breaks")
        sentence = (
            f"{backend} changed nothing in this model ({note}) at {len(rows)} point(s): "
            "its time against eager is the same model timed twice, never a speedup."
        )
        out.append(
            Finding(
                "no_change",
                sentence,
                tuple(evidence),
                command,
                2,
                0.0,
                tuple(r["label"] for r in rows),
            )
        )
    return out


_AT = re.compile(r"\(at (?P<file>[^:()]+):(?P<line>\d+) in (?P<fn>[^)]+)\)")
# dynamo's explain gives only these words for some breaks; say what they mean
GENERIC_REASONS = {
    "step_unsupported": "dynamo could not trace this call (an unsupported module or function, "
    "e.g. nn.LSTM) and runs it eagerly",
}


def _source_line(data: RunData, reason: str) -> str:
    """The scenario's source line a break reason points at (`out, _ = self.lstm(h)`), if the
    reason names the scenario file and the file is still there."""
    m = _AT.search(reason)
    scenario = Path(data.scenario)
    if not scenario.is_absolute():
        scenario = Path(str(data.meta.get("cwd") or ".")) / scenario
    if not m or m["file"] != scenario.name or not scenario.is_file():
        return ""
    lines = scenario.read_text(encoding="utf-8", errors="replace").splitlines()
    n = int(m["line"])
    return lines[n - 1].split("#")[0].strip() if 0 < n <= len(lines) else ""


def _explain(data: RunData, reason: str) -> str:
    head = reason.split(" (at ")[0].strip()
    meaning = GENERIC_REASONS.get(head, head)
    m = _AT.search(reason)
    where = f" at {m['file']}:{m['line']}" if m else ""
    code = _source_line(data, reason)
    return f"{meaning}{where}" + (f" (`{code}`)" if code else "")


def graph_breaks(data: RunData) -> list[Finding]:
    """torch.compile split the model: one finding per backend and set of break reasons. A reason
    without a count (explain reports 0 breaks when it skipped the rest of a frame) counts too."""
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for r in data.ok():
        extra = r.get("extra") or {}
        n = extra.get(facts.GRAPH_BREAKS)
        reasons = tuple(str(x) for x in (extra.get(facts.GRAPH_BREAK_REASONS) or []))
        reasons = tuple(x for x in reasons if not x.startswith("explain failed"))
        if (isinstance(n, (int, float)) and n > 0) or reasons:
            groups.setdefault((str(r["backend"]), reasons), []).append(r)
    out = []
    for (backend, reasons), rows in groups.items():
        r = rows[0]
        count = r["extra"].get(facts.GRAPH_BREAKS)
        n = max(int(count) if isinstance(count, (int, float)) else 0, len(reasons))
        graphs = r["extra"].get(facts.GRAPHS)
        first = _explain(data, reasons[0]) if reasons else "dynamo recorded no reason"
        evidence = [
            f"break: {x} [results.csv extra.graph_break_reasons]" for x in reasons[:MAX_REASONS]
        ]
        evidence.append(f"graphs captured: {graphs}, breaks counted by explain: {count}")
        worst = math.inf
        for row in rows:
            a = data.same_but(row, backend="eager")
            if a is not None:
                cmp = compare(a, row)
                worst = min(worst, cmp.speedup if cmp.significant else 1.0)
                evidence.append(f"{row['label']} against eager: {cmp.text()}")
        sentence = (
            f"torch.compile ({backend}) broke the graph {n} time(s)"
            + (f" into {graphs} graph(s)" if graphs else "")
            + f", so the code after the break runs eagerly: {first}."
        )
        command = data.command(r, prefix="TORCH_LOGS=graph_breaks")
        out.append(
            Finding(
                "graph_breaks",
                sentence,
                tuple(evidence),
                command,
                1 if worst <= 1 else 2,
                float(n),
                tuple(x["label"] for x in rows),
            )
        )
    return out


def recompiles(data: RunData) -> list[Finding]:
    """Dynamo compiled a frame again after its first compile: guards failed during the point."""
    out = []
    for r in data.ok():
        extra = r.get("extra") or {}
        k = extra.get(facts.RECOMPILES)
        if not isinstance(k, (int, float)) or k <= 0:
            continue
        ids = ", ".join(str(i) for i in extra.get(facts.COMPILE_IDS) or [])
        sentence = (
            f"{r['backend']} recompiled {int(k)} time(s) at {settings(r)}: a guard failed on a "
            "later call (a new shape, dtype or Python value), and each recompile is paid again."
        )
        evidence = (
            f"compile ids {ids} (n/k: frame n, recompile k) [results.csv extra.compile_ids]",
            f"cold start {r['cold_start_s']:.2f} s [results.csv cold_start_s]",
        )
        out.append(
            Finding(
                "recompiles",
                sentence,
                evidence,
                data.command(r, prefix="TORCH_LOGS=recompiles"),
                1,
                float(k),
                (r["label"],),
                group=str(r["backend"]),
            )
        )
    return out


def _cache_clause(extra: dict[str, Any]) -> tuple[str, str]:
    """(sentence clause, evidence) about inductor's cache for this compile."""
    cache = extra.get(facts.INDUCTOR_CACHE) or {}
    state = cache.get("state")
    counts = ", ".join(f"{k} {v}" for k, v in cache.items() if k != "state")
    evidence = f"inductor cache: {state or 'not recorded'}{f' ({counts})' if counts else ''} [results.csv extra.inductor_cache]"
    if state == "hit":
        return (
            "inductor's cache was warm (every graph hit it): on a cold cache it costs more",
            evidence,
        )
    if state in ("miss", "bypass"):
        return (
            "inductor compiled from scratch (cache miss): rerun it and the cold start drops",
            evidence,
        )
    return "whether inductor's cache hit was not recorded", evidence


def _untold_break_even(b: dict[str, Any], cold: float, basis: str, clause: str) -> str:
    """The break-even sentence where the timing against eager carries a caveat: no claim."""
    kind = basis.split("caveat: ", 1)[1].split(":", 1)[0]
    return (
        f"whether {b['backend']}'s {cold:.1f} s cold start pays back at {settings(b)} cannot be "
        f"told from this run: its timing against eager carries a caveat ({kind}); {clause}."
    )


def break_even(data: RunData) -> list[Finding]:
    """Steps until compile's cold start is paid back by its faster steps (or that it never is)."""
    out = []
    for b in data.ok():
        extra = b.get("extra") or {}
        cold = b.get("cold_start_s")
        a = data.same_but(b, backend="eager")
        if facts.COMPILE_MODE not in extra or a is None or not cold or math.isnan(cold):
            continue
        r = compare(a, b)
        clause, cache_evidence = _cache_clause(extra)
        saved = a["median_ms"] - b["median_ms"]
        best_saved = a["median_ms"] * (1 - r.low)  # the interval's most favourable end
        evidence = [
            f"cold start {cold:.2f} s (prepare + first call, compile included) [results.csv cold_start_s]",
            f"step: eager {ms(a['median_ms'])}, {b['backend']} {ms(b['median_ms'])}; speedup {r.text()}",
            cache_evidence,
        ]
        others = [
            o["cold_start_s"]
            for o in data.ok()
            if o is not b
            and o.get("backend") == b["backend"]
            and o.get("cold_start_s")
            and facts.COMPILE_MODE in (o.get("extra") or {})
        ]
        if others and min(others) < cold / 2:
            evidence.append(
                f"other {b['backend']} points of this run started in {min(others):.2f} s: the first "
                "compile in a worker also pays for importing and setting up inductor"
            )
        if r.significant and saved > 0:
            steps = cold * 1e3 / saved
            sentence = (
                f"{b['backend']} pays back its {cold:.1f} s cold start after {steps:,.0f} steps at "
                f"{settings(b)} ({ms(saved)} saved per step); {clause}."
            )
            priority = 2
        elif best_saved > 0 and not r.significant:
            steps = cold * 1e3 / best_saved
            sentence = (
                f"{b['backend']}'s {cold:.1f} s cold start buys no measurable speedup at "
                f"{settings(b)}: even at its interval's best end it pays back only after "
                f"{steps:,.0f} steps; {clause}."
            )
            priority = 3
        elif "caveat: " in r.basis:  # contended or too noisy (perfbench.measure.caveat): no claim
            sentence, priority = _untold_break_even(b, cold, r.basis, clause), 3
        else:
            sentence = (
                f"{b['backend']}'s {cold:.1f} s cold start never pays back at {settings(b)}: its "
                f"step is {r.ratio:.2f}× eager's, so every step adds time; {clause}."
            )
            priority = 1 if r.significant else 3
        state = (extra.get(facts.INDUCTOR_CACHE) or {}).get("state")
        command = (
            data.command(b)
            if state in ("miss", "bypass")
            else data.command(
                b,
                backend="eager,compile",
                batch_size=f"{int(b['batch_size'])},{int(b['batch_size']) * 4}",
            )
        )
        out.append(
            Finding(
                "compile_break_even",
                sentence,
                tuple(evidence),
                command,
                priority,
                cold * 1e3,
                (a["label"], b["label"]),
                group=f"{b['backend']}:{priority}",
            )
        )
    return out
