"""The advisor's `try:` commands carry only what differs from the defaults, and still rerun
exactly: the short command and the recorded one plan to the same points and settings."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from perfbench.cli.main import build_parser, run_request
from perfbench.plan.rerun_defaults import scenario_defaults, shorten
from perfbench.plan.run_plan import RunPlan, RunRequest, plan_run
from perfbench.scenario.loading import load_scenario

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "scenarios" / "mlp.py"


def _plan(command: str) -> RunPlan:
    argv = shlex.split(command)
    assert argv[:2] == ["perfbench", "run"], command
    args = build_parser("run").parse_args(argv[1:])
    return plan_run(load_scenario(args.scenario), run_request(args, argv[1:]), environ={})


def _resolved(plan: RunPlan) -> dict[str, Any]:
    """Everything a rerun resolves to (not how it was spelled: argv and the command texts)."""
    return {
        "points": [(p.point, p.skip_reason) for p in plan.points],
        "timing": plan.timing,
        "seed": plan.seed,
        "timeout": plan.timeout_s,
        "env": dict(plan.worker_env),
        "profiling": plan.profiling,
        "control": plan.control,
        "rerun_args": plan.rerun_args,
    }


@pytest.mark.parametrize(
    "request_",
    [
        RunRequest(sets=("backend=eager,compile", "batch_size=8,64"), budget_s=0.3),
        RunRequest(sets=("amp=bf16", "mode=train"), settings=("min_reps=11",), seed=3),
        RunRequest(sets=("batch_size=8",), profile=True, control=False, timeout_s=30.0),
    ],
)
def test_short_rerun_plans_the_same_point_and_settings(request_: RunRequest) -> None:
    scenario = load_scenario(MLP)
    plan = plan_run(scenario, request_, environ={})
    defaults = scenario_defaults(scenario)
    for planned in plan.points:
        full, short = planned.command, shorten(planned.command, defaults)
        assert len(short) < len(full) - 150, short  # ~440 characters before, today's defaults gone
        assert "--setting warmup_s" not in short and "--set pin_memory" not in short
        assert "--set threads=" in short  # its default is the machine's core count: never dropped
        assert _resolved(_plan(short)) == _resolved(_plan(full)), (full, short)


def test_non_default_values_are_kept() -> None:
    command = (
        "perfbench run s.py --set backend=compile --set amp=bf16 --set threads=1 --budget 0.3 "
        "--setting min_reps=11 --setting max_reps=10000 --seed 0 --profile"
    )
    sweep = {"backend": ["eager"], "amp": ["off"], "threads": [1]}
    assert shorten(command, sweep) == (
        "perfbench run s.py --set backend=compile --set amp=bf16 --set threads=1 --budget 0.3 "
        "--setting min_reps=11 --profile"
    )


def test_without_recorded_defaults_every_axis_is_kept() -> None:
    """An older run.json records no scenario sweep: axes cannot be vouched for, so all stay."""
    command = "perfbench run s.py --set amp=off --set pin_memory=false --budget 2.0 --seed 0"
    assert shorten(command, None) == "perfbench run s.py --set amp=off --set pin_memory=false"
    assert shorten("perfbench run 's.py", None) == "perfbench run 's.py"  # unbalanced: as is
