"""The verdict calls a speedup real only when it exceeds the noise of both points (rule 8)."""

from __future__ import annotations

from perfbench.report.data import load_results, speedup_summary, speedups
from perfbench.results.rundir import RunDir
from tests.conftest import ok_row


def test_speedup_inside_the_noise_is_not_significant(tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.append_row(ok_row(0, "eager", 10.0, 1.0))  # 10% noise
    run.append_row(ok_row(1, "compile", 9.5, 0.1))  # 5% faster: inside eager's noise
    run.append_row(ok_row(2, "fx", 5.0, 0.1))  # 2x faster: real
    sp = speedups(load_results(run)).set_index("backend")
    assert not sp.loc["compile", "significant"]
    assert sp.loc["fx", "significant"]
    assert sp.loc["fx", "speedup"] == 2.0
    summary = {s["backend"]: s for s in speedup_summary(sp.reset_index())}
    assert summary["compile"]["n_significant"] == 0 and summary["fx"]["n_significant"] == 1
