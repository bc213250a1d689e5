"""triton backend: coverage numbers on small models, outputs and gradients against eager.

Runs the real kernels under the Triton interpreter on CPU (TRITON_INTERPRET=1 must be set before
the kernel modules are imported, hence at the top of this module, as tests/kernels/conftest.py
does). With a GPU present the variable is left alone and these CPU-tensor tests skip.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from types import SimpleNamespace

import pytest
import torch.nn.functional as F
from torch import nn

from perfbench.backends import BACKENDS
from perfbench.backends.base import BackendNotApplicable
from perfbench.backends.fx_passes import kernel_has_backward
from perfbench.measure.correctness import relative_error
from perfbench.results.axes import Device, Mode, Point
from perfbench.scenario.loading import default_forward

SCENARIO = SimpleNamespace(forward=default_forward)
TRITON = BACKENDS["triton"]
TOL = 1e-4  # float32 against float32 eager, the harness's default


def _need_kernels(*names: str) -> None:
    reason = TRITON.applies(Point(backend="triton"), SCENARIO)
    if reason is not None:
        pytest.skip(reason)
    for name in names:
        pytest.importorskip(f"perfbench_kernels.{name}", reason=f"kernel {name} not written yet")


class LlamaRMSNorm(nn.Module):
    """An RMSNorm look-alike the way model zoos write it (HF names eps `variance_epsilon`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(dim) + 0.5)
        self.variance_epsilon = 1e-6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.variance_epsilon) * self.weight


class NormMLP(nn.Module):
    def __init__(self, d: int = 24) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 40), nn.Linear(40, d)
        self.rms = nn.RMSNorm(d, eps=1e-6)
        self.custom = LlamaRMSNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(F.gelu(self.fc1(self.ln(x))))
        return self.custom(self.rms(h))


class GatedBlock(nn.Module):
    """Residual add + RMSNorm and a SwiGLU MLP, as in a Llama block; softmax over the last dim."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.norm = LlamaRMSNorm(d)
        self.w1, self.w3, self.w2 = nn.Linear(d, 24), nn.Linear(d, 24), nn.Linear(24, d)

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h = x + r
        y = self.norm(h)
        y = self.w2(F.silu(self.w1(y)) * self.w3(y))
        return torch.softmax(y + h, dim=-1)


def _prepare(model: nn.Module, batch, mode: Mode):
    model.train(mode == Mode.TRAIN)
    return TRITON.prepare(model, Point(backend="triton", mode=mode), batch, SCENARIO)


def test_applies_and_correctness_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TRITON.correctness_only(Point(device=Device.CPU))
    assert not TRITON.correctness_only(Point(device=Device.CUDA))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    reason = TRITON.applies(Point(device=Device.CPU), SCENARIO)
    if reason is not None and "not importable" not in reason:
        assert reason == "Triton needs CUDA, or TRITON_INTERPRET=1 on CPU (correct but slow)"
    assert reason is not None


def test_coverage_infer_norms_and_linear_gelu() -> None:
    _need_kernels("layer_norm", "rms_norm", "bias_act")
    torch.manual_seed(0)
    model, x = NormMLP(), torch.randn(3, 5, 24)
    prepared = _prepare(model, x, Mode.INFER)
    cov = prepared.info["coverage"]
    assert (cov["replaced"], cov["candidates"]) == (4, 4)
    patterns = prepared.info["patterns"]
    assert {p: c["replaced"] for p, c in patterns.items()} == {
        "layer_norm": 1,
        "rms_norm": 2,
        "linear_act": 1,
    }
    # ln, rms, custom in ours; Linear+GELU = matmul (torch) + bias_act (ours); fc2 in torch
    assert cov["ops_in_our_kernels_pct"] == pytest.approx(100 * 4 / 6, abs=0.1)
    assert "correctness only" in prepared.info["timing_note"]
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < TOL


def _grads(model: nn.Module, run) -> list[torch.Tensor]:
    model.zero_grad()
    (run() * torch.linspace(-1, 1, 16)).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("which", ["norm_mlp", "gated"])
def test_train_gradients_match_eager(which: str) -> None:
    _need_kernels(*(("layer_norm", "rms_norm") if which == "norm_mlp" else ("rms_norm", "swiglu")))
    torch.manual_seed(0)
    if which == "norm_mlp":
        model, batch = NormMLP(16), (torch.randn(4, 16),)
    else:
        model, batch = GatedBlock(), (torch.randn(2, 3, 16), torch.randn(2, 3, 16))
    prepared = _prepare(model, batch, Mode.TRAIN)
    counts = prepared.info["patterns"]
    for pattern, kernel in (("linear_act", "bias_act"), ("softmax", "softmax")):
        if pattern in counts and not counts[pattern]["eager_no_kernel"]:
            if kernel_has_backward(kernel):
                continue
            assert counts[pattern]["eager_no_backward"] == counts[pattern]["candidates"]
            assert prepared.info["coverage"]["eager_no_backward"][pattern] >= 1
    if which == "gated":
        assert counts["add_rms_norm"]["replaced"] == 1 and counts["swiglu"]["replaced"] == 1
    out = prepared.model(*batch)
    assert relative_error(out, model(*batch)) < TOL
    ours = _grads(model, lambda: prepared.model(*batch))
    ref = _grads(model, lambda: model(*batch))
    for got, want in zip(ours, ref, strict=True):
        assert relative_error(got, want) < TOL


class Branchy(nn.Module):
    """fx cannot trace the data-dependent branch; the norm modules are still replaced."""

    def __init__(self) -> None:
        super().__init__()
        self.ln, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(self.ln(x))
        return y if y.sum() > 0 else -y


def test_untraceable_model_still_gets_module_replacement() -> None:
    _need_kernels("layer_norm")
    model, x = Branchy(), torch.randn(4, 8)
    prepared = _prepare(model, x, Mode.INFER)
    assert "not traceable" in prepared.info["fx"]
    cov = prepared.info["coverage"]
    assert (cov["replaced"], cov["ops_in_our_kernels_pct"]) == (1, 50.0)  # ln of {ln, fc}
    assert cov["basis"].startswith("leaf modules")
    assert isinstance(model.ln, nn.LayerNorm)  # the model itself is not modified
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < TOL


class BranchyNoNorm(nn.Module):
    """fx cannot trace it and it has no module our kernels replace: nothing the backend can do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y if y.sum() > 0 else -y


def test_untraceable_model_without_replaceable_modules_is_not_applicable() -> None:
    with pytest.raises(BackendNotApplicable, match=r"cannot trace BranchyNoNorm \(TraceError at "):
        _prepare(BranchyNoNorm(), torch.randn(4, 8), Mode.INFER)


class SoftmaxDims(nn.Module):
    """Softmax written five ways: dim=-1 as a method and through F (fx records F.softmax with
    `_stacklevel` and `dtype` kwargs), the last dim as a positive int, a middle dim, a dtype."""

    def __init__(self) -> None:
        super().__init__()
        self.mod = nn.Softmax(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.softmax(-1) + F.softmax(x, dim=-1) + self.mod(x) + F.softmax(x, 1)
        return y + F.softmax(x, -1, dtype=torch.float64).float()  # dtype: left to torch


def test_softmax_positive_dim_resolved_per_call() -> None:
    _need_kernels("softmax")
    model, x = SoftmaxDims(), torch.randn(2, 3, 5)
    prepared = _prepare(model, x, Mode.INFER)
    assert prepared.info["patterns"]["softmax"]["replaced"] == 4
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < TOL
    # nn.Softmax(dim=2) on 3-D input is the last dim: the kernel; F.softmax(x, 1) is not: torch
    assert prepared.info["softmax_dim_at_run"] == {"kernel": 1, "eager_not_last_dim": 1}
