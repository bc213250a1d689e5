"""What every rung of `perfbench check` shares (context, result, seeding, tensor-tree helpers), and
the two rungs that need no training: shapes and mode (1) and loss at initialisation (2).

Each rung builds its own freshly seeded model, so one rung's training never leaks into the next,
and measures what it judges: the numbers go into `RungResult.values` and the verdict's reason into
`detail`. Exceptions are not caught here; `run_check` turns them into a failed rung with the
scenario's file and line.
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

from perfbench.check.classes import classes_consumed
from perfbench.correctness import (
    check_finite,
    relative_error,
    tensor_leaves,
)
from perfbench.scenario import (
    Scenario,
    ScenarioError,
    check_batch,
    default_optimizer,
    describe_value,
)
from perfbench.workload import detach_clone as detach

# Modules whose forward depends on `.training`; listed so rung 1 can say why train != eval.
MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
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


def seed_all(seed: int) -> None:
    """Seed every RNG a scenario may draw from, as the harness does before building a model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build(ctx: Ctx, seed: int | None = None) -> nn.Module:
    """A freshly seeded float32 model; a contract violation is a load error, not a rung failure."""
    seed_all(ctx.seed if seed is None else seed)
    model = ctx.scenario.build_model()
    if not isinstance(model, nn.Module):
        raise ScenarioError(
            ctx.scenario.path,
            f"build_model() must return a torch.nn.Module, got {type(model).__name__}",
        )
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
    if bad:
        raise ScenarioError(
            ctx.scenario.path, f"build_model() parameters {bad[:3]} are not float32"
        )
    return model


def fixed_batch(ctx: Ctx, batch_size: int | None = None) -> Any:
    """The batch every rung uses, drawn under its own seed so it never depends on rung order."""
    size = ctx.batch_size if batch_size is None else batch_size
    seed_all(ctx.seed + 1)
    batch = ctx.scenario.make_batch(size)
    check_batch(ctx.scenario, batch, size)
    return batch


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


# ---------------------------------------------------------------- rung 1


def _scales(shape_a: tuple[int, ...], shape_b: tuple[int, ...], a: int, b: int) -> str | None:
    """None if every dim is fixed or proportional to the batch size, else what is wrong."""
    if len(shape_a) != len(shape_b):
        return f"rank changes: {shape_a} at batch {a}, {shape_b} at batch {b}"
    for i, (da, db) in enumerate(zip(shape_a, shape_b, strict=True)):
        if da != db and da * b != db * a:
            return f"dim {i} is {da} at batch {a} and {db} at batch {b}: neither fixed nor proportional"
    return None


def _compare_specs(what: str, sa: list, sb: list, a: int, b: int) -> list[str]:
    problems = []
    if [p for p, _, _ in sa] != [p for p, _, _ in sb]:
        return [f"{what} structure changes with batch size: {sa} vs {sb}"]
    for (path, shape_a, dt_a), (_, shape_b, dt_b) in zip(sa, sb, strict=True):
        if dt_a != dt_b:
            problems.append(f"{what} {path}: dtype {dt_a} at batch {a}, {dt_b} at batch {b}")
        why = _scales(shape_a, shape_b, a, b)
        if why:
            problems.append(f"{what} {path}: {why}")
    return problems


def _fmt_spec(sa: list, sb: list) -> list[str]:
    if [p for p, _, _ in sa] != [p for p, _, _ in sb]:
        return [f"{p} {list(s)} {dt}" for p, s, dt in sa + sb]
    return [
        f"{p} {list(s1)}->{list(s2)} {dt}" for (p, s1, dt), (_, s2, _) in zip(sa, sb, strict=True)
    ]


@timed
def rung_shapes_and_mode(ctx: Ctx) -> RungResult:
    """Batch and output shapes scale with batch size, dtypes hold, and eval mode is really eval."""
    sc = ctx.scenario
    a, b = ctx.shape_sizes
    batches = [fixed_batch(ctx, a), fixed_batch(ctx, b)]
    model = build(ctx)
    built_training = model.training
    model.eval()
    buffers_before = {n: t.clone() for n, t in model.named_buffers()}
    with torch.no_grad():
        outs = [detach(sc.forward(model, batch)) for batch in batches]
        again = detach(sc.forward(model, batches[0]))
    problems: list[str] = []
    notes: list[str] = []
    spec_batch = [spec(x) for x in batches]
    spec_out = [spec(x) for x in outs]
    if not spec_out[0]:
        problems.append(f"the output holds no tensors ({describe_value(outs[0])})")
    problems += _compare_specs("batch", spec_batch[0], spec_batch[1], a, b)
    problems += _compare_specs("output", spec_out[0], spec_out[1], a, b)
    if spec_batch[0] == spec_batch[1]:
        problems.append(
            f"make_batch({a}) and make_batch({b}) give identical shapes: batch_size ignored"
        )
    odd = [f"{p} {dt}" for p, _, dt in spec_out[0] if dt in ("float64", "float16", "bfloat16")]
    if odd:
        notes.append(f"float32 model without autocast returns {', '.join(odd)}")

    still_training = [n or type(model).__name__ for n, m in model.named_modules() if m.training]
    if still_training:
        problems.append(f"after model.eval() still in training mode: {still_training[:5]}")
    changed = [n for n, t in model.named_buffers() if not torch.equal(t, buffers_before.get(n, t))]
    if changed:
        problems.append(f"an eval-mode forward changed buffers {changed[:5]}: infer steps drift")
    repeatable = same_bits(outs[0], again)
    if not repeatable:
        problems.append(
            "two eval-mode forwards of the same batch differ (by "
            f"{max_abs_diff(outs[0], again):.3g}): the backend check cannot compare anything. "
            "Look for dropout kept in a plain list (not nn.ModuleList), randomness in forward"
            + (
                f", or state updated in forward: plain tensor attributes {plain[:5]}"
                if (plain := unregistered_tensors(model))
                else ", or state updated in forward"
            )
        )
    mode_modules = sorted(
        {type(m).__name__ for m in model.modules() if isinstance(m, MODE_DEPENDENT)}
    )
    model.train()
    seed_all(ctx.seed + 2)
    with torch.no_grad():
        out_train = detach(sc.forward(model, batches[0]))
    train_eval = relative_error(out_train, outs[0]) if spec(out_train) == spec_out[0] else math.inf
    if train_eval > 0:
        notes.append(
            f"train and eval outputs differ (relative {train_eval:.3g}; "
            f"{', '.join(mode_modules) or 'forward branches on self.training'}): "
            "the harness runs infer and the backend check in eval mode"
        )
    elif mode_modules:
        notes.append(f"{', '.join(mode_modules)} present but train and eval outputs are identical")
    else:
        notes.append("train and eval outputs identical (no dropout or BatchNorm)")
    if sc.make_dataset is not None:
        problems += _dataset_matches_batch(ctx, model, spec(fixed_batch(ctx, 2)))

    values = {
        "batch_sizes": [a, b],
        "batch": _fmt_spec(spec_batch[0], spec_batch[1]),
        "output": _fmt_spec(spec_out[0], spec_out[1])
        if not problems
        else [str(s) for s in spec_out],
        "built_in_training_mode": built_training,
        "mode_dependent_modules": mode_modules,
        "train_vs_eval_rel_diff": train_eval,
        "eval_repeatable": repeatable,
        "buffers_changed_in_eval": changed,
    }
    shape_text = "; ".join(values["batch"] + values["output"]) if not problems else ""
    detail = "; ".join(problems + ([shape_text] if shape_text else []) + notes)
    return RungResult(
        1, "shapes, dtypes, train/eval mode", "fail" if problems else "pass", detail, values
    )


def _dataset_matches_batch(ctx: Ctx, model: nn.Module, batch_spec: list) -> list[str]:
    """Two dataset items, collated as the DataLoader does, must look like make_batch(2)."""
    dataset = ctx.scenario.make_dataset()  # type: ignore[misc]
    if not isinstance(dataset, torch.utils.data.Dataset):
        return [f"make_dataset() returned {type(dataset).__name__}, not a torch Dataset"]
    collated = torch.utils.data.default_collate([dataset[0], dataset[1]])
    got = spec(collated)
    if got != batch_spec:
        return [f"2 collated dataset items {got} differ from make_batch(2) {batch_spec}"]
    model.eval()
    with torch.no_grad():
        check_finite(ctx.scenario.forward(model, collated))
    return []


# ---------------------------------------------------------------- rung 2


@timed
def rung_init_loss(ctx: Ctx) -> RungResult:
    """Classification loss at initialisation should be about ln(C): the model knows nothing yet."""
    name = "loss at init ~ ln(classes)"
    sc = ctx.scenario
    if sc.loss_fn is None:
        return RungResult(2, name, "n/a", "no loss_fn: the scenario is infer only")
    batch = fixed_batch(ctx)
    model = build(ctx)
    model.train()
    with torch.no_grad():
        out = sc.forward(model, batch)
        loss, use = classes_consumed(sc.loss_fn, out, batch)  # classes from what the loss reads
    scalar_loss(loss)
    if use.classes is None or use.value is None:
        text = f"{use.reason}; loss at init {float(loss):.4g}"
        return RungResult(2, name, "n/a", text, {"loss_at_init": float(loss)})
    classes = use.classes
    expected = math.log(classes)
    value = use.value
    allowed = max(0.2 * expected, 0.25)
    values = {"loss_at_init": value, "classes": classes, "ln_classes": expected, "allowed": allowed}
    text = f"loss at init {value:.4g} vs ln({classes}) = {expected:.4g} (allowed ±{allowed:.3g})"
    if float(loss) != value:
        values["loss_fn_total"] = float(loss)
        text += f" (the {use.calls[0].name} term; loss_fn's total is {float(loss):.4g})"
    if not math.isfinite(value):
        return RungResult(2, name, "fail", f"{text}: not finite", values)
    if value > expected + allowed:
        hint = "logits at init are too large (confidently wrong): scale down the last layer's init"
        return RungResult(2, name, "fail", f"{text}: {hint}", values)
    if value < expected - allowed:
        hint = "below chance before any training: does the input leak the label?"
        return RungResult(2, name, "fail", f"{text}: {hint}", values)
    return RungResult(2, name, "pass", text, values)
