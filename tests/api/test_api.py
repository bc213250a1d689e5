"""The Python API (`perfbench.run`, `load`, `compare`, `measure_ratio`, `check`, `Run`): the same
run folder as the command line, read back as typed DataFrames, shown inline in Jupyter.

One sweep per side, module-scoped: a tiny MLP, eager against fx at one batch size, 0.1 s budget."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import perfbench
from perfbench.api import scenario_file, settings_args, sweep_args
from perfbench.plan.sweep import ConfigError
from tests.conftest import TINY_MLP

SWEEP = {"backend": ["eager", "fx"], "batch_size": 4}
SETTINGS = {"budget_s": 0.1, "min_reps": 3, "warmup_s": 0.01}


ENV_KEY = "PERFBENCH_TEST_API_ENV"
SEEN_ENV: list[str | None] = []  # the variable as the run's progress events saw it
EVENTS: list[object] = []  # the events themselves (perfbench.execute.events)


def _seen(event: object) -> None:
    SEEN_ENV.append(os.environ.get(ENV_KEY))
    EVENTS.append(event)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> perfbench.Run:
    """One API run; fx asks for a worker variable, which must be set while the run lasts only."""
    from perfbench.backends import BACKENDS

    root = tmp_path_factory.mktemp("api")
    scenario = root / "tiny.py"
    scenario.write_text(textwrap.dedent(TINY_MLP), encoding="utf-8")
    assert ENV_KEY not in os.environ
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(BACKENDS, "fx", replace(BACKENDS["fx"], worker_env=lambda: {ENV_KEY: "1"}))
        run = perfbench.run(
            scenario,
            sweep=SWEEP,
            settings=SETTINGS,
            out=root / "api",
            progress=_seen,
        )
    assert ENV_KEY not in os.environ  # restored: the caller's environment is as it was
    return run


def test_worker_environment_is_applied_during_the_run_and_recorded(run: perfbench.Run) -> None:
    assert SEEN_ENV and set(SEEN_ENV) == {"1"}


def test_progress_callback_gets_typed_events_with_the_rows(run: perfbench.Run) -> None:
    """A notebook's callback sees one GroupStarted per group and one PointDone per point, whose
    `row` is the Row written to results.csv (the same values as `run.df`)."""
    from perfbench.execute.events import GroupStarted, PointDone
    from perfbench.results.row import Row

    done = [e for e in EVENTS if isinstance(e, PointDone)]
    assert [type(e) for e in EVENTS if isinstance(e, GroupStarted)] == [GroupStarted]
    assert [e.index for e in done] == [0, 1] and {e.total for e in done} == {2}
    assert all(isinstance(e.row, Row) for e in done)
    by_backend = {e.row.backend: e.row for e in done}
    df = run.df.set_index("backend")
    for backend, row in by_backend.items():
        assert row.status == df.loc[backend, "status"] == "ok"
        assert row.median_ms == pytest.approx(df.loc[backend, "median_ms"])
        assert row.times_ms == df.loc[backend, "times_ms"] and len(row.times_ms) >= 3
    assert run.meta["worker_env"] == {ENV_KEY: "1"}
    assert run.df["command"].iloc[0].startswith(f"{ENV_KEY}=1 perfbench run")


def test_import_perfbench_loads_neither_torch_nor_pandas() -> None:
    code = "import sys, perfbench; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name in perfbench.__all__:  # each public name typed and documented
        obj = getattr(perfbench, name)
        assert name == "__version__" or (obj.__doc__ and obj.__doc__.strip()), name


def test_run_asks_for_what_the_same_command_line_asks_for(tmp_path: Path) -> None:
    """Both hand a RunRequest to perfbench.launch: equal requests, equal sweeps, rows, verdicts."""
    from perfbench.api import run_request
    from perfbench.cli.main import build_parser
    from perfbench.cli.main import run_request as cli_request

    out = tmp_path / "r"
    api = run_request("s.py", SWEEP, SETTINGS, "local", out)
    argv = ["run", "s.py", "--set", "backend=eager,fx", "--set", "batch_size=4"]
    argv += ["--setting", "budget_s=0.1", "--setting", "min_reps=3", "--setting", "warmup_s=0.01"]
    argv += ["--out", str(out)]
    assert api == cli_request(build_parser("run").parse_args(argv), argv)


def test_run_writes_a_run_folder_that_load_reads_back(run: perfbench.Run) -> None:
    assert list(run.df["backend"]) == ["eager", "fx"]
    assert list(run.df["status"]) == ["ok", "ok"], run.df["error"].tolist()
    assert run.meta["argv"][:2] == ["perfbench", "run"] and "backend=eager,fx" in run.meta["argv"]
    assert run.meta["settings"]["budget_s"] == 0.1 and run.meta["sweep"]["batch_size"] == [4]
    assert run.state == "complete" and run.report_path.is_file()
    # load() of the folder reads back exactly what run() returned, with typed columns
    pd.testing.assert_frame_equal(perfbench.load(run.report_path.parent).df, run.df)
    assert run.df["batch_size"].dtype == "int64" and run.df["median_ms"].dtype == float
    assert "--set batch_size=4" in run.df["command"].iloc[0]  # rerun commands as the CLI's


def test_verdicts_findings_and_jupyter_view(run: perfbench.Run) -> None:
    sp = run.verdicts
    assert list(sp["backend"]) == ["fx"]
    row = run.df[run.df["backend"] == "fx"].iloc[0]
    assert row["verdict"]  # the row's own paired verdict, and its speedup, as the report shows
    assert sp["speedup"].iloc[0] == pytest.approx(row["speedup_vs_eager"])
    assert isinstance(run.findings, list)
    page = run._repr_html_()
    assert "<table>" in page and "<td>fx</td>" in page and "<svg" in page
    assert sp["verdict_text"].iloc[0].split(" ")[0] in page
    assert "report.html" in page and "2 ok" in page


def test_compare_two_runs(run: perfbench.Run) -> None:
    found = perfbench.compare(run, run.path)
    assert len(found.table) == 2 and found.exit_code == 0
    assert set(found.table["backend"]) == {"eager", "fx"}
    assert len(run.compare(perfbench.load(run.path), fail_above=50.0).regressed) == 0
    # the package perfbench/check/ (and perfbench/analysis/compare.py) are imported by now: the
    # public functions `check` and `compare` stay (perfbench._Package)
    importlib.import_module("perfbench.check.ladder")
    importlib.import_module("perfbench.analysis.compare")
    assert callable(perfbench.compare) and callable(perfbench.check)
    assert perfbench.compare.__module__ == "perfbench" == perfbench.check.__module__
    assert len(perfbench.compare(run.path, run).table) == 2


def test_measure_ratio_orders_two_callables() -> None:
    def busy(seconds: float):  # type: ignore[no-untyped-def]
        def spin() -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass

        return spin

    r = perfbench.measure_ratio(busy(2e-3), busy(1e-3), budget_s=0.3, min_pairs=20, label="2/1")
    # loose on purpose: on this loaded 2-core box preemption moves single ratios a lot
    assert r.ratio > 1.2 and r.ci_low <= r.ratio <= r.ci_high and r.label == "2/1"


def test_check_runs_the_ladder_on_a_path_or_a_module(tmp_path: Path) -> None:
    path = tmp_path / "tiny_check.py"
    path.write_text(textwrap.dedent(TINY_MLP), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        import tiny_check  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    assert scenario_file(tiny_check) == str(path)  # a module is checked from its file
    report = perfbench.check(tiny_check, backends=("eager",))
    assert report.ok and len(report.rungs) == 6 and report.scenario == str(path)


def test_hostile_inputs_fail_loudly_before_any_folder(tmp_path: Path) -> None:
    import types

    with pytest.raises(TypeError, match=r"has no \.py file"):
        scenario_file(types.ModuleType("notebook_scenario"))
    with pytest.raises(TypeError, match="scenario must be a path"):
        scenario_file(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without commas"):
        sweep_args({"backend": "eager,fx"})
    with pytest.raises(ValueError, match="non-empty"):
        sweep_args({"batch_size": []})
    with pytest.raises(TypeError, match="dict of axis"):
        sweep_args([("batch_size", 8)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict of key"):
        settings_args("budget_s=1")  # type: ignore[arg-type]
    assert sweep_args({"batch_size": 8, "pin_memory": [True, False]}) == [
        "--set",
        "batch_size=8",
        "--set",
        "pin_memory=true,false",
    ]
    path = tmp_path / "s.py"
    path.write_text(textwrap.dedent(TINY_MLP), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown axis 'batchsize'"):
        perfbench.run(path, sweep={"batchsize": [8]}, out=tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="unknown key"):
        perfbench.run(path, settings={"budget": 1}, out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="timeout_s must be >= 0"):
        perfbench.check(path, timeout_s=-1)
    with pytest.raises(FileNotFoundError, match="not a perfbench run folder: it has no results"):
        perfbench.load(tmp_path)
    (tmp_path / "results.csv").write_text("point_id\n")
    with pytest.raises(FileNotFoundError, match=r"no run\.json"):
        perfbench.load(tmp_path)


def test_start_line_is_the_command_lines_and_silent_when_quiet(capsys, tmp_path: Path) -> None:
    from perfbench.cli.progress import Progress
    from perfbench.launch import RunStart

    printed = {"output_bytes": 20, "output_lines": 2, "output_log": "logs/load.log"}
    start = RunStart(4, Path("s.py"), tmp_path / "r", printed)
    Progress(quiet=False).start(start)
    Progress(quiet=True).start(start)
    assert capsys.readouterr().out.splitlines() == [
        f"perfbench: 4 points of s.py -> {tmp_path / 'r'}",
        f"    scenario import output: 2 lines (20 B) in {tmp_path / 'r' / 'logs' / 'load.log'}",
    ]
