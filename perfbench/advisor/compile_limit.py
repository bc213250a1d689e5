"""Dynamo's recompile limit: past it, torch.compile runs the frame eagerly for the rest of the
point, so what was timed as "compile" was partly eager. Recorded by `perfbench.measure.compile_watch`
into results.csv extra.recompile_limit."""

from __future__ import annotations

from perfbench.advisor.data import RunData, settings
from perfbench.advisor.finding import Finding
from perfbench.results import facts


def recompile_limit(data: RunData) -> list[Finding]:
    """A compiled point whose frame hit dynamo's recompile limit: the file:line and the fix."""
    out = []
    for r in data.ok():
        hit = (r.get("extra") or {}).get(facts.RECOMPILE_LIMIT)
        if not isinstance(hit, dict):
            continue
        where = hit.get("where") or hit.get("function") or "?"
        sentence = (
            f"{r['backend']} hit torch._dynamo's {hit.get('limit')} ({hit.get('value')}) at "
            f"{settings(r)}: {hit.get('function')} recompiled on every call because a guard kept "
            f"failing at {where}, so the rest of the calls, timed ones included, ran eagerly. "
            f"Fix: {hit.get('fix')}."
        )
        evidence = (
            f"last failing guard: {hit.get('reason')} [results.csv extra.recompile_limit]",
            f"compiles {(r.get('extra') or {}).get(facts.COMPILES)}, compile ids "
            f"{(r.get('extra') or {}).get(facts.COMPILE_IDS)} [results.csv extra.compile_ids]",
        )
        out.append(
            Finding(
                "recompile_limit",
                sentence,
                evidence,
                data.command(r, prefix="TORCH_LOGS=recompiles"),
                1,
                float(r.get("median_ms") or 0.0),
                (r["label"],),
                group=str(r["backend"]),
            )
        )
    return out
