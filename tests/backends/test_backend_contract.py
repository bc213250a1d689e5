"""What each backend reports about itself (backends/base.py): how many things it changed, the
worker environment it needs, its teardown and whether it touches process-wide state.

`changes` must be counted, not assumed: > 0 on the shipped MLP wherever the backend applies, and
exactly 0 on a model the backend leaves as it is, so a verdict can say "no change" there.
"""

from __future__ import annotations

import dataclasses
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pathlib import Path
from types import SimpleNamespace

import pytest
from torch import nn

from perfbench.backends import BACKENDS, Prepared
from perfbench.backends.triton_backend import worker_env
from perfbench.results.axes import Point
from perfbench.scenario.loading import default_forward, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SCENARIO = SimpleNamespace(forward=default_forward, loss_fn=None)
COMPILE = ("compile", "compile-reduce-overhead", "compile-max-autotune", "compile-freezing")
# what each backend counts; eager has nothing to count
CHANGES_WHAT = {
    "compile": "graphs captured",
    "fx": "rewrites fired",
    "triton": "ops replaced by our kernels",
    "int8": "Linear layers quantized",
    "int8-ao": "Linear layers quantized",
}


def _prepare(name: str, model: nn.Module, batch, scenario=SCENARIO) -> Prepared:  # type: ignore[no-untyped-def]
    point = Point(backend=name, batch_size=2)
    reason = BACKENDS[name].applies(point, scenario)
    if reason is not None:
        pytest.skip(reason)
    try:
        return BACKENDS[name].prepare(model.eval(), point, batch, scenario)
    finally:
        BACKENDS[name].teardown()


@pytest.mark.parametrize("name", list(CHANGES_WHAT))
def test_changes_counted_on_the_shipped_mlp(name: str) -> None:
    scenario = load_scenario(SCENARIOS / "mlp.py")
    torch.manual_seed(0)
    prepared = _prepare(name, scenario.build_model(), scenario.make_batch(2), scenario)
    assert prepared.changes_what == CHANGES_WHAT[name]
    # three Linear layers, two Linear+ReLU pairs, one graph: each backend's own count
    expected = {"compile": 1, "fx": 2, "triton": 2, "int8": 3, "int8-ao": 3}[name]
    assert prepared.changes == expected, prepared.info


def test_eager_changes_nothing_and_says_the_question_does_not_apply() -> None:
    prepared = _prepare("eager", nn.Linear(4, 4), torch.randn(2, 4))
    assert prepared.changes is None and prepared.changes_what == ""


class OnlyLSTM(nn.Module):
    """dynamo deliberately leaves RNNs to eager: nothing is captured."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def test_compile_captures_no_graph_of_an_lstm() -> None:
    prepared = _prepare("compile", OnlyLSTM(), torch.randn(2, 3, 4))
    assert prepared.changes == 0
    assert prepared.info["graphs"] == 0 and prepared.info["graph_breaks"] == 0


class LinearSubclass(nn.Linear):
    """torch.ao's quantize_dynamic matches module types exactly: a subclass stays float32."""


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("fx", nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))),  # no ReLU/GELU, no BN
        ("triton", nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))),
        ("int8-ao", nn.Sequential(LinearSubclass(4, 8), nn.ReLU())),
    ],
    ids=["fx", "triton", "int8-ao"],
)
def test_zero_changes_on_a_model_the_backend_leaves_alone(name: str, model: nn.Module) -> None:
    prepared = _prepare(name, model, torch.randn(2, 4))
    assert prepared.changes == 0, prepared.info
    assert prepared.changes_what == CHANGES_WHAT[name]


def test_compile_backends_reset_dynamo_on_teardown(monkeypatch: pytest.MonkeyPatch) -> None:
    resets: list[int] = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    for name, backend in BACKENDS.items():
        before = len(resets)
        backend.teardown()
        touches = name in COMPILE
        assert backend.process_wide_state is touches, name
        assert len(resets) - before == int(touches), name


def test_group_scope_shares_the_compile_probe_through_the_contract() -> None:
    """The compile backends' graph-break probe is shared per group only inside their
    `group_scope`, entered once per group by the harness however many compile arms it has."""
    from perfbench.backends import compile_variants
    from perfbench.measure.group_sharing import group_scopes

    scopes = {BACKENDS[name].group_scope for name in COMPILE}
    assert scopes == {compile_variants.shared_dynamo}
    assert compile_variants._group_probes.get() is None  # off outside a group
    entered: list[str] = []
    original = compile_variants.shared_dynamo

    def counting() -> object:
        entered.append("x")
        return original()

    names = ["eager", *COMPILE]
    patched = {n: BACKENDS[n] for n in COMPILE}
    try:
        for n in COMPILE:
            BACKENDS[n] = dataclasses.replace(BACKENDS[n], group_scope=counting)
        with group_scopes(names):
            assert compile_variants._group_probes.get() == {}
        assert compile_variants._group_probes.get() is None
    finally:
        BACKENDS.update(patched)
    assert entered == ["x"]


def test_triton_worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert worker_env() == {"TRITON_INTERPRET": "0"}  # the user's choice, kept for the rerun
    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert BACKENDS["triton"].worker_env() == {"TRITON_INTERPRET": "1"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert worker_env() == {}
    assert all(BACKENDS[n].worker_env() == {} for n in BACKENDS if n != "triton")
