"""A run owns its folder (issue 19, item 1): two runs into one --out, a used or foreign folder,
--append and its checks, the lock and its stale case. End to end through `perfbench run` in real
processes where it matters (the concurrency), in this process where the rule is library code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from perfbench.execute.runner import run_sweep
from perfbench.plan.run_plan import RunRequest, plan_run
from perfbench.results.run_lock import LOCK_NAME, RunFolderError, RunLock
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import load_scenario
from tests.conftest import TINY_MLP

FAST = ["--set", "backend=eager", "--no-control", "--budget", "0.05"]
SCENARIO_A = TINY_MLP + 'SWEEP = {"batch_size": [1, 2]}\n'
SCENARIO_B = TINY_MLP + 'SWEEP = {"batch_size": [3]}\n'


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "perfbench.cli.main", *args]


def _rows(out: Path) -> list[dict[str, str]]:
    import csv

    with (out / "results.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_runs_started_together_leave_one_intact_run_and_one_refusal(write_scenario, tmp_path):
    a = write_scenario(SCENARIO_A, "a.py")
    b = write_scenario(SCENARIO_B, "b.py")
    out = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            _cli("run", str(s), "--out", str(out), *FAST),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (a, b)
    ]
    results = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = a if results[0][0] == 0 else b
    _, _, refusal = next(r for r in results if r[0] == 2)
    assert "perfbench: error:" in refusal and "Traceback" not in refusal
    assert "is in use by another perfbench run (pid" in refusal or "already holds a run" in refusal
    meta = json.loads((out / "run.json").read_text())
    assert meta["scenario"]["path"] == str(winner) and meta["state"] == "complete"
    rows = _rows(out)
    sizes = {"1", "2"} if winner == a else {"3"}
    assert {r["batch_size"] for r in rows} == sizes  # nothing of the refused run
    assert [r["point_id"] for r in rows] == [str(i) for i in range(len(sizes))]
    assert all(r["status"] == "ok" for r in rows)
    assert not (out / LOCK_NAME).exists()  # released at the end


@pytest.mark.slow
def test_append_adds_fresh_points_and_refuses_what_differs(write_scenario, tmp_path, capsys):
    """Two real runs (the first, then --append); the refusals in this process (they stop before
    any worker starts)."""
    from perfbench.cli.main import main

    scenario = write_scenario(TINY_MLP + 'SWEEP = {"batch_size": [1]}\nprint("imported")\n')
    out = tmp_path / "run"
    args = ["run", str(scenario), "--out", str(out), *FAST]
    first = subprocess.run(_cli(*args), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "logs/load.log" in first.stdout and "RUN_DIR" not in first.stdout
    before_csv = (out / "results.csv").read_bytes()
    before_meta = json.loads((out / "run.json").read_text())
    before_log = (out / "logs" / "load.log").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--append" in err
    assert (out / "results.csv").read_bytes() == before_csv
    added = subprocess.run(_cli(*args, "--append"), capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    after = (out / "results.csv").read_bytes()
    assert after.startswith(before_csv)  # nothing rewritten: the first run's rows byte for byte
    rows = _rows(out)
    assert [(r["point_id"], r["repeat"], r["status"]) for r in rows] == [
        ("0", "0", "ok"),
        ("1", "1", "ok"),
    ]
    meta = json.loads((out / "run.json").read_text())
    assert {k: v for k, v in meta.items() if k != "appends"} == before_meta
    assert [a["first_point_id"] for a in meta["appends"]] == [1]
    assert (out / "logs" / "load.log").read_bytes() == before_log
    assert (out / "logs" / "load-2.log").exists()
    # a different budget, and an edited scenario: refused, each difference named
    assert main([*args[:-1], "0.06", "--append"]) == 2
    assert "settings.budget_s: 0.05 in the folder, 0.06 now" in capsys.readouterr().err
    scenario.write_text(scenario.read_text() + "# edited\n")
    assert main([*args, "--append"]) == 2
    assert "scenario.sha256:" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == after


def test_foreign_folder_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(
        RunFolderError,
        match=r"not empty and is not a perfbench run folder \(it holds holiday.jpg\)",
    ):
        RunDir.claim(folder)
    assert sorted(os.listdir(folder)) == ["holiday.jpg"]
    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        RunDir.claim(file)


def test_a_live_holder_is_named_and_a_stale_lock_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    held = RunDir.claim(folder, command="perfbench run x.py")
    with pytest.raises(
        RunFolderError, match=rf"in use by another perfbench run \(pid {os.getpid()} on host"
    ):
        RunDir.claim(folder)
    held.release()
    assert not (folder / LOCK_NAME).exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = {
        "pid": dead.pid,
        "host": socket.gethostname(),
        "started_at": "then",
        "command": "killed",
    }
    (folder / LOCK_NAME).write_text(json.dumps(holder))  # what a SIGKILLed run leaves
    run = RunDir.claim(folder)
    assert run.lock is not None and f"stale lock: pid {dead.pid}" in str(run.lock.took_over)
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    run.release()
    holder["host"] = "elsewhere"
    (folder / LOCK_NAME).write_text(json.dumps(holder))
    with pytest.raises(RunFolderError, match=r"another machine .* delete .*run.lock"):
        RunLock.acquire(folder)


def test_library_callers_get_the_same_rules(write_scenario, tmp_path):
    """run_sweep claims the folder itself: a finished run in it is refused before any work."""
    scenario = load_scenario(write_scenario(TINY_MLP))
    plan = plan_run(scenario, RunRequest(sets=("backend=eager", "batch_size=1"), control=False))
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.csv").write_text("point_id,status\n0,ok\n")
    (folder / "run.json").write_text(
        json.dumps({"scenario": {"path": "other.py"}, "state": "complete"})
    )
    with pytest.raises(RunFolderError, match=r"already holds a run \(other.py, state 'complete'"):
        run_sweep(scenario, plan, RunDir(folder))
    assert (folder / "results.csv").read_text() == "point_id,status\n0,ok\n"
    assert not (folder / LOCK_NAME).exists()


def test_append_to_a_folder_written_by_another_version_is_refused(tmp_path):
    """The golden run's results.csv has fewer columns: appending rows would not fit them."""
    import shutil
    from types import SimpleNamespace

    from perfbench.results.run_claim import start_append

    folder = tmp_path / "old"
    shutil.copytree(Path(__file__).parents[1] / "report" / "data" / "mlp_run", folder)
    meta = json.loads((folder / "run.json").read_text())  # the same identity: only columns differ
    with pytest.raises(RunFolderError, match=r"cannot append .*\n  results.csv has other columns"):
        start_append(folder, meta, SimpleNamespace(flamegraph=False))
    meta["settings"]["budget_s"] = 9
    with pytest.raises(RunFolderError, match=r"settings.budget_s: 0.2 in the folder, 9 now"):
        start_append(folder, meta, SimpleNamespace(flamegraph=False))
