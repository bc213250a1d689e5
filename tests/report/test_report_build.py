"""The report is built from the run folder alone, is self-contained and small, and says what
issue 5 asks, top-down."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from make_run import make_run

from perfbench.report.page import build_report, render_report
from perfbench.results.rundir import RunDir


def test_report_has_every_section_table_and_charts(fake_run: RunDir) -> None:
    path = build_report(fake_run.path)
    assert path == fake_run.report_html
    html = path.read_text(encoding="utf-8")
    order = [
        html.index(f'id="{s}"') for s in ("verdict", "charts", "results", "profiling", "repro")
    ]
    assert order == sorted(order), "sections must read top-down as issue 5 lists them"
    assert html.count("<svg") >= 5  # throughput, speedup, latency, ceiling, gpu (+ none remote)
    assert 'id="results-table"' in html
    for status in ("ok", "skipped", "failed", "oom", "timeout"):
        assert f'data-status="{status}"' in html
    # the run folder's own path, not a RUN_DIR placeholder (issue 15 item 7)
    tb = fake_run.path.resolve() / "tb"
    assert f'<span class="arg">tensorboard</span> <span class="arg">--logdir {tb}</span>' in html
    assert "--logdir RUN_DIR" not in html
    assert 'href="traces/eager_bs64.json"' in html
    assert "data:image/svg+xml;base64," in html  # flame graph embedded
    assert '<div class="frame">' in html  # py-spy's icicle (root on top) opens at the top
    assert "aten::addmm" in html
    assert "GPU while each point was timed" in html
    assert "input-bound: the GPU idles" in html  # sampler summary + timeline from gpu/*.csv
    assert 'id="gpu-' in html
    assert "interpreter timing, not performance" in html
    assert "Triton coverage" in html and "37.5%" in html
    assert "linear_act 1/2 (1 eager (no backward))" in html
    assert "F.cross_entropy: kernel 12" in html
    assert "fp16 autocast needs CUDA" in html
    assert "CUDA out of memory" in html
    assert "exceeded --timeout 60 s" in html
    # per-point rerun command, each option with its value one unbreakable unit
    assert (
        '<span class="arg">--set backend=compile</span> <span class="arg">--set batch_size=64</span>'
        in html
    )
    assert len(html.encode()) < 3_000_000


def test_report_is_self_contained(fake_run: RunDir) -> None:
    html = build_report(fake_run.path).read_text(encoding="utf-8")
    # nothing the browser would fetch: no src/href/url() to a network address
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "@import" not in html and '<link rel="stylesheet"' not in html
    assert "default-src 'none'" in html  # the CSP turns any accidental fetch into a console error


def test_failed_point_time_never_shown(fake_run: RunDir) -> None:
    html = build_report(fake_run.path).read_text(encoding="utf-8")
    # make_run writes median_ms=0.123456 on the failed point: it must not appear anywhere
    assert "0.1235" not in html and "0.123456" not in html


def test_rebuild_from_folder_alone(tmp_path: Path) -> None:
    """Rule 7: copy only results.csv, run.json and artefacts elsewhere; the report is the same."""
    run = make_run(tmp_path / "a")
    first = render_report(run)
    moved = tmp_path / "b"
    shutil.copytree(run.path, moved)
    second = build_report(moved).read_text(encoding="utf-8")
    # the one difference allowed: the TensorBoard command names the folder where it now is
    assert str(moved.resolve()) in second and str(run.path.resolve()) not in second
    assert first.replace(str(run.path.resolve()), "RUN") == second.replace(
        str(moved.resolve()), "RUN"
    )


def test_verdict_speedup_and_best(fake_run: RunDir) -> None:
    from perfbench.report import data as report_data

    df = report_data.load_results(fake_run)
    sp = report_data.speedups(df)
    compile_rows = sp[sp["backend"] == "compile"]
    assert len(compile_rows) == 6  # every (batch, amp) the two backends share
    assert (abs(compile_rows["speedup"] - 1.25) < 1e-9).all()
    best = report_data.best_per_backend(df)
    assert set(best["backend"]) == {"eager", "compile", "triton"}
    assert best.set_index("backend").loc["compile", "batch_size"] == 64


def test_running_and_broken_folders_still_render(tmp_path: Path) -> None:
    running = make_run(tmp_path / "running", state="running", with_flamegraph=False)
    html = build_report(running.path).read_text(encoding="utf-8")
    assert "Run state: <b>running</b>" in html

    empty = RunDir.create(tmp_path / "empty")  # died before run.json and before any point
    html = build_report(empty.path).read_text(encoding="utf-8")
    assert "run.json is missing" in html and "No point produced a result" in html

    bad = make_run(tmp_path / "bad", with_ceilings=False)
    bad.run_json.write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in build_report(bad.path).read_text(encoding="utf-8")


def test_extra_keys_are_optional(tmp_path: Path) -> None:
    """A row whose extra is empty and whose optional columns are blank still renders."""
    run = RunDir.create(tmp_path / "min")
    run.write_meta({"scenario": {"path": "s.py"}, "state": "complete"})
    run.append_row(
        {"point_id": 1, "backend": "eager", "batch_size": 8, "status": "ok", "median_ms": 1.0}
    )
    html = build_report(run.path).read_text(encoding="utf-8")
    assert 'data-status="ok"' in html
    assert json.loads(run.run_json.read_text())["state"] == "complete"


def test_results_csv_with_fewer_columns(tmp_path: Path) -> None:
    """A results.csv written by an older perfbench (no throughput, tflops, extra) still renders."""
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "results.csv").write_text(
        "point_id,backend,batch_size,status,median_ms,error\n1,eager,8,ok,1.5,\n2,compile,8,failed,,boom\n",
        encoding="utf-8",
    )
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert 'data-status="failed"' in html and "boom" in html
