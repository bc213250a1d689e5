"""How many classes the loss really sees: the class count for rung 2, read off the tensors that
`loss_fn` hands to `F.cross_entropy` / `F.nll_loss` (also through `nn.CrossEntropyLoss` and
`nn.NLLLoss`), never guessed from the model's outputs.

Guessing was wrong: an encoder returning {"logits": (B, 2), "hidden": (B, S, 128)} was judged
against ln(128), because an integer input tensor of the batch happened to fit the hidden states.
Here a `TorchFunctionMode` records every cross_entropy / nll_loss call while `loss_fn` runs; the
class dimension is dim 1 of the input (dim 0 when unbatched), as in torch's own definition. When no
such call is seen, or there are several, or the reduction is not a mean, the count cannot be known
and `ClassUse.classes` is None with the reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn import _reduction
from torch.overrides import TorchFunctionMode

CLASSIFICATION_LOSSES: dict[Callable[..., Any], str] = {
    F.cross_entropy: "cross_entropy",
    F.nll_loss: "nll_loss",
}


@dataclass(frozen=True)
class LossCall:
    """One classification loss call seen while `loss_fn` ran."""

    name: str
    classes: int
    reduction: str
    value: float | None  # the call's result when it is a scalar


@dataclass(frozen=True)
class ClassUse:
    """What rung 2 may judge: the class count and that loss term's value, or why it cannot."""

    classes: int | None
    value: float | None  # the cross_entropy / nll_loss term itself (loss_fn may add others)
    reason: str
    calls: tuple[LossCall, ...] = ()


class _Recorder(TorchFunctionMode):
    """Records the class dimension and reduction of each classification loss call; runs it as is."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[LossCall] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = CLASSIFICATION_LOSSES.get(func)
        if name is not None:
            self.calls.append(_describe(func, name, args, kwargs, result))
        return result


def _describe(
    func: Callable[..., Any], name: str, args: tuple, kwargs: dict, result: Any
) -> LossCall:
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    given = bound.arguments
    logits = given["input"]
    reduction = str(given["reduction"])
    if given.get("size_average") is not None or given.get("reduce") is not None:
        reduction = _reduction.legacy_get_string(given["size_average"], given["reduce"])
    classes = int(logits.shape[1] if logits.dim() >= 2 else logits.shape[0])
    value = (
        float(result.detach()) if isinstance(result, torch.Tensor) and result.numel() == 1 else None
    )
    return LossCall(name=name, classes=classes, reduction=reduction, value=value)


def classes_consumed(
    loss_fn: Callable[[Any, Any], Any], out: Any, batch: Any
) -> tuple[Any, ClassUse]:
    """Run `loss_fn(out, batch)` once and return its loss and the class count its
    cross_entropy / nll_loss call consumed (None with the reason where that cannot be known)."""
    recorder = _Recorder()
    with recorder:
        loss = loss_fn(out, batch)
    return loss, judge_calls(tuple(recorder.calls))


def judge_calls(calls: tuple[LossCall, ...]) -> ClassUse:
    """One mean-reduced classification loss call gives the class count; anything else does not."""
    if not calls:
        return ClassUse(
            None,
            None,
            "loss_fn calls neither F.cross_entropy nor F.nll_loss (nor nn.CrossEntropyLoss / "
            "nn.NLLLoss), so the number of classes it scores cannot be known",
        )
    seen = ", ".join(f"{c.name}(classes={c.classes}, reduction={c.reduction!r})" for c in calls)
    if len(calls) > 1:
        return ClassUse(
            None, None, f"loss_fn makes {len(calls)} classification loss calls ({seen}): no single ln(C) to compare", calls
        )  # fmt: skip
    call = calls[0]
    if call.reduction != "mean" or call.value is None:
        return ClassUse(
            None, None, f"{seen}: not a mean over samples, so the loss is not comparable with ln(C)", calls
        )  # fmt: skip
    if call.classes < 2:
        return ClassUse(None, None, f"{seen}: fewer than 2 classes", calls)
    return ClassUse(call.classes, call.value, f"classes from the {call.name} input", calls)
