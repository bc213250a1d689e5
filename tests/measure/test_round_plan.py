"""#21 item 4: `--budget` bounds the time. The plan fits the budget where the minimum allows it,
shrinks (fewer calls per sample, then fewer periods) and says so where the minimum is far over
it, and the planned time is what the rounds then take."""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest

from perfbench.measure.interleave import InterleaveSettings, interleave
from perfbench.measure.round_plan import plan_rounds
from tests.cli.test_cli_run import perfbench


def test_a_plan_inside_the_budget_is_left_alone():
    s = InterleaveSettings(budget_s=3.0)
    plan = plan_rounds({"a": 1e-3, "b": 1e-3}, {"a": 2, "b": 2}, s, 2)
    assert plan.note == "" and plan.numbers == {"a": 2, "b": 2}
    assert plan.periods == int(3.0 / (2 * 2e-3 * 2)) and plan.planned_s <= 3.0


def test_fewer_calls_per_sample_first():
    """2 ms calls at 10 per sample: the minimum (5 periods of 6 rounds) is 1.8 s against 0.3 s."""
    s = InterleaveSettings(budget_s=0.3)
    plan = plan_rounds({n: 2e-3 for n in "abc"}, {n: 10 for n in "abc"}, s, 6)
    assert plan.periods == 5 and all(1 <= k < 10 for k in plan.numbers.values())
    assert plan.planned_s <= 2 * 0.3
    assert "fewer calls per sample" in plan.note and "6x the budget" in plan.note


def test_then_fewer_periods_down_to_the_floor_and_it_says_so():
    """0.2 s steps, one call a sample: the minimum is 18 s against a 0.5 s budget."""
    s = InterleaveSettings(budget_s=0.5)
    plan = plan_rounds({n: 0.2 for n in "abc"}, {n: 1 for n in "abc"}, s, 6)
    assert plan.periods == s.floor_periods == 3 and plan.numbers == {n: 1 for n in "abc"}
    assert plan.planned_s == pytest.approx(3 * 6 * 0.6)
    assert "3 periods instead of 5 (a wider interval)" in plan.note
    assert "raise --budget" in plan.note
    assert plan.announce().startswith("timing 3 arms: 18 rounds, about 10.8 s of timed work (")


def test_no_sample_shorter_than_a_tenth_of_min_sample_s():
    s = InterleaveSettings(budget_s=1e-4, min_sample_s=1e-3)
    plan = plan_rounds({"a": 1e-6, "b": 1e-6}, {"a": 1000, "b": 1000}, s, 2)
    assert plan.numbers == {"a": 100, "b": 100}  # 0.1 ms samples, not 1 µs ones


def test_planned_time_is_the_real_one_with_slow_steps():
    """Real sleeps of 20 ms, a 0.05 s budget: the minimum would be 1 s; the plan's 0.36 s is
    what the rounds take (within 25%)."""
    arms = {n: (lambda: time.sleep(0.02)) for n in ("a", "b")}
    plans = []
    s = InterleaveSettings(budget_s=0.05, warmup_s=0.0, min_warmup=1)
    res = interleave(arms, settings=s, on_plan=plans.append)
    assert len(plans) == 1 and plans[0].note and res.plan_note == plans[0].note
    assert res.rounds == plans[0].rounds == 3 * 2
    assert res.timed_s == pytest.approx(res.planned_s, rel=0.25)


SLOW = """
import time
import torch
from torch import nn

SWEEP = {"backend": ["eager", "fx"], "batch_size": [2], "threads": [1]}

def build_model():
    return nn.Linear(8, 2)

def make_batch(batch_size):
    return torch.randn(batch_size, 8)

def forward(model, batch):
    time.sleep(0.02)
    return model(batch)
"""


def test_budget_bounds_a_slow_sweep_end_to_end(write_scenario, tmp_path):
    """Eager, its A/A control and fx, 20 ms steps, --budget 0.02: the minimum of 30 rounds is
    1.8 s against 0.06 s; the group says so up front and times 3 periods (18 rounds), within 25%
    of what it printed."""
    out = tmp_path / "run"
    proc = perfbench("run", str(write_scenario(SLOW)), "--out", str(out), "--budget", "0.02")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = r"\.\.\. timing 3 arms: (\d+) rounds, about ([\d.]+) s of timed work \((.*)\)$"
    announced = re.findall(line, proc.stdout, re.MULTILINE)
    assert len(announced) == 1 and "would take about" in announced[0][2]
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert sorted(df["backend"]) == ["eager", "fx"] and set(df["status"]) == {"ok"}  # none lost
    for extra in df["extra"]:
        inter = json.loads(extra)["interleaved"]
        assert inter["rounds"] == 18 and "3 periods instead of 5" in inter["plan_note"]
        assert inter["timed_s"] == pytest.approx(inter["planned_s"], rel=0.25)


def test_fewer_periods_keep_as_many_as_fit_twice_the_budget():
    """0.1 s steps, two arms (ABBA, 2 rounds a period, 0.4 s): the minimum of 2 s is 2.5x a 0.8 s
    budget; four periods fit in twice the budget."""
    s = InterleaveSettings(budget_s=0.8)
    plan = plan_rounds({"a": 0.1, "b": 0.1}, {"a": 1, "b": 1}, s, 2)
    assert plan.periods == 4 and plan.planned_s == pytest.approx(1.6)
    assert "4 periods instead of 5" in plan.note and "raise --budget" not in plan.note
