"""torch.fx graph rewrites used by the `fx` and `triton` backends.

Two rewrites, each returning how many times it fired so the report can say what changed:

- `fold_bn`: BatchNorm in eval mode is an affine map per channel, so it folds into the weights
  of the Conv1d/Conv2d/Linear that feeds it (RepVGG-style). The inference graph then differs from
  the training graph yet gives the same answers within float32 rounding, minus one pass over the
  activations. Only valid with running statistics: never in train mode.
- `fuse_linear_act`: Linear followed by ReLU/GELU becomes one `FusedLinearAct` whose forward is the
  matmul without bias, then bias + activation in one pass (`perfbench_kernels.bias_act`) instead of
  two elementwise passes over the output.

A model that `torch.fx.symbolic_trace` cannot trace (data-dependent control flow, ...) raises
`FxTraceError` naming the cause and the model's line: a backend built on these passes must not
silently time the eager model under its name. It is a `BackendNotApplicable`, so the harness
records the point as skipped with that reason (the backend cannot handle this model), not failed.
"""

from __future__ import annotations

import importlib
import operator
import os
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from perfbench.backends.base import BackendNotApplicable

ACTIVATION_MODULES: dict[type[nn.Module], str] = {nn.ReLU: "relu", nn.GELU: "gelu"}
ACTIVATION_FUNCTIONS: dict[Callable[..., Any], str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.gelu: "gelu",
}
ACTIVATION_METHODS: dict[str, str] = {"relu": "relu"}


class FxTraceError(BackendNotApplicable):
    """The model cannot be captured by `torch.fx.symbolic_trace`; the message says why and where."""


_NOT_THE_MODEL = tuple(os.path.dirname(f) + os.sep for f in (torch.__file__, __file__))


def model_line(err: BaseException) -> str | None:
    """`file:line` of the innermost traceback frame outside torch: for a tracer error, the line of
    the model's forward that the tracer could not follow (a data-dependent `if`). Frames in torch
    and in perfbench's backends are not the model's."""
    where = None
    for frame in traceback.extract_tb(err.__traceback__):
        if not frame.filename.startswith(_NOT_THE_MODEL):
            where = f"{frame.filename}:{frame.lineno}"
    return where


def trace(model: nn.Module, backend: str) -> fx.GraphModule:
    """Symbolically trace `model`, or raise `FxTraceError` naming the model and the tracer's reason.

    Submodules are shared with `model` (not copied), so parameters are the same tensors: the
    harness's optimizer on the original model trains the traced graph too.
    """
    try:
        gm = fx.symbolic_trace(model)
    except Exception as err:  # the tracer raises TraceError, TypeError, AttributeError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        where = model_line(err)
        raise FxTraceError(
            f"{backend} backend: torch.fx.symbolic_trace cannot trace {type(model).__name__}"
            f"{f' at {where}' if where else ''} ({type(err).__name__}: {first[:300]}). "
            "Typical causes: Python control flow on tensor "
            "values, or calls fx cannot proxy. This backend does not fall back to eager; use the "
            "compile backends for this model, or make its forward traceable."
        ) from err
    gm.training = model.training  # non-recursive: submodules keep the modes the harness set
    return gm


def triton_unavailable_reason(device: torch.device | str) -> str | None:
    """None when Triton kernels can run on `device`, else why not.

    Triton runs on CUDA, or on the CPU under the interpreter (TRITON_INTERPRET=1 set before the
    kernel modules are imported: correct but slow).
    """
    interpret = os.environ.get("TRITON_INTERPRET", "0").strip().lower() in (
        "1",
        "true",
        "on",
        "yes",
    )
    if torch.device(device).type != "cuda" and not interpret:  # the values triton reads as true
        return "Triton needs CUDA, or TRITON_INTERPRET=1 on CPU (correct but slow)"
    try:
        importlib.import_module("triton")
    except Exception as err:
        return f"triton is not importable ({type(err).__name__}: {err})"
    return None


def kernel_unavailable_reason(module: str, device: torch.device | str) -> str | None:
    """None when `perfbench_kernels.<module>` can run on `device`, else why not."""
    reason = triton_unavailable_reason(device)
    if reason is not None:
        return reason
    try:
        importlib.import_module(f"perfbench_kernels.{module}")
    except Exception as err:
        return f"perfbench_kernels.{module} is not importable ({type(err).__name__}: {err})"
    return None


def kernel_has_backward(module: str) -> bool:
    return bool(getattr(importlib.import_module(f"perfbench_kernels.{module}"), "HAS_BACKWARD", 0))


def _single_user(node: fx.Node) -> bool:
    return len(node.users) == 1


def module_of(gm: fx.GraphModule, node: Any) -> nn.Module | None:
    if isinstance(node, fx.Node) and node.op == "call_module":
        return gm.get_submodule(str(node.target))
    return None


def set_submodule(gm: nn.Module, qualname: str, new: nn.Module) -> None:
    """Replace a submodule of `gm` only: the original model's hierarchy is left untouched."""
    parent_name, _, leaf = qualname.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, leaf, new)


def record_output_ndims(
    model: nn.Module, run: Callable[[nn.Module], Any], types: tuple[type, ...]
) -> dict[str, int]:
    """Output rank of each submodule of `types`, from one call of `run(model)` with forward hooks.

    Linear + BatchNorm1d folds only when the Linear's output is (N, C): on (N, C, L) BatchNorm1d
    normalises dim 1 while Linear acts on the last dim, and folding would be wrong.
    """
    ndims: dict[str, int] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, types):

            def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    ndims[name] = out.dim()

            handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run(model)
    finally:
        for h in handles:
            h.remove()
    return ndims


def fold_bn(gm: fx.GraphModule, linear_out_ndims: dict[str, int] | None = None) -> list[str]:
    """Fold eval-mode BatchNorm1d/2d into the Conv1d/Conv2d/Linear feeding it; returns the sites
    folded, as "layer+bn" names.

    The conv/linear output must feed only the BatchNorm. The folded layer is a new module
    (`torch.nn.utils.fusion` deep-copies), so the original model keeps its own weights. Linear +
    BatchNorm1d folds only where `linear_out_ndims` shows a 2-D output (see `record_output_ndims`).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    folded: list[str] = []
    for node in list(gm.graph.nodes):
        bn = module_of(gm, node)
        if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)) or bn.training:
            continue
        if not bn.track_running_stats or bn.running_mean is None or len(node.args) != 1:
            continue
        src = node.args[0]
        layer = module_of(gm, src)
        if layer is None or not _single_user(src) or layer.training:
            continue
        pair = (type(layer), type(bn))
        if pair in ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d)):
            new = fuse_conv_bn_eval(layer, bn)
        elif pair == (nn.Linear, nn.BatchNorm1d):
            if (linear_out_ndims or {}).get(str(src.target)) != 2:
                continue
            if layer.out_features != bn.num_features:
                continue
            new = fuse_linear_bn_eval(layer, bn)
        else:
            continue
        folded.append(f"{src.target}+{node.target}")
        new_name = f"{str(src.target).replace('.', '_')}_bnfold"
        gm.add_submodule(new_name, new)
        src.target = new_name
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
    if folded:
        gm.delete_all_unused_submodules()
        gm.graph.lint()
        gm.recompile()
    return folded


class FusedLinearAct(nn.Module):
    """Linear + ReLU/GELU as matmul (no bias) then bias + activation in one pass.

    Holds the original Linear, so parameters are shared with the model. `use_kernel` is decided
    once at prepare time (see `kernel_unavailable_reason`) and `impl` says which path runs:
    no per-call silent fallback.
    """

    def __init__(self, linear: nn.Linear, activation: str, use_kernel: bool) -> None:
        super().__init__()
        assert activation in ("relu", "gelu", "gelu_tanh"), activation
        self.linear = linear
        self.activation = activation
        self.use_kernel = use_kernel

    @property
    def impl(self) -> str:
        return "perfbench_kernels.bias_act (Triton)" if self.use_kernel else "eager ops"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.use_kernel:
            y = F.linear(x, self.linear.weight, self.linear.bias)
            if self.activation == "relu":
                return F.relu(y)
            return F.gelu(y, approximate="tanh" if self.activation == "gelu_tanh" else "none")
        from perfbench_kernels.bias_act import bias_act

        y = F.linear(x, self.linear.weight)
        bias = self.linear.bias
        if bias is None:
            bias = torch.zeros(y.shape[-1], device=y.device, dtype=y.dtype)
        out = bias_act(y.reshape(-1, y.shape[-1]).contiguous(), bias.to(y.dtype), self.activation)
        return out.reshape(y.shape)


def _gelu_kind(approximate: Any) -> str | None:
    return {"none": "gelu", "tanh": "gelu_tanh"}.get(approximate)


def _activation_of(gm: fx.GraphModule, node: fx.Node) -> str | None:
    """'relu'/'gelu'/'gelu_tanh' when `node` applies ReLU/GELU to its first argument only."""
    mod = module_of(gm, node)
    if mod is not None:
        act = ACTIVATION_MODULES.get(type(mod))
        return _gelu_kind(getattr(mod, "approximate", "none")) if act == "gelu" else act
    if node.op == "call_function" and node.target in ACTIVATION_FUNCTIONS:
        act = ACTIVATION_FUNCTIONS[node.target]
        extra = {k: v for k, v in node.kwargs.items() if k != "inplace"}
        if len(node.args) > 1 and not (act == "relu" and isinstance(node.args[1], bool)):
            return None
        return _gelu_kind(extra.get("approximate", "none")) if act == "gelu" else act
    if node.op == "call_method" and node.target in ACTIVATION_METHODS and len(node.args) == 1:
        return ACTIVATION_METHODS[str(node.target)]
    return None


def linear_act_sites(gm: fx.GraphModule) -> Iterable[tuple[fx.Node, fx.Node, str]]:
    """(linear node, activation node, activation) for each Linear whose only user is ReLU/GELU."""
    for node in list(gm.graph.nodes):
        if not isinstance(module_of(gm, node), nn.Linear) or not _single_user(node):
            continue
        user = next(iter(node.users))
        act = _activation_of(gm, user)
        if act is not None and user.args and user.args[0] is node:
            yield node, user, act


def fuse_linear_act(gm: fx.GraphModule, use_kernel: bool) -> list[str]:
    """Replace Linear -> ReLU/GELU with `FusedLinearAct`; returns the sites as "linear+act"."""
    fused: list[str] = []
    for lin_node, act_node, act in list(linear_act_sites(gm)):
        linear = gm.get_submodule(str(lin_node.target))
        name = f"{str(lin_node.target).replace('.', '_')}_{act}_fused"
        gm.add_submodule(name, FusedLinearAct(linear, act, use_kernel))
        with gm.graph.inserting_after(act_node):
            new = gm.graph.call_module(name, args=lin_node.args, kwargs=lin_node.kwargs)
        act_node.replace_all_uses_with(new)
        gm.graph.erase_node(act_node)
        gm.graph.erase_node(lin_node)
        fused.append(f"{lin_node.target}+{act}")
    if fused:
        gm.delete_all_unused_submodules()
        gm.graph.lint()
        gm.recompile()
    return fused


SHAPE_ONLY_FUNCTIONS = (getattr, operator.getitem, torch.flatten, torch.reshape)
SHAPE_ONLY_METHODS = ("size", "dim", "view", "reshape", "flatten", "contiguous", "permute")


def compute_nodes(gm: fx.GraphModule) -> list[fx.Node]:
    """Nodes that do arithmetic (shape-only ops excluded): the denominator of kernel coverage."""
    out = []
    for node in gm.graph.nodes:
        if node.op == "call_module":
            out.append(node)
        elif node.op == "call_function" and node.target not in SHAPE_ONLY_FUNCTIONS:
            out.append(node)
        elif node.op == "call_method" and node.target not in SHAPE_ONLY_METHODS:
            out.append(node)
    return out
