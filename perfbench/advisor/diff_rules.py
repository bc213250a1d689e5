"""Findings read from the op-level diffs: where a slower backend's extra time went."""

from __future__ import annotations

from perfbench.advisor.data import RunData, compare, ms, settings
from perfbench.advisor.finding import Finding

TOP_OPS = 3


def slower_ops(data: RunData) -> list[Finding]:
    """A backend measurably slower than eager, with a profiled diff: the ops that grew most."""
    by_label = {r["label"]: r for r in data.ok()}
    out = []
    for comp in data.diffs:
        if comp.kind != "backend" or comp.side != "host" or comp.error:
            continue
        a, b = by_label.get(comp.a_label), by_label.get(comp.b_label)
        if a is None or b is None:
            continue
        r = compare(a, b)
        if not (r.significant and r.ratio > 1):
            continue
        grown = comp.diff[comp.diff["status"].isin(["slower", "appeared"])]
        grown = grown.sort_values("diff_ms_per_step", ascending=False).head(TOP_OPS)
        if grown.empty:
            continue
        parts = [
            f"{g['op']} (+{ms(g['diff_ms_per_step'])} per step, {g['status']})"
            for g in grown.to_dict("records")
        ]
        sentence = (
            f"{b['backend']} is {r.ratio:.1f}× slower than eager at {settings(b)}; in the profiled "
            f"steps the extra time is in {', '.join(parts)}."
        )
        evidence = [
            f"step {ms(a['median_ms'])} eager vs {ms(b['median_ms'])}: {r.text()} [results.csv]",
            f"profiled step {ms(comp.totals.get('a_step_ms', 0))} vs "
            f"{ms(comp.totals.get('b_step_ms', 0))} over {comp.totals.get('b_steps')} steps "
            f"[{comp.csv}]",
        ]
        for g in grown.to_dict("records"):
            origin = f"; inductor made it from aten {g['fused_from']}" if g["fused_from"] else ""
            evidence.append(
                f"{g['op']}: {ms(g['a_ms_per_step'])} -> {ms(g['b_ms_per_step'])} per step, "
                f"noise floor {ms(g['noise_floor_ms'])}{origin}"
            )
        top = grown.iloc[0]
        command = data.command(b, backend=f"eager,{b['backend']}", extra="--profile")
        if top["kind"] == "inductor kernel" and str(b.get("device")) == "cpu" and b["threads"] > 1:
            # inductor's C++ kernels open an OpenMP parallel region per call; on a small tensor
            # the region's start and barrier can cost more than the work: one thread tests that
            command = data.command(
                b,
                backend=f"eager,{b['backend']}",
                threads=f"1,{int(b['threads'])}",
                extra="--profile",
            )
        out.append(
            Finding(
                "slower_ops",
                sentence,
                tuple(evidence),
                command,
                1,
                b["median_ms"] - a["median_ms"],
                (a["label"], b["label"]),
                group=str(b["backend"]),
            )
        )
    return out
