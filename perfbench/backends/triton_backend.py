"""`triton`: the model's supported patterns swapped for our Triton kernels (`perfbench_kernels`).

Two stages, so that a model fx cannot trace still gets its norm layers replaced (one that cannot
be traced and has none raises `BackendNotApplicable`: the point is skipped with the tracer's reason):

1. Module replacement on a structural copy that shares every parameter and buffer with the model
   (train mode trains the original weights): nn.LayerNorm, nn.RMSNorm and RMSNorm-like modules
   (class name contains "RMSNorm", with `weight` and `eps`/`variance_epsilon`), nn.Softmax.
2. fx rewrites on the traced copy (our wrappers stay leaves): residual add feeding an RMSNorm ->
   `add_rms_norm`, Linear -> ReLU/GELU -> matmul + `bias_act`, `silu(a) * b` -> `swiglu`,
   `softmax(x, dim=-1)` -> `softmax` (a non-negative dim: per call, when it is the last).

`info["coverage"]` says how much of the model runs in our kernels: `candidates` (pattern sites
found), `replaced`, and `ops_in_our_kernels_pct` over the final graph's compute ops (shape-only ops
excluded; a fused Linear+act counts as two ops, the matmul staying in torch). In train mode a
pattern whose kernel has no backward stays eager and is counted under `eager_no_backward`.
`Prepared.changes` is `coverage["replaced"]`, the sites of the model now in our kernels; the
cross-entropy routed in a train step's loss is counted as it runs (`info["loss_cross_entropy"]`).
The kernel wrappers themselves live in triton_modules.py.
"""

from __future__ import annotations

import copy
import operator
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from perfbench.backends.base import Backend, BackendNotApplicable, Prepared
from perfbench.backends.fx_passes import (
    FusedLinearAct,
    compute_nodes,
    fuse_linear_act,
    kernel_has_backward,
    kernel_unavailable_reason,
    linear_act_sites,
    model_line,
    module_of,
    set_submodule,
    triton_unavailable_reason,
)
from perfbench.backends.loss_routing import route_cross_entropy
from perfbench.backends.triton_modules import (
    WRAPPERS,
    TritonAddRMSNorm,
    TritonLayerNorm,
    TritonRMSNorm,
    TritonSoftmax,
    TritonSwiGLU,
    is_rms_norm,
)
from perfbench.results import facts
from perfbench.results.axes import Device, Mode

# pattern -> the perfbench_kernels module that implements it
KERNEL_OF = {
    "layer_norm": "layer_norm",
    "rms_norm": "rms_norm",
    "add_rms_norm": "rms_norm",
    "softmax": "softmax",
    "linear_act": "bias_act",
    "swiglu": "swiglu",
}


class _Tracer(fx.Tracer):
    """Keeps our wrappers and RMSNorm look-alikes as single call_module nodes."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, WRAPPERS) or is_rms_norm(m) or super().is_leaf_module(m, qualname)


def shared_copy(model: nn.Module) -> nn.Module:
    """A copy of the module tree that shares every parameter and buffer with `model`."""
    memo: dict[int, Any] = {id(t): t for t in model.parameters()}
    memo.update({id(t): t for t in model.buffers()})
    return copy.deepcopy(model, memo)


class Plan:
    """Per pattern: sites found, replaced, and left eager (kernel has no backward in train mode,
    or its module is not importable)."""

    def __init__(self, train: bool, device: str) -> None:
        self.train = train
        self.device = device
        self.counts = {
            p: {"candidates": 0, "replaced": 0, "eager_no_backward": 0, "eager_no_kernel": 0}
            for p in KERNEL_OF
        }
        self.missing: dict[str, str] = {}
        self.softmax_at_run: dict[str, int] = {}  # non-negative dims, resolved per call

    def take(self, pattern: str) -> bool:
        """Count a site; True when it should be replaced."""
        c = self.counts[pattern]
        c["candidates"] += 1
        kernel = KERNEL_OF[pattern]
        reason = kernel_unavailable_reason(kernel, self.device)
        if reason is not None:
            self.missing[kernel] = reason
            c["eager_no_kernel"] += 1
            return False
        if self.train and not kernel_has_backward(kernel):
            c["eager_no_backward"] += 1
            return False
        c["replaced"] += 1
        return True


def replace_modules(model: nn.Module, plan: Plan) -> None:
    """Stage 1: swap norm and softmax modules in place (on the shared copy); a module reachable
    under several names gets one wrapper."""
    wrapped: dict[int, nn.Module | None] = {}
    for name, mod in list(model.named_modules(remove_duplicate=False)):
        if not name or isinstance(mod, WRAPPERS):
            continue
        if id(mod) not in wrapped:
            new: nn.Module | None = None
            if isinstance(mod, nn.LayerNorm) and plan.take("layer_norm"):
                new = TritonLayerNorm(mod)
            elif is_rms_norm(mod) and plan.take("rms_norm"):
                new = TritonRMSNorm(mod)
            elif isinstance(mod, nn.Softmax) and _dim_supported(mod.dim) and plan.take("softmax"):
                new = TritonSoftmax(mod.dim, plan.softmax_at_run)
            wrapped[id(mod)] = new
        if wrapped[id(mod)] is not None:
            set_submodule(model, name, wrapped[id(mod)])  # type: ignore[arg-type]


def _is_plain_add(node: fx.Node) -> bool:
    return (
        node.op == "call_function"
        and node.target in (operator.add, torch.add)
        and len(node.args) == 2
        and not node.kwargs
        and all(isinstance(a, fx.Node) for a in node.args)
    )


def fuse_add_rms_norm(gm: fx.GraphModule, plan: Plan) -> None:
    """`h = x + r; y = rmsnorm(h)` -> one `add_rms_norm` call returning (y, h)."""
    for node in list(gm.graph.nodes):
        norm = module_of(gm, node)
        if not isinstance(norm, TritonRMSNorm) or len(node.args) != 1:
            continue
        add = node.args[0]
        if not isinstance(add, fx.Node) or not _is_plain_add(add) or not plan.take("add_rms_norm"):
            continue
        plan.counts["rms_norm"]["replaced"] -= 1  # this norm now runs inside add_rms_norm
        plan.counts["rms_norm"]["candidates"] -= 1
        name = f"{str(node.target).replace('.', '_')}_add_fused"
        gm.add_submodule(name, TritonAddRMSNorm(norm.inner))
        with gm.graph.inserting_after(add):  # h may have users before the norm
            pair = gm.graph.call_module(name, args=add.args)
        with gm.graph.inserting_after(pair):
            y = gm.graph.call_function(operator.getitem, (pair, 0))
        with gm.graph.inserting_after(y):
            h = gm.graph.call_function(operator.getitem, (pair, 1))
        node.replace_all_uses_with(y)
        gm.graph.erase_node(node)
        add.replace_all_uses_with(h)
        gm.graph.erase_node(add)


def _is_silu(gm: fx.GraphModule, node: Any) -> bool:
    if not isinstance(node, fx.Node) or len(node.users) != 1 or not node.args:
        return False
    mod = module_of(gm, node)
    return (
        isinstance(mod, nn.SiLU)
        or (node.op == "call_function" and node.target in (F.silu, torch.nn.functional.silu))
        or (node.op == "call_method" and node.target == "silu")
    )


def fuse_swiglu(gm: fx.GraphModule, plan: Plan) -> None:
    """`silu(a) * b` (either operand order) -> `TritonSwiGLU(a, b)`."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in (operator.mul, torch.mul):
            continue
        if len(node.args) != 2 or node.kwargs:
            continue
        lhs, rhs = node.args
        silu, other = (lhs, rhs) if _is_silu(gm, lhs) else (rhs, lhs)
        if not _is_silu(gm, silu) or not isinstance(other, fx.Node) or not plan.take("swiglu"):
            continue
        name = f"_pb_swiglu_{plan.counts['swiglu']['replaced']}"
        gm.add_submodule(name, TritonSwiGLU())
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, args=(silu.args[0], other))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        gm.graph.erase_node(silu)


def _dim_supported(dim: Any) -> bool:
    """-1, or a non-negative int that may be the last dim (checked per call by TritonSoftmax)."""
    return isinstance(dim, int) and not isinstance(dim, bool) and dim >= -1


def _softmax_dim(node: fx.Node) -> int | None:
    """The dim of a `softmax(x, dim)` call our kernel may take, else None."""
    fn = node.op == "call_function" and node.target in (F.softmax, torch.softmax)
    method = node.op == "call_method" and node.target == "softmax"
    if not (fn or method) or set(node.kwargs) - {"dim", "dtype", "_stacklevel"}:
        return None
    if node.kwargs.get("dtype") is not None or len(node.args) > 2:
        return None  # a dtype changes the result type: leave it to torch
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    return dim if _dim_supported(dim) else None


def fuse_softmax(gm: fx.GraphModule, plan: Plan) -> None:
    """`softmax(x, dim=-1)` calls -> `TritonSoftmax`; a non-negative dim is resolved per call."""
    for node in list(gm.graph.nodes):
        dim = _softmax_dim(node)
        if dim is None or not plan.take("softmax"):
            continue
        name = f"_pb_softmax_{plan.counts['softmax']['replaced']}"
        gm.add_submodule(name, TritonSoftmax(dim, plan.softmax_at_run))
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, args=(node.args[0],))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)


def _module_ops(mod: nn.Module) -> tuple[int, int]:
    """(ops in our kernels, all ops) counting leaf modules, a wrapper as one op."""
    if isinstance(mod, WRAPPERS):
        return 1, 1
    children = list(mod.children())
    if not children:
        return 0, 1
    pairs = [_module_ops(c) for c in children]
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def coverage(gm: fx.GraphModule | None, model: nn.Module, plan: Plan) -> dict[str, Any]:
    """Sites replaced vs found, and the share of the final graph's compute ops in our kernels."""
    replaced = sum(c["replaced"] for c in plan.counts.values())
    candidates = sum(c["candidates"] for c in plan.counts.values())
    if gm is not None:
        ours = total = 0
        for node in compute_nodes(gm):
            mod = module_of(gm, node)
            if isinstance(mod, FusedLinearAct) and mod.use_kernel:
                total, ours = total + 2, ours + 1  # matmul in torch, bias+act in ours
            elif isinstance(mod, (TritonAddRMSNorm, TritonSwiGLU)):
                total, ours = total + 2, ours + 2
            elif isinstance(mod, WRAPPERS):
                total, ours = total + 1, ours + 1
            else:
                total += 1
        basis = "compute ops of the rewritten fx graph (shape-only ops excluded)"
    else:
        ours, total = _module_ops(model)
        basis = "leaf modules (model not fx-traceable: functional ops not counted)"
    pct = round(100.0 * ours / total, 1) if total else 0.0
    eager_nb = {p: c["eager_no_backward"] for p, c in plan.counts.items() if c["eager_no_backward"]}
    eager_nk = {p: c["eager_no_kernel"] for p, c in plan.counts.items() if c["eager_no_kernel"]}
    out: dict[str, Any] = {
        "replaced": replaced,
        "candidates": candidates,
        "ops_in_our_kernels_pct": pct,
        "basis": basis,
    }
    if eager_nb:
        out["eager_no_backward"] = eager_nb
    if eager_nk:
        out["eager_no_kernel"] = eager_nk
        out["kernels_missing"] = dict(plan.missing)
    return out


def _applies(point: Any, scenario: Any) -> str | None:
    return triton_unavailable_reason("cuda" if point.device == Device.CUDA else "cpu")


def _prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    plan = Plan(train=point.mode == Mode.TRAIN, device=point.device.value)
    work = shared_copy(model)
    replace_modules(work, plan)
    info: dict[str, Any] = {}
    gm: fx.GraphModule | None
    try:
        gm = fx.GraphModule(work, _Tracer().trace(work), type(work).__name__)
        gm.training = work.training
    except Exception as err:
        gm = None
        first = (str(err).strip().splitlines() or [""])[0][:200]
        where = model_line(err)
        why = f"{type(err).__name__}{f' at {where}' if where else ''}: {first}"
        if not sum(c["replaced"] for c in plan.counts.values()):
            # nothing replaced and no graph to rewrite: timing it would time eager as "triton"
            raise BackendNotApplicable(
                f"triton backend: torch.fx cannot trace {type(work).__name__} ({why}) and it has "
                "no module our kernels replace (LayerNorm, RMSNorm, Softmax)"
            ) from err
        info["fx"] = f"not traceable ({why}): only modules replaced"
    if gm is not None:
        fuse_add_rms_norm(gm, plan)
        for _ in list(linear_act_sites(gm)):
            plan.take("linear_act")
        if plan.counts["linear_act"]["replaced"]:
            fuse_linear_act(gm, use_kernel=True)
        fuse_swiglu(gm, plan)
        fuse_softmax(gm, plan)
        gm.graph.lint()
        gm.recompile()
    info[facts.COVERAGE] = coverage(gm, work, plan)
    final = gm if gm is not None else work
    if any(isinstance(m, TritonSoftmax) and m.dim >= 0 for m in final.modules()):
        # filled while the point runs: which of those calls took the kernel
        info[facts.SOFTMAX_DIM_AT_RUN] = plan.softmax_at_run
    info[facts.PATTERNS] = {p: c for p, c in plan.counts.items() if c["candidates"]}
    if not info[facts.COVERAGE]["replaced"]:
        info[facts.NOTE] = "no pattern replaced: this point runs the model's eager ops"
    if point.device != Device.CUDA:
        info["timing_note"] = (
            "Triton interpreter on CPU: correctness only, times are not performance"
        )
    loss_fn = None
    scenario_loss = getattr(scenario, "loss_fn", None)
    if point.mode == Mode.TRAIN and scenario_loss is not None:
        # the loss is outside the model: routed at call time, counted in info as it runs
        info[facts.LOSS_CROSS_ENTROPY] = {}
        loss_fn = route_cross_entropy(scenario_loss, info[facts.LOSS_CROSS_ENTROPY])
    return Prepared(
        model=final,
        info=info,
        loss_fn=loss_fn,
        changes=int(info[facts.COVERAGE]["replaced"]),
        changes_what="ops replaced by our kernels",
    )


def worker_env() -> dict[str, str]:
    """The Triton interpreter on a machine without CUDA (correct, not performance). A value the
    user already set is kept, and returned so that it is recorded and a rerun uses it too."""
    if "TRITON_INTERPRET" in os.environ:
        return {"TRITON_INTERPRET": os.environ["TRITON_INTERPRET"]}
    return {} if torch.cuda.is_available() else {"TRITON_INTERPRET": "1"}


BACKEND = Backend(
    name="triton",
    description="supported patterns swapped for perfbench_kernels Triton kernels",
    prepare=_prepare,
    applies=_applies,
    correctness_only=lambda point: point.device != Device.CUDA,
    worker_env=worker_env,
)
