"""The rungs that train: overfit one batch (3), checkpoint round trip (4), determinism (5).

All three run the scenario's own training step (forward, loss_fn, backward, optimizer step) on a
freshly seeded model, and ask whether training can work at all, resume exactly, and repeat exactly.
A scenario without loss_fn gets the infer-only variant of rungs 4 and 5 (outputs instead of losses).
"""

from __future__ import annotations

import io
import math
from typing import Any

import torch

from perfbench.check.context import (
    CHECK_ADAM_LRS,
    Ctx,
    RungResult,
    build,
    detach,
    fixed_batch,
    make_optimizer,
    max_abs_diff,
    rng_state,
    same_bits,
    set_rng_state,
    timed,
    train_step,
    unregistered_tensors,
)
from perfbench.scenario.loading import default_optimizer


@timed
def rung_overfit(ctx: Ctx) -> RungResult:
    """One fixed batch must be learnable: loss falls by >= 90% within ctx.overfit_steps steps.

    With the scenario's own optimizer there is one attempt; with the check's Adam, each learning
    rate of CHECK_ADAM_LRS in turn until one gets there (each attempt from a fresh model).
    """
    name = "overfit one batch"
    if ctx.scenario.loss_fn is None:
        return RungResult(3, name, "n/a", "no loss_fn: the scenario is infer only")
    own = ctx.scenario.build_optimizer is not default_optimizer
    attempts = []
    for lr in CHECK_ADAM_LRS[:1] if own else CHECK_ADAM_LRS:
        attempt = _overfit_attempt(ctx, lr)
        attempts.append(attempt)
        if attempt["reached"] or attempt["stuck"]:
            break
    att = attempts[-1]
    losses, never, frozen = att["losses"], att["never"], att["frozen"]
    first, last = losses[0], losses[-1]
    drop = 1 - last / first if first and math.isfinite(first) and math.isfinite(last) else 0.0
    stride = max(1, len(losses) // 10)
    values = {
        "optimizer": att["optimizer"],
        "tried": [a["optimizer"] for a in attempts],
        "batch_size": ctx.batch_size,
        "steps": len(losses),
        "max_steps": ctx.overfit_steps,
        "initial_loss": first,
        "final_loss": last,
        "drop": drop,
        "losses": losses[::stride] + ([last] if (len(losses) - 1) % stride else []),
        "never_got_grad": never,
        "frozen": frozen,
    }
    text = (
        f"{att['optimizer']}, batch {ctx.batch_size}: loss {first:.4g} -> {last:.4g} "
        f"({drop:.0%} drop) in {len(losses)} steps"
    )
    if len(attempts) > 1:
        text += f" (tried {', '.join(values['tried'])})"
    if never:
        text += f"; {len(never)} trainable parameter(s) never got a gradient: {never[:8]}"
    if frozen:
        text += f"; {len(frozen)} frozen (requires_grad=False)"
    if math.isfinite(first) and first <= 0:
        why = f"a 90% drop needs a positive initial loss, got {first:.4g}"
        return RungResult(3, name, "n/a", f"{why}: {text}", values)
    if att["reached"]:
        return RungResult(3, name, "pass", text, values)
    why = (
        "no trainable parameter received a gradient"
        if att["stuck"] and math.isfinite(last)
        else "loss became non-finite"
        if not math.isfinite(last)
        else f"did not fall by 90% within {ctx.overfit_steps} steps"
    )
    return RungResult(3, name, "fail", f"{why}: {text}", values)


def _overfit_attempt(ctx: Ctx, lr: float) -> dict[str, Any]:
    batch = fixed_batch(ctx)
    model = build(ctx)
    model.train()
    opt, opt_name = make_optimizer(ctx, model, lr)
    params = dict(model.named_parameters())
    frozen = [n for n, p in params.items() if not p.requires_grad]
    waiting = {n: p for n, p in params.items() if p.requires_grad}  # no nonzero grad seen yet
    losses: list[float] = []
    reached = stuck = False
    for _ in range(ctx.overfit_steps):
        _, loss = train_step(ctx, model, opt, batch)
        for n in [n for n, p in waiting.items() if p.grad is not None and bool(p.grad.any())]:
            del waiting[n]
        losses.append(loss)
        if not math.isfinite(loss) or len(waiting) == len(params) - len(frozen):
            stuck = True  # diverged, or nothing can learn: no step count or lr will help
            break
        if losses[0] <= 0:
            break  # a fractional drop is undefined for a loss that starts at or below zero
        if loss <= 0.1 * losses[0]:
            reached = True
            break
    return {
        "optimizer": opt_name,
        "losses": losses,
        "reached": reached,
        "stuck": stuck,
        "never": sorted(waiting),
        "frozen": frozen,
    }


# ---------------------------------------------------------------- rung 4

CHECKPOINT_WARMUP_STEPS = 1  # a step before saving, so optimizer state and running stats exist


@timed
def rung_checkpoint(ctx: Ctx) -> RungResult:
    """Save model + optimizer + RNG state, load into a fresh model: the next step matches exactly.

    The fresh model is built under a different seed, so state kept outside state_dict() (a tensor in
    a plain attribute instead of a registered buffer) shows up as a mismatch.
    """
    name = "checkpoint round trip"
    sc = ctx.scenario
    train = sc.loss_fn is not None
    batch = fixed_batch(ctx)
    model = build(ctx)
    opt = make_optimizer(ctx, model)[0] if train else None
    if opt is not None:
        model.train()
        for _ in range(CHECKPOINT_WARMUP_STEPS):
            train_step(ctx, model, opt, batch)
    else:
        model.eval()
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict() if opt is not None else None,
            "rng": rng_state(),
        },
        buffer,
    )
    size = buffer.tell()
    original = _next_step(ctx, model, opt, batch)

    fresh = build(ctx, seed=ctx.seed + 1000)
    fresh_opt = make_optimizer(ctx, fresh)[0] if train else None
    buffer.seek(0)
    # our own bytes from a moment ago, and RNG/optimizer state is not plain tensors: full unpickling
    saved = torch.load(buffer, map_location="cpu", weights_only=False)
    fresh.load_state_dict(saved["model"])
    if fresh_opt is not None:
        fresh_opt.load_state_dict(saved["optimizer"])
    fresh.train(model.training)
    set_rng_state(saved["rng"])
    resumed = _next_step(ctx, fresh, fresh_opt, batch)

    mismatched = [k for k in original if not same_bits(original[k], resumed[k])]
    plain = unregistered_tensors(model)
    values: dict[str, Any] = {
        "checkpoint_bytes": size,
        "steps_before_save": CHECKPOINT_WARMUP_STEPS if train else 0,
        "compared": list(original),
        "mismatched": {k: max_abs_diff(original[k], resumed[k]) for k in mismatched},
        "unregistered_tensor_attributes": plain,
    }
    what = "next train step's loss, output and eval output" if train else "eval output"
    if not mismatched:
        text = f"{what} identical after save/load ({size / 1e6:.2f} MB checkpoint)"
        if plain:
            text += f"; tensors kept as plain attributes (not in the checkpoint): {plain[:5]}"
        return RungResult(4, name, "pass", text, values)
    diffs = ", ".join(f"{k} (max |diff| {v:.3g})" for k, v in values["mismatched"].items())
    hint = (
        f"tensors held as plain attributes, not registered buffers: {plain[:5]}"
        if plain
        else "state kept outside state_dict() (plain attributes, Python numbers updated in "
        "forward), or randomness the RNG state does not cover (see rung 5)"
    )
    return RungResult(4, name, "fail", f"after save/load, {diffs} differ: {hint}", values)


def _next_step(ctx: Ctx, model: torch.nn.Module, opt: Any, batch: Any) -> dict[str, Any]:
    """What must match after a resume: the step's loss and output, then the updated model's output."""
    if opt is None:
        with torch.no_grad():
            return {"eval output": detach(ctx.scenario.forward(model, batch))}
    out, loss = train_step(ctx, model, opt, batch)
    model.eval()
    with torch.no_grad():
        after = detach(ctx.scenario.forward(model, batch))
    model.train()
    return {"loss": torch.tensor(loss), "train output": out, "eval output after step": after}


# ---------------------------------------------------------------- rung 5

NONDETERMINISM_NOTE = (
    "on CUDA, atomics-based kernels (index_add/scatter_add, embedding and some attention "
    "backwards) and cudnn.benchmark autotuning vary run to run; torch.use_deterministic_algorithms"
    "(True) with CUBLAS_WORKSPACE_CONFIG=:4096:8 forbids or replaces them. DataLoader workers "
    "need a seeded generator. torch.compile picks its own reduction order: compare it to eager by "
    "tolerance (rung 6), not bitwise"
)


@timed
def rung_determinism(ctx: Ctx) -> RungResult:
    """Two runs from the same seed (model init, batches, steps) give bitwise identical losses."""
    name = "determinism (same seed twice)"
    first, second = _seeded_run(ctx), _seeded_run(ctx)
    kind = "losses" if ctx.scenario.loss_fn is not None else "eval outputs"
    differ = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if not same_bits(a, b)]
    values: dict[str, Any] = {
        "steps": ctx.determinism_steps,
        "compared": kind,
        "first_run": [_summary(v) for v in first],
        "second_run": [_summary(v) for v in second],
        "differing_steps": differ,
        "threads": torch.get_num_threads(),
        "deterministic_algorithms_enabled": torch.are_deterministic_algorithms_enabled(),
        "note": NONDETERMINISM_NOTE,
    }
    checked = (
        f"{ctx.determinism_steps} steps of {kind} on CPU, {torch.get_num_threads()} threads, "
        "default algorithms"
    )
    if differ:
        i = differ[0]
        text = (
            f"{kind} differ from step {i} ({_summary(first[i])} vs {_summary(second[i])}) with the "
            "same seed: randomness outside torch/random/numpy seeding (an unseeded RNG instance, "
            f"time, os.urandom) or a nondeterministic kernel. Checked {checked}"
        )
        return RungResult(5, name, "fail", text, values)
    return RungResult(5, name, "pass", f"identical {checked}", values)


def _seeded_run(ctx: Ctx) -> list[Any]:
    """Seed, build, then per step draw a batch and train on it (or run an eval forward)."""
    model = build(ctx, seed=ctx.seed)
    opt = make_optimizer(ctx, model)[0] if ctx.scenario.loss_fn is not None else None
    model.train(opt is not None)
    results: list[Any] = []
    for _ in range(ctx.determinism_steps):
        batch = ctx.scenario.make_batch(ctx.batch_size)  # drawn from the seeded RNG stream
        if opt is None:
            with torch.no_grad():
                results.append(detach(ctx.scenario.forward(model, batch)))
        else:
            results.append(torch.tensor(train_step(ctx, model, opt, batch)[1], dtype=torch.float64))
    return results


def _summary(value: Any) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return repr(float(value))
    leaves = [
        v for v in (value if isinstance(value, list) else [value]) if isinstance(v, torch.Tensor)
    ]
    return "sum " + repr(sum(float(v.double().sum()) for v in leaves))
