"""Cross-entropy in a scenario's loss_fn runs in our kernel under the triton backend (train)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from perfbench.backends.loss_routing import route_cross_entropy

pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: TRITON_INTERPRET=1 (conftest)


def test_supported_call_runs_the_kernel_with_matching_value_and_gradient():
    torch.manual_seed(0)
    logits = torch.randn(6, 37, device=DEVICE, requires_grad=True)
    target = torch.randint(0, 37, (6,), device=DEVICE)
    target[2] = -100  # ignored row

    def loss_fn(output, batch):
        return F.cross_entropy(output, batch)

    counts: dict[str, int] = {}
    loss = route_cross_entropy(loss_fn, counts)(logits, target)
    (grad,) = torch.autograd.grad(loss, logits)
    ref = F.cross_entropy(logits, target)
    (ref_grad,) = torch.autograd.grad(ref, logits)
    assert counts == {"kernel": 1}
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)


def test_unsupported_arguments_stay_eager_and_are_counted():
    logits = torch.randn(4, 5, device=DEVICE)
    target = torch.randint(0, 5, (4,), device=DEVICE)
    counts: dict[str, int] = {}
    smoothed = route_cross_entropy(lambda o, t: F.cross_entropy(o, t, label_smoothing=0.1), counts)
    torch.testing.assert_close(
        smoothed(logits, target), F.cross_entropy(logits, target, label_smoothing=0.1)
    )
    module = torch.nn.CrossEntropyLoss(weight=torch.ones(5, device=DEVICE))
    route_cross_entropy(lambda o, t: module(o, t), counts)(logits, target)
    assert counts == {"eager": 2}


def test_triton_backend_routes_the_loss_in_train_mode_only():
    from types import SimpleNamespace

    from perfbench.backends import BACKENDS
    from perfbench.results.axes import Mode, Point
    from perfbench.scenario.loading import default_forward

    model = torch.nn.Sequential(torch.nn.Linear(8, 5)).to(DEVICE)
    scenario = SimpleNamespace(forward=default_forward, loss_fn=lambda o, t: F.cross_entropy(o, t))
    x = torch.randn(3, 8, device=DEVICE)
    train = BACKENDS["triton"].prepare(model, Point(mode=Mode.TRAIN), x, scenario)
    infer = BACKENDS["triton"].prepare(model, Point(mode=Mode.INFER), x, scenario)
    assert train.loss_fn is not None and infer.loss_fn is None
    target = torch.randint(0, 5, (3,), device=DEVICE)
    loss = train.loss_fn(train.model(x), target)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), target), rtol=1e-5, atol=1e-6)
    assert train.info["loss_cross_entropy"] == {"kernel": 1}
