"""What the arms of one comparison group share, so that they differ only in their backend:
eager's weight tensors (where a backend leaves weights alone), one DataLoader, and what their
backends share while the arms are built (`Backend.group_scope`).

An arm here is `perfbench.measure.group_timing.Arm` (its task, its workload, its own data-wait count).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from perfbench.backends import BACKENDS
from perfbench.results.axes import Mode, Point


def shared_weights(point: Point, arms: Sequence[Any]) -> torch.nn.Module | None:
    """Eager's model, when this arm may run on eager's own weight tensors: in inference, for a
    backend that leaves weights alone (`Backend.reuses_weights`: eager itself for the control,
    torch.compile). Separately built copies of one MLP measured up to 15% apart here from where
    their memory landed, so the control would calibrate placement, not the method. In train mode
    every arm keeps its own copy: their optimizers would otherwise update one set of weights."""
    eager = next((a for a in arms if a.task.point.backend == "eager" and not a.control), None)
    if eager is None or point.mode is not Mode.INFER or not BACKENDS[point.backend].reuses_weights:
        return None
    return eager.workload.model


def share_loader(arms: Sequence[Any]) -> None:
    """All arms read the first arm's DataLoader when it has worker processes; each arm counts
    the time it waited for its own batches."""
    if not arms or arms[0].task.point.num_workers == 0 or not arms[0].workload.feed.uses_loader:
        return
    shared = arms[0].workload.feed.next_batch
    for i, arm in enumerate(arms):
        if i > 0:
            arm.workload.feed.close()  # its own workers stop before any arm is timed

        def next_batch(arm: Any = arm) -> Any:
            start = time.perf_counter()
            batch = shared()
            arm.wait_s += time.perf_counter() - start
            return batch

        arm.workload.feed.next_batch = next_batch


@contextmanager
def group_scopes(backends: Iterable[str]) -> Iterator[None]:
    """Every distinct `Backend.group_scope` of these backends, entered once, around building a
    group's arms (the compile backends: no arm's prepare throws away an earlier arm's code)."""
    scopes = {BACKENDS[name].group_scope: None for name in backends}  # ordered, distinct
    with ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(scope())
        yield
