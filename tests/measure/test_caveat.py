"""The load rule and the caveat on known counters: an oversubscribed group makes no call, a
caveated call is never shown green/red (report table and chart colour, findings), and compare
holds a contended side out of its gate and compares within-run speedups with --basis speedup.
The end-to-end versions beside real busy processes are in tests/cli/test_load_e2e.py."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from perfbench.advisor.data import compare as advisor_compare
from perfbench.analysis.compare import compare
from perfbench.analysis.compare_load import speedup_change
from perfbench.cli.compare import compare_main
from perfbench.measure.caveat import (
    apply_load_rule,
    caveat_of,
    oversubscription,
    plain_call,
    shown_verdict,
)
from perfbench.measure.contention import Contention
from perfbench.measure.quiet import quiet_setting
from perfbench.plan.run_plan import RunRequest, resolve_settings
from perfbench.plan.sweep import ConfigError
from perfbench.report.data import speedups
from perfbench.report.verdict_view import tone
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir


def contention(others: float, cpus: int = 2, threads: int = 2) -> Contention:
    return Contention(1.0, others, 1.0, 0.0, None, 0, cpus, threads, others > 0.25)


def test_oversubscription_threshold() -> None:
    # the case, word for word
    assert oversubscription(1.0, 2, 2) == (
        "oversubscribed: others used 1.0 of 2 cores, this point wanted 2; rerun on a quiet "
        "machine (--wait-quiet) or at threads=1"
    )
    assert oversubscription(0.14, 2, 2) == ""  # the most housekeeping measured on a quiet VM
    assert oversubscription(0.26, 2, 2).startswith("oversubscribed: others used 0.3 of 2")
    assert oversubscription(1.0, 2, 1) == ""  # one busy neighbour fits in the free core
    over = oversubscription(1.3, 2, 1)
    assert over.startswith("oversubscribed: others used 1.3 of 2 cores, this point wanted 1")
    assert "threads=1" not in over  # no advice to do what it already does
    assert oversubscription(math.nan, 2, 2) == ""


def _row(backend: str, verdict: str, reason: str = "", too_noisy: bool = False) -> Row:
    row = Row(backend=backend, status="ok", verdict=verdict, speedup_vs_eager=0.66)
    row.speedup_ci_low, row.speedup_ci_high = 0.62, 0.74
    row.verdict_reason = reason or f"{backend} 1.52× {verdict} (95% CI 0.62–0.74)"
    row.extra = {"too_noisy": too_noisy}
    return row


def test_an_oversubscribed_group_makes_no_call() -> None:
    eager, slower = _row("eager", "", "A/A control 0.99–1.01 ok"), _row("compile", "slower")
    unchanged = _row("fx", "no change", "fx no change: the fx passes made no rewrite")
    for row in (eager, slower, unchanged):
        row.contended = True
    apply_load_rule([eager, slower, unchanged], contention(1.0), threads=2)
    assert slower.verdict == "inconclusive"
    assert slower.verdict_reason.startswith("compile inconclusive (0.62–0.74); oversubscribed:")
    assert slower.extra["verdict_before_load_rule"] == "slower"
    assert slower.caveat.startswith("oversubscribed: others used 1.0 of 2 cores")
    assert unchanged.verdict == "no change"  # not a timing claim: it stays
    assert eager.caveat == slower.caveat and eager.verdict == ""


def test_quiet_group_keeps_its_call_and_a_too_noisy_call_carries_its_caveat() -> None:
    plain = _row("compile", "faster")
    apply_load_rule([plain], contention(0.1), threads=2)
    assert plain.verdict == "faster" and plain.caveat == "" and plain_call(plain.as_dict())
    noisy = _row("compile", "faster", "compile 2.10× faster (...); too noisy: A/A 0.9–1.2", True)
    apply_load_rule([noisy], contention(0.1), threads=2)
    assert noisy.verdict == "faster" and noisy.caveat == "too noisy: A/A 0.9–1.2"
    assert not plain_call(noisy.as_dict())
    assert shown_verdict("faster", noisy.caveat) == "faster (too noisy)"
    # at threads=1 one busy neighbour leaves the call, but the flag is a caveat
    steal = _row("compile", "slower")
    steal.contended, steal.extra["contention"] = True, "the hypervisor stole 9% of CPU time"
    apply_load_rule([steal], contention(0.9, threads=1), threads=1)
    assert steal.verdict == "slower" and steal.caveat.startswith("contended: the hypervisor")
    assert steal.caveat in steal.verdict_reason


def test_caveat_of_an_older_row_comes_from_its_flags() -> None:
    assert caveat_of({"contended": True, "extra": {"contention": "x"}}) == "contended: x"
    assert caveat_of({"verdict": "faster", "extra": {"too_noisy": True}}).startswith("too noisy")
    assert caveat_of({"verdict": "faster", "contended": False, "extra": {}}) == ""


def _run(path: Path, rows: list[dict], reps: int = 1) -> Path:
    run = RunDir.create(path)
    run.write_meta({"state": "complete", "settings": {"margin": 0.03}})
    for k in range(reps):
        for i, r in enumerate(rows):
            base = {"point_id": k * len(rows) + i, "batch_size": 8, "threads": 2, "repeat": k}
            if "speedup_vs_eager" in r:  # repetitions differ a little, as real ones do
                r = {**r, "speedup_vs_eager": r["speedup_vs_eager"] * (1 + 0.03 * (k - 1))}
            run.append_row({**base, "status": "ok", "iqr_ms": 0.01 * r["median_ms"], **r})
    return path


def _pair(median: float, speedup: float, contended: bool, lo: float, hi: float) -> list[dict]:
    caveat = "oversubscribed: others used 1.0 of 2 cores, this point wanted 2" if contended else ""
    flags = {"contended": contended, "caveat": caveat}
    backend = {"speedup_vs_eager": speedup, "speedup_ci_low": lo, "speedup_ci_high": hi}
    backend["verdict"] = "inconclusive" if contended else "faster"
    return [
        {"backend": "eager", "median_ms": median * speedup, **flags},
        {"backend": "compile", "median_ms": median, **flags, **backend},
    ]


def test_report_and_findings_never_show_a_caveated_call_plainly(tmp_path: Path) -> None:
    run = _run(tmp_path / "r", _pair(1.0, 2.0, False, 1.9, 2.1))
    df = pd.read_csv(run / "results.csv", keep_default_na=False)
    df.loc[1, "caveat"] = "too noisy: A/A control 0.90–1.15 is wider than the ±3% margin"
    df.to_csv(run / "results.csv", index=False)
    from perfbench.report.data import load_results

    sp = speedups(load_results(RunDir(run)))
    (c,) = sp.to_dict("records")
    assert c["verdict"] == "faster (too noisy)" and c["tone"] == "caveat"
    assert "too noisy" in c["verdict_text"] and not c["significant"]
    assert tone("faster", False) == "good" and tone("slower (contended)", False) == "caveat"
    rows = load_results(RunDir(run)).to_dict("records")
    assert not advisor_compare(rows[0], rows[1]).significant  # no finding rests on it


def test_compare_holds_a_contended_side_out_of_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21 item 2: B under load, every point 3x slower, nothing changed."""
    a = _run(tmp_path / "a", _pair(1.0, 2.0, False, 1.9, 2.1), reps=3)
    b = _run(tmp_path / "b", _pair(3.0, 1.9, True, 1.5, 2.4), reps=3)
    assert compare_main([str(a), str(b), "--fail-above", "5"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "not gated: 2 point(s)" in out and "--allow-contended" in out
    assert "contended B: slower" in out and "3 of 3: oversubscribed" in out
    found = compare(a, b, fail_above=5.0)
    assert set(found.table["verdict"]) == {"contended B: slower"}
    assert compare_main([str(a), str(b), "--fail-above", "5", "--allow-contended"]) == 1
    # the speedups inside each run did not change: the speedup basis says so, with intervals
    assert compare_main([str(a), str(b), "--fail-above", "5", "--basis", "speedup"]) == 0
    out = capsys.readouterr().out
    assert "2.00× (3 runs)" in out and "basis speedup" in out
    sp = compare(a, b, fail_above=5.0, basis="speedup").table
    (row,) = sp.to_dict("records")
    assert row["ratio"] == pytest.approx(0.95, rel=0.01) and row["ci_low"] < 0.95 < row["ci_high"]


def test_speedup_change_of_single_runs_combines_both_intervals() -> None:
    ratio, low, high = speedup_change([(2.0, 1.8, 2.2)], [(1.0, 0.9, 1.1)])
    assert ratio == pytest.approx(0.5) and low < 0.5 < high < 1 / 1.05  # fell, with confidence
    # each side's half-width alone is ~0.1 on the log scale; combined it is wider than either
    assert math.log(high / ratio) > math.log(2.2 / 2.0)
    assert all(math.isnan(x) for x in speedup_change([], [(1.0, 0.9, 1.1)]))


def test_speedup_basis_gates_a_real_loss_of_speedup(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", _pair(1.0, 2.0, False, 1.9, 2.1))
    b = _run(tmp_path / "b", _pair(1.0, 1.0, False, 0.95, 1.05))
    found = compare(a, b, fail_above=5.0, basis="speedup")
    assert found.exit_code == 1 and list(found.regressed["backend"]) == ["compile"]
    with pytest.raises(ValueError, match="--basis must be one of"):
        compare(a, b, basis="medianz")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf"])
def test_wait_quiet_refuses_a_bound_that_is_not_seconds(value: str) -> None:
    with pytest.raises(ConfigError, match="--wait-quiet must be >= 0 seconds"):
        resolve_settings(RunRequest(settings=quiet_setting(float(value))), {})


def test_wait_quiet_is_a_recorded_setting() -> None:
    timing, _, _ = resolve_settings(RunRequest(settings=quiet_setting(5)), {})
    assert timing.wait_quiet_s == 5.0
    assert quiet_setting(None) == ()
    with pytest.raises(ConfigError, match="wait_quiet_s must be a number"):
        resolve_settings(RunRequest(settings=("wait_quiet_s=soon",)), {})
