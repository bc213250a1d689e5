"""The run plan: sweep and settings layering, comparison groups, worker environment, and rerun
commands that parse back into the same point with the same settings (rule 6)."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.backends import BACKENDS
from perfbench.backends.eager import BACKEND as EAGER
from perfbench.cli.main import build_parser, run_request
from perfbench.measure.timing import TimingSettings
from perfbench.plan.run_plan import (
    TIMING_KEYS,
    PlannedPoint,
    RunRequest,
    comparison_groups,
    group_id,
    plan_run,
    worker_env,
)
from perfbench.plan.sweep import ConfigError, expand, resolve_sweep
from perfbench.results.axes import AXES, Amp, Mode
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP


@pytest.fixture
def scenario(write_scenario: Callable[..., Path]):
    return load_scenario(write_scenario(TINY_MLP + "\nSWEEP = {'batch_size': [1, 2, 3]}\n"))


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sweep_layers_scenario_then_config_then_set(scenario, tmp_path: Path) -> None:
    config = _config(tmp_path, '[sweep]\nbatch_size = [4, 5]\nmode = ["infer", "train"]\n')
    plan = plan_run(scenario, RunRequest(config=config))
    assert plan.sweep["batch_size"] == (4, 5) and plan.sweep["mode"] == (Mode.INFER, Mode.TRAIN)
    plan = plan_run(scenario, RunRequest(config=config, sets=("batch_size=6",)))
    assert plan.sweep["batch_size"] == (6,) and len(plan.points) == 2
    assert plan_run(scenario, RunRequest()).sweep["batch_size"] == (1, 2, 3)


def test_settings_layers_config_then_setting_then_flags(scenario, tmp_path: Path) -> None:
    config = _config(tmp_path, "[settings]\nbudget_s = 1\nmin_reps = 9\nseed = 4\ntimeout_s = 30\n")
    plan = plan_run(scenario, RunRequest(config=config))
    assert plan.timing == TimingSettings(budget_s=1.0, min_reps=9)
    assert isinstance(plan.timing.budget_s, float)  # TOML's 1 reads as the float it means
    assert (plan.seed, plan.timeout_s) == (4, 30.0)
    request = RunRequest(config=config, settings=("min_reps=11", "budget_s=3"), budget_s=0.5)
    plan = plan_run(scenario, request)
    assert (plan.timing.min_reps, plan.timing.budget_s) == (11, 0.5)  # --budget wins
    assert plan.settings_record()["timeout_s"] == 30.0


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest(settings=("min_reps",)), "--setting expects KEY=VALUE"),
        (RunRequest(settings=("budget=1",)), "unknown key(s) ['budget']"),
        (RunRequest(settings=("min_reps=2.5",)), "min_reps must be an integer, got '2.5'"),
        (RunRequest(settings=("target_ci=tight",)), "target_ci must be a number"),
        (RunRequest(budget_s=0.0), "budget must be > 0 seconds"),
        (RunRequest(timeout_s=-1.0), "--timeout must be > 0 seconds"),
        (RunRequest(native=True), "--native only applies with --flamegraph"),
        (RunRequest(sets=("amp=fp8",)), "off, bf16, fp16"),
    ],
)
def test_usage_errors(scenario, request_: RunRequest, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        plan_run(scenario, request_)
    assert message in str(err.value)


def test_config_with_a_float_for_an_integer_setting_names_the_file(scenario, tmp_path) -> None:
    config = _config(tmp_path, "[settings]\nmax_reps = 10.5\n")
    with pytest.raises(ConfigError, match=r"sweep\.toml \[settings\]: max_reps must be an integer"):
        plan_run(scenario, RunRequest(config=config))


def test_points_carry_skip_reasons_and_ids_in_run_order(scenario) -> None:
    plan = plan_run(scenario, RunRequest(sets=("amp=off,fp16", "device=cpu")))
    assert [p.point_id for p in plan.points] == list(range(6))
    reasons = {(p.point.batch_size, p.point.amp): p.skip_reason for p in plan.points}
    assert reasons[(1, Amp.OFF)] is None
    assert "fp16 autocast on CPU" in (reasons[(1, Amp.FP16)] or "")


def _parse_rerun(command: str) -> tuple[dict[str, str], RunRequest]:
    """A recorded rerun command as a shell would run it: leading KEY=V assignments, then argv."""
    words = shlex.split(command)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[:2] == ["perfbench", "run"]
    return env, run_request(build_parser().parse_args(words[1:]), words[1:])


def test_rerun_command_reproduces_the_point_and_its_settings(scenario, tmp_path) -> None:
    config = _config(
        tmp_path,
        "[sweep]\nbackend = ['eager', 'compile']\n"
        "[settings]\nbudget_s = 0.123456789\nmin_reps = 9\ntarget_ci = 0.02\nseed = 7\n",
    )
    plan = plan_run(scenario, RunRequest(config=config, timeout_s=60.0, nvtx=True))
    for planned in plan.points:
        env, request = _parse_rerun(planned.command)
        assert request.config is None and str(config) not in planned.command
        again = plan_run(scenario, request)
        assert [p.point for p in again.points] == [planned.point]
        assert again.timing == plan.timing and again.timing.budget_s == 0.123456789
        assert (again.seed, again.timeout_s) == (7, 60.0)
        assert again.profiling == plan.profiling  # --nvtx wraps the timed step: carried
        assert again.points[0].command == planned.command  # a fixed point
        assert env == dict(plan.worker_env)


def test_rerun_command_profiles_only_where_the_run_did(scenario) -> None:
    plan = plan_run(scenario, RunRequest(profile_only=("batch_size=2",)))
    profiled = {p.point.batch_size: "--profile" in p.command.split() for p in plan.points}
    assert profiled == {1: False, 2: True, 3: False}


def test_worker_env_comes_from_the_backends_and_user_values_win(monkeypatch) -> None:
    needs = dataclasses.replace(EAGER, name="needs-env", worker_env=lambda: {"PB_TEST": "1"})
    clash = dataclasses.replace(EAGER, name="clash-env", worker_env=lambda: {"PB_TEST": "2"})
    monkeypatch.setitem(BACKENDS, needs.name, needs)
    monkeypatch.setitem(BACKENDS, clash.name, clash)
    assert worker_env(["eager", "needs-env"], {}) == {"PB_TEST": "1"}
    assert worker_env(["eager", "needs-env"], {"PB_TEST": "0"}) == {"PB_TEST": "0"}
    assert worker_env(["eager"], {"PB_TEST": "0"}) == {}
    with pytest.raises(ConfigError, match="backends needs-env and clash-env need different"):
        worker_env(["needs-env", "clash-env"], {})


def test_planned_worker_env_is_in_every_command_and_not_left_in_this_process(
    scenario, monkeypatch
) -> None:
    needs = dataclasses.replace(EAGER, name="needs-env", worker_env=lambda: {"PB_TEST": "a b"})
    monkeypatch.setitem(BACKENDS, needs.name, needs)
    monkeypatch.delenv("PB_TEST", raising=False)
    plan = plan_run(scenario, RunRequest(sets=("backend=eager,needs-env",)), environ={})
    assert dict(plan.worker_env) == {"PB_TEST": "a b"}
    assert all(p.command.startswith("PB_TEST='a b' perfbench run ") for p in plan.points)
    assert all(_parse_rerun(p.command)[0] == {"PB_TEST": "a b"} for p in plan.points)
    import os

    assert "PB_TEST" not in os.environ  # skip reasons were computed under it, then restored


AXIS_VALUES = {
    "backend": ["eager", "compile", "fx"],
    "batch_size": [1, 2, 8],
    "threads": [1, 2],
    "amp": ["off", "bf16"],
    "pin_memory": [False, True],
    "num_workers": [0, 1],
    "mode": ["infer", "train"],
    "device": ["cpu", "cuda"],
}


@settings(max_examples=60, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            axis: st.lists(st.sampled_from(v), min_size=1, unique=True)
            for axis, v in AXIS_VALUES.items()
        }
    )
)
def test_groups_are_the_points_that_differ_only_in_backend(axes: dict[str, list]) -> None:
    sweep = resolve_sweep([("test", axes)], tuple(AXIS_VALUES["backend"]))
    points = [PlannedPoint(i, p, None, "") for i, p in enumerate(expand(sweep))]
    groups = comparison_groups(points)
    others = [a for a in AXES if a != "backend"]
    n_groups = 1
    for axis in others:
        n_groups *= len(sweep[axis])
    assert len(groups) == n_groups and len({g.group_id for g in groups}) == n_groups
    assert sorted(p.point_id for g in groups for p in g.points) == list(range(len(points)))
    for group in groups:
        assert group.backends == tuple(sweep["backend"])  # one point per backend, sweep order
        first = group.points[0].point
        for planned in group.points:
            assert all(getattr(planned.point, a) == getattr(first, a) for a in others)
            assert group_id(planned.point) == group.group_id
    # the id names the shared values only: the same settings get the same id in any sweep
    assert group_id(points[0].point.replace(backend="fx")) == group_id(points[0].point)
    assert "backend" not in groups[0].group_id


def test_group_id_reads_like_set_values() -> None:
    plan_point = expand(resolve_sweep([("t", {"batch_size": [64], "threads": [2]})], ("eager",)))[0]
    gid = group_id(plan_point)
    assert gid.startswith("batch_size=64,threads=2,amp=off,pin_memory=false,num_workers=0,")
    assert gid.count("=") == len(AXES) - 1


def test_settings_record_holds_every_timing_field(scenario) -> None:
    record = plan_run(scenario, RunRequest(budget_s=0.5)).settings_record()
    assert set(record) == {*TIMING_KEYS, "timeout_s"} and record["budget_s"] == 0.5
