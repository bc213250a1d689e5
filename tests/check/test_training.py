"""Rungs 3-5 (check/training.py): overfit one batch, checkpoint round trip, determinism; each
fails on a scenario edited to break exactly that rung, with the measured values in the result."""

from __future__ import annotations

from perfbench.check.training import rung_checkpoint, rung_determinism, rung_overfit
from tests.check.common import ctx_for

# ---- rung 3


def test_rung3_fails_when_loss_cannot_fall(scenario_from) -> None:
    # output scaled by zero: every gradient is zero, the loss is stuck at ln(4)
    sc = scenario_from(forward="out = out * 0")
    result = rung_overfit(ctx_for(sc, overfit_steps=50))
    assert result.status == "fail"
    assert "no trainable parameter received a gradient" in result.detail
    assert set(result.values["never_got_grad"]) == {
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
    }


def test_rung3_passes_and_lists_unused_parameters(scenario_from) -> None:
    sc = scenario_from(init="self.unused = nn.Linear(8, 8)")
    result = rung_overfit(ctx_for(sc))
    assert result.status == "pass", result.detail
    values = result.values
    assert values["tried"][0] == "Adam(lr=0.001)"  # then 1e-2: this tiny net is slow at 1e-3
    assert values["optimizer"] in values["tried"]
    assert values["final_loss"] <= 0.1 * values["initial_loss"]
    assert values["never_got_grad"] == ["unused.bias", "unused.weight"]
    assert "never got a gradient" in result.detail


def test_rung3_uses_the_scenarios_optimizer(scenario_from) -> None:
    extra = "\ndef build_optimizer(params):\n    return torch.optim.SGD(params, lr=0.0)\n"
    result = rung_overfit(ctx_for(scenario_from(extra=extra), overfit_steps=20))
    assert result.values["optimizer"] == "scenario build_optimizer: SGD"
    assert result.status == "fail" and "did not fall by 90% within 20 steps" in result.detail


def test_rung3_is_na_for_a_loss_that_starts_below_zero(scenario_from) -> None:
    sc = scenario_from(extra="\ndef loss_fn(out, batch):\n    return -out.pow(2).mean() - 1\n")
    result = rung_overfit(ctx_for(sc))
    assert result.status == "n/a" and "positive initial loss" in result.detail


# ---- rung 4


def test_rung4_fails_when_state_lives_in_a_plain_attribute(scenario_from) -> None:
    # a hand-rolled running mean kept as a plain tensor: not in state_dict, lost by the checkpoint
    sc = scenario_from(
        init="self.running = torch.randn(4)",
        forward="self.running = 0.9 * self.running + 0.1 * out.detach().mean(0)\n        out = out - self.running",
    )
    result = rung_checkpoint(ctx_for(sc))
    assert result.status == "fail"
    assert result.values["unregistered_tensor_attributes"] == ["running"]
    assert "loss" in result.values["mismatched"]
    assert "register" in result.detail or "plain attributes" in result.detail


def test_rung4_passes_with_a_registered_buffer(scenario_from) -> None:
    sc = scenario_from(
        init="self.register_buffer('running', torch.randn(4))",
        forward="if self.training:\n            self.running.mul_(0.9).add_(0.1 * out.detach().mean(0))\n        out = out - self.running",
    )
    result = rung_checkpoint(ctx_for(sc))
    assert result.status == "pass", result.detail
    assert result.values["compared"] == ["loss", "train output", "eval output after step"]


# ---- rung 5


def test_rung5_fails_on_unseeded_randomness(scenario_from) -> None:
    # a private random.Random() is seeded from os.urandom, not by the global seed
    sc = scenario_from(
        init="self.rng = random.Random()", forward="out = out * (1 + self.rng.random())"
    )
    result = rung_determinism(ctx_for(sc))
    assert result.status == "fail"
    assert result.values["differing_steps"][0] == 0
    assert "unseeded" in result.detail


def test_rung5_fails_on_time_dependent_output(scenario_from) -> None:
    sc = scenario_from(forward="out = out * (1 + (time.perf_counter_ns() % 997) * 1e-3)")
    assert rung_determinism(ctx_for(sc)).status == "fail"


def test_rung5_reports_what_was_checked(scenario_from) -> None:
    result = rung_determinism(ctx_for(scenario_from(), determinism_steps=2))
    assert result.status == "pass"
    assert result.values["first_run"] == result.values["second_run"]
    assert "CUDA" in result.values["note"]
    assert result.values["deterministic_algorithms_enabled"] is False
