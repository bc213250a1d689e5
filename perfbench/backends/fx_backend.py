"""`fx`: the model's graph rewritten by our torch.fx passes (BatchNorm folding, Linear + activation).

Shows what graph-level fusion written by hand buys next to torch.compile. `info["rewrites"]` says
which rewrites fired; a model the fx tracer cannot capture is skipped (`BackendNotApplicable`)
with the tracer's reason and the model's line, instead of silently running eager under this
backend's name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from perfbench.backends.base import Backend, Prepared
from perfbench.backends.fx_passes import (
    fold_bn,
    fuse_linear_act,
    kernel_has_backward,
    kernel_unavailable_reason,
    record_output_ndims,
    trace,
)
from perfbench.results import facts
from perfbench.results.axes import Device, Mode

MAX_SITES = 20  # names listed per rewrite in info; the counts are always complete


def linear_act_reason(device: torch.device, mode: Mode) -> str | None:
    """None when Linear + activation can run the Triton bias_act kernel, else why it runs eager."""
    reason = kernel_unavailable_reason("bias_act", device)
    if reason is None and mode == Mode.TRAIN and not kernel_has_backward("bias_act"):
        reason = "perfbench_kernels.bias_act has no backward: train mode runs eager ops"
    return reason


def _prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    gm = trace(model, "fx")
    info: dict[str, Any] = {}
    folded: list[str] = []
    if point.mode == Mode.TRAIN:
        info[facts.FOLD_BN_SKIPPED] = "train mode: BatchNorm normalises with batch statistics"
    else:
        ndims = record_output_ndims(gm, lambda m: scenario.forward(m, example_batch), (nn.Linear,))
        folded = fold_bn(gm, ndims)
    reason = linear_act_reason(torch.device(point.device.value), point.mode)
    fused = fuse_linear_act(gm, use_kernel=reason is None)
    info[facts.REWRITES] = {"fold_bn": len(folded), "linear_act": len(fused)}
    info[facts.REWRITE_SITES] = {"fold_bn": folded[:MAX_SITES], "linear_act": fused[:MAX_SITES]}
    if fused:
        info[facts.LINEAR_ACT_IMPL] = (
            "perfbench_kernels.bias_act (Triton)" if reason is None else "eager ops"
        )
        if reason is not None:
            info[facts.LINEAR_ACT_IMPL_WHY] = reason
    if not folded and not fused:
        info[facts.NOTE] = "no rewrite fired: the traced graph computes exactly what eager does"
    changes = len(folded) + len(fused)
    return Prepared(model=gm, info=info, changes=changes, changes_what="rewrites fired")


def _correctness_only(point: Any) -> bool:
    """On CPU the fused Linear+act runs the Triton interpreter when it can: not performance."""
    return (
        point.device != Device.CUDA and linear_act_reason(torch.device("cpu"), point.mode) is None
    )


BACKEND = Backend(
    name="fx",
    description="torch.fx passes: BatchNorm folding (infer) and Linear+ReLU/GELU fusion",
    prepare=_prepare,
    correctness_only=_correctness_only,
)
