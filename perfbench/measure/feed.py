"""Where a point's batches come from: `make_batch` reused every step, or a real DataLoader built
by the harness (so `pin_memory` and `num_workers` take effect), with the time spent waiting for
input measured."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from perfbench.results.axes import Point
from perfbench.scenario.loading import Scenario, ScenarioError, check_batch


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move a Tensor / tuple / list / dict of Tensors to the device."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


@dataclass
class DataFeed:
    """Where batches come from: `make_batch` reused every step, or a real DataLoader.

    With a DataLoader the time spent in `next()` is data wait, accumulated in `wait_s` so the
    point can report which fraction of step time went to waiting for input.
    """

    next_batch: Callable[[], Any]
    uses_loader: bool
    wait_s: float = 0.0
    close: Callable[[], None] = lambda: None


def loader_start_method() -> str:
    """How DataLoader workers start: `fork` where the platform has it, as a plain Linux script
    gets by default. The measuring worker itself is spawned, and its children would inherit
    `spawn`, which cannot re-import a scenario that was loaded from a file path."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def make_feed(scenario: Scenario, point: Point, device: torch.device) -> DataFeed:
    if scenario.make_dataset is None:
        batch = scenario.make_batch(point.batch_size)
        check_batch(scenario, batch, point.batch_size)
        on_device = to_device(batch, device)
        return DataFeed(next_batch=lambda: on_device, uses_loader=False)

    dataset = scenario.make_dataset()
    if not isinstance(dataset, torch.utils.data.Dataset):
        raise ScenarioError(
            scenario.path,
            f"make_dataset() must return a torch Dataset, got {type(dataset).__name__}",
        )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=point.batch_size,
        shuffle=False,
        drop_last=True,
        num_workers=point.num_workers,
        pin_memory=point.pin_memory,
        persistent_workers=point.num_workers > 0,
        multiprocessing_context=loader_start_method() if point.num_workers > 0 else None,
    )
    if len(loader) == 0:
        raise ScenarioError(
            scenario.path,
            f"make_dataset() has {len(dataset)} items, fewer than batch_size {point.batch_size}",  # type: ignore[arg-type]
        )
    iterator: Iterator[Any] = iter(loader)
    feed = DataFeed(next_batch=lambda: None, uses_loader=True)

    def next_batch() -> Any:
        nonlocal iterator
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        batch = to_device(batch, device, non_blocking=point.pin_memory)
        feed.wait_s += time.perf_counter() - start
        return batch

    def close() -> None:
        nonlocal iterator
        iterator = iter(())
        # persistent workers live as long as the loader holds its iterator, and the feed is in
        # a reference cycle (next_batch <-> feed): stop them now, not at some later collection
        live, loader._iterator = loader._iterator, None
        shutdown = getattr(live, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    feed.next_batch = next_batch
    feed.close = close
    return feed
