"""One point's workload: the seeded model, the eager float32 reference, the backend's prepared model,
and the `step` callable that the timer repeats.

`build_workload` does everything a point needs before timing, in the order the measurement rules
ask for: seed, build, reference output, backend prepare (cold start), first call, correctness check.
The timer then only sees `Workload.step`.

The correctness check runs the forward with the model in eval mode and autograd off, in both modes:
dropout would otherwise make any two forwards differ. In train mode the first training step must
also produce a finite loss.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from perfbench.axes import Amp, Mode, Point
from perfbench.backends import BACKENDS, Prepared
from perfbench.correctness import (
    CheckResult,
    MismatchError,
    check_against_reference,
    check_finite,
    tolerance_for,
)
from perfbench.knobs import (
    batch_to_memory_format,
    feed_in_memory_format,
    knob_skip_reason,
    model_to_memory_format,
)
from perfbench.profiling.nvtx_ranges import point_phase
from perfbench.scenario import Scenario, ScenarioError, check_batch

AMP_DTYPES = {Amp.BF16: torch.bfloat16, Amp.FP16: torch.float16}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move a Tensor / tuple / list / dict of Tensors to the device."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


def autocast_context(point: Point) -> contextlib.AbstractContextManager[Any]:
    if point.amp is Amp.OFF:
        return contextlib.nullcontext()
    return torch.autocast(device_type=point.device.value, dtype=AMP_DTYPES[point.amp])


def device_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


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
        iterator = iter(())  # drops worker processes of a persistent iterator

    feed.next_batch = next_batch
    feed.close = close
    return feed


@dataclass
class Workload:
    """Everything needed to repeat one point's step; built by `build_workload`."""

    point: Point
    scenario: Scenario
    model: torch.nn.Module  # the eager model (parameters shared with the prepared one in train)
    prepared: Prepared
    feed: DataFeed
    step: Callable[[], Any]
    sync: Callable[[], None]
    check: CheckResult
    prepare_s: float
    first_call_s: float
    cold_start_s: float
    info: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.feed.close()


def skip_reason(point: Point, scenario: Scenario) -> str | None:
    """Why this point makes no sense here (kept as `skipped` with this reason), or None."""
    if point.device.value == "cuda" and not torch.cuda.is_available():
        return "device=cuda but CUDA is not available on this machine"
    if point.amp is Amp.FP16 and point.device.value == "cpu":
        return "fp16 autocast on CPU is emulated and not a real setting: use bf16 or a GPU"
    if point.pin_memory and point.device.value == "cpu":
        return "pin_memory only speeds host-to-device copies: device is cpu"
    if point.pin_memory and scenario.make_dataset is None:
        return "pin_memory needs a DataLoader: the scenario defines no make_dataset"
    if point.num_workers > 0 and scenario.make_dataset is None:
        return "num_workers needs a DataLoader: the scenario defines no make_dataset"
    if point.mode is Mode.TRAIN and not scenario.can_train:
        return "mode=train needs loss_fn in the scenario"
    backend = BACKENDS[point.backend]
    return knob_skip_reason(point, scenario, backend) or backend.applies(point, scenario)


def _checked_model(scenario: Scenario) -> torch.nn.Module:
    model = scenario.build_model()
    if not isinstance(model, torch.nn.Module):
        raise ScenarioError(
            scenario.path,
            f"build_model() must return a torch.nn.Module, got {type(model).__name__}",
        )
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
    if bad:
        raise ScenarioError(
            scenario.path,
            f"build_model() must return a float32 model (the harness applies amp); "
            f"parameters {bad[:3]} are {model.get_parameter(bad[0]).dtype}",
        )
    return model


def build_workload(scenario: Scenario, point: Point, seed: int = 0) -> Workload:
    """Seed, build, reference, prepare, first call, check. Raises on any failure (the caller
    records it); a check failure raises `MismatchError`."""
    torch.set_num_threads(point.threads)
    device = torch.device(point.device.value)
    sync = device_sync(device)
    seed_everything(seed)
    model = _checked_model(scenario).to(device)

    seed_everything(seed + 1)
    check_input = scenario.make_batch(point.batch_size)
    check_batch(scenario, check_input, point.batch_size)
    check_input = to_device(check_input, device)
    model.eval()
    with torch.no_grad():
        reference = scenario.forward(model, check_input)
    check_finite(reference)
    reference = detach_clone(reference)
    # channels_last: eager and the backend both run in the layout; the reference stays contiguous
    model = model_to_memory_format(model, point)
    check_input = batch_to_memory_format(check_input, point)

    if point.mode is Mode.TRAIN:
        model.train()
    backend = BACKENDS[point.backend]
    with point_phase("compile"):  # NVTX `<label>/compile` under --nvtx: prepare + first call
        start = time.perf_counter()
        prepared = backend.prepare(model, point, check_input, scenario)
        prepare_s = time.perf_counter() - start

        target = prepared.model
        if isinstance(target, torch.nn.Module):
            target.eval()
        start = time.perf_counter()
        with torch.no_grad(), autocast_context(point):
            out = scenario.forward(target, check_input)
        sync()
        first_call_s = time.perf_counter() - start
    tolerance = getattr(prepared, "tolerance", None) or tolerance_for(point.amp, scenario.tolerance)
    check = check_against_reference(out, reference, tolerance)

    seed_everything(seed + 2)
    feed = make_feed(scenario, point, device)
    feed.next_batch = feed_in_memory_format(feed.next_batch, feed.uses_loader, point)
    # the graph-break probe is our diagnostic, not a cost the user's compile would pay
    cold_start_s = prepare_s - float(prepared.info.get("graph_break_probe_s") or 0.0) + first_call_s
    if point.mode is Mode.INFER:
        step = _infer_step(scenario, point, target, feed)
    else:
        model.train()
        if isinstance(target, torch.nn.Module):
            target.train()
        loss_fn = prepared.loss_fn or scenario.loss_fn
        if prepared.loss_fn is not None:
            _check_loss(scenario, prepared.loss_fn, out, check_input, reference, tolerance)
        step = _train_step(scenario, point, model, target, feed, device, loss_fn)
        start = time.perf_counter()
        loss = step()
        sync()
        cold_start_s += time.perf_counter() - start
        check_finite(loss)
    return Workload(
        point=point,
        scenario=scenario,
        model=model,
        prepared=prepared,
        feed=feed,
        step=step,
        sync=sync,
        check=check,
        prepare_s=prepare_s,
        first_call_s=first_call_s,
        cold_start_s=cold_start_s,
        info=prepared.info,  # the same dict: a backend may count things while steps run
    )


def _check_loss(
    scenario: Scenario,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    out: Any,
    batch: Any,
    reference: Any,
    tolerance: float,
) -> None:
    """A backend's replacement loss must agree with the scenario's own on the reference output."""
    assert scenario.loss_fn is not None
    with torch.no_grad():
        expected = scenario.loss_fn(reference, batch)
        got = loss_fn(out, batch)
    try:
        check_against_reference(got, expected, tolerance)
    except MismatchError as err:
        raise MismatchError(f"the backend's loss_fn: {err}") from None


def detach_clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, Mapping):
        return {k: detach_clone(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(detach_clone(v) for v in value)
    return value


def _infer_step(scenario: Scenario, point: Point, target: Any, feed: DataFeed) -> Callable[[], Any]:
    forward = scenario.forward
    amp = autocast_context  # a fresh context each call: autocast contexts are not reentrant

    def step() -> Any:
        batch = feed.next_batch()
        with torch.no_grad(), amp(point):
            return forward(target, batch)

    return step


def _train_step(
    scenario: Scenario,
    point: Point,
    model: torch.nn.Module,
    target: Any,
    feed: DataFeed,
    device: torch.device,
    loss_fn: Callable[[Any, Any], torch.Tensor],
) -> Callable[[], Any]:
    forward = scenario.forward
    optimizer = scenario.build_optimizer(model.parameters())
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ScenarioError(
            scenario.path,
            f"build_optimizer() must return a torch.optim.Optimizer, got {type(optimizer).__name__}",
        )
    scaler = torch.amp.GradScaler(device.type, enabled=point.amp is Amp.FP16)

    def step() -> Any:
        batch = feed.next_batch()
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(point):
            out = forward(target, batch)
            loss = loss_fn(out, batch)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step


def count_flops(scenario: Scenario, point: Point, workload: Workload) -> int | None:
    """FLOPs of one step. `FLOPS(batch_size)` (or, without it, torch's flop counter on one eager
    forward) counts the forward; a train step counts 3x that (backward costs about twice the
    forward), so one scenario function serves both modes."""
    factor = 3 if point.mode is Mode.TRAIN else 1
    if scenario.flops is not None:
        return int(scenario.flops(point.batch_size)) * factor
    from torch.utils.flop_counter import FlopCounterMode

    batch = workload.feed.next_batch() if not workload.feed.uses_loader else None
    if batch is None:
        return None
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        scenario.forward(workload.model, batch)
    total = counter.get_total_flops()
    return int(total) * factor
