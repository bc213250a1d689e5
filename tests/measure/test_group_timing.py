"""A comparison group measured interleaved in-process (`perfbench.measure.group_timing`), with tiny models
and test-only backends: verdict columns, the A/A control, `no change`, an arm failing alone in
the rounds or in its build, the diagnoses, one shared DataLoader, per-arm peak memory, and the
thread count while timed."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from perfbench.backends import BACKENDS
from perfbench.backends.base import Backend, Prepared
from perfbench.backends.compile_facts import recompiles
from perfbench.measure import group_timing
from perfbench.measure.group import GroupTask, measure_group
from perfbench.measure.group_timing import measure_interleaved
from perfbench.measure.point import PointTask
from perfbench.measure.timing import TimingSettings
from perfbench.results.axes import Point
from perfbench.results.row import Row
from perfbench.scenario.loading import load_scenario
from perfbench.stats.verdict import NO_CHANGE
from tests.conftest import TINY_MLP

FAST = TimingSettings(budget_s=0.05, warmup_s=0.01, min_warmup=1, min_reps=3, max_reps=50)
VERDICTS = {"faster", "slower", "same", "inconclusive"}
# no Linear + activation and no BatchNorm: the fx passes find nothing to rewrite
PLAIN_LINEAR = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(16, 8), nn.Linear(8, 4))

def make_batch(batch_size):
    return torch.randn(batch_size, 16)
"""


def tasks_for(
    path: Path, backends: list[str], budget_s: float = FAST.budget_s, **axes: Any
) -> tuple[PointTask, ...]:
    axes = {"threads": 1, "batch_size": 4, **axes}
    timing = replace(FAST, budget_s=budget_s)
    return tuple(
        PointTask(str(path), Point(backend=b, **axes), i, 0, timing, str(path.parent))
        for i, b in enumerate(backends)
    )


def run_group(
    path: Path,
    backends: list[str],
    control: bool = True,
    family: int = 1,
    budget_s: float = FAST.budget_s,
    **axes: Any,
) -> dict[str, Row]:
    """Rows by backend; every point gets exactly one row."""
    rows: list[Row] = []
    tasks = tasks_for(path, backends, budget_s, **axes)
    measure_interleaved(load_scenario(path), tasks, control, family, rows.append, lambda *_: None)
    assert sorted(r.point_id for r in rows) == list(range(len(backends)))
    return {r.backend: r for r in rows}


def register(monkeypatch: pytest.MonkeyPatch, name: str, prepare: Any) -> None:
    monkeypatch.setitem(BACKENDS, name, Backend(name, f"test-only: {name}", prepare))


class Calls(torch.nn.Module):
    """The eager model run through a different but equivalent path, calling `hook` first."""

    def __init__(self, model: torch.nn.Module, hook: Any = None) -> None:
        super().__init__()
        self.inner, self.hook = model, hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hook is not None:
            self.hook()
        return self.inner(x)


def copy_backend(changes: int | None = 1, hook: Any = None, **prepared: Any) -> Any:
    def prepare(model, point, batch, scenario) -> Prepared:
        return Prepared(model=Calls(model, hook), changes=changes, **prepared)

    return prepare


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """`timed["now"]` turns True when the timed rounds start (the contention probe's first
    snapshot is taken right before the first timed round)."""
    state = {"now": False}
    real = group_timing.snapshot

    def snapshot():
        state["now"] = True
        return real()

    monkeypatch.setattr(group_timing, "snapshot", snapshot)
    return state


def test_backend_gets_verdict_columns_and_eager_the_control(write_scenario, monkeypatch):
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(TINY_MLP), ["eager", "copy"])
    eager, copy = rows["eager"], rows["copy"]
    assert eager.status == copy.status == "ok", (eager.error, copy.error)
    assert copy.verdict in VERDICTS
    assert copy.speedup_ci_low <= copy.speedup_vs_eager <= copy.speedup_ci_high
    assert copy.verdict_reason.startswith("copy ")
    assert copy.extra["speedup_ci_level"] == pytest.approx(0.95)
    # eager: no verdict of its own, the control's interval instead
    assert eager.verdict in ("", None) and eager.speedup_vs_eager is None
    aa = eager.extra["aa_control"]
    assert aa["ci_low"] <= aa["speedup"] <= aa["ci_high"]
    assert eager.verdict_reason.startswith(("A/A control", "too noisy"))
    # each arm keeps its own measurement, from the same rounds
    inter = copy.extra["interleaved"]
    assert inter == eager.extra["interleaved"] and len(inter["arms"]) == 3
    assert copy.reps == eager.reps == inter["rounds"] >= 3 * inter["period"]
    # under the minimum of five periods only when the minimum was far over budget, and said so
    assert inter["rounds"] >= 5 * inter["period"] or "the budget" in inter["plan_note"]
    assert copy.median_ms > 0 and copy.cold_start_s > 0
    assert copy.extra["recompiled_during_timing"] is False
    assert isinstance(copy.contended, bool) and "others_cores" in copy.extra


def test_no_control_gives_no_aa_interval(write_scenario, monkeypatch):
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(TINY_MLP), ["eager", "copy"], control=False)
    assert "aa_control" not in rows["eager"].extra and not rows["eager"].verdict_reason
    assert len(rows["copy"].extra["interleaved"]["arms"]) == 2
    assert rows["copy"].verdict in VERDICTS and not rows["copy"].extra["too_noisy"]


def test_family_size_widens_the_interval(write_scenario, monkeypatch):
    """One comparison of a sweep of 20 is tested at alpha / 20 (Holm across the sweep)."""
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(TINY_MLP), ["eager", "copy"], control=False, family=20)
    assert rows["copy"].extra["speedup_ci_level"] == pytest.approx(1 - 0.05 / 20)


def test_backend_that_changed_nothing_is_no_change(write_scenario, monkeypatch):
    register(monkeypatch, "same", copy_backend(changes=0))
    rows = run_group(write_scenario(PLAIN_LINEAR), ["eager", "fx", "same"])
    fx, same = rows["fx"], rows["same"]
    assert fx.status == "ok", fx.error
    assert fx.extra["changes"] == 0
    assert fx.verdict == same.verdict == "no change"
    assert (
        fx.verdict_reason == "fx no change: the fx passes made no rewrite: the model ran unchanged"
    )
    assert same.verdict_reason == "same no change: same changed nothing: the eager model ran"
    # the interval is still measured and shown
    assert fx.speedup_ci_low <= fx.speedup_vs_eager <= fx.speedup_ci_high


def test_arm_whose_step_raises_in_the_rounds_fails_alone(write_scenario, monkeypatch, timed):
    def hook() -> None:
        if timed["now"]:
            raise RuntimeError("kernel fell over")

    register(monkeypatch, "copy", copy_backend())
    register(monkeypatch, "flaky", copy_backend(hook=hook))
    rows = run_group(write_scenario(TINY_MLP), ["eager", "flaky", "copy"])
    flaky = rows["flaky"]
    assert flaky.status == "failed" and "RuntimeError: kernel fell over" in flaky.error
    assert flaky.median_ms is None and not flaky.verdict
    assert rows["eager"].status == rows["copy"].status == "ok"
    assert rows["copy"].verdict in VERDICTS
    assert "aa_control" in rows["eager"].extra
    # the rounds ran again without it
    assert "flaky_bs4_t1_amp-off_infer_cpu" not in rows["copy"].extra["interleaved"]["arms"]


def test_arm_that_changes_the_thread_count_fails_alone(write_scenario, monkeypatch, timed):
    def hook() -> None:
        if timed["now"]:
            torch.set_num_threads(2)

    register(monkeypatch, "copy", copy_backend())
    register(monkeypatch, "greedy", copy_backend(hook=hook))
    rows = run_group(write_scenario(TINY_MLP), ["eager", "greedy", "copy"])
    assert rows["greedy"].status == "failed"
    assert "changed torch's thread count from 1 to 2" in rows["greedy"].error
    assert rows["eager"].status == rows["copy"].status == "ok"
    assert rows["copy"].verdict in VERDICTS


def test_arm_that_fails_to_build_fails_alone(write_scenario, monkeypatch):
    def broken(model, point, batch, scenario) -> Prepared:
        raise RuntimeError("no kernel for this shape")

    register(monkeypatch, "copy", copy_backend())
    register(monkeypatch, "broken", broken)
    rows = run_group(write_scenario(TINY_MLP), ["eager", "broken", "copy"])
    assert rows["broken"].status == "failed"
    assert "RuntimeError: no kernel for this shape" in rows["broken"].error
    assert rows["copy"].status == "ok" and rows["copy"].verdict in VERDICTS
    assert "aa_control" in rows["eager"].extra


IN_PLACE = TINY_MLP + "\ndef forward(model, batch):\n    batch.mul_(2)\n    return model(batch)\n"
NOISY = TINY_MLP + (
    "\ndef forward(model, batch):\n    out = model(batch)\n    return out + torch.randn_like(out)\n"
)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (IN_PLACE, "eager: forward changes its input in place: batch changed by relative error"),
        (NOISY, "eager: the model is not deterministic in eval mode: two eager forwards"),
    ],
)
@pytest.mark.parametrize("control", [True, False])
def test_model_fault_fails_the_group_once_with_the_diagnosis(
    write_scenario, monkeypatch, source, message, control
):
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(source), ["eager", "copy"], control=control)
    for row in rows.values():
        assert row.status == "failed"
        assert row.error.startswith(message), row.error
        assert "correctness check failed" not in row.error


@pytest.mark.parametrize("backends", [["eager"], ["copy"]])
def test_diagnosis_also_names_the_culprit_outside_an_interleaved_group(
    write_scenario, monkeypatch, backends
):
    """eager alone with --no-control, or a backend alone (a point's rerun command), is timed
    on its own: the diagnosis must still come before the correctness check."""
    register(monkeypatch, "copy", copy_backend())
    path = write_scenario(IN_PLACE)
    task = GroupTask(str(path), "g", tasks_for(path, backends), control=False)
    rows: list[Row] = []
    measure_group(load_scenario(path), task, rows.append)
    assert len(rows) == 1 and rows[0].status == "failed"
    assert "forward changes its input in place: batch" in rows[0].error
    assert "correctness check failed" not in rows[0].error


WITH_LOADER = TINY_MLP + (
    """
class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 256
    def __getitem__(self, i):
        return torch.full((16,), float(i % 7))

def make_dataset():
    return Items()
"""
)


def children(pid: int) -> int:
    """Live child processes of `pid`, from /proc."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                count += 1
    return count


def test_arms_share_one_dataloader(write_scenario, monkeypatch, timed):
    """While the rounds run, only the first arm's loader has worker processes."""
    seen: list[int] = []

    def hook() -> None:
        if timed["now"] and len(seen) < 20:
            seen.append(children(os.getpid()))

    register(monkeypatch, "counting", copy_backend(hook=hook))
    before = children(os.getpid())
    rows = run_group(write_scenario(WITH_LOADER), ["eager", "counting"], num_workers=2)
    assert rows["eager"].status == rows["counting"].status == "ok"
    assert seen and set(seen) == {before + 2}, (before, seen)
    for row in rows.values():
        assert 0 <= row.data_wait_frac <= 1  # each arm counts its own wait
    assert children(os.getpid()) == before  # every loader's workers are gone afterwards


def test_peak_memory_is_measured_per_arm(write_scenario, monkeypatch):
    """An arm holding 64 MB shows it; the arm built after it does not inherit it."""

    def fat(model, point, batch, scenario) -> Prepared:
        wrapper = Calls(model)
        wrapper.register_buffer("ballast", torch.ones(16_000_000))  # 64 MB, touched
        return Prepared(model=wrapper, changes=1)

    register(monkeypatch, "fat", fat)
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(TINY_MLP), ["eager", "fat", "copy"])
    assert all(r.status == "ok" for r in rows.values()), rows
    assert rows["fat"].peak_mem_bytes >= 64e6
    assert rows["eager"].peak_mem_bytes < 32e6 and rows["copy"].peak_mem_bytes < 32e6
    assert rows["fat"].extra["peak_mem_kind"] == "cpu_rss_growth"


@pytest.mark.parametrize("threads", [1, 2])
def test_steps_run_at_the_points_thread_count(write_scenario, monkeypatch, timed, threads):
    """Even when a backend's prepare changed the thread count, every timed step runs at the
    point's threads."""
    seen: set[int] = set()

    def prepare(model, point, batch, scenario) -> Prepared:
        torch.set_num_threads(point.threads + 1)  # e.g. a runtime with its own pool
        return Prepared(
            model=Calls(model, lambda: timed["now"] and seen.add(torch.get_num_threads())),
            changes=1,
        )

    register(monkeypatch, "pool", prepare)
    rows = run_group(write_scenario(TINY_MLP), ["eager", "pool"], threads=threads)
    assert rows["pool"].status == "ok", rows["pool"].error
    assert seen == {threads}


def test_eager_that_fails_to_build_leaves_the_others_without_verdict(write_scenario, monkeypatch):
    def broken(model, point, batch, scenario) -> Prepared:
        raise RuntimeError("eager is broken today")

    register(monkeypatch, "eager", broken)
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(TINY_MLP), ["eager", "copy"])
    assert rows["eager"].status == "failed" and "eager is broken today" in rows["eager"].error
    assert rows["copy"].status == "ok" and rows["copy"].median_ms > 0
    assert not rows["copy"].verdict and rows["copy"].speedup_vs_eager is None


def test_unexpected_error_still_gives_every_point_one_row(write_scenario, monkeypatch):
    def judge(*args: Any) -> None:
        raise ValueError("the interval code fell over")

    monkeypatch.setattr(group_timing, "judge_arms", judge)
    register(monkeypatch, "copy", copy_backend())
    rows = run_group(write_scenario(TINY_MLP), ["eager", "copy"])
    for row in rows.values():
        assert row.status == "failed"
        assert "ValueError: the interval code fell over" in row.error


@pytest.mark.slow
@pytest.mark.parametrize(
    "backends",
    [
        ["eager", "compile", "compile-freezing"],
        ["eager", "compile-freezing", "compile"],
        ["eager", "compile-max-autotune", "compile"],
    ],
)
def test_two_compiled_arms_keep_their_own_compiled_code(write_scenario, backends):
    """No arm's prepare throws away another's compiled code: nothing compiles after the builds
    (a freezing arm recompiled then would run without freezing), and each arm's compile facts
    are its own (no false 'recompiled')."""
    rows = run_group(write_scenario(TINY_MLP), backends)
    for name in backends[1:]:
        row = rows[name]
        assert row.status == "ok", row.error
        extra = row.extra
        assert extra["recompiled_during_timing"] is False
        assert extra["compiled_after_build"] == 0, (name, extra.get("compile_ids"))
        assert extra["compiles"] == 1 and extra["recompiles"] == 0, (name, extra["compile_ids"])
        assert extra["graphs"] == 1 and row.verdict
    if "compile-freezing" in rows:
        assert rows["compile-freezing"].extra["frozen_constants"] > 0


@pytest.mark.slow
def test_a_recompile_inside_the_rounds_is_flagged(write_scenario, monkeypatch):
    """The detector itself: dynamo reset as the rounds start makes the compiled arm recompile
    inside them."""
    real = group_timing.snapshot
    calls = {"n": 0}

    def snapshot():
        calls["n"] += 1
        if calls["n"] == 1:  # the first snapshot is taken right before the first timed round
            torch._dynamo.reset()
        return real()

    monkeypatch.setattr(group_timing, "snapshot", snapshot)
    rows = run_group(write_scenario(TINY_MLP), ["eager", "compile"], control=False)
    assert rows["compile"].status == "ok", rows["compile"].error
    assert rows["compile"].extra["recompiled_during_timing"] is True


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=12), st.randoms())
def test_recompiles_counts_repeat_attempts_of_a_frame(pairs, rnd) -> None:
    """Recompiles are a frame's distinct attempts less one, whatever attempt number the frame's
    first compile had (a second model of a group starts at `0/1`) and however often an id is
    repeated (a lazily compiled backward)."""
    ids = [f"{frame}/{n}" for frame, n in pairs] * 2
    rnd.shuffle(ids)
    expected = sum(len({n for f, n in pairs if f == frame}) - 1 for frame in {f for f, _ in pairs})
    assert recompiles(ids) == expected
    assert recompiles([f"[{i}]" for i in ids]) == expected


def test_every_backend_count_has_a_no_change_reason() -> None:
    """Each `changes_what` a backend can report as 0 has its own reason (the keys once drifted
    from the backends' words, and fx's zero rewrites got only the generic reason)."""
    import re

    import perfbench.backends as pkg

    always_one = {  # these backends report changes=1 whenever they prepare at all
        "graph exported and run by ONNX Runtime",
        "model compiled ahead of time into an AOTInductor package",
    }
    said = set()
    for path in Path(pkg.__file__).parent.glob("*.py"):
        said |= set(re.findall(r'changes_what\s*=\s*"([^"]+)"', path.read_text()))
    assert said - always_one and not (said - always_one) - set(NO_CHANGE), said


def test_work_after_the_rounds_is_blamed_on_its_own_arm(write_scenario, monkeypatch):
    """The flop count and the --profile pass run per arm after the rounds: a hang there must
    be blamed (--timeout) on that arm, not on whichever arm took the last sample."""
    current: list[int] = []
    blamed: dict[int, int] = {}
    real = group_timing._record_arm

    def record(scenario, arm, inter, facts) -> None:
        blamed[arm.task.point_id] = current[-1]
        real(scenario, arm, inter, facts)

    monkeypatch.setattr(group_timing, "_record_arm", record)
    register(monkeypatch, "copy", copy_backend())
    register(monkeypatch, "copy2", copy_backend())
    path = write_scenario(TINY_MLP)
    tasks = tasks_for(path, ["eager", "copy", "copy2"])
    begin = lambda point_id, phase="": current.append(point_id)  # noqa: E731
    measure_interleaved(load_scenario(path), tasks, True, 1, lambda row: None, begin)
    assert blamed == {0: 0, 1: 1, 2: 2}


@pytest.mark.slow
def test_group_timed_beside_busy_processes_is_flagged_contended(write_scenario, monkeypatch):
    """Three busy loops on a 2-core machine take more than the one core a 1-thread group
    leaves free: every arm's row is flagged, with the reason."""
    import os
    import signal
    import subprocess
    import sys

    # detached (reparented away by a shell that exits at once): a burner that is a child of the
    # measuring process would count as its own CPU, as a scenario's DataLoader workers do
    burn = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"
    launch = f"for i in 1 2 3; do {sys.executable} -c '{burn}' >/dev/null 2>&1 & echo $!; done"
    pids = [int(p) for p in subprocess.check_output(["sh", "-c", launch], text=True).split()]
    try:
        register(monkeypatch, "copy", copy_backend())
        rows = run_group(write_scenario(TINY_MLP), ["eager", "copy"], budget_s=0.5)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    for row in rows.values():
        assert row.contended is True, row.extra
        assert "other processes used" in row.extra["contention"]
        assert row.extra["others_cores"] > 1.25
