"""fx backend: BatchNorm folding and Linear + activation fusion give eager's answers, and an
untraceable model fails loudly instead of running eager under the fx name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perfbench.backends import BACKENDS
from perfbench.backends.base import BackendNotApplicable
from perfbench.backends.fx_backend import linear_act_reason
from perfbench.backends.fx_passes import FusedLinearAct, FxTraceError
from perfbench.measure.correctness import relative_error
from perfbench.results.axes import Mode, Point
from perfbench.scenario.loading import default_forward

SCENARIO = SimpleNamespace(forward=default_forward)
FX = BACKENDS["fx"]


def _randomise_bn(model: nn.Module) -> None:
    """Non-trivial running stats and affine params, so a wrong fold cannot pass by accident."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv1d = nn.Conv1d(8, 4, 3)
        self.bn1d_conv = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4 * 6, 10)
        self.bn1d = nn.BatchNorm1d(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))  # (N, 8, 8, 8)
        x = self.bn1d_conv(self.conv1d(x.mean(dim=3)))  # (N, 4, 6)
        return self.bn1d(self.fc(x.flatten(1)))


def _prepare(model: nn.Module, batch, mode: Mode = Mode.INFER):
    model.train(mode == Mode.TRAIN)
    return FX.prepare(model, Point(backend="fx", mode=mode), batch, SCENARIO)


def test_bn_fold_conv2d_conv1d_linear_matches_eager() -> None:
    torch.manual_seed(0)
    model = ConvNet()
    _randomise_bn(model)
    x = torch.randn(2, 3, 8, 8)
    prepared = _prepare(model, x)
    assert prepared.info["rewrites"]["fold_bn"] == 3
    assert prepared.info["rewrite_sites"]["fold_bn"] == ["conv+bn", "conv1d+bn1d_conv", "fc+bn1d"]
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in prepared.model.modules())
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-5
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched


def test_linear_bn1d_on_3d_input_is_not_folded() -> None:
    """BatchNorm1d on (N, C, L) normalises dim 1 while Linear acts on the last dim: no fold."""
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    _randomise_bn(model)
    x = torch.randn(2, 8, 8)
    prepared = _prepare(model, x)
    assert prepared.info["rewrites"]["fold_bn"] == 0
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-6


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(16, 32), nn.Linear(32, 32)
        self.c, self.d = nn.Linear(32, 32), nn.Linear(32, 8)
        self.gelu = nn.GELU()
        self.tanh_gelu = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.a(x))
        x = self.gelu(self.b(x))
        h = self.c(x)
        x = torch.relu(h) + h  # two users: not fusable
        return self.tanh_gelu(self.d(x))


def test_linear_act_fusion_fires_and_matches() -> None:
    torch.manual_seed(0)
    model = MLP()
    x = torch.randn(4, 16)
    prepared = _prepare(model, x)
    assert prepared.info["rewrites"] == {"fold_bn": 0, "linear_act": 3}
    fused = [m for m in prepared.model.modules() if isinstance(m, FusedLinearAct)]
    assert sorted(m.activation for m in fused) == ["gelu", "gelu_tanh", "relu"]
    kernel_runs = linear_act_reason(torch.device("cpu"), Mode.INFER) is None  # TRITON_INTERPRET=1
    expected = "perfbench_kernels.bias_act (Triton)" if kernel_runs else "eager ops"
    assert prepared.info["linear_act_impl"] == expected
    assert FX.correctness_only(Point(backend="fx")) == kernel_runs
    with torch.no_grad():
        assert relative_error(prepared.model(x), model(x)) < 1e-5


def test_train_mode_keeps_bn_and_shares_parameters() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 4), nn.ReLU())
    x = torch.randn(6, 8)
    prepared = _prepare(model, x, Mode.TRAIN)
    assert prepared.info["rewrites"] == {"fold_bn": 0, "linear_act": 1}
    assert "batch statistics" in prepared.info["fold_bn_skipped"]
    assert prepared.info["linear_act_impl"] == "eager ops"  # bias_act has no backward
    prepared.model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())  # the original's parameters


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.sum() > 0:
            return y
        return -y


def test_untraceable_model_fails_loudly() -> None:
    with pytest.raises(FxTraceError, match="symbolic_trace cannot trace DataDependent"):
        _prepare(DataDependent(), torch.randn(2, 4))


def test_untraceable_model_is_not_applicable_with_the_model_line() -> None:
    """The backend cannot handle the model: BackendNotApplicable (the harness skips the point),
    naming this file and the line of the data-dependent `if`."""
    if_line = next(
        n
        for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "y.sum() > 0" in text
    )
    with pytest.raises(BackendNotApplicable) as info:
        _prepare(DataDependent(), torch.randn(2, 4))
    assert f"{__file__}:{if_line}" in str(info.value)
    assert "TraceError" in str(info.value)
