"""Run folder round trip: rows written one by one survive and read back typed."""

from __future__ import annotations

import math

import pytest

from perfbench.results.row import COLUMNS
from perfbench.results.rundir import RunDir


def test_round_trip_of_rows_and_meta(tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.write_meta({"scenario": {"name": "x"}, "state": "running"})
    run.append_row(
        {
            "point_id": 0,
            "backend": "eager",
            "batch_size": 8,
            "pin_memory": False,
            "status": "ok",
            "median_ms": 1.25,
            "extra": {"times_ms": [1.0, 1.5], "note": 'quote " and, comma'},
        }
    )
    run.append_row(
        {"point_id": 1, "backend": "compile", "status": "failed", "error": "boom\nline 2"}
    )
    df = run.read_results()
    assert list(df.columns) == list(COLUMNS)
    assert df.loc[0, "median_ms"] == 1.25
    # raw samples handed over in extra (as an older perfbench wrote them) read back as a column
    assert df.loc[0, "extra"] == {"note": 'quote " and, comma'}
    assert df.loc[0, "times_ms"] == [1.0, 1.5] and df.loc[1, "times_ms"] == []
    assert df.loc[0, "pin_memory"] is False or df.loc[0, "pin_memory"] == False  # noqa: E712
    assert df.loc[1, "error"] == "boom\nline 2"
    assert math.isnan(df.loc[1, "median_ms"])
    assert run.read_meta()["state"] == "running"


def test_rows_are_on_disk_immediately(tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.append_row({"point_id": 0, "status": "skipped", "reason": "no CUDA"})
    # a second reader (as after a crash) sees the row without any close/flush by the writer
    assert "no CUDA" in (tmp_path / "run" / "results.csv").read_text()


def test_bad_rows_are_refused(tmp_path):
    run = RunDir.create(tmp_path / "run")
    with pytest.raises(ValueError, match="status"):
        run.append_row({"point_id": 0, "status": "great"})
    with pytest.raises(ValueError, match="unknown result columns"):
        run.append_row({"point_id": 0, "status": "ok", "speed": 3})


def test_create_keeps_existing_rows(tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.append_row({"point_id": 0, "status": "ok"})
    again = RunDir.create(tmp_path / "run")
    assert len(again.read_results()) == 1
