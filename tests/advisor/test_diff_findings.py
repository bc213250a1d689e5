"""The op-level diff inside a run folder: diffs/*.csv, the slower_ops finding, the report's
"what changed" table and findings, and `perfbench diff` across two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perfbench.advisor import advise
from perfbench.cli.main import main
from perfbench.report.page import render_report
from perfbench.results.rundir import RunDir
from tests.advisor.runs import row, write_run

KERNEL = "graph_1_cpp_fused_addmm_relu_0"


def _trace(path: Path, ops: list[tuple[str, float]], steps: int = 4) -> None:
    """A profiler-like Chrome trace: `steps` ProfilerStep windows, each with these ops in order."""
    events: list[dict[str, Any]] = []
    for k in range(steps):
        t = 100_000.0 * (k + 1)
        events.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{k + 2}",
                       "pid": 1, "tid": 1, "ts": t, "dur": 90_000.0})  # fmt: skip
        for name, dur in ops:
            t += 10
            events.append({"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1,
                           "ts": t, "dur": dur * (1 + 0.01 * k), "args": {}})  # fmt: skip
            t += dur * 1.05
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"traceEvents": events}), encoding="utf-8")


def _profiled_run(path: Path, compile_ms: float, kernel_us: float) -> Path:
    eager_ops = [("aten::linear", 30), ("aten::addmm", 9000), ("aten::relu", 400)]
    compiled_ops = [("Torch-Compiled Region: 0/0", 50), ("aten::mm", 9000), (KERNEL, kernel_us)]
    _trace(path / "traces" / "000-eager.json", eager_ops)
    _trace(path / "traces" / "001-compile.json", compiled_ops)
    extra_c = {"compile_mode": "default", "profile": {"trace": "traces/001-compile.json"}}
    rows = [
        row(10.0, extra={"profile": {"trace": "traces/000-eager.json"}}),
        row(compile_ms, backend="compile", extra=extra_c, cold_start_s=5.0),
    ]
    return write_run(path, rows)


def test_slower_backend_names_the_kernel_that_grew(tmp_path: Path) -> None:
    run = _profiled_run(tmp_path / "run", compile_ms=30.0, kernel_us=20_000)
    found = [f for f in advise(run) if f.rule == "slower_ops"]
    assert len(found) == 1
    f = found[0]
    assert "compile is 3.0× slower than eager" in f.sentence
    assert "cpp_fused_addmm_relu_0" in f.sentence
    assert any("made it from aten addmm relu" in e for e in f.evidence)
    assert "--set threads=1,2" in f.command  # an inductor kernel on 2 threads: test one thread


def test_faster_backend_has_no_slower_ops_finding(tmp_path: Path) -> None:
    run = _profiled_run(tmp_path / "run", compile_ms=8.0, kernel_us=100)
    assert not [f for f in advise(run) if f.rule == "slower_ops"]


def test_report_writes_diffs_and_shows_findings_and_what_changed(tmp_path: Path) -> None:
    run = _profiled_run(tmp_path / "run", compile_ms=30.0, kernel_us=20_000)
    html = render_report(RunDir(run))
    csvs = list((run / "diffs").glob("*.csv"))
    assert [c.name for c in csvs] == [
        "compile_bs64_t2_amp-off_infer_cpu--vs--eager_bs64_t2_amp-off_infer_cpu.csv"
    ]
    assert "What to do next" in html and "compile is 3.0× slower than eager" in html
    assert "What changed" in html and "cpp_fused_addmm_relu_0" in html
    assert "from aten addmm relu" in html and "into cpp_fused_addmm_relu_0" in html
    verdict = html.index('id="verdict"')
    assert verdict < html.index("What to do next") < html.index('id="charts"')


def test_diff_command_across_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _profiled_run(tmp_path / "a", compile_ms=30.0, kernel_us=20_000)
    b = _profiled_run(tmp_path / "b", compile_ms=12.0, kernel_us=300)
    out_csv = tmp_path / "d.csv"
    code = main(["diff", str(a), str(b), "--point", "backend=compile", "--csv", str(out_csv)])
    text = capsys.readouterr().out
    assert code == 0
    assert "cpp_fused_addmm_relu_0" in text and "faster" in text
    assert out_csv.read_text().startswith("op,kind,status")
    code = main(
        ["diff", str(a), str(a), "--point", "backend=eager", "--against", "backend=compile"]
    )
    assert code == 0 and "appeared" in capsys.readouterr().out


def test_diff_command_needs_exactly_one_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _profiled_run(tmp_path / "a", compile_ms=30.0, kernel_us=20_000)
    assert main(["diff", str(a), str(a)]) == 2
    err = capsys.readouterr().err
    assert "exactly one profiled ok point" in err and "eager bs64" in err and "compile bs64" in err
    assert main(["diff", str(a), str(a), "--point", "nope=1"]) == 2
