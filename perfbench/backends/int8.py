"""`int8`: dynamic int8 quantisation of every nn.Linear, for CPU inference.

Weights are quantised once per output channel; activations per token at run time. torchao's
`quantize_` with `Int8DynamicActivationInt8WeightConfig` is preferred (`torch.ao.quantization` is
deprecated); `torch.ao.quantization.quantize_dynamic` runs only when torchao fails, and
`info["int8_impl"]` / `info["int8_impl_why"]` say which ran and why.

Measured on the 2-core dev CPU (torch 2.13, torchao 0.18, MLP 256->1024->256, batch 16, eager):
float32 267 us, torchao 756-968 us, torch.ao quantize_dynamic 150 us. torchao's int8 tensor
subclass is built to be compiled; in eager it is correct but slower than float32 here. The
workbench reports that as measured rather than picking the faster path behind the user's back.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from perfbench.backends.base import Backend, BackendNotApplicable, Prepared
from perfbench.results import facts
from perfbench.results.axes import Amp, Device, Mode

# Relative error (||out - ref|| / ||ref||, as the harness computes it) measured with torchao
# against float32: 3e-3 (transformer), 7e-3 (convnet), 8e-3 (llm_block), 1.1e-2 (input_bound),
# 1.6e-2 (mlp) on the shipped scenarios at batch 4; torch.ao's fallback lands in the same range.
# Each quantised layer adds ~1e-2 at most; 5e-2 leaves a 3x margin over the worst measured case,
# while a wrong result (wrong scale, transposed weight) lands near 1.
INT8_TOLERANCE = 5e-2


def _quantize_torchao(model: nn.Module) -> None:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model, Int8DynamicActivationInt8WeightConfig())


def _quantize_torch_ao(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # recorded in info instead
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def quantized_linears(model: nn.Module) -> int:
    """Linear layers that really run int8, counted on the quantised model: torch.ao swaps in its
    dynamic quantized Linear (exact type match: a subclass of nn.Linear is left float32), torchao
    keeps nn.Linear with an int8 tensor subclass as weight."""
    dynamic_linear = torch.ao.nn.quantized.dynamic.Linear
    count = 0
    for m in model.modules():
        if isinstance(m, dynamic_linear):
            count += 1
        elif isinstance(m, nn.Linear) and type(m.weight) not in (nn.Parameter, torch.Tensor):
            count += 1
    return count


def _quantized(qmodel: nn.Module, info: dict[str, Any]) -> Prepared:
    changes = quantized_linears(qmodel)
    return Prepared(
        model=qmodel,
        info=info,
        tolerance=INT8_TOLERANCE,
        changes=changes,
        changes_what="Linear layers quantized",
    )


def _applies(point: Any, scenario: Any) -> str | None:
    if point.mode != Mode.INFER:
        return "int8 dynamic quantisation is for inference: needs mode=infer"
    if point.device != Device.CPU:
        return "int8 dynamic quantisation targets CPU kernels here: needs device=cpu"
    if point.amp != Amp.OFF:
        return "int8 quantisation is its own reduced precision: needs amp=off"
    return None


# a model without nn.Linear has nothing this backend changes: the point is skipped, not failed
_NO_LINEAR = (
    "{name} quantises nn.Linear layers and {model} has none (convolutions and other layers stay "
    "float32): nothing to compare"
)


def _prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    if n_linear == 0:
        raise BackendNotApplicable(_NO_LINEAR.format(name="int8", model=type(model).__name__))
    qmodel = copy.deepcopy(model)  # the harness keeps the float32 model as the reference
    info: dict[str, Any] = {facts.INT8_LINEAR_LAYERS: n_linear}
    try:
        _quantize_torchao(qmodel)
        with torch.no_grad():
            scenario.forward(qmodel, example_batch)  # fail here, not in the timed loop
        info[facts.INT8_IMPL] = "torchao Int8DynamicActivationInt8WeightConfig"
        info[facts.INT8_IMPL_WHY] = "torchao is the maintained int8 path and runs on this build"
    except Exception as err:
        qmodel = _quantize_torch_ao(copy.deepcopy(model))
        info[facts.INT8_IMPL] = "torch.ao.quantization.quantize_dynamic (deprecated)"
        info[facts.INT8_IMPL_WHY] = f"torchao failed: {type(err).__name__}: {str(err)[:300]}"
    return _quantized(qmodel, info)


BACKEND = Backend(
    name="int8",
    description="dynamic int8 quantisation of nn.Linear (torchao, else torch.ao), CPU inference",
    prepare=_prepare,
    applies=_applies,
)


def _prepare_torch_ao(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise BackendNotApplicable(_NO_LINEAR.format(name="int8-ao", model=type(model).__name__))
    qmodel = _quantize_torch_ao(copy.deepcopy(model))
    info = {
        facts.INT8_IMPL: "torch.ao.quantization.quantize_dynamic (deprecated)",
        facts.INT8_IMPL_WHY: "asked for by name: the fbgemm/onednn int8 kernels, side by side with torchao",
    }
    return _quantized(qmodel, info)


# Kept beside `int8` because the two measure very differently on CPU (see the module docstring):
# the workbench shows both rather than choosing for the user.
BACKEND_TORCH_AO = Backend(
    name="int8-ao",
    description="dynamic int8 quantisation of nn.Linear with torch.ao (deprecated), CPU inference",
    prepare=_prepare_torch_ao,
    applies=_applies,
)
