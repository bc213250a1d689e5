"""`perfbench check`: every rung passes on a healthy tiny scenario, and fails on a scenario made to
break exactly that rung, with the measured values in the report. The shipped scenarios pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from perfbench.backends import BACKENDS, Backend, Prepared
from perfbench.check.ladder import CheckReport, check_main, run_check
from perfbench.check.rungs import Ctx, rung_init_loss, rung_shapes_and_mode
from perfbench.check.training import rung_checkpoint, rung_determinism, rung_overfit
from perfbench.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

# A healthy 4-class classifier; each failing variant below edits one line of it.
HEALTHY = """
import random
import time
import torch
import torch.nn.functional as F
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 64)
        self.fc2 = nn.Linear(64, 4)
        self.drop = nn.Dropout(0.1)
        # EXTRA_INIT

    def forward(self, x):
        out = self.fc2(self.drop(F.relu(self.fc1(x))))
        # EXTRA_FORWARD
        return out

def build_model():
    return Net()

def make_batch(batch_size):
    return torch.randn(batch_size, 8), torch.randint(0, 4, (batch_size,))

def forward(model, batch):
    return model(batch[0])

def loss_fn(out, batch):
    return F.cross_entropy(out, batch[1])
"""


@pytest.fixture
def scenario_from(tmp_path: Path) -> Callable[..., object]:
    """Write HEALTHY with the given lines spliced in, and load it."""

    def make(init: str = "", forward: str = "", extra: str = "", name: str = "s.py") -> object:
        source = HEALTHY.replace("# EXTRA_INIT", init).replace("# EXTRA_FORWARD", forward)
        path = tmp_path / name
        path.write_text(source + extra, encoding="utf-8")
        return load_scenario(path)

    return make


def ctx_for(scenario: object, **kw: object) -> Ctx:
    return Ctx(scenario=scenario, **kw)  # type: ignore[arg-type]


def test_healthy_scenario_passes_every_rung(scenario_from) -> None:
    report = run_check(scenario_from(), backends=["eager"])
    assert [r.status for r in report.rungs] == ["pass"] * 6, report.format_text()
    assert report.ok and not report.blocks_timing
    assert "Dropout" in report.rung(1).values["mode_dependent_modules"]
    assert report.rung(1).values["train_vs_eval_rel_diff"] > 0  # dropout acts in train only
    json.dumps(report.to_dict())  # JSON-ready as it stands
    text = report.format_text()
    for r in report.rungs:
        assert r.name in text
    assert "result: no rung failed" in text


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


# ---- rung 6


def _perturbing_prepare(model, point, example_batch, scenario) -> Prepared:
    class Perturbed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x):
            return self.inner(x) * 1.01

    return Prepared(model=Perturbed(), info={"note": "multiplies by 1.01"})


def test_rung6_fails_on_a_backend_that_disagrees(scenario_from, monkeypatch) -> None:
    monkeypatch.setitem(
        BACKENDS, "perturbed", Backend("perturbed", "test only", prepare=_perturbing_prepare)
    )
    monkeypatch.setitem(
        BACKENDS,
        "never",
        Backend("never", "test only", prepare=_perturbing_prepare, applies=lambda p, s: "not here"),
    )
    report = run_check(scenario_from(), backends=["eager", "perturbed", "never", "nosuch"])
    rung = report.rung(6)
    assert rung.status == "fail"
    per = rung.values["backends"]
    assert per["eager"]["status"] == "pass" and per["eager"]["rel_err"] == 0
    assert (
        per["perturbed"]["status"] == "fail" and "exceeds tolerance" in per["perturbed"]["detail"]
    )
    assert per["never"] == {"status": "n/a", "detail": "skipped: not here"}
    assert per["nosuch"]["status"] == "fail" and "unknown backend" in per["nosuch"]["detail"]
    assert not report.ok and report.blocks_timing
    assert "blocks timing" in report.format_text()


def test_rung6_compile_agrees_with_eager(write_scenario) -> None:
    from tests.conftest import TINY_MLP

    report = CheckReport(scenario="x", seed=0, backends=["compile"])
    sc = load_scenario(write_scenario(TINY_MLP))
    from perfbench.check.ladder import rung_backends

    report.rungs.append(rung_backends(ctx_for(sc, backends=("compile",))))
    values = report.rung(6).values["backends"]["compile"]
    assert values["status"] == "pass", values
    assert values["rel_err"] <= 1e-4


# ---- check_main and the shipped scenarios


def test_check_main_exit_codes(scenario_from, tmp_path, capsys) -> None:
    good = scenario_from()
    assert check_main(str(good.path), ["eager"], quiet=True) == 0
    assert "no rung failed" in capsys.readouterr().out

    bad = scenario_from(forward="out = out * 100", name="bad.py")
    assert check_main(str(bad.path), ["eager"], quiet=False) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "rung(s) 2 failed" in out

    raising = scenario_from(
        extra="\ndef build_model():\n    raise RuntimeError('no model')\n", name="raising.py"
    )
    assert check_main(str(raising.path), ["eager"], quiet=True) == 2
    err = capsys.readouterr().err
    assert "raising.py:" in err and "build_model() raised RuntimeError: no model" in err

    broken = tmp_path / "broken.py"
    broken.write_text("import torch\ndef make_batch(n):\n    return torch.zeros(n)\n")
    assert check_main(str(broken), ["eager"], quiet=False) == 2
    assert "missing required function(s): build_model" in capsys.readouterr().err


def test_exception_in_a_rung_fails_it_with_the_line(scenario_from) -> None:
    sc = scenario_from(extra="\ndef loss_fn(out, batch):\n    raise ValueError('boom')\n")
    report = run_check(sc, backends=["eager"], overfit_steps=5)
    assert report.rung(3).status == "fail"
    assert "s.py:" in report.rung(3).detail and "ValueError: boom" in report.rung(3).detail
    assert report.rung(1).status == "pass" and not report.blocks_timing


@pytest.mark.parametrize("name", ["mlp", "transformer", "convnet", "llm_block", "input_bound"])
def test_shipped_scenarios_pass_the_ladder(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.py")
    # batch 2 and one determinism step: the ladder's logic is what is tested, on a 2-core budget
    report = run_check(scenario, backends=["eager"], batch_size=2, determinism_steps=1)
    assert report.ok, report.format_text()
