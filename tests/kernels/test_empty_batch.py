"""Zero rows (an empty batch) launch nothing and return empty outputs and zero weight grads."""

from __future__ import annotations

import torch
from perfbench_kernels.bias_act import bias_act
from perfbench_kernels.cross_entropy import cross_entropy
from perfbench_kernels.layer_norm import layer_norm
from perfbench_kernels.rms_norm import add_rms_norm, rms_norm
from perfbench_kernels.softmax import softmax
from perfbench_kernels.swiglu import swiglu


def test_forward_only_kernels():
    x = torch.randn(0, 7)
    assert softmax(x).shape == (0, 7)
    assert bias_act(x, torch.randn(7), "gelu").shape == (0, 7)


def test_norms_and_swiglu_with_grads():
    x = torch.randn(0, 7, requires_grad=True)
    w, b = torch.ones(7, requires_grad=True), torch.zeros(7, requires_grad=True)
    y = layer_norm(x, w, b)
    gx, gw, gb = torch.autograd.grad(y.sum(), (x, w, b))
    assert gx.shape == (0, 7) and not gw.any() and not gb.any()
    (gw,) = torch.autograd.grad(rms_norm(x, w).sum(), (w,))
    assert not gw.any()
    y, h = add_rms_norm(x, torch.randn(0, 7), w)
    assert y.shape == h.shape == (0, 7)
    assert swiglu(x, x).shape == (0, 7)


def test_cross_entropy():
    logits, target = torch.randn(0, 5, requires_grad=True), torch.zeros(0, dtype=torch.long)
    assert cross_entropy(logits, target, "sum") == 0
    assert cross_entropy(logits, target, "none").shape == (0,)
    assert torch.isnan(cross_entropy(logits, target))  # mean of nothing, as torch gives
    assert torch.isnan(torch.nn.functional.cross_entropy(logits, target))
