"""FLOPs are a number only when torch's flop counter saw every op that does real work.

An encoder of nn.TransformerEncoderLayer in eval mode takes PyTorch's fused fast path
(`aten._transformer_encoder_layer_fwd`), which the counter has no formula for: it was reported at
1024 FLOPs per step. Now such a point says "FLOPs unknown" and names the op.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from perfbench.measure.flops import (
    FlopsUnknown,
    count_forward,
    flops_missing,
    forward_flops,
    is_cheap,
)
from perfbench.measure.point import PointTask, measure_point
from perfbench.report.page import render_report
from perfbench.results.axes import Point
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import load_scenario
from tests.conftest import ok_row

ENCODER = """
import torch
from torch import nn

def build_model():
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    return nn.Sequential(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(32, 2))

def make_batch(batch_size):
    return torch.randn(batch_size, 8, 32)
"""


def _encoder(d: int = 32, heads: int = 4, ff: int = 64, layers: int = 2) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def test_fused_encoder_fast_path_is_unknown_and_named() -> None:
    model = _encoder().eval()
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        found = count_forward(lambda: model(x))
        with pytest.raises(FlopsUnknown, match=r"aten\._transformer_encoder_layer_fwd"):
            forward_flops(lambda: model(x))
    assert found.uncounted == {"aten._transformer_encoder_layer_fwd.default": 2}


def test_fused_multi_head_attention_is_unknown() -> None:
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        found = count_forward(lambda: mha(x, x, x))
    assert "aten._native_multi_head_attention.default" in found.uncounted


@settings(max_examples=8, deadline=None)
@given(
    batch=st.integers(1, 3),
    seq=st.integers(1, 9),
    heads=st.sampled_from([1, 2, 4]),
    ff=st.sampled_from([16, 48]),
)
def test_slow_path_encoder_is_counted_exactly(batch: int, seq: int, heads: int, ff: int) -> None:
    """Off the fast path (train mode) every op is seen: matmuls plus attention on CPU, whose
    `_scaled_dot_product_flash_attention_for_cpu` op gets torch's flash-attention formula."""
    d = 32
    model = _encoder(d, heads, ff, layers=1).train()
    x = torch.randn(batch, seq, d)
    with torch.no_grad():
        found = count_forward(lambda: model(x))
    tokens = batch * seq
    projections = 2 * tokens * d * (3 * d + d)  # q, k, v and the output projection
    attention = 2 * 2 * batch * seq * seq * d  # scores and weighted sum over all heads
    feed_forward = 2 * 2 * tokens * d * ff
    assert found.known, found.uncounted
    assert found.total == projections + attention + feed_forward


def test_views_pointwise_and_norms_are_cheap() -> None:
    aten = torch.ops.aten
    for op in (aten.view.default, aten.add.Tensor, aten.gelu.default, aten.mean.dim):
        assert is_cheap(op), op
    for op in (aten.native_layer_norm.default, aten._softmax.default, aten.embedding.default):
        assert is_cheap(op), op
    for op in (aten._transformer_encoder_layer_fwd.default, aten.mkldnn_rnn_layer.default):
        assert not is_cheap(op), op


@pytest.mark.parametrize("name", ["mlp", "convnet", "input_bound", "llm_block", "transformer"])
def test_shipped_scenarios_are_fully_counted(name: str) -> None:
    from pathlib import Path

    scenario = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / f"{name}.py")
    torch.manual_seed(0)
    model, batch = scenario.build_model().eval(), scenario.make_batch(2)
    with torch.no_grad():
        found = count_forward(lambda: scenario.forward(model, batch))
    assert found.known and found.total > 0, found.uncounted


def test_flops_missing_keeps_the_ops_and_other_errors_apart() -> None:
    unknown = flops_missing(FlopsUnknown({"aten.foo.default": 3}))
    assert unknown["flops_unknown_ops"] == {"aten.foo.default": 3}
    assert "aten.foo.default (3 calls)" in unknown["flops_unknown"]
    assert flops_missing(ValueError("x")) == {"flops_error": "ValueError: x"}


def test_point_row_says_unknown(write_scenario, fast_timing) -> None:
    path = write_scenario(ENCODER)
    task = PointTask(str(path), Point(batch_size=2), 0, 0, fast_timing, str(path.parent))
    row = measure_point(load_scenario(path), task)
    assert row.status == "ok", row.error
    assert row.tflops is None
    assert row.extra["flops_per_step"] is None
    assert row.extra["flops_unknown_ops"] == {"aten._transformer_encoder_layer_fwd.default": 2}


def test_scenario_flops_overrides_unknown(write_scenario, fast_timing) -> None:
    path = write_scenario(ENCODER + "\ndef FLOPS(batch_size):\n    return 1_000_000 * batch_size\n")
    task = PointTask(str(path), Point(batch_size=2), 0, 0, fast_timing, str(path.parent))
    row = measure_point(load_scenario(path), task)
    assert row.extra["flops_per_step"] == 2_000_000 and row.tflops > 0
    assert "flops_unknown" not in row.extra


def test_report_shows_unknown_not_a_number(tmp_path) -> None:
    run = RunDir.create(tmp_path / "run")
    run.write_meta({"scenario": {"name": "enc", "path": "enc.py"}, "state": "complete"})
    extra = flops_missing(FlopsUnknown({"aten._transformer_encoder_layer_fwd.default": 2}))
    run.append_row({**ok_row(0, "eager", 2.0, 0.1), "extra": extra})
    html = render_report(run)
    assert "TFLOP/s" in html  # the column stays although no point has a number
    assert ">unknown<" in html
    assert "FLOPs unknown: torch&#39;s flop counter has no formula for" in html
    assert "aten._transformer_encoder_layer_fwd.default (2 calls)" in html
