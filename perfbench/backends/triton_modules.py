"""The modules the `triton` backend swaps into a model: each calls one `perfbench_kernels` kernel.

Every wrapper of an existing module holds it as `inner`, so its parameters and buffers stay shared
with the model (train mode trains the original weights). Kernels take 2-D contiguous rows of the
activation dtype; the wrappers flatten, promote and broadcast as eager would, then reshape back.
Kernel modules are imported at call time: importing this module imports no Triton kernel.
"""

from __future__ import annotations

import torch
from torch import nn


def _flat_affine(param: torch.Tensor | None, n: int, like: torch.Tensor, fill: float):
    """The 1-D weight/bias the kernels take, in the activation dtype (autocast may have changed it)."""
    if param is None:
        return torch.full((n,), fill, device=like.device, dtype=like.dtype)
    return param.reshape(n).to(like.dtype)


class _Wraps(nn.Module):
    """Holds the replaced module as `inner`, so its parameters stay shared with the model."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner


class TritonLayerNorm(_Wraps):
    """nn.LayerNorm through `perfbench_kernels.layer_norm` on the flattened normalised dims."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from perfbench_kernels.layer_norm import layer_norm

        n = 1
        for d in self.inner.normalized_shape:
            n *= d
        w = _flat_affine(self.inner.weight, n, x, 1.0)
        b = _flat_affine(self.inner.bias, n, x, 0.0)
        return layer_norm(x.reshape(-1, n).contiguous(), w, b, self.inner.eps).reshape(x.shape)


def _rms_eps(mod: nn.Module, x: torch.Tensor) -> float:
    eps = getattr(mod, "eps", None)
    if eps is None:
        eps = getattr(mod, "variance_epsilon", None)
    return float(eps) if eps is not None else torch.finfo(x.dtype).eps  # nn.RMSNorm's default


def is_rms_norm(mod: nn.Module) -> bool:
    if isinstance(mod, nn.RMSNorm):
        return True
    w = getattr(mod, "weight", None)
    has_eps = hasattr(mod, "eps") or hasattr(mod, "variance_epsilon")
    return "RMSNorm" in type(mod).__name__ and isinstance(w, torch.Tensor) and has_eps


class TritonRMSNorm(_Wraps):
    """RMSNorm (nn.RMSNorm or a look-alike) through `perfbench_kernels.rms_norm` over the last dim."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from perfbench_kernels.rms_norm import rms_norm

        n = x.shape[-1]
        w = _flat_affine(getattr(self.inner, "weight", None), n, x, 1.0)
        return rms_norm(x.reshape(-1, n).contiguous(), w, _rms_eps(self.inner, x)).reshape(x.shape)


class TritonAddRMSNorm(_Wraps):
    """`h = x + r; y = norm(h)` in one pass: returns (y, h), as `add_rms_norm` does."""

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from perfbench_kernels.rms_norm import add_rms_norm

        if x.dtype != r.dtype:  # autocast: bf16 branch + float32 residual adds in float32
            dtype = torch.promote_types(x.dtype, r.dtype)
            x, r = x.to(dtype), r.to(dtype)
        if x.shape != r.shape:  # the kernel adds equal shapes; materialise the broadcast
            x, r = torch.broadcast_tensors(x, r)
        n = x.shape[-1]
        w = _flat_affine(getattr(self.inner, "weight", None), n, x, 1.0)
        x2, r2 = x.reshape(-1, n).contiguous(), r.reshape(-1, n).contiguous()
        y, h = add_rms_norm(x2, r2, w, _rms_eps(self.inner, x))
        return y.reshape(x.shape), h.reshape(x.shape)


class TritonSoftmax(nn.Module):
    """Softmax over the last dim through `perfbench_kernels.softmax`.

    `dim=-1` is known to be the last dim when the graph is rewritten. A non-negative dim is not
    (fx does not know the rank), so it is resolved per call: the kernel when it is the last dim,
    else torch.softmax, each counted in `at_run` (reported with the point) so the coverage figure
    can be checked against what ran.
    """

    def __init__(self, dim: int = -1, at_run: dict[str, int] | None = None) -> None:
        super().__init__()
        self.dim, self.at_run = dim, at_run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from perfbench_kernels.softmax import softmax

        if self.dim >= 0:
            assert self.at_run is not None
            last = self.dim == x.dim() - 1
            key = "kernel" if last else "eager_not_last_dim"
            self.at_run[key] = self.at_run.get(key, 0) + 1
            if not last:
                return torch.softmax(x, self.dim)
        return softmax(x.reshape(-1, x.shape[-1]).contiguous()).reshape(x.shape)


class TritonSwiGLU(nn.Module):
    """`silu(a) * b` through `perfbench_kernels.swiglu`."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from perfbench_kernels.swiglu import swiglu

        if a.dtype != b.dtype:  # as eager's mul would promote
            dtype = torch.promote_types(a.dtype, b.dtype)
            a, b = a.to(dtype), b.to(dtype)
        if a.shape != b.shape:  # the kernel takes equal shapes; materialise the broadcast
            a, b = torch.broadcast_tensors(a, b)
        n = a.shape[-1]
        out = swiglu(a.reshape(-1, n).contiguous(), b.reshape(-1, n).contiguous())
        return out.reshape(a.shape)


WRAPPERS = (TritonLayerNorm, TritonRMSNorm, TritonAddRMSNorm, TritonSoftmax, TritonSwiGLU)
