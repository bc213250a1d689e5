"""The ladder (check/ladder.py): every rung passes on a healthy tiny scenario, rung 6 checks each
backend through the sweep's own prepare-and-check, a rung that raises fails with the line, and the
shipped scenarios pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perfbench.backends import BACKENDS, Backend, Prepared
from perfbench.check import ladder
from perfbench.check.ladder import CheckReport, run_check
from perfbench.scenario.loading import load_scenario
from tests.check.common import ctx_for

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


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


def test_rung6_checks_as_the_sweep_does(scenario_from, monkeypatch) -> None:
    """Rung 6 runs `workload.prepare_checked`: the backend's own tolerance counts (1% off passes at
    5e-2, as int8 does in a sweep), its teardown runs after each check, failed or not, and what it
    changed is reported."""
    torn_down: list[str] = []

    def loose(model, point, batch, scenario) -> Prepared:  # type: ignore[no-untyped-def]
        prepared = _perturbing_prepare(model, point, batch, scenario)
        prepared.tolerance, prepared.changes, prepared.changes_what = 5e-2, 1, "wrappers"
        return prepared

    for name, prepare in (("loose", loose), ("perturbed", _perturbing_prepare)):
        backend = Backend(
            name, "test only", prepare=prepare, teardown=lambda n=name: torn_down.append(n)
        )
        monkeypatch.setitem(BACKENDS, name, backend)
    calls: list[object] = []
    real = ladder.prepare_checked
    monkeypatch.setattr(
        ladder, "prepare_checked", lambda *a, **k: calls.append(a[1]) or real(*a, **k)
    )
    rung = run_check(scenario_from(), backends=["loose", "perturbed"]).rung(6)
    per = rung.values["backends"]
    assert per["loose"]["status"] == "pass", per["loose"]
    assert 5e-3 < per["loose"]["rel_err"] <= 5e-2 and "<= 0.05" in per["loose"]["detail"]
    assert (per["loose"]["changes"], per["loose"]["changes_what"]) == (1, "wrappers")
    assert per["perturbed"]["status"] == "fail"
    assert torn_down == ["loose", "perturbed"]
    assert [p.backend for p in calls] == ["loose", "perturbed"]  # type: ignore[attr-defined]
    assert all(p.threads == torch.get_num_threads() for p in calls)  # type: ignore[attr-defined]


def test_rung6_compile_agrees_with_eager(write_scenario) -> None:
    from tests.conftest import TINY_MLP

    report = CheckReport(scenario="x", seed=0, backends=["compile"])
    sc = load_scenario(write_scenario(TINY_MLP))
    from perfbench.check.ladder import rung_backends

    report.rungs.append(rung_backends(ctx_for(sc, backends=("compile",))))
    values = report.rung(6).values["backends"]["compile"]
    assert values["status"] == "pass", values
    assert values["rel_err"] <= 1e-4


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
