"""Noise you can see: how much CPU others took while a phase was timed.

A timing taken while another process ran on the same cores measures the neighbour as much as
the model. Per timed phase this records, from what the Linux kernel offers:

- `others_cpu_s`: CPU time used by every process outside this process tree: the system-wide
  busy time from /proc/stat (user + nice + system + irq + softirq) minus our own tree's (this
  process from getrusage, reaped children from RUSAGE_CHILDREN, live descendants such as
  DataLoader workers from /proc/<pid>/stat). `others_cores` is that per second of wall time.
- `steal_s`: time the hypervisor ran something else while a virtual CPU wanted to run
  (/proc/stat `steal`); invisible to every process-level count.
- `psi_stall_s`: /proc/pressure/cpu "some" total: wall time during which at least one runnable
  task waited for a CPU (kernel >= 4.20 with PSI on; None where absent).
- `nivcsw`: the worker's involuntary context switches (getrusage): how often it was preempted.

The `contended` flag. A phase is contended when either

1. other processes used more than the cores the phase left free plus a quarter core:
   `others_cores > max(0, cpus - cores_wanted) + 0.25`, where `cores_wanted` is what the timed
   work itself keeps busy (the point's threads, plus DataLoader workers). One busy neighbour on a
   2-core machine timed with 2 threads takes ~1 core and is flagged; a quarter core leaves room
   for housekeeping (measured in quiet windows on the shared 2-core development machine: 0.00 to
   0.14 cores; with other sessions' test suites running: 0.5 to 2.0). A neighbour that fits in the free
   cores (1 thread timed, 1 busy neighbour, 2 cores) is not flagged by this rule, or
2. steal exceeded 5% of the phase's CPU time (`steal_s > 0.05 * wall_s * cpus`): the host
   itself was oversubscribed.

3. the scenario's own Python threads (`perfbench.measure.own_threads`) used more than a quarter core
   inside the measuring process: named as such, since they are this process, not "others".

PSI stall time and involuntary switches are recorded as evidence beside the flag but do not set
it: both also count the workload's own oversubscription (more threads plus loader workers than
cores), which is a property of the point, not noise from outside.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from perfbench.measure.own_threads import own_threads_used, thread_cpu
from perfbench.results import facts

PROC = Path("/proc")
OTHERS_MARGIN_CORES = 0.25
STEAL_MAX_FRAC = 0.05
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    """Counters at one instant; two of them make a `Contention`."""

    wall_s: float
    busy_s: float  # all CPUs, all processes (/proc/stat)
    steal_s: float
    own_s: float  # this process tree
    psi_some_us: int | None
    nivcsw: int
    cpus: int
    threads: dict[int, tuple[str, float]] = field(default_factory=dict)  # own_threads


def _read_proc_stat() -> tuple[float, float, int]:
    """(busy seconds, steal seconds, number of CPUs) from /proc/stat."""
    lines = (PROC / "stat").read_text().splitlines()
    fields = [int(x) for x in lines[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return (user + nice + system + irq + softirq) * _TICK_S, steal * _TICK_S, cpus


def _parse_stat(text: str) -> tuple[int, float]:
    """(ppid, utime + stime + cutime + cstime in seconds) from a /proc/<pid>/stat line."""
    rest = text[text.rfind(")") + 2 :].split()  # comm may hold spaces and parentheses
    ppid = int(rest[1])
    ticks = sum(int(x) for x in rest[11:15])
    return ppid, ticks * _TICK_S


def descendants_cpu_s(root: int) -> float:
    """CPU seconds of the live descendants of `root` (and of their reaped children)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid, seconds = _parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # the process exited while we looked
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        cpu[pid] = seconds
    total, stack = 0.0, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def _psi_some_us() -> int | None:
    try:
        for line in (PROC / "pressure" / "cpu").read_text().splitlines():
            if line.startswith("some"):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def snapshot() -> CpuSnapshot:
    """Read every counter now."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = me.ru_utime + me.ru_stime + reaped.ru_utime + reaped.ru_stime
    own += descendants_cpu_s(os.getpid())
    busy, steal, cpus = _read_proc_stat()
    return CpuSnapshot(
        wall_s=time.monotonic(),
        busy_s=busy,
        steal_s=steal,
        own_s=own,
        psi_some_us=_psi_some_us(),
        nivcsw=me.ru_nivcsw,
        cpus=cpus,
        threads=thread_cpu(),
    )


@dataclass(frozen=True)
class Contention:
    """What others took from one timed phase, and whether that makes it contended."""

    wall_s: float
    others_cpu_s: float
    own_cpu_s: float
    steal_s: float
    psi_stall_s: float | None
    nivcsw: int
    cpus: int
    cores_wanted: float
    contended: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    own_threads_cpu_s: float = 0.0  # the scenario's own threads, inside this process

    @property
    def others_cores(self) -> float:
        return self.others_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, float | int | bool | str | None]:
        """Flat fields for a results row's `extra` column."""
        return {
            facts.OTHERS_CORES: round(self.others_cores, 3),
            facts.STEAL_FRAC: round(self.steal_s / (self.wall_s * self.cpus), 4)
            if self.wall_s
            else 0,
            facts.PSI_SOME_FRAC: (
                round(self.psi_stall_s / self.wall_s, 4)
                if self.psi_stall_s is not None and self.wall_s
                else None
            ),
            facts.NIVCSW_PER_S: round(self.nivcsw / self.wall_s, 1) if self.wall_s else 0,
            facts.OWN_THREADS_CORES: round(self.own_threads_cpu_s / self.wall_s, 3)
            if self.wall_s
            else 0,
            facts.CONTENDED: self.contended,
            facts.CONTENTION: "; ".join(self.reasons),
        }


def judge_contention(start: CpuSnapshot, end: CpuSnapshot, cores_wanted: float) -> Contention:
    """The deltas between two snapshots and the flag (rules in the module docstring)."""
    wall = max(end.wall_s - start.wall_s, 1e-9)
    own = max(end.own_s - start.own_s, 0.0)
    others = max(end.busy_s - start.busy_s - own, 0.0)
    steal = max(end.steal_s - start.steal_s, 0.0)
    psi = None
    if start.psi_some_us is not None and end.psi_some_us is not None:
        psi = (end.psi_some_us - start.psi_some_us) / 1e6
    free = max(0.0, end.cpus - cores_wanted)
    reasons = []
    if others / wall > free + OTHERS_MARGIN_CORES:
        reasons.append(
            f"other processes used {others / wall:.2f} cores of {end.cpus} "
            f"(this phase wanted {cores_wanted:g})"
        )
    if steal > STEAL_MAX_FRAC * wall * end.cpus:
        reasons.append(f"the hypervisor stole {steal / (wall * end.cpus):.0%} of CPU time")
    threads_s, names = own_threads_used(start.threads, end.threads)
    if threads_s / wall > OTHERS_MARGIN_CORES:  # they share the process: the GIL, cores, caches
        reasons.append(
            f"the scenario's own threads in the measuring process ({', '.join(names[:3])}) used "
            f"{threads_s / wall:.2f} cores beside the timed work"
        )
    return Contention(
        wall_s=wall,
        others_cpu_s=others,
        own_cpu_s=own,
        steal_s=steal,
        psi_stall_s=psi,
        nivcsw=end.nivcsw - start.nivcsw,
        cpus=end.cpus,
        cores_wanted=cores_wanted,
        contended=bool(reasons),
        reasons=tuple(reasons),
        own_threads_cpu_s=threads_s,
    )


@dataclass
class Probe:
    """Filled in when its `probe` block ends."""

    cores_wanted: float
    result: Contention | None = None


@contextmanager
def probe(cores_wanted: float) -> Iterator[Probe]:
    """`with probe(threads) as p: <timed phase>`, then `p.result` is that phase's `Contention`."""
    handle = Probe(cores_wanted)
    start = snapshot()
    try:
        yield handle
    finally:
        handle.result = judge_contention(start, snapshot(), cores_wanted)
