"""`perfbench run --repeat N`: repetitions keep their rows apart, merge exactly, run in fresh
executors, and their run-to-run spread is what the rows say."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.execute import runner
from perfbench.execute.events import ProgressEvent, RepetitionStarted
from perfbench.execute.repeat import format_summary, merge_samples, repetition_plan, summarize
from perfbench.plan.run_plan import RunRequest, plan_run
from perfbench.plan.sweep import ConfigError
from perfbench.report.data import results_table, speedup_summary, speedups
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP

SWEEP = TINY_MLP + '\nSWEEP = {"backend": ["eager", "fx"], "batch_size": [4, 8]}\n'


@pytest.fixture
def scenario(write_scenario):  # type: ignore[no-untyped-def]
    return load_scenario(write_scenario(SWEEP))


def test_repetition_plans_shift_point_ids_and_keep_group_ids(scenario) -> None:  # type: ignore[no-untyped-def]
    plan = plan_run(scenario, RunRequest(repeat=3))
    n = len(plan.points)
    reps = [repetition_plan(plan, k) for k in range(3)]
    ids = [p.point_id for rep in reps for p in rep.points]
    assert ids == list(range(3 * n))  # distinct everywhere: logs and traces are named by id
    for rep in reps:
        assert [g.group_id for g in rep.groups] == [g.group_id for g in plan.groups]
        assert [p.point for p in rep.points] == [p.point for p in plan.points]
        assert {p.point_id for g in rep.groups for p in g.points} == {
            p.point_id for p in rep.points
        }
        assert "--repeat" not in rep.points[0].command  # a rerun measures one point once
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        repetition_plan(plan, 3)
    with pytest.raises(ConfigError, match="--repeat must be >= 1"):
        plan_run(scenario, RunRequest(repeat=0))


def _row(backend: str, repeat: int, times_ms: list[float], **columns: Any) -> Row:
    values: dict[str, Any] = {"batch_size": 8, **columns}
    return Row(
        point_id=repeat * 2 + (backend != "eager"),
        backend=backend,
        threads=1,
        amp="off",
        mode="infer",
        device="cpu",
        group_id="batch_size=8",
        repeat=repeat,
        status="ok",
        median_ms=statistics.median(times_ms),
        timer="perf_counter",
        times_ms=times_ms,
        **values,
    )


samples = st.lists(st.floats(0.01, 100.0), min_size=1, max_size=30)


@settings(max_examples=50, deadline=None)
@given(runs=st.lists(samples, min_size=1, max_size=5))
def test_merge_concatenates_raw_samples_exactly(runs: list[list[float]]) -> None:
    """Measurement.merge's rule: the merged samples are every repetition's samples, in order."""
    merged = merge_samples([_row("eager", k, t) for k, t in enumerate(runs)])
    assert merged is not None
    flat = [t for run in runs for t in run]
    assert merged.times_s == pytest.approx([t / 1e3 for t in flat])
    assert merged.median == pytest.approx(statistics.median(flat) / 1e3)


def test_merge_leaves_out_points_that_are_not_ok() -> None:
    rows = [_row("eager", 0, [1.0, 2.0]), _row("eager", 1, [50.0])]
    rows[1].status = "failed"
    merged = merge_samples(rows)
    assert merged is not None and len(merged.times_s) == 2
    rows[0].status = "timeout"
    assert merge_samples(rows) is None


def test_summary_spread_and_speedups() -> None:
    rows = [
        _row("eager", 0, [10.0, 10.2]),
        _row("fx", 0, [8.0], speedup_vs_eager=1.25, verdict="faster"),
        _row("eager", 1, [11.0, 11.2]),
        _row("fx", 1, [9.0], speedup_vs_eager=1.20, verdict="faster"),
        _row("eager", 2, [10.6]),
        _row("fx", 2, [9.0]),
    ]
    rows[5].status, rows[5].verdict = "failed", ""
    skipped = _row("eager", 0, [1.0], batch_size=64)
    skipped.status = "skipped"
    summary = summarize([*rows, skipped], 3)
    assert summary["count"] == 3 and summary["repetitions_written"] == 3
    eager, fx = summary["points"]  # the skipped point never ran: not summarized
    assert eager["medians_ms"] == pytest.approx([10.1, 11.1, 10.6])
    assert eager["median_ms"] == pytest.approx(10.6)
    assert (eager["min_ms"], eager["max_ms"]) == pytest.approx((10.1, 11.1))
    assert eager["range"] == pytest.approx(1.0 / 10.6)
    assert eager["merged"]["samples"] == 5
    assert fx["statuses"] == ["ok", "ok", "failed"] and fx["ok"] == 2
    assert (fx["speedup_min"], fx["speedup_max"]) == pytest.approx((1.20, 1.25))
    assert fx["speedup_geomean"] == pytest.approx(math.sqrt(1.25 * 1.20))
    lines = format_summary(summary)
    assert "over 3 repetitions" in lines[0]
    assert "range 9.4%" in lines[1]
    assert "ok in 2 of 3" in lines[2] and "1.22× (1.20–1.25; 2 faster, 1 no verdict)" in lines[2]


def test_report_pairs_within_a_repetition_and_counts_a_setting_once() -> None:
    rows = [
        _row("eager", 0, [10.0]),
        _row("fx", 0, [8.0], speedup_vs_eager=1.25, verdict="faster"),
        _row("eager", 1, [20.0]),
        _row("fx", 1, [16.0], speedup_vs_eager=1.25, verdict="faster"),
    ]
    df = results_table(rows)
    assert list(df["label"].str.split().str[-1]) == ["rep0", "rep0", "rep1", "rep1"]
    sp = speedups(df)
    assert list(sp["eager_ms"]) == [10.0, 20.0]  # each with eager of its own repetition
    (summary,) = speedup_summary(sp)
    assert summary["n"] == 1 and summary["verdicts"] == "2 faster over 2 repetitions"
    one = results_table(rows[:2])
    assert not one["label"].str.contains("rep").any()  # a run without --repeat is unchanged


class FakeExecutor:
    """Writes an ok row per point with fixed times; records which instance ran what."""

    made: ClassVar[list[FakeExecutor]] = []

    def __init__(self) -> None:
        self.name, self.ran, self.closed = "fake", [], 0
        FakeExecutor.made.append(self)

    def run_groups(self, groups, plan, run_dir, record, progress) -> None:  # type: ignore[no-untyped-def]
        for group in groups:
            for p in group.points:
                self.ran.append(p.point_id)
                times = [1.0 + 0.1 * (len(FakeExecutor.made))] * 3
                row = Row.for_point(p.point_id, p.point, group_id=group.group_id, status="ok")
                row.update(median_ms=times[0], times_ms=times)
                record(row)

    def describe(self) -> dict[str, Any]:
        return {"name": "fake"}

    def close(self) -> None:
        self.closed += 1


def test_runner_uses_a_fresh_executor_per_repetition(
    scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    FakeExecutor.made = []
    monkeypatch.setattr(runner, "make_executor", lambda plan, path=None: FakeExecutor())
    plan = plan_run(scenario, RunRequest(repeat=3))
    run = RunDir.create(tmp_path / "run")
    events: list[ProgressEvent] = []
    counts = runner.run_sweep(scenario, plan, run, events.append, FakeExecutor())
    n = len(plan.points)
    assert counts["ok"] == 3 * n
    assert [sorted(e.ran) for e in FakeExecutor.made] == [
        list(range(k * n, (k + 1) * n)) for k in range(3)
    ]
    assert all(e.closed >= 1 for e in FakeExecutor.made)
    assert [e.number for e in events if isinstance(e, RepetitionStarted)] == [1, 2, 3]
    rows = run.read_rows()
    assert [r.repeat for r in rows] == [k for k in range(3) for _ in range(n)]
    meta = run.read_meta()
    assert meta["points_total"] == 3 * n and meta["repeat"]["count"] == 3
    first = meta["repeat"]["points"][0]
    assert first["medians_ms"] == pytest.approx([1.1, 1.2, 1.3])
    assert first["merged"]["samples"] == 9


@pytest.mark.slow
def test_repeat_end_to_end(write_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_scenario(TINY_MLP + '\nSWEEP = {"backend": ["eager", "fx"], "batch_size": [8]}\n')
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "perfbench.cli.main", "run", str(path), "--out", str(out)),
            *("--budget", "0.05", "--repeat", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert list(df["repeat"]) == [0, 0, 1, 1] and df["point_id"].is_unique
    assert df["group_id"].nunique() == 1
    assert "repetition 2/2 (fresh workers)" in proc.stdout
    assert "run-to-run spread over 2 repetitions" in proc.stdout
    meta = json.loads((out / "run.json").read_text())
    assert [p["backend"] for p in meta["repeat"]["points"]] == ["eager", "fx"]
    assert all(p["ok"] == 2 for p in meta["repeat"]["points"])
    assert "rep1" in (out / "report.html").read_text(encoding="utf-8")


def test_summary_combines_repetitions_as_a_run_combines_processes() -> None:
    """One number means one thing: the repetitions' estimates go through two_level.combine."""
    from perfbench.stats.speedup import PairedEstimate
    from perfbench.stats.two_level import combine, estimate_record

    ests = [PairedEstimate(v, 0.002, 10, 40) for v in (0.18, 0.22, 0.26)]
    rows = []
    for k, est in enumerate(ests):
        rows.append(_row("eager", k, [10.0]))
        fx = _row("fx", k, [8.0], speedup_vs_eager=math.exp(est.log_speedup), verdict="faster")
        fx.extra["estimate"] = estimate_record(est)
        rows.append(fx)
    fx_summary = summarize(rows, 3)["points"][1]
    got = fx_summary["speedup_combined"]
    low, high = combine(ests).interval(0.95)
    assert got["speedup"] == pytest.approx(math.exp(0.22))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high))
    assert got["method"] == "between" and got["df"] == 2
    assert "combined 1.25× (95% CI" in format_summary(summarize(rows, 3))[2]
