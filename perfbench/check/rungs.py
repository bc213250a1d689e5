"""The two rungs that need no training: shapes and mode (1) and loss at initialisation (2).

Each rung builds its own freshly seeded model, so one rung's training never leaks into the next,
and measures what it judges: the numbers go into `RungResult.values` and the verdict's reason into
`detail`. Exceptions are not caught here; `run_check` turns them into a failed rung with the
scenario's file and line.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from perfbench.check.classes import classes_consumed
from perfbench.check.context import (
    Ctx,
    RungResult,
    build,
    detach,
    fixed_batch,
    max_abs_diff,
    same_bits,
    scalar_loss,
    spec,
    timed,
    unregistered_tensors,
)
from perfbench.measure.correctness import check_finite, relative_error
from perfbench.measure.workload import seed_everything
from perfbench.scenario.loading import describe_value

# Modules whose forward depends on `.training`; listed so rung 1 can say why train != eval.
MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


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

    changed = [n for n, t in model.named_buffers() if not torch.equal(t, buffers_before.get(n, t))]
    repeatable = same_bits(outs[0], again)
    diff = 0.0 if repeatable else max_abs_diff(outs[0], again)
    problems += _eval_mode_problems(model, changed, repeatable, diff)
    mode_modules, train_eval, note = _train_vs_eval(ctx, model, batches[0], outs[0])
    notes.append(note)
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


def _eval_mode_problems(
    model: nn.Module, changed: list[str], repeatable: bool, diff: float
) -> list[str]:
    """What makes eval mode unfit for the backend check: modules still training, buffers an
    eval forward changed, and two eval forwards of one batch that differ (with where to look)."""
    problems = []
    still_training = [n or type(model).__name__ for n, m in model.named_modules() if m.training]
    if still_training:
        problems.append(f"after model.eval() still in training mode: {still_training[:5]}")
    if changed:
        problems.append(f"an eval-mode forward changed buffers {changed[:5]}: infer steps drift")
    if not repeatable:
        plain = unregistered_tensors(model)
        problems.append(
            f"two eval-mode forwards of the same batch differ (by {diff:.3g}): the backend check "
            "cannot compare anything. Look for dropout kept in a plain list (not nn.ModuleList), "
            "randomness in forward"
            + (
                f", or state updated in forward: plain tensor attributes {plain[:5]}"
                if plain
                else ", or state updated in forward"
            )
        )
    return problems


def _train_vs_eval(
    ctx: Ctx, model: nn.Module, batch: Any, out_eval: Any
) -> tuple[list[str], float, str]:
    """(mode-dependent module types, relative train-vs-eval difference, the note saying why)."""
    mode_modules = sorted(
        {type(m).__name__ for m in model.modules() if isinstance(m, MODE_DEPENDENT)}
    )
    model.train()
    seed_everything(ctx.seed + 2)
    with torch.no_grad():
        out_train = detach(ctx.scenario.forward(model, batch))
    same_spec = spec(out_train) == spec(out_eval)
    train_eval = relative_error(out_train, out_eval) if same_spec else math.inf
    if train_eval > 0:
        note = (
            f"train and eval outputs differ (relative {train_eval:.3g}; "
            f"{', '.join(mode_modules) or 'forward branches on self.training'}): "
            "the harness runs infer and the backend check in eval mode"
        )
    elif mode_modules:
        note = f"{', '.join(mode_modules)} present but train and eval outputs are identical"
    else:
        note = "train and eval outputs identical (no dropout or BatchNorm)"
    return mode_modules, train_eval, note


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
