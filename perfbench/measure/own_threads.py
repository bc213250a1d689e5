"""CPU used by the scenario's own threads inside the measuring process.

A scenario may start threads (a prefetcher, a logger, a watchdog) in the process that times it.
Their CPU time is this process's, so it is not "other processes" (`perfbench.measure.contention` counts
this process tree as ours), yet it competes with the timed work: for the GIL, for cores, for
caches. So it is measured apart, per Python thread other than the one that times and perfbench's
own (named `perfbench-...`), from /proc/self/task/<tid>/stat, and named as such. torch's intra-op
pool threads are native, not Python threads, and are not counted here.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
HARNESS_THREADS = ("perfbench", "_pin_memory_loop")  # names (or targets) of threads we start


def thread_cpu() -> dict[int, tuple[str, float]]:
    """{native thread id: (name, CPU seconds)} of the Python threads the scenario started."""
    me = threading.get_native_id()
    out: dict[int, tuple[str, float]] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None or tid == me or any(h in thread.name for h in HARNESS_THREADS):
            continue
        try:
            text = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue  # ended while we looked
        rest = text[text.rfind(")") + 2 :].split()
        out[tid] = (thread.name, (int(rest[11]) + int(rest[12])) * _TICK_S)
    return out


def own_threads_used(
    start: dict[int, tuple[str, float]], end: dict[int, tuple[str, float]]
) -> tuple[float, list[str]]:
    """(CPU seconds, names busiest first) the scenario's threads used between two readings; a
    thread started in between counts from zero, one that ended in between is not seen."""
    used = {}
    for tid, (name, cpu) in end.items():
        delta = cpu - start.get(tid, (name, 0.0))[1]
        if delta > 0:
            used[name] = used.get(name, 0.0) + delta
    names = sorted(used, key=lambda n: -used[n])
    return sum(used.values()), names
