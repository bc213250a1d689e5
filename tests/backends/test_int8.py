"""int8: which points it applies to, which implementation ran, and error within its tolerance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from perfbench.backends import BACKENDS
from perfbench.backends.int8 import INT8_TOLERANCE
from perfbench.measure.correctness import DEFAULT_TOLERANCE, relative_error
from perfbench.results.axes import Amp, Device, Mode, Point
from perfbench.scenario.loading import default_forward

SCENARIO = SimpleNamespace(forward=default_forward)
INT8 = BACKENDS["int8"]


def test_applies_only_to_cpu_inference() -> None:
    assert INT8.applies(Point(mode=Mode.INFER, device=Device.CPU), SCENARIO) is None
    assert "mode=infer" in INT8.applies(Point(mode=Mode.TRAIN), SCENARIO)
    assert "device=cpu" in INT8.applies(Point(device=Device.CUDA), SCENARIO)
    assert "amp=off" in INT8.applies(Point(amp=Amp.BF16), SCENARIO)


def test_int8_mlp_within_tolerance_and_original_untouched() -> None:
    pytest.importorskip("torchao")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 32)
    ).eval()
    x = torch.randn(8, 64)
    with torch.no_grad():
        ref = model(x)
    prepared = INT8.prepare(model, Point(), x, SCENARIO)
    assert prepared.info["int8_impl"].startswith("torchao"), prepared.info
    assert prepared.info["int8_linear_layers"] == 3
    assert prepared.tolerance == INT8_TOLERANCE
    with torch.no_grad():
        err = relative_error(prepared.model(x), ref)
        assert torch.equal(model(x), ref)  # the float32 reference model was deep-copied
    # quantisation really happened (the float32 default would reject it) and stays within bounds
    assert DEFAULT_TOLERANCE[Point().amp] < err < prepared.tolerance


def test_model_without_linear_is_not_applicable() -> None:
    """Nothing to quantise: the point is skipped with this reason (issue 19), not failed."""
    from perfbench.backends.base import BackendNotApplicable

    for backend in (INT8, BACKENDS["int8-ao"]):
        with pytest.raises(
            BackendNotApplicable, match=r"nn\.Linear layers and Sequential has none"
        ):
            backend.prepare(nn.Sequential(nn.ReLU()), Point(), torch.randn(2), SCENARIO)


def test_int8_ao_runs_torch_ao_within_tolerance() -> None:
    backend = BACKENDS["int8-ao"]
    assert backend.applies(Point(mode=Mode.TRAIN), SCENARIO) is not None
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 32)).eval()
    x = torch.randn(8, 64)
    with torch.no_grad():
        ref = model(x)
    prepared = backend.prepare(model, Point(), x, SCENARIO)
    assert prepared.info["int8_impl"].startswith("torch.ao")
    with torch.no_grad():
        err = relative_error(prepared.model(x), ref)
    assert DEFAULT_TOLERANCE[Point().amp] < err < prepared.tolerance
