"""FLOPs of one forward, or "unknown" with the ops that made it unknown.

torch's flop counter (`torch.utils.flop_counter`) has formulas for matmuls, convolutions and
attention only; every other op counts 0. That is the convention (elementwise work is not counted)
and fine for views, copies and elementwise ops, but not for a fused op that hides matmuls: in eval
mode `nn.TransformerEncoderLayer` runs `aten._transformer_encoder_layer_fwd` and
`nn.MultiheadAttention` runs `aten._native_multi_head_attention`, and a 2-layer encoder was
reported at 1024 FLOPs per step (only its final Linear). So the forward also runs under a
recorder of every aten op the counter executes (after the counter's own decompositions); an op
that has no formula and is not on the cheap list below makes the count unknown, and the row says
which ops instead of printing an undercount. A scenario's `FLOPS(batch_size)` overrides all this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from perfbench.results import facts

aten = torch.ops.aten


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # type: ignore[no-untyped-def]
    """torch's own formula for its CUDA flash attention (causal masking not discounted, as there)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# On CPU, F.scaled_dot_product_attention runs `_scaled_dot_product_flash_attention_for_cpu`, the
# same attention as the CUDA flash op, for which torch ships a formula; the CPU op has none.
EXTRA_FORMULAS: dict[Any, Any] = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops}

# Uncounted by convention, and cheap next to a matmul: data movement, creation, normalisation,
# softmax, pooling, indexing, randomness. Views, pointwise ops and reductions are recognised by
# their tags (`is_view`, Tag.pointwise, Tag.reduction) and need no entry here.
CHEAP_OPS: frozenset[str] = frozenset(
    "aten." + name
    for name in (
        "_unsafe_view _to_copy copy_ clone contiguous detach alias lift_fresh lift_fresh_copy "
        "empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones "
        "ones_like full full_like new_zeros new_ones new_full fill_ zero_ arange linspace "
        "scalar_tensor _local_scalar_dense item "
        "cat stack split split_with_sizes chunk unbind repeat repeat_interleave roll flip tril "
        "triu constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d "
        "replication_pad2d slice_scatter select_scatter index index_select gather scatter "
        "scatter_add scatter_reduce index_put index_put_ masked_fill masked_fill_ masked_scatter "
        "where embedding one_hot nonzero sort argsort topk cumsum cumprod "
        "_softmax _log_softmax _safe_softmax native_layer_norm native_group_norm "
        "native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training "
        "_fused_rms_norm native_dropout bernoulli bernoulli_ rand rand_like randn randn_like "
        "randint randint_like randperm normal_ uniform_ "
        "max_pool1d max_pool2d max_pool2d_with_indices max_pool3d_with_indices avg_pool1d "
        "avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d _adaptive_avg_pool2d "
        "adaptive_max_pool2d upsample_nearest2d upsample_bilinear2d _upsample_nearest_exact2d"
    ).split()
)


@dataclass(frozen=True)
class FlopCount:
    """The counter's total and the ops it met that may do real work but have no formula."""

    total: int
    uncounted: dict[str, int] = field(default_factory=dict)  # op name -> calls

    @property
    def known(self) -> bool:
        return not self.uncounted


class FlopsUnknown(Exception):
    """The forward ran ops the flop counter cannot count: no honest FLOP total exists."""

    def __init__(self, uncounted: dict[str, int]) -> None:
        self.uncounted = dict(uncounted)
        ops = ", ".join(f"{name} ({calls} calls)" for name, calls in sorted(uncounted.items()))
        super().__init__(
            f"FLOPs unknown: torch's flop counter has no formula for {ops}; "
            "define FLOPS(batch_size) in the scenario for TFLOP/s"
        )


class _OpRecorder(TorchDispatchMode):
    """Counts every aten op that reaches it; below the flop counter it sees what the counter ran."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[Any] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls[func] += 1
        return func(*args, **(kwargs or {}))


def is_cheap(op: Any) -> bool:
    """True for ops whose uncounted work does not matter: views, pointwise, reductions, CHEAP_OPS."""
    tags = getattr(op, "tags", ())
    return (
        bool(getattr(op, "is_view", False))
        or torch.Tag.pointwise in tags
        or torch.Tag.reduction in tags
        or str(getattr(op, "_overloadpacket", op)) in CHEAP_OPS
    )


def count_forward(fn: Callable[[], Any]) -> FlopCount:
    """Run `fn` once under torch's flop counter and the op recorder; see the module docstring."""
    recorder = _OpRecorder()
    counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
    with recorder, counter:  # entered first = below: it sees the counter's leaf ops
        fn()
    formulas = counter.flop_registry
    uncounted: Counter[str] = Counter()
    for op, calls in recorder.calls.items():
        packet = getattr(op, "_overloadpacket", op)
        if packet not in formulas and not is_cheap(op):
            uncounted[str(op)] += calls
    return FlopCount(total=int(counter.get_total_flops()), uncounted=dict(uncounted))


def forward_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of `fn`; raises `FlopsUnknown` rather than return an undercount."""
    found = count_forward(fn)
    if not found.known:
        raise FlopsUnknown(found.uncounted)
    return found.total


def flops_missing(err: BaseException) -> dict[str, Any]:
    """`extra` keys for a point whose FLOPs could not be counted (its tflops stays empty)."""
    if isinstance(err, FlopsUnknown):
        return {facts.FLOPS_UNKNOWN: str(err), facts.FLOPS_UNKNOWN_OPS: err.uncounted}
    return {facts.FLOPS_ERROR: f"{type(err).__name__}: {err}"}
