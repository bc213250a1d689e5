"""How step time scales: nearly flat across batch sizes (a fixed per-step cost dominates: the
point is overhead-bound), and across the `threads` axis (efficiency, threads above the cores)."""

from __future__ import annotations

from typing import Any

from perfbench.advisor.bound import MEMORY, OVERHEAD, UNKNOWN, classify
from perfbench.advisor.data import RunData, compare, ms, quiet, settings
from perfbench.advisor.finding import Finding

OVERHEAD_SHARE = 0.5  # fixed cost above half the step at the smallest batch: overhead-bound
# the finding's rule name by what the fixed cost is (advisor/bound.py)
RULE_NAMES = {OVERHEAD: "overhead_bound", MEMORY: "memory_bound", UNKNOWN: "fixed_cost"}
MIN_EFFICIENCY = 0.7  # thread scaling under 70% of linear, even at its interval's best end


def _intercept(r1: dict[str, Any], r2: dict[str, Any]) -> tuple[float, float]:
    """Fixed cost per step from a line through two (batch, time) points: (estimate, the lowest
    value the two IQRs allow). t = fixed + per_sample * batch."""
    b1, b2 = float(r1["batch_size"]), float(r2["batch_size"])
    t1, t2 = r1["median_ms"], r2["median_ms"]
    i1, i2 = r1.get("iqr_ms") or 0.0, r2.get("iqr_ms") or 0.0
    fixed = (t1 * b2 - t2 * b1) / (b2 - b1)
    low = ((t1 - i1 / 2) * b2 - (t2 + i2 / 2) * b1) / (b2 - b1)
    return fixed, low


def _sentence(small: dict[str, Any], large: dict[str, Any], share: float, kind: str) -> str:
    """What the fixed cost is, in words: overhead, memory traffic, or either (cannot tell)."""
    factor = float(large["batch_size"]) / float(small["batch_size"])
    growth = large["median_ms"] / small["median_ms"]
    head = (
        f"a {factor:.0f}× larger batch made the step only {growth:.2f}× longer, so about "
        f"{min(share, 1):.0%} of its {ms(small['median_ms'])} does not grow with the batch"
    )
    name, at = small["backend"], f"at batch {int(small['batch_size'])} ({settings(small)})"
    if kind == MEMORY:
        return (
            f"{name} is memory-bound, not overhead-bound, {at}: {head}, and reading its weights from "
            "memory every step accounts for most of that (fusion cannot remove it; a larger "
            "batch per weight read, or smaller weights, can)."
        )
    if kind == UNKNOWN:
        return (
            f"{name} has a large fixed per-step cost {at}: {head}. It is either overhead (launches, "
            "Python, dispatch) or reading weights that do not fit in the cache: without a "
            "measured copy bandwidth this run cannot tell which."
        )
    return (
        f"{name} is overhead-bound {at}: {head}; it is a fixed per-step cost (launches, Python, "
        "dispatch) rather than work on the batch."
    )


def overhead_bound(data: RunData) -> list[Finding]:
    """At the smallest batch of a batch-size sweep, a fixed cost is more than half the step."""
    out = []
    for group in data.groups("batch_size"):
        small, large = group[0], group[-1]
        if float(large["batch_size"]) <= float(small["batch_size"]):
            continue
        if not (quiet(small) and quiet(large)):  # timed apart: a busy machine moves each alone
            continue
        fixed, low = _intercept(small, large)
        share, low_share = fixed / small["median_ms"], low / small["median_ms"]
        if low_share <= OVERHEAD_SHARE:
            continue
        # what the fixed cost is made of, from the fast tails (p05) where recorded: a busy
        # machine stretches the medians, never the bytes or the measured ceiling
        fast = {k: r.get("p05_ms") or r["median_ms"] for k, r in (("s", small), ("l", large))}
        fast_fixed, _ = _intercept(
            {**small, "median_ms": fast["s"], "iqr_ms": 0},
            {**large, "median_ms": fast["l"], "iqr_ms": 0},
        )
        bound = classify(data, small, fast_fixed if fast_fixed > 0 else fixed)
        sentence = _sentence(small, large, share, bound.kind)
        evidence = (
            f"step {ms(small['median_ms'])} (IQR {ms(small['iqr_ms'])}) at batch {int(small['batch_size'])}, "
            f"{ms(large['median_ms'])} (IQR {ms(large['iqr_ms'])}) at batch {int(large['batch_size'])} [results.csv]",
            f"fixed cost from a line through both: {ms(fixed)} per step, at least {ms(max(low, 0))} "
            "within the IQRs",
            *bound.evidence,
        )
        if str(small.get("device")) == "cuda" and bound.kind == OVERHEAD:
            command = data.command(small, backend=f"{small['backend']},compile-reduce-overhead")
        else:
            bigger = int(large["batch_size"]) * 2
            pair = dict.fromkeys(["eager", "compile", str(small["backend"])])
            command = data.command(
                small,
                batch_size=f"{int(small['batch_size'])},{bigger}",
                backend=",".join(pair),
            )
        out.append(
            Finding(
                RULE_NAMES[bound.kind],
                sentence,
                evidence,
                command,
                2,
                fixed,
                (small["label"], large["label"]),
                group=str(small["backend"]),
            )
        )
    return out


def thread_scaling(data: RunData) -> list[Finding]:
    """Efficiency of more threads (speedup / thread ratio) and threads above physical cores."""
    out = []
    cores = data.physical_cores
    for group in data.groups("threads"):
        base = group[0]
        for row in group[1:]:
            if not (quiet(base) and quiet(row)):  # timed apart, not interleaved: quiet points only
                continue
            ideal = float(row["threads"]) / float(base["threads"])
            r = compare(base, row)
            best = 1.0 / r.low if r.low > 0 else float("inf")  # most favourable speedup
            if best / ideal >= MIN_EFFICIENCY:
                continue
            sentence = (
                f"{row['backend']} scales poorly with threads at {settings(base, without='threads')}: "
                f"{int(base['threads'])} -> {int(row['threads'])} threads gave {r.speedup:.2f}× "
                f"({r.speedup / ideal:.0%} of linear)"
                + (
                    f"; {int(row['threads'])} threads is above this CPU's {cores} physical cores"
                    if cores and row["threads"] > cores
                    else ": the step is not compute-parallel (overhead, memory or serial work)"
                )
                + "."
            )
            evidence = (
                f"{base['label']}: {ms(base['median_ms'])}; {row['label']}: {ms(row['median_ms'])}; "
                f"speedup {r.text()} [results.csv median_ms, iqr_ms]",
                f"physical cores: {cores or 'unknown'} [run.json environment.hardware.cpu]",
            )
            command = data.command(
                base,
                threads=f"{int(base['threads'])}",
                batch_size=f"{int(base['batch_size'])},{int(base['batch_size']) * 4}",
            )
            out.append(
                Finding(
                    "thread_scaling",
                    sentence,
                    evidence,
                    command,
                    2,
                    row["median_ms"] - base["median_ms"] / ideal,
                    (base["label"], row["label"]),
                    group=str(row["backend"]),
                )
            )
    out += _above_cores(data, cores)
    return out


def _above_cores(data: RunData, cores: int | None) -> list[Finding]:
    """Points that asked for more threads than the CPU has physical cores: a setting fact."""
    if not cores:
        return []
    rows = [r for r in data.ok() if str(r.get("device")) == "cpu" and r["threads"] > cores]
    if not rows:
        return []
    evidence = [
        f"{r['label']}: threads={int(r['threads'])} [results.csv threads]" for r in rows[:5]
    ]
    evidence.append(f"physical cores: {cores} [run.json environment.hardware.cpu.physical_cores]")
    for r in rows[:3]:
        at_cores = data.same_but(r, threads=cores)
        if at_cores is not None:
            evidence.append(f"{r['label']} against threads={cores}: {compare(at_cores, r).text()}")
    sentence = (
        f"{len(rows)} point(s) ran with more threads than this CPU's {cores} physical cores: the "
        "extra threads share cores with the others and with the OS, which adds waiting, not speed."
    )
    return [
        Finding(
            "threads_above_cores",
            sentence,
            tuple(evidence),
            data.command(rows[0], threads=str(cores)),
            2,
            0.0,
            tuple(r["label"] for r in rows),
        )
    ]
