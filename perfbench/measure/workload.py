"""One point's workload: the seeded model, the eager float32 reference, the backend's prepared model,
and the `step` callable that the timer repeats.

`build_workload` does everything a point needs before timing, in the order the measurement rules
ask for: seed, build, reference output, backend prepare (cold start), first call, correctness check
(`prepare_checked`, which rung 6 of `perfbench check` calls too), then the data feed and the step.
The timer then only sees `Workload.step`.

The correctness check runs the forward with the model in eval mode and autograd off, in both modes:
dropout would otherwise make any two forwards differ. In train mode the first training step must
also produce a finite loss.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perfbench.backends import BACKENDS, Prepared
from perfbench.measure.correctness import (
    CheckResult,
    MismatchError,
    check_against_reference,
    check_finite,
    tolerance_for,
)
from perfbench.measure.feed import DataFeed, make_feed, to_device
from perfbench.measure.knobs import (
    batch_to_memory_format,
    feed_in_memory_format,
    knob_skip_reason,
    model_to_memory_format,
)
from perfbench.profiling.nvtx_ranges import point_phase
from perfbench.results import facts
from perfbench.results.axes import Amp, Mode, Point
from perfbench.scenario.loading import ModelError, Scenario, ScenarioError, check_batch

AMP_DTYPES = {Amp.BF16: torch.bfloat16, Amp.FP16: torch.float16}


def seed_everything(seed: int) -> None:
    """Seed every RNG a scenario may draw from (Python, NumPy, torch)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_context(point: Point) -> contextlib.AbstractContextManager[Any]:
    if point.amp is Amp.OFF:
        return contextlib.nullcontext()
    return torch.autocast(device_type=point.device.value, dtype=AMP_DTYPES[point.amp])


def device_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


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
    check_batch: Any = None  # the correctness check's batch and eager reference, kept so the
    reference: Any = None  # output can be checked again after the timed rounds (after_rounds)

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


def checked_model(scenario: Scenario, seed: int) -> torch.nn.Module:
    """Seed, then `build_model()`: a float32 nn.Module, else a `ScenarioError` naming the file."""
    seed_everything(seed)
    model = scenario.build_model()
    code = getattr(scenario.build_model, "__code__", None)  # the line to fix: `def build_model`
    here = code and Path(code.co_filename).resolve() == scenario.path.resolve()
    line = code.co_firstlineno if here else None
    if not isinstance(model, torch.nn.Module):
        what = type(model).__name__
        if callable(model):  # `return Model` or a bare function: the module was never built
            what += f" {getattr(model, '__name__', '')!r}: return an nn.Module instance"
        raise ModelError(
            scenario.path, f"build_model() must return a torch.nn.Module, got {what}", line=line
        )
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
    if bad:
        raise ModelError(
            scenario.path,
            f"build_model() must return a float32 model (the harness applies amp); "
            f"parameters {bad[:3]} are {model.get_parameter(bad[0]).dtype}",
            line=line,
        )
    return model


def seeded_batch(scenario: Scenario, batch_size: int, seed: int) -> Any:
    """The batch drawn under `seed + 1` (never dependent on what ran before), checked."""
    seed_everything(seed + 1)
    batch = scenario.make_batch(batch_size)
    check_batch(scenario, batch, batch_size)
    return batch


@dataclass
class Checked:
    """A backend's prepared model whose first call agreed with the eager float32 reference."""

    model: torch.nn.Module  # the eager model (parameters shared with the prepared one in train)
    prepared: Prepared
    batch: Any  # the check batch, on the point's device
    reference: Any  # eager float32 output on `batch`
    out: Any  # the prepared model's output on `batch`
    check: CheckResult
    prepare_s: float
    first_call_s: float
    sync: Callable[[], None]


def prepare_checked(
    scenario: Scenario, point: Point, seed: int = 0, weights_from: torch.nn.Module | None = None
) -> Checked:
    """Seed, build, reference, backend prepare, first call, correctness check: everything before
    timing that the sweep, rung 6 of `perfbench check` and the pytest plugin share. Raises on any
    failure; a wrong result raises `MismatchError`. The caller runs the backend's teardown.

    `weights_from`: run on that model's own tensors (same storage, not a copy). Arms of one
    comparison group do this where the backend leaves weights alone: two separately built copies
    of the same MLP measured up to 15% apart here from where their memory happened to land."""
    torch.set_num_threads(point.threads)
    device = torch.device(point.device.value)
    sync = device_sync(device)
    model = checked_model(scenario, seed).to(device)
    if weights_from is not None:
        model.load_state_dict(weights_from.state_dict(), assign=True)
    check_input = to_device(seeded_batch(scenario, point.batch_size, seed), device)
    model.eval()
    with torch.no_grad():
        reference = scenario.forward(model, check_input)
    check_finite(reference)
    reference = detach_clone(reference)
    # channels_last: eager and the backend both run in the layout; the reference stays contiguous
    model = model_to_memory_format(model, point)
    check_input = batch_to_memory_format(check_input, point)

    if point.mode is Mode.TRAIN:
        model.train()  # prepare sees the model in the mode it will run in
    with point_phase("compile"):  # NVTX `<label>/compile` under --nvtx: prepare + first call
        start = time.perf_counter()
        prepared = BACKENDS[point.backend].prepare(model, point, check_input, scenario)
        prepare_s = time.perf_counter() - start

        if isinstance(prepared.model, torch.nn.Module):
            prepared.model.eval()
        start = time.perf_counter()
        with torch.no_grad(), autocast_context(point):
            out = scenario.forward(prepared.model, check_input)
        sync()
        first_call_s = time.perf_counter() - start
    tolerance = prepared.tolerance or tolerance_for(point.amp, scenario.tolerance)
    check = check_against_reference(out, reference, tolerance)
    return Checked(
        model=model,
        prepared=prepared,
        batch=check_input,
        reference=reference,
        out=out,
        check=check,
        prepare_s=prepare_s,
        first_call_s=first_call_s,
        sync=sync,
    )


def build_workload(
    scenario: Scenario, point: Point, seed: int = 0, weights_from: torch.nn.Module | None = None
) -> Workload:
    """`prepare_checked`, then the data feed and the step the timer repeats (in train mode: the
    backend's loss checked, one training step run and counted in cold start)."""
    checked = prepare_checked(scenario, point, seed, weights_from)
    prepared, model, sync = checked.prepared, checked.model, checked.sync
    target = prepared.model
    device = torch.device(point.device.value)
    seed_everything(seed + 2)
    feed = make_feed(scenario, point, device)
    feed.next_batch = feed_in_memory_format(feed.next_batch, feed.uses_loader, point)
    # the graph-break probe is our diagnostic, not a cost the user's compile would pay
    probe_s = float(prepared.info.get(facts.GRAPH_BREAK_PROBE_S) or 0.0)
    cold_start_s = checked.prepare_s - probe_s + checked.first_call_s
    if point.mode is Mode.INFER:
        step = _infer_step(scenario, point, target, feed)
    else:
        model.train()
        if isinstance(target, torch.nn.Module):
            target.train()
        loss_fn = prepared.loss_fn or scenario.loss_fn
        if prepared.loss_fn is not None:
            _check_loss(scenario, prepared.loss_fn, checked)
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
        check=checked.check,
        prepare_s=checked.prepare_s,
        first_call_s=checked.first_call_s,
        cold_start_s=cold_start_s,
        info=prepared.info,  # the same dict: a backend may count things while steps run
        check_batch=checked.batch,
        reference=checked.reference,
    )


def _check_loss(
    scenario: Scenario,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    checked: Checked,
) -> None:
    """A backend's replacement loss must agree with the scenario's own on the reference output."""
    assert scenario.loss_fn is not None
    with torch.no_grad():
        expected = scenario.loss_fn(checked.reference, checked.batch)
        got = loss_fn(checked.out, checked.batch)
    try:
        check_against_reference(got, expected, checked.check.tolerance)
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
    forward), so one scenario function serves both modes. Raises `perfbench.measure.flops.FlopsUnknown`
    when the forward runs ops the counter cannot count, rather than return an undercount."""
    factor = 3 if point.mode is Mode.TRAIN else 1
    if scenario.flops is not None:
        return int(scenario.flops(point.batch_size)) * factor
    from perfbench.measure.flops import forward_flops

    batch = workload.feed.next_batch() if not workload.feed.uses_loader else None
    if batch is None:
        return None
    with torch.no_grad():
        total = forward_flops(lambda: scenario.forward(workload.model, batch))
    return total * factor
