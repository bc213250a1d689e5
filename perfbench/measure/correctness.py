"""Correct before fast: compare a backend's output with the eager float32 reference.

Outputs may be a Tensor or any nesting of tuples/lists/dicts of Tensors (non-tensor leaves are
ignored). The error is one number, ||out - ref|| / ||ref|| over all tensor leaves, computed in
float64 so the check itself adds no rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from perfbench.results.axes import Amp

# Max relative error by autocast dtype when the scenario sets no TOLERANCE. float32 backends
# (compile, fx) reorder reductions, so they land far below 1e-4; bf16 keeps 8 mantissa bits
# (eps 7.8e-3) and fp16 11 (eps 9.8e-4), and errors grow with depth, hence the margins.
DEFAULT_TOLERANCE = {Amp.OFF: 1e-4, Amp.BF16: 5e-2, Amp.FP16: 1e-2}


class MismatchError(AssertionError):
    """The backend's output differs from the reference beyond tolerance, or is not finite."""


def tensor_leaves(value: Any) -> list[torch.Tensor]:
    """All tensors in a nested output, in a deterministic order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for key in sorted(value, key=str) for t in tensor_leaves(value[key])]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensor_leaves(item)]
    if hasattr(value, "to_tuple"):  # HuggingFace-style ModelOutput
        return tensor_leaves(value.to_tuple())
    return []


def relative_error(out: Any, ref: Any) -> float:
    """||out - ref|| / ||ref|| over all tensor leaves, in float64; raises on structure mismatch."""
    outs, refs = tensor_leaves(out), tensor_leaves(ref)
    if len(outs) != len(refs):
        raise MismatchError(f"output has {len(outs)} tensors, reference has {len(refs)}")
    if not refs:
        raise MismatchError("the model's output contains no tensors to compare")
    num = 0.0
    den = 0.0
    for i, (o, r) in enumerate(zip(outs, refs, strict=True)):
        if o.shape != r.shape:
            raise MismatchError(
                f"output tensor {i}: shape {tuple(o.shape)} != reference {tuple(r.shape)}"
            )
        o64 = o.detach().to("cpu", torch.float64)
        r64 = r.detach().to("cpu", torch.float64)
        num += float(torch.sum((o64 - r64) ** 2))
        den += float(torch.sum(r64**2))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return math.sqrt(num / den)


def check_finite(out: Any) -> None:
    """Raise if any output element is NaN or Inf: such a point fails, whatever its speed."""
    for i, t in enumerate(tensor_leaves(out)):
        if t.is_floating_point() or t.is_complex():
            bad = ~torch.isfinite(t.detach())
            if bool(bad.any()):
                n_nan = int(torch.isnan(t.detach()).sum())
                raise MismatchError(
                    f"output tensor {i} has {int(bad.sum())} non-finite values ({n_nan} NaN)"
                )


@dataclass(frozen=True)
class CheckResult:
    rel_err: float
    tolerance: float


def check_against_reference(out: Any, ref: Any, tolerance: float) -> CheckResult:
    """Finite and within tolerance of the reference, else `MismatchError` with the numbers."""
    check_finite(out)
    err = relative_error(out, ref)
    if not err <= tolerance:
        raise MismatchError(
            f"relative error {err:.3g} against the eager float32 reference exceeds "
            f"tolerance {tolerance:.3g}"
        )
    return CheckResult(rel_err=err, tolerance=tolerance)


def tolerance_for(amp: Amp, scenario_tolerance: float | None) -> float:
    """The scenario's TOLERANCE if it sets one, else the default for the autocast dtype."""
    return scenario_tolerance if scenario_tolerance is not None else DEFAULT_TOLERANCE[amp]
