"""Change detection and the gate on synthetic noise of stated size (the acceptance test runs real
sweeps): what is flagged, what never is, and what the gate says."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from perfbench.cli import main as cli
from perfbench.history import findings, gate, store, trend
from perfbench.history.record import resolve_url
from perfbench.history.steps import find_shifts
from tests.history.synth import rec, records

QUIET = 0.03  # a quiet machine's run-to-run noise (log sd)
LOADED = 0.25  # this shared box's, measured while writing test_acceptance.py


def _steps(recs: list) -> list[findings.Step]:
    (history,) = trend.build(recs)
    return findings.find_steps(history)


def test_a_15_percent_slowdown_and_its_recovery_are_found_at_quiet_noise() -> None:
    steps = _steps(records([1, 1, 1.15, 1.15, 1], per=3, sd=QUIET, seed=1))
    assert [
        (s.before.records[0]["commit_time"], s.after.records[0]["commit_time"], s.regression)
        for s in steps
    ] == [
        (1, 2, True),
        (3, 4, False),
    ]
    assert steps[0].low < 1.15 < steps[0].high
    assert steps[0].metric == "eager median"


def test_the_same_15_percent_is_refused_at_this_box_noise() -> None:
    flagged = sum(
        bool(_steps(records([1, 1, 1.15, 1.15, 1], per=2, sd=LOADED, seed=s))) for s in range(20)
    )
    assert flagged <= 2  # below the noise: (almost) never called


def test_no_step_across_unchanged_commits_in_a_hundred_null_histories() -> None:
    flagged = [s for s in range(100) if _steps(records([1] * 6, per=2, sd=LOADED, seed=s))]
    assert len(flagged) <= 2, flagged  # search level 1% family-wise, then 95% per boundary


def test_a_single_record_never_makes_a_step() -> None:
    blocks = [[0.0, 0.01], [0.0, -0.01], [math.log(3)]]  # x3, but one record
    assert find_shifts(blocks, 0.05) == []
    assert find_shifts([*blocks, [math.log(3)]], 0.05)[0].index == 2  # two records: flagged


def test_contended_records_are_not_evidence_but_are_shown(capsys) -> None:
    recs = records([1, 1, 2, 2], per=2, sd=QUIET, seed=3)
    for r in recs[4:]:
        r.update(contended=True, contention_note="other processes used 1.2 cores")
    assert _steps(recs) == []
    (history,) = trend.build(recs)
    lines = "\n".join(cli_lines(history))
    assert "no evidence (contended: other processes used 1.2 cores" in lines


def cli_lines(history: trend.PointHistory) -> list[str]:
    from perfbench.cli.history import format_history

    return format_history(history, findings.summary(history))


def test_a_verdict_flip_from_faster_to_same_is_a_step() -> None:
    recs = [rec(c, "int8", 1.3, verdict="faster") for c in (0, 0, 1, 1)]
    recs += [rec(c, "int8", 1.3, verdict="same") for c in (2, 2, 3, 3)]
    steps = _steps(recs)
    assert [
        (
            s.metric,
            s.before.records[0]["commit_time"],
            s.after.records[0]["commit_time"],
            s.regression,
        )
        for s in steps
    ] == [("verdict of int8", 1, 2, True)]


def _store(tmp_path: Path, recs: list) -> str:
    url = resolve_url(str(tmp_path / "h.sqlite"))
    engine = store.open_store(url)
    run_cols = {c.name for c in store.runs.c} - {"id"}
    for n, r in enumerate(recs):
        run = {k: v for k, v in r.items() if k in run_cols}
        run.update(run_key=f"k{n}", run_path=f"/tmp/r{n}", command="perfbench run s.py")
        store.insert_run(engine, run, [{k: v for k, v in r.items() if k in store.records.c}])
    engine.dispose()
    return url


@pytest.mark.parametrize(
    ("newest", "code"), [(1.3, 1), (1.0, 0), (1.06, 0)], ids=["30% slower", "same", "6% in 10"]
)
def test_fail_on_regression_exits_1_only_beyond_pct(tmp_path: Path, capsys, newest, code) -> None:
    rng = random.Random(7)
    recs = [rec(c, "eager", math.exp(rng.gauss(0, QUIET))) for c in range(4) for _ in range(2)]
    recs += [rec(4, "eager", newest * math.exp(rng.gauss(0, QUIET))) for _ in range(2)]
    url = _store(tmp_path, recs)
    assert cli.main(["history", "s.py", "--history", url, "--fail-on-regression", "10"]) == code
    out = capsys.readouterr().out
    assert "basis: 2 evidence records at" in out and "8 recent comparable records" in out
    assert ("REGRESSION" in out.split("gate")[1]) == bool(code)


def test_the_gate_says_when_history_is_too_short() -> None:
    (history,) = trend.build([rec(0, "eager", 1.0), rec(1, "eager", 2.0)])
    (line,) = gate.gate([history], 5)
    assert not line.failed and "not judged" in line.text


def test_other_machines_are_a_separate_trend_unless_across_machines() -> None:
    recs = records([1, 1], per=2, sd=QUIET, seed=4)
    for r in recs[:2]:
        r["machine"] = "m2"
    assert len(trend.build(recs)) == 2
    (both,) = trend.build(recs, across_machines=True)
    assert "--across-machines" in both.basis and len(both.positions) == 2


def test_status_changes_are_listed_and_point_filters_apply() -> None:
    recs = records([1, 1, 1], per=1, sd=QUIET, seed=5)
    recs[2].update(status="failed", median_ms=None)
    (history,) = trend.build(recs, [("batch_size", "8")])
    (change,) = findings.status_changes(history)
    assert change.startswith("eager: ok at c01") and change.endswith("-> failed at c02aaaaaaa")
    assert trend.build(recs, [("batch_size", "64")]) == []


def test_a_step_across_contended_commits_names_the_nearest_evidence() -> None:
    recs = records([1, 1, 2, 2, 2], per=2, sd=QUIET, seed=6)
    for r in recs[4:6]:  # commit 2 (the first slow one) was contended: no evidence there
        r.update(contended=True, contention_note="others")
    (step,) = _steps(recs)
    first_bad = step.after.records[0]["commit_time"]
    assert (step.before.records[0]["commit_time"], first_bad) == (1, 3)
    assert "1 positions between them have no evidence" in step.evidence
