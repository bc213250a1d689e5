"""The measuring side of `--executor ray`: what runs inside a Ray worker for one comparison group.

`group_task` is a generator that Ray runs as a streaming task (perfbench.execute.ray.executor wraps it with
`ray.remote`). It yields messages as things happen, so the driver writes each row the moment it is
final and enforces `--timeout` per point, as the local worker does:

    WorkerFacts(facts)           first: host, node, versions, GPU, pinned cores, inductor cache
    Active(point_id, secs)       the point being measured (None: between points) and for how long
    RowReady(row, files)         one point's final `Row`, and the artefacts written for it
                                 (relative path -> bytes: the driver's run folder is elsewhere)
    FilesReady(files)            artefacts written after the last row, if any

(the dataclasses of perfbench.execute.events)

The group is measured by `perfbench.measure.group.measure_group`, the same unit the local worker runs, in
a thread of this process; the task's own thread forwards what it emits. Activity is forwarded at
most twice a second, so forwarding costs nothing measurable while the group is timed.

Nothing here raises for a point's failure: a scenario that does not load, or a worker whose torch
or perfbench differs from the driver's, gives every point a failed row saying why.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
import platform
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import perfbench
from perfbench.execute.events import Active, FilesReady, RowReady, WorkerFacts, WorkerMessage
from perfbench.measure.group import Activity, GroupTask, measure_group
from perfbench.measure.point import PointTask
from perfbench.results import facts
from perfbench.results.row import Row

ACTIVITY_PERIOD_S = 0.5  # how often a change of the measured point is forwarded, at most
_ALLOWED_CPUS: list[int] | None = None  # this process's cores before the first pinning


@dataclass(frozen=True)
class GroupPayload:
    """What the driver sends with one attempt at a group."""

    task: GroupTask  # the points still to measure; run_dir and scenario_path are the driver's
    scenario_name: str  # the scenario's file name in the shipped folder (the task's cwd)
    driver_dir: str  # the scenario's folder on the driver: messages name the user's file
    expected: Mapping[str, str]  # the driver's `versions()`
    run_token: str  # unique per run: marks the first group of the run on each node
    cpus: int  # cores the task asked Ray for; the process is pinned to that many
    gpu: bool  # the group runs on CUDA (asked Ray for one GPU)
    attempt: int  # 1, or 2 when retried after a worker died


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """What must match between driver and worker: torch's version, and perfbench's version with a
    hash of its source and of its kernels (two checkouts of one version may measure differently)."""
    digest = hashlib.sha256()
    roots = [Path(perfbench.__file__).parent]
    kernels = importlib.util.find_spec("perfbench_kernels")
    if kernels is not None and kernels.submodule_search_locations:
        roots.append(Path(next(iter(kernels.submodule_search_locations))))
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return {
        "torch": torch.__version__,
        "perfbench": f"{perfbench.__version__}+src.{digest.hexdigest()[:12]}",
    }


def version_refusal(expected: Mapping[str, str], worker: Mapping[str, Any]) -> str | None:
    """Why this worker may not measure for the driver (None: it may): measurements taken with
    another torch or perfbench are not comparable with the rest of the run."""
    diffs = [
        f"{name} {worker.get(name)} here but {want} on the driver"
        for name, want in expected.items()
        if worker.get(name) != want
    ]
    if not diffs:
        return None
    return (
        f"refused the Ray worker on host {worker.get('host')} (node {str(worker.get('node_id'))[:8]}):"
        f" {'; '.join(diffs)}; install the same torch and perfbench on every node"
    )


def pin_cores(count: int) -> list[int] | None:
    """Pin every thread of this process to `count` of its cores (Ray's CPUs are bookkeeping, not
    cores). Timing is exclusive per node (one timing slot), so the first cores are free of other
    timed work. None where the OS cannot pin."""
    global _ALLOWED_CPUS
    if not hasattr(os, "sched_setaffinity"):
        return None
    if _ALLOWED_CPUS is None:  # a reused worker was pinned by its previous task
        _ALLOWED_CPUS = sorted(os.sched_getaffinity(0))
    cores = _ALLOWED_CPUS[: max(count, 1)]
    for tid in os.listdir("/proc/self/task"):  # threads that exist now; new ones inherit
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # the thread ended meanwhile
            pass
    return cores


def inductor_cache() -> dict[str, Any]:
    """Where inductor caches compiled code on this node, and whether it was empty (cold: the
    first compile here pays the full cold start)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        path = Path(cache_dir())
    except Exception as err:  # a private torch API: record why it could not be read
        return {"inductor_cache_dir": None, "inductor_cache_cold": None, "why": str(err)}
    cold = not path.is_dir() or not any(path.iterdir())
    return {"inductor_cache_dir": str(path), "inductor_cache_cold": cold}


def first_group_on_node(run_token: str, node_id: str) -> bool:
    """True for the first group of this run that reaches this Ray node (a marker file per node)."""
    marker = Path(tempfile.gettempdir()) / "perfbench-ray" / run_token / node_id
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def worker_facts(payload: GroupPayload) -> dict[str, Any]:
    """Where this attempt runs and with what: recorded per point, since points of one run may now
    run on different machines."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    gpu = None
    if payload.gpu and torch.cuda.is_available():  # Ray set CUDA_VISIBLE_DEVICES to its GPU
        gpu = torch.cuda.get_device_name(0)
    return {
        "host": socket.gethostname(),
        "node_id": node_id,
        "started_at": time.time(),  # wall clock: with row_at, the span this task held the node
        "working_dir": os.getcwd(),  # the copy of the scenario's folder Ray unpacked here
        "pid": os.getpid(),
        "python": platform.python_version(),
        **versions(),
        "gpu": gpu,
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        **inductor_cache(),
        "first_group_on_node": first_group_on_node(payload.run_token, node_id),
        "cpu_affinity": pin_cores(payload.cpus),
        "attempt": payload.attempt,
    }


def group_task(payload: GroupPayload) -> Iterator[WorkerMessage]:
    """Measure one group here, streaming messages to the driver (see the module docstring)."""
    from perfbench.scenario.loading import ScenarioError, load_scenario

    worker = worker_facts(payload)
    yield WorkerFacts(worker)
    here = Path.cwd()  # Ray unpacked the scenario's folder here (runtime_env working_dir)

    def localise(text: str) -> str:  # messages name the user's file, not the unpacked copy
        return text.replace(str(here), payload.driver_dir)

    def failed(points: tuple[PointTask, ...], why: str) -> Iterator[WorkerMessage]:
        for p in points:
            row = Row.for_point(p.point_id, p.point, group_id=payload.task.group_id)
            row.update(
                status="failed", error=why, host=worker["host"], extra={facts.WORKER: worker}
            )
            yield RowReady(row)

    refusal = version_refusal(payload.expected, worker)
    if refusal:
        yield from failed(payload.task.points, refusal)
        return
    try:
        scenario = load_scenario(here / payload.scenario_name)
    except ScenarioError as err:
        yield from failed(payload.task.points, localise(str(err)))
        return
    with tempfile.TemporaryDirectory(prefix="perfbench-ray-") as tmp:
        points = tuple(
            dataclasses.replace(p, run_dir=tmp, scenario_path=str(scenario.path))
            for p in payload.task.points
        )
        task = dataclasses.replace(payload.task, points=points)
        for message in _stream(scenario, task, Path(tmp)):
            if isinstance(message, RowReady):
                row = message.row
                row.error = localise(row.error)
                extra = row.extra
                if facts.TRACEBACK in extra:
                    extra[facts.TRACEBACK] = localise(str(extra[facts.TRACEBACK]))
                extra[facts.WORKER] = {**worker, **extra.get(facts.WORKER, {})}
                row.host = worker["host"]
            yield message


def _stream(scenario: Any, task: GroupTask, out_dir: Path) -> Iterator[WorkerMessage]:
    """Run `measure_group` in a thread; yield its rows (with new artefacts) and activity changes.

    Each row's `extra.worker.row_at` is the wall-clock time it was final: with the task's
    `started_at`, the span the task held its node, which shows that no two groups timed on one
    node at once."""
    messages: queue.Queue[tuple[Any, ...]] = queue.Queue()
    activity = Activity()

    def work() -> None:
        try:
            measure_group(
                scenario, task, lambda row: messages.put(("row", row, time.time())), activity
            )
        except BaseException as err:  # measure_group never raises: a bug, reported as the task's
            messages.put(("error", f"{type(err).__name__}: {err}"))
        finally:
            messages.put(("end",))

    threading.Thread(target=work, name="perfbench-measure", daemon=True).start()
    shipped: set[Path] = set()
    last: tuple[int | None, float] | None = None
    while True:
        try:
            item: tuple[Any, ...] | None = messages.get(timeout=ACTIVITY_PERIOD_S)
        except queue.Empty:
            item = None
        state = activity.current()
        if state != last:
            last = state
            point_id, since = state
            yield Active(point_id, time.monotonic() - since if point_id is not None else 0.0)
        if item is None:
            continue
        if item[0] == "end":
            leftovers = _new_files(out_dir, shipped)  # written after the last row: still kept
            if leftovers:
                yield FilesReady(leftovers)
            break
        if item[0] == "error":
            raise RuntimeError(f"measuring group {task.group_id} failed: {item[1]}")
        _, row, at = item
        row.extra[facts.WORKER] = {"row_at": at}
        yield RowReady(row, _new_files(out_dir, shipped))


def _new_files(root: Path, shipped: set[Path]) -> dict[str, bytes]:
    """Files under `root` not sent before, by path relative to it (the run folder's layout)."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in shipped):
        shipped.add(path)
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files
