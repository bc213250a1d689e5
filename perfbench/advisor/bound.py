"""Memory-bound or overhead-bound: what a fixed per-step cost is made of.

A step that barely grows with the batch has a large fixed cost. Two very different things give
one: dispatch, Python and launches (overhead: fusion, CUDA graphs, fewer ops help), or reading
every weight from memory each step because the weights do not fit in the last-level cache
(memory-bound: fewer or smaller weights, or a larger batch per weight read, help; fusion does
not). They look alike in step times and are told apart by bytes and bandwidth:

- bytes: the model's weights counted per point by the worker (row `extra["step_bytes"]`,
  perfbench/measure/step_bytes.py), a lower bound on what a step reads, with the cache size it measured;
- bandwidth: the device's measured copy ceiling at the point's thread count (run.json
  `ceilings_by_threads` / `ceilings`, from `perfbench ceilings`).

Reading the weights at the copy ceiling takes at least `weights / copy_gbps`. When that floor is
at least a quarter of the fixed cost (MEMORY_SHARE), the point is called memory-bound; weights that fit in the cache, or
whose floor is a small part of the fixed cost, leave it overhead-bound; weights above the cache
with no ceiling recorded, or on a contended point (the step stretched, the ceiling not), cannot
be told apart, and the finding says so with the command that
measures the ceiling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from perfbench.advisor.data import RunData
from perfbench.results import facts

# The weight-read floor explains at least a quarter of the fixed cost: memory-bound. Not a half:
# a step that does nothing but stream its weights reaches only part of the copy ceiling (which
# counts read + write, at the prefetcher's best, in the ceiling's fastest tenth of samples), and
# a busy machine stretches the step, not the ceiling. Measured on the shared 2-core dev box
# (loaded), 1 thread: a 134 MB two-layer MLP at batch 1 took 11.4 ms quiet and 15.1 ms (p05)
# under load against a 6.5 ms floor at the 20.8 GB/s ceiling: 57% and 43%; under heavier load
# (three test suites beside it) about a third. A dispatch-bound step of a few ops is far below.
MEMORY_SHARE = 1 / 4

OVERHEAD, MEMORY, UNKNOWN = "overhead", "memory", "unknown"


@dataclass(frozen=True)
class Bound:
    """What the fixed cost is (`kind`), and the evidence lines that say why."""

    kind: str
    evidence: tuple[str, ...]
    floor_ms: float = math.nan


def copy_gbps(data: RunData, row: dict[str, Any]) -> float | None:
    """The run's measured copy ceiling for this point's device and thread count, or None."""
    meta = data.meta
    cuda = str(row.get("device") or "").startswith("cuda")
    entries = [] if cuda else list((meta.get("ceilings_by_threads") or {}).items())
    for threads, entry in entries:
        if str(threads) == str(int(row.get("threads") or 0)) and isinstance(entry, dict):
            return _positive(entry.get("copy_gbps"))
    single = meta.get("ceilings")
    if isinstance(single, dict) and (cuda or not entries):
        name = str(single.get("device_name") or "")
        if name.startswith("cuda") == cuda:
            same = cuda or single.get("threads") in (None, int(row.get("threads") or 0))
            return _positive(single.get("copy_gbps")) if same else None
    return None


def _positive(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out > 0 and math.isfinite(out) else None


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def classify(data: RunData, row: dict[str, Any], fixed_ms: float) -> Bound:
    """Whether `row`'s fixed per-step cost `fixed_ms` is memory traffic or overhead."""
    counted = (row.get("extra") or {}).get(facts.STEP_BYTES)
    weights = _positive((counted or {}).get("weights")) if isinstance(counted, dict) else None
    if weights is None:
        return Bound(UNKNOWN, ("bytes per step: not counted by this run (older perfbench)",))
    # the recorded cache is the CPU's: a GPU's L2 is not recorded, so on CUDA it is unknown
    cuda = str(row.get("device") or "").startswith("cuda")
    llc = None if cuda else _positive(counted.get("last_level_cache"))
    evidence = [
        f"weights: {_mb(weights)} in {counted.get('weight_tensors', '?')} tensors"
        + (f", last-level cache {_mb(llc)}" if llc else ", cache size unknown")
        + " [results.csv extra.step_bytes]"
    ]
    if llc and weights <= llc:
        evidence.append(
            "the weights fit in the last-level cache: a step need not read them from memory"
        )
        return Bound(OVERHEAD, tuple(evidence))
    gbps = copy_gbps(data, row)
    if gbps is None:
        threads = int(row.get("threads") or 1)
        evidence.append(
            "no copy ceiling recorded for this device and thread count, so reading the weights "
            f"cannot be timed: run `perfbench ceilings --device cpu --threads {threads}`, then "
            "`perfbench report RUN_DIR`"
        )
        return Bound(UNKNOWN, tuple(evidence))
    floor_ms = weights / (gbps * 1e9) * 1e3
    evidence.append(
        f"reading them once at the measured copy ceiling of {gbps:.1f} GB/s takes at least "
        f"{floor_ms:.2f} ms, {floor_ms / fixed_ms:.0%} of the {fixed_ms:.2f} ms fixed cost "
        "[run.json ceilings]"
        if fixed_ms > 0
        else f"reading them at {gbps:.1f} GB/s takes at least {floor_ms:.2f} ms [run.json ceilings]"
    )
    if fixed_ms > 0 and floor_ms >= MEMORY_SHARE * fixed_ms:
        return Bound(MEMORY, tuple(evidence), floor_ms)
    if row.get("contended") is True or str(row.get("contended")).lower() == "true":
        evidence.append(
            "the point was contended: other processes stretch its step (and share the memory "
            "bus) but not the ceiling, so a small share here does not make it overhead "
            "[results.csv contended]"
        )
        return Bound(UNKNOWN, tuple(evidence), floor_ms)
    return Bound(OVERHEAD, tuple(evidence), floor_ms)
