"""A run measured on several machines (`--executor ray`): the report shows a host column, groups
the table by host, and compares a backend only with eager measured on the same host."""

from __future__ import annotations

from pathlib import Path

from perfbench.report import data
from perfbench.report.page import render_report
from perfbench.results.rundir import RunDir
from tests.conftest import ok_row


def _run(path: Path, rows: list[dict]) -> RunDir:
    run = RunDir.create(path)
    run.write_meta({"state": "complete", "scenario": {"name": "mlp"}})
    for row in rows:
        run.append_row(row)
    return run


def _row(point_id: int, backend: str, median_ms: float, host: str) -> dict:
    return {**ok_row(point_id, backend, median_ms, median_ms / 100), "host": host}


def test_two_hosts_get_a_host_column_and_speedups_within_each_host(tmp_path):
    # compile is 2x faster than eager on host-a and 4x on host-b; across hosts it would read 1x
    run = _run(
        tmp_path / "run",
        [
            _row(0, "eager", 10.0, "host-a"),
            _row(1, "eager", 20.0, "host-b"),
            _row(2, "compile", 5.0, "host-b"),
            _row(3, "compile", 5.0, "host-a"),
        ],
    )
    df = data.load_results(run)
    speedups = data.speedups(df)
    by_settings = dict(zip(speedups["settings"], speedups["speedup"], strict=True))
    assert len(by_settings) == 2
    assert [v for k, v in by_settings.items() if k.endswith("on host-a")] == [2.0]
    assert [v for k, v in by_settings.items() if k.endswith("on host-b")] == [4.0]
    page = render_report(run)
    assert "<th>host</th>" in page
    table = page[page.index('id="results-table"') :]
    # grouped by host: host-a's points (0, 3) come before host-b's (1, 2)
    order = [table.index(f'data-v="{pid}">{pid}</td>') for pid in (0, 3, 1, 2)]
    assert order == sorted(order)


def test_one_host_has_no_host_column(tmp_path):
    run = _run(tmp_path / "run", [_row(0, "eager", 10.0, "vm"), _row(1, "compile", 5.0, "vm")])
    assert "<th>host</th>" not in render_report(run)
    assert list(data.speedups(data.load_results(run))["speedup"]) == [2.0]
