"""Contention: the flag's rule on known counters, and on the live kernel counters a CPU burner
outside our process tree is attributed to others (and flags the phase), while our own work and
our own children's are not.

The machine is shared with other sessions while these tests run, so no live test asserts that a
phase is quiet: a neighbour may be busy at that very moment. The quiet side is asserted where it
is deterministic (the rule on known counters) and by attribution (our own CPU lands in `own`,
not in `others`); the burner side asserts that the burner's own CPU time, read from its
/proc/<pid>/stat, shows up in `others_cpu_s`, which holds however busy the neighbours are.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from perfbench.measure.contention import (
    CpuSnapshot,
    _parse_stat,
    descendants_cpu_s,
    judge_contention,
    probe,
    snapshot,
)

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")

MARK = "perfbench-test-burner"
BURN = f"""
import os, sys, time
if {{detach}} and os.fork():
    os._exit(0)  # the intermediate exits: the burner is re-parented, outside the test's tree
print(os.getpid(), flush=True)  # {MARK}
end = time.monotonic() + 15.0  # bounded even if the test dies before killing it
while time.monotonic() < end:
    pass
"""


def snap(wall: float, busy: float, own: float, steal: float = 0.0, cpus: int = 2) -> CpuSnapshot:
    return CpuSnapshot(wall, busy, steal, own, None, 0, cpus)


def test_quiet_counters_are_not_contended() -> None:
    c = judge_contention(snap(0, 0, 0), snap(1.0, 2.0, 1.98), cores_wanted=2)
    assert not c.contended and c.reasons == ()
    assert c.others_cpu_s == pytest.approx(0.02) and c.psi_stall_s is None


def test_a_neighbour_beyond_the_free_cores_is_contention() -> None:
    busy = judge_contention(snap(0, 0, 0), snap(1.0, 2.0, 1.0), cores_wanted=2)
    assert busy.contended
    assert busy.reasons == ("other processes used 1.00 cores of 2 (this phase wanted 2)",)
    # with one thread timed on two cores, one busy neighbour fits in the free core...
    assert not judge_contention(snap(0, 0, 0), snap(1.0, 1.9, 1.0), cores_wanted=1).contended
    # ...two do not
    assert judge_contention(snap(0, 0, 0), snap(1.0, 2.0, 0.7), cores_wanted=1).contended


def test_steal_is_contention() -> None:
    c = judge_contention(snap(0, 0, 0), snap(1.0, 1.8, 1.8, steal=0.2), cores_wanted=2)
    assert c.contended and c.reasons == ("the hypervisor stole 10% of CPU time",)
    assert c.as_dict()["steal_frac"] == 0.1


def test_parse_stat_survives_odd_process_names() -> None:
    line = "42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 3 2 20 0 1 0 5 0 0"
    ppid, seconds = _parse_stat(line)
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    assert ppid == 7 and seconds == pytest.approx((150 + 50 + 3 + 2) * tick)


def _cpu_s(pid: int) -> float:
    return _parse_stat(Path(f"/proc/{pid}/stat").read_text())[1]


@contextmanager
def burners(n: int, detach: bool) -> Iterator[list[int]]:
    """n CPU burners, each bounded to 15 s and killed on exit (only if it is still ours)."""
    pids: list[int] = []
    try:
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, "-c", BURN.format(detach=detach)], stdout=subprocess.PIPE
            )
            assert proc.stdout is not None
            pids.append(int(proc.stdout.readline()))
            if detach:
                proc.wait(timeout=10)  # reap the intermediate
        time.sleep(0.2)  # let them get going
        yield pids
    finally:
        for pid in pids:
            try:
                if MARK in Path(f"/proc/{pid}/cmdline").read_text() or not detach:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        if not detach:
            for pid in pids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_own_work_is_not_counted_as_others() -> None:
    """Our own CPU time (this process) lands in `own_cpu_s`, within the kernel's tick."""
    cpu0 = time.process_time()
    with probe(cores_wanted=1) as p:
        spin(0.4)
    ours = time.process_time() - cpu0
    assert p.result is not None
    assert p.result.own_cpu_s == pytest.approx(ours, abs=0.05)


def test_a_burner_outside_our_tree_is_others_and_flags_the_phase() -> None:
    n = os.cpu_count() or 1
    with burners(n, detach=True) as pids:
        assert all(
            _parse_stat(Path(f"/proc/{pid}/stat").read_text())[0] != os.getpid() for pid in pids
        )
        before = sum(_cpu_s(pid) for pid in pids)
        with probe(cores_wanted=n) as p:
            spin(0.8)
        burned = sum(_cpu_s(pid) for pid in pids) - before
    c = p.result
    assert c is not None
    assert burned > 0.1  # the burners ran (0.22 s of 1.6 possible on this machine at load 5)
    assert c.others_cpu_s >= 0.8 * burned - 0.05  # all of it, up to tick rounding
    assert c.contended and "other processes used" in c.reasons[0]


def test_a_burning_child_is_our_own_tree() -> None:
    """A DataLoader worker is our child: its CPU is the workload's, not a neighbour's."""
    with burners(1, detach=False) as [pid]:
        before = _cpu_s(pid)
        start = snapshot()
        spin(0.6)
        end = snapshot()
        burned = _cpu_s(pid) - before
        assert descendants_cpu_s(os.getpid()) >= _cpu_s(pid) - 0.05
    assert burned > 0.1
    own = end.own_s - start.own_s
    assert own >= 0.8 * burned - 0.05
