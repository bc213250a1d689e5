"""What every rung of `perfbench check` shares: the context, the result, the seeded model and batch
(built and drawn exactly as the sweep builds and draws them, see workload.py), the scenario's
training step, and tensor-tree comparisons.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from perfbench.measure.correctness import tensor_leaves
from perfbench.measure.workload import checked_model, seeded_batch
from perfbench.measure.workload import detach_clone as detach
from perfbench.scenario.loading import Scenario, ScenarioError, default_optimizer, describe_value

# Adam learning rates the overfit rung tries in order: 1e-3 overfits the shipped scenarios in
# 6-25 steps; tiny models (a 4-class 8->32->4 net) need 1e-2 to get there within 150 steps.
CHECK_ADAM_LRS = (1e-3, 1e-2)


@dataclass
class RungResult:
    """One rung's verdict: status is "pass", "fail" or "n/a"; values holds what was measured."""

    number: int
    name: str
    status: str
    detail: str
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Ctx:
    """What every rung needs: the scenario, the seed, and the sizes and step budgets to use."""

    scenario: Scenario
    seed: int = 0
    batch_size: int = 4
    shape_sizes: tuple[int, int] = (2, 3)
    overfit_steps: int = 150
    determinism_steps: int = 3
    backends: tuple[str, ...] = ("eager", "compile")


# ---------------------------------------------------------------- helpers


def build(ctx: Ctx, seed: int | None = None) -> nn.Module:
    """A freshly seeded float32 model, built as the sweep builds it; a contract violation is a
    load error (`ScenarioError`), not a rung failure."""
    return checked_model(ctx.scenario, ctx.seed if seed is None else seed)


def fixed_batch(ctx: Ctx, batch_size: int | None = None) -> Any:
    """The batch every rung uses, drawn as the sweep draws its check batch, under its own seed so
    it never depends on rung order."""
    return seeded_batch(
        ctx.scenario, ctx.batch_size if batch_size is None else batch_size, ctx.seed
    )


def make_optimizer(
    ctx: Ctx, model: nn.Module, lr: float = CHECK_ADAM_LRS[0]
) -> tuple[torch.optim.Optimizer, str]:
    """The scenario's build_optimizer if it defines one, else Adam at `lr`."""
    if ctx.scenario.build_optimizer is not default_optimizer:
        opt = ctx.scenario.build_optimizer(model.parameters())
        if not isinstance(opt, torch.optim.Optimizer):
            raise ScenarioError(
                ctx.scenario.path,
                f"build_optimizer() must return a torch.optim.Optimizer, got {type(opt).__name__}",
            )
        return opt, f"scenario build_optimizer: {type(opt).__name__}"
    return torch.optim.Adam(model.parameters(), lr=lr), f"Adam(lr={lr:g})"


def train_step(
    ctx: Ctx, model: nn.Module, opt: torch.optim.Optimizer, batch: Any
) -> tuple[Any, float]:
    """One forward, loss, backward, step; returns the (detached) output and the loss value."""
    assert ctx.scenario.loss_fn is not None
    opt.zero_grad(set_to_none=True)
    out = ctx.scenario.forward(model, batch)
    loss = ctx.scenario.loss_fn(out, batch)
    scalar_loss(loss)
    loss.backward()
    opt.step()
    return detach(out), float(loss.detach())


def scalar_loss(loss: Any) -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"loss_fn must return a scalar Tensor, got {describe_value(loss)}")


def spec(value: Any, path: str = "") -> list[tuple[str, tuple[int, ...], str]]:
    """(path, shape, dtype) of every tensor leaf; tuples and lists share paths, as after collation."""
    if isinstance(value, torch.Tensor):
        return [(path or "out", tuple(value.shape), str(value.dtype).removeprefix("torch."))]
    if isinstance(value, dict):
        return [s for k in sorted(value, key=str) for s in spec(value[k], f"{path}[{k!r}]")]
    if isinstance(value, (tuple, list)):
        return [s for i, v in enumerate(value) for s in spec(v, f"{path}[{i}]")]
    return []


def same_bits(a: Any, b: Any) -> bool:
    la, lb = tensor_leaves(a), tensor_leaves(b)
    return len(la) == len(lb) and all(
        x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y)
        for x, y in zip(la, lb, strict=True)
    )


def max_abs_diff(a: Any, b: Any) -> float:
    try:
        diffs = [
            float((x.double() - y.double()).abs().max()) if x.numel() else 0.0
            for x, y in zip(tensor_leaves(a), tensor_leaves(b), strict=True)
        ]
    except (RuntimeError, ValueError):
        return math.inf
    return max(diffs, default=0.0)


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def unregistered_tensors(model: nn.Module) -> list[str]:
    """Tensors held as plain attributes: invisible to state_dict(), .to() and checkpoints."""
    found = []
    for mod_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Tensor) and not attr.startswith("_"):
                found.append(f"{mod_name}.{attr}" if mod_name else attr)
    return found


def timed(fn: Callable[[Ctx], RungResult]) -> Callable[[Ctx], RungResult]:
    def wrapper(ctx: Ctx) -> RungResult:
        start = time.perf_counter()
        result = fn(ctx)
        result.seconds = round(time.perf_counter() - start, 3)
        return result

    wrapper.__name__ = fn.__name__
    return wrapper
