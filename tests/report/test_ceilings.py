"""`perfbench ceilings`: plausible numbers, measured with the points' stopping rule in rounds
(best counts), cached per device and thread count under PERFBENCH_CACHE_DIR; the report compares
each point with the ceiling of its own thread count and calls a point above it a stale ceiling."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from perfbench.cli import main as cli
from perfbench.measure import ceilings
from perfbench.report import ceiling_check
from perfbench.report.page import render_report
from perfbench.results.rundir import RunDir
from tests.conftest import ok_row


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PERFBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(
        ceilings.SIZES,
        "cpu",
        {"copy_chunk_bytes": 1 << 20, "matmul_n": (64, 128), "dtype": "float32"},
    )
    monkeypatch.setattr(ceilings, "copy_working_set_bytes", lambda: 8 << 20)
    monkeypatch.setattr(ceilings, "BUDGET_S", 0.02)
    monkeypatch.setattr(ceilings, "ROUNDS", 2)
    return tmp_path / "cache" / "ceilings.json"


def _measure(threads: int = 1, refresh: bool = False) -> dict:
    return ceilings.measure_ceilings("cpu", refresh, threads=threads, rounds=2, budget_s=0.02)


def test_measure_and_cache(small: Path) -> None:
    first = _measure()
    assert 0.1 < first["copy_gbps"] < 10_000  # any CPU of this decade
    assert 1e-4 < first["matmul_tflops"] < 1_000
    assert first["threads"] == 1 and first["method"] == ceilings.METHOD
    assert len(first["rounds"]["copy_gbps"]) == 2
    assert set(first["rounds"]["matmul_tflops"]) == {"64", "128"}
    cache = json.loads(small.read_text())
    assert cache[ceilings.device_key("cpu", 1)]["copy_gbps"] == first["copy_gbps"]
    # the second call reads the cache: same dict, same measured_at
    assert _measure() == first
    assert ceilings.cached_ceilings("cpu", 1) == first


def test_keyed_by_thread_count_and_threads_restored(small: Path) -> None:
    before = torch.get_num_threads()
    one, two = _measure(threads=1), _measure(threads=2)
    assert torch.get_num_threads() == before
    assert one["device_name"].endswith("threads=1") and two["device_name"].endswith("threads=2")
    assert ceilings.cached_ceilings("cpu", 2) == two
    assert ceilings.cached_ceilings("cpu", 3) is None


def test_entries_of_the_old_single_shot_method_are_not_used(small: Path) -> None:
    small.parent.mkdir(parents=True)
    old = {"device_name": ceilings.device_key("cpu", 1), "copy_gbps": 8.2, "matmul_tflops": 0.068}
    small.write_text(json.dumps({old["device_name"]: old}))
    assert ceilings.cached_ceilings("cpu", 1) is None


def test_best_of_rounds_and_spread(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round is one `timing.measure` (its fastest tenth); the ceiling is the best round's."""
    seconds = iter([2e-3, 1e-3, 1e-3, 1e-3, 1e-3, 4e-3])  # copy, 64, 128; copy, 64, 128
    monkeypatch.setattr(ceilings, "_round_s", lambda fn, dev, settings: next(seconds))
    got = _measure(refresh=True)
    chunk = 1 << 20
    assert got["rounds"]["copy_gbps"] == pytest.approx(
        [2 * chunk / 2e-3 / 1e9, 2 * chunk / 1e-3 / 1e9]
    )
    assert got["copy_gbps"] == pytest.approx(2 * chunk / 1e-3 / 1e9)
    assert got["spread"]["copy"] == pytest.approx(0.5)
    assert got["matmul_n"] == 128 and got["matmul_tflops"] == pytest.approx(
        2 * 128**3 / 1e-3 / 1e12
    )
    assert got["spread"]["matmul"] == pytest.approx(0.75)


def test_uses_the_points_stopping_rule(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = ceilings.measure

    def spy(fn, device, settings):  # type: ignore[no-untyped-def]
        seen.append(settings)
        return real(fn, device=device, settings=settings)

    monkeypatch.setattr(ceilings, "measure", spy)
    _measure(refresh=True)
    assert len(seen) == 2 * 3  # 2 rounds x (copy + 2 matmul sizes)
    assert all(s.budget_s == 0.02 and s.target_ci == 0.01 for s in seen)


def test_command(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--device", "cpu", "--json", "--threads", "1", "--rounds", "1", "--budget", "0.02"]
    assert cli.main(["ceilings", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"device_name", "copy_gbps", "matmul_tflops", "spread", "rounds"}
    assert cli.main(["ceilings", "--device", "cpu", "--threads", "1"]) == 0
    assert "spread" in capsys.readouterr().out  # the terminal line says how well rounds agreed
    assert cli.main(["ceilings", "--device", "tpu"]) == 2
    assert cli.main(["ceilings", "--device", "cpu", "--threads", "0", "--refresh"]) == 2


@pytest.mark.skipif(ceilings.torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_absent_is_usage_error(small: Path) -> None:
    assert cli.main(["ceilings", "--device", "cuda"]) == 2


def test_run_gets_the_ceiling_of_each_thread_count(small: Path) -> None:
    one = _measure(threads=1)
    found = ceilings.ceilings_for_run(["cpu"], [1, 2])
    assert found["ceilings_by_threads"] == {"1": one}
    assert "--threads 2" in found["ceilings_note"]


def _run_with(tmp_path: Path, rows: list[dict], meta_ceilings: dict) -> RunDir:
    run = RunDir.create(tmp_path / "run")
    run.write_meta(
        {"scenario": {"name": "s", "path": "s.py"}, "state": "complete", **meta_ceilings}
    )
    for r in rows:
        run.append_row(r)
    return run


def _row(i: int, threads: int, tflops: float) -> dict:
    return {**ok_row(i, "eager", 2.0, 0.1), "threads": threads, "tflops": tflops}


BY_THREADS = {
    "ceilings_by_threads": {
        "1": {
            "device_name": "cpu:x:threads=1",
            "threads": 1,
            "matmul_tflops": 0.2,
            "copy_gbps": 13,
        },
        "2": {
            "device_name": "cpu:x:threads=2",
            "threads": 2,
            "matmul_tflops": 0.4,
            "copy_gbps": 20,
        },
    }
}


def test_each_point_is_compared_with_its_own_thread_count() -> None:
    df = pd.DataFrame({"device": ["cpu", "cpu", "cpu"], "threads": [1, 2, 4]})
    got = ceiling_check.point_ceilings(df, BY_THREADS)
    assert got.iloc[:2].tolist() == [0.2, 0.4] and got.isna().iloc[2]
    # an older run.json: one entry whose key names its thread count
    old = {"ceilings": {"device_name": "cpu:x:threads=2", "matmul_tflops": 0.126}}
    assert ceiling_check.point_ceilings(df, old).isna().tolist() == [True, False, True]


def test_report_marks_a_point_above_its_ceiling_as_stale(tmp_path: Path) -> None:
    run = _run_with(tmp_path, [_row(0, 1, 0.1), _row(1, 2, 0.5)], BY_THREADS)
    html = render_report(run)
    assert "1 point(s) above the measured ceiling" in html
    assert "the ceiling is stale" in html and "perfbench ceilings --refresh --threads 2" in html
    assert "&gt; ceiling: stale ceiling" in html or "> ceiling: stale ceiling" in html
    assert "cpu:x:threads=1" in html and "cpu:x:threads=2" in html  # both listed under Reproduce


def test_report_without_a_point_above_says_nothing_stale(tmp_path: Path) -> None:
    html = render_report(_run_with(tmp_path, [_row(0, 1, 0.1), _row(1, 2, 0.3)], BY_THREADS))
    assert "above the measured ceiling" not in html and "stale ceiling" not in html
    assert "Achieved TFLOP/s against the measured ceiling" in html
