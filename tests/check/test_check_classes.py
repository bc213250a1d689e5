"""Rung 2 takes the class count from what `loss_fn` hands to cross_entropy / nll_loss.

The false alarm this guards against: an encoder returning {"logits": (B, 2), "hidden": (B, S, 128)}
failed rung 2 with "loss at init 0.7181 vs ln(128)", the class count guessed from the hidden
states, while its loss was ln(2) for its 2 classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.check.classes import LossCall, classes_consumed, judge_calls
from perfbench.check.rungs import Ctx, rung_init_loss
from perfbench.scenario.loading import load_scenario

ENCODER = """
import torch
import torch.nn.functional as F
from torch import nn

VOCAB, SEQ, HIDDEN = 100, 6, 128

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.mix = nn.Linear(HIDDEN, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2)
        nn.init.zeros_(self.head.weight)  # chance at init: loss exactly ln(2)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids):
        hidden = torch.tanh(self.mix(self.embed(input_ids)))
        return {"hidden": hidden, "logits": self.head(hidden.mean(1))}

def build_model():
    return Encoder()

def make_batch(batch_size):
    return {
        "input_ids": torch.randint(0, VOCAB, (batch_size, SEQ)),
        "labels": torch.randint(0, 2, (batch_size,)),
    }

def forward(model, batch):
    return model(batch["input_ids"])

def loss_fn(out, batch):
    LOSS
"""


def rung2(tmp_path: Path, loss: str) -> object:
    path = tmp_path / "encoder.py"
    path.write_text(ENCODER.replace("LOSS", loss), encoding="utf-8")
    return rung_init_loss(Ctx(scenario=load_scenario(path)))


def test_encoder_with_hidden_states_is_judged_on_its_two_classes(tmp_path: Path) -> None:
    result = rung2(tmp_path, 'return F.cross_entropy(out["logits"], batch["labels"])')
    assert result.status == "pass", result.detail
    assert result.values["classes"] == 2
    assert result.values["loss_at_init"] == pytest.approx(math.log(2), abs=1e-6)


def test_module_loss_and_nll_loss_are_seen(tmp_path: Path) -> None:
    module = rung2(tmp_path, 'return nn.CrossEntropyLoss()(out["logits"], batch["labels"])')
    assert module.status == "pass" and module.values["classes"] == 2
    nll = 'return F.nll_loss(F.log_softmax(out["logits"], -1), batch["labels"])'
    assert rung2(tmp_path, nll).values["classes"] == 2


def test_a_loss_the_counter_cannot_see_is_skipped_with_the_reason(tmp_path: Path) -> None:
    by_hand = 'return -F.log_softmax(out["logits"], -1).gather(1, batch["labels"][:, None]).mean()'
    result = rung2(tmp_path, by_hand)
    assert result.status == "n/a"
    assert "cannot be known" in result.detail


@pytest.mark.parametrize(
    ("loss", "why"),
    [
        ('return F.cross_entropy(out["logits"], batch["labels"], reduction="sum")', "not a mean"),
        (
            'return F.cross_entropy(out["logits"], batch["labels"]) '
            '+ F.cross_entropy(out["hidden"].mean(1), batch["input_ids"][:, 0])',
            "2 classification loss calls",
        ),
    ],
)
def test_ambiguous_losses_are_skipped(tmp_path: Path, loss: str, why: str) -> None:
    result = rung2(tmp_path, loss)
    assert result.status == "n/a" and why in result.detail


def test_an_extra_loss_term_is_not_judged_against_ln_c(tmp_path: Path) -> None:
    loss = 'return F.cross_entropy(out["logits"], batch["labels"]) + 10.0'
    result = rung2(tmp_path, loss)
    assert result.status == "pass", result.detail
    assert result.values["loss_fn_total"] == pytest.approx(math.log(2) + 10.0, abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 5),
    classes=st.integers(2, 40),
    extra=st.lists(st.integers(1, 4), max_size=2),
    soft=st.booleans(),
)
def test_class_dim_is_dim_1_for_any_shape(
    batch: int, classes: int, extra: list[int], soft: bool
) -> None:
    logits = torch.randn(batch, classes, *extra)
    if soft:  # class probabilities, same shape as the logits
        target = torch.softmax(torch.randn_like(logits), 1)
    else:
        target = torch.randint(0, classes, (batch, *extra))
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    loss, use = classes_consumed(loss_fn, logits, target)
    assert use.classes == classes
    assert use.value == pytest.approx(float(loss))


def test_unbatched_input_has_its_classes_in_dim_0() -> None:
    _, use = classes_consumed(F.cross_entropy, torch.randn(7), torch.tensor(3))
    assert use.classes == 7


def test_judge_calls_needs_exactly_one_mean_call() -> None:
    one = LossCall("cross_entropy", 5, "mean", 1.6)
    assert judge_calls((one,)).classes == 5
    assert judge_calls(()).classes is None
    assert judge_calls((one, one)).classes is None
    assert judge_calls((LossCall("nll_loss", 5, "none", None),)).classes is None
    assert judge_calls((LossCall("nll_loss", 1, "mean", 0.0),)).classes is None
