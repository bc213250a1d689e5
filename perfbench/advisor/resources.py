"""Input-bound points (the step waits for the DataLoader) and peak memory against eager."""

from __future__ import annotations

import math
from typing import Any

from perfbench.advisor.data import RunData, mib, ms, settings
from perfbench.advisor.finding import Finding
from perfbench.results import facts

INPUT_BOUND = 0.30  # a step waiting for data 30% of its time or more
MIN_STEPS = 5  # the wait fraction is a ratio of sums: over fewer steps it is one stall's luck
# peak memory: a change counts above both a relative and an absolute floor (CPU RSS growth moves
# by tens of MiB between identical points as the allocator keeps or returns pages)
MEM_RATIO = 1.25
MEM_FLOOR = {"cpu": 64 * 2**20, "cuda": 16 * 2**20}


def _step_ms(r: dict[str, Any]) -> float:
    """Mean step time where the harness measured a DataLoader (its steps are bimodal: a stall,
    then batches that were ready; the median hides the stalls), else the median."""
    tput = r.get("throughput")
    if (r.get("extra") or {}).get(facts.THROUGHPUT_BASIS) and tput and not math.isnan(tput):
        return float(r["batch_size"]) / tput * 1e3
    return float(r["median_ms"])


def input_bound(data: RunData) -> list[Finding]:
    """Data wait at or above INPUT_BOUND of the step time, summed over at least MIN_STEPS steps.

    The wait fraction is total wait / total step time over every timed call, not a per-step
    median, so its noise is that of two sums; the IQR of a loader's bimodal steps says nothing
    about it."""
    out = []
    cores = data.physical_cores or 2
    for r in data.ok():
        frac = r.get("data_wait_frac")
        if frac is None or math.isnan(frac) or frac < INPUT_BOUND:
            continue
        steps = (r.get("extra") or {}).get(facts.TIMED_CALLS) or r.get("reps") or 0
        if steps < MIN_STEPS:
            continue
        step = _step_ms(r)
        wait_ms = frac * step
        workers = int(r.get("num_workers") or 0)
        evidence = [
            f"data wait {frac:.0%} of the step time ({ms(wait_ms)} of a mean {ms(step)} step) over "
            f"{int(steps)} timed steps at num_workers={workers} [results.csv data_wait_frac, throughput]"
        ]
        for g in data.ok():
            if g is not r and data.same_but(r, num_workers=g.get("num_workers")) is g:
                evidence.append(
                    f"num_workers={int(g['num_workers'])}: data wait {g.get('data_wait_frac') or 0:.0%}, "
                    f"mean step {ms(_step_ms(g))} ({step / _step_ms(g):.2f}× vs num_workers={workers})"
                )
        target = max(cores, workers * 2) if workers else cores
        axes: dict[str, Any] = {"num_workers": f"{workers},{target}"}
        if str(r.get("device")) == "cuda":
            axes["pin_memory"] = "false,true"
        sentence = (
            f"{r['backend']} at {settings(r)} is input-bound: the step waits for the DataLoader "
            f"{frac:.0%} of the time, so no backend can make it faster; the fix is in the input "
            "pipeline (more workers, cheaper __getitem__, caching decoded samples)."
        )
        out.append(
            Finding(
                "input_bound",
                sentence,
                tuple(evidence),
                data.command(r, **axes),
                1,
                wait_ms,
                (r["label"],),
                group=str(r["backend"]),
            )
        )
    return out


def memory_peak(data: RunData) -> list[Finding]:
    """A backend whose peak memory is above MEM_RATIO x eager's (and the absolute floor)."""
    out = []
    for b in data.ok():
        a = data.same_but(b, backend="eager")
        if b.get("backend") == "eager" or a is None:
            continue
        pa, pb = a.get("peak_mem_bytes"), b.get("peak_mem_bytes")
        if pa is None or pb is None or math.isnan(pa) or math.isnan(pb) or pa <= 0:
            continue
        floor = MEM_FLOOR.get(str(b.get("device")), MEM_FLOOR["cpu"])
        if pb / pa < MEM_RATIO or pb - pa < floor:
            continue
        kind = (b.get("extra") or {}).get(facts.PEAK_MEM_KIND) or "unknown"
        note = (
            "; on a CPU this is resident-memory growth over the whole point, compilation included"
            if kind == "cpu_rss_growth"
            else ""
        )
        sentence = (
            f"{b['backend']} needed {pb / pa:.1f}× eager's peak memory at {settings(b)} "
            f"({mib(pb)} vs {mib(pa)}){note}."
        )
        evidence = (
            f"peak_mem_bytes {pb:,.0f} ({b['label']}) vs {pa:,.0f} ({a['label']}), kind {kind} "
            "[results.csv peak_mem_bytes, extra.peak_mem_kind]",
            f"counted above {MEM_RATIO}× and {mib(floor)}: smaller differences are allocator noise",
        )
        out.append(
            Finding(
                "memory_peak",
                sentence,
                evidence,
                data.command(b, backend=f"eager,{b['backend']}", extra="--profile"),
                3,
                (pb - pa) / 2**20,
                (a["label"], b["label"]),
                group=str(b["backend"]),
            )
        )
    return out
