"""Rungs 1-2 (check/rungs.py): each passes on the healthy scenario and fails on one edited to break
exactly that rung, with the measured values in the result."""

from __future__ import annotations

import pytest

from perfbench.check.rungs import rung_init_loss, rung_shapes_and_mode
from tests.check.common import ctx_for

# ---- rung 1


def test_rung1_fails_on_output_not_scaling_with_batch(scenario_from) -> None:
    sc = scenario_from(forward="out = torch.cat([out, out[:1]])")
    result = rung_shapes_and_mode(ctx_for(sc))
    assert result.status == "fail"
    assert "dim 0 is 3 at batch 2 and 4 at batch 3" in result.detail


def test_rung1_fails_on_dtype_or_structure_changing_with_batch(scenario_from) -> None:
    sc = scenario_from(forward="out = out.double() if x.shape[0] == 3 else out")
    result = rung_shapes_and_mode(ctx_for(sc))
    assert result.status == "fail"
    assert "output out: dtype float32 at batch 2, float64 at batch 3" in result.detail
    sc = scenario_from(forward="out = (out, out) if x.shape[0] == 3 else out", name="t.py")
    result = rung_shapes_and_mode(ctx_for(sc))
    assert result.status == "fail" and "structure changes" in result.detail


def test_rung1_fails_when_batch_size_is_ignored(scenario_from) -> None:
    sc = scenario_from(
        extra="\ndef make_batch(batch_size):\n    return torch.randn(4, 8), torch.zeros(4, dtype=torch.long)\n"
    )
    result = rung_shapes_and_mode(ctx_for(sc))
    assert result.status == "fail" and "batch_size ignored" in result.detail


def test_rung1_fails_on_dropout_that_eval_cannot_reach(scenario_from) -> None:
    # a plain Python list hides the module from model.eval(): "eval" forwards stay random
    sc = scenario_from(init="self.hidden = [nn.Dropout(0.5)]", forward="out = self.hidden[0](out)")
    result = rung_shapes_and_mode(ctx_for(sc))
    assert result.status == "fail"
    assert result.values["eval_repeatable"] is False
    assert "plain list" in result.detail


def test_rung1_fails_on_eval_forward_that_changes_buffers(scenario_from) -> None:
    sc = scenario_from(
        init="self.register_buffer('calls', torch.zeros(()))", forward="self.calls += 1"
    )
    result = rung_shapes_and_mode(ctx_for(sc))
    assert result.status == "fail" and result.values["buffers_changed_in_eval"] == ["calls"]


def test_rung1_fails_when_dataset_items_do_not_match_make_batch(scenario_from) -> None:
    extra = """
class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        return torch.randn(9), torch.tensor(0)

def make_dataset():
    return Items()
"""
    result = rung_shapes_and_mode(ctx_for(scenario_from(extra=extra)))
    assert result.status == "fail" and "collated dataset items" in result.detail


# ---- rung 2


def test_rung2_fails_on_huge_logits_at_init(scenario_from) -> None:
    result = rung_init_loss(ctx_for(scenario_from(forward="out = out * 100")))
    assert result.status == "fail"
    values = result.values
    assert values["classes"] == 4
    assert values["ln_classes"] == pytest.approx(1.386, abs=1e-3)
    assert values["loss_at_init"] > values["ln_classes"] + values["allowed"]
    assert "too large" in result.detail


def test_rung2_passes_near_ln_c_and_is_na_for_regression(scenario_from) -> None:
    result = rung_init_loss(ctx_for(scenario_from()))
    assert result.status == "pass"
    assert abs(result.values["loss_at_init"] - result.values["ln_classes"]) < 0.3
    regression = "\ndef loss_fn(out, batch):\n    return F.mse_loss(out, batch[1])\n"
    float_target = "\ndef make_batch(batch_size):\n    return torch.randn(batch_size, 8), torch.randn(batch_size, 4)\n"
    sc_float = scenario_from(extra=float_target + regression, name="f.py")
    assert rung_init_loss(ctx_for(sc_float)).status == "n/a"
