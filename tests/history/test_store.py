"""The history store: import of committed run folders, idempotence, schema migration, a killed
recording, two processes recording at once, and a run whose recording fails."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from perfbench.cli import main as cli
from perfbench.history import store
from perfbench.history.fingerprint import identify
from perfbench.history.record import resolve_url, run_records

GOLDEN = Path(__file__).parents[1] / "report" / "data" / "mlp_run"


def _counts(db: Path) -> tuple[int, int]:
    engine = store.open_store(resolve_url(str(db)))
    try:
        return store.count(engine)
    finally:
        engine.dispose()


def test_import_of_the_golden_run_then_reimport_adds_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.sqlite"
    assert cli.main(["history", "import", str(GOLDEN), "--history", str(db)]) == 0
    assert _counts(db) == (1, 12)
    assert cli.main(["history", "import", str(GOLDEN), "--history", str(db)]) == 0
    assert "already recorded, nothing added" in capsys.readouterr().out
    assert _counts(db) == (1, 12)
    run, rows = run_records(GOLDEN)
    assert run["git_commit"] == "ec9264028ed4d55114dc2589258bff91cc39e8aa"
    assert run["scenario_key"].endswith("scenarios/mlp.py") and run["machine"]
    assert {r["backend"] for r in rows} == {"eager", "fx", "int8"}
    assert (
        cli.main(["history", "scenarios/mlp.py", "--history", str(db), "--point", "amp=off"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("== ") == 2 and "23.68" in out  # eager's median at batch 1, from the csv


def test_a_folder_recorded_mid_run_is_completed_by_a_later_import(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(GOLDEN, run)
    meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    lines = (run / "results.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (run / "results.csv").write_text("".join(lines[:4]), encoding="utf-8")  # 3 rows so far
    (run / "run.json").write_text(json.dumps({**meta, "state": "running"}), encoding="utf-8")
    db = str(tmp_path / "h.sqlite")
    assert cli.main(["history", "import", str(run), "--history", db]) == 0
    assert _counts(tmp_path / "h.sqlite") == (1, 3)
    shutil.copy(GOLDEN / "results.csv", run / "results.csv")
    shutil.copy(GOLDEN / "run.json", run / "run.json")
    assert cli.main(["history", "import", str(run), "--history", db]) == 0
    assert _counts(tmp_path / "h.sqlite") == (1, 12)


def test_hostile_inputs_are_named(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "h.sqlite")
    assert cli.main(["history", "import", str(tmp_path), "--history", db]) == 2
    assert f"{tmp_path}: not imported" in capsys.readouterr().err
    assert cli.main(["history", "nothing.py", "--history", db]) == 2
    assert "no records of 'nothing.py'" in capsys.readouterr().err
    assert cli.main(["history", "x.py", "--point", "batch_size", "--history", db]) == 2
    assert "expected AXIS=V" in capsys.readouterr().err
    assert cli.main(["history", "x.py", "--history", "nosuchdb+zz://x"]) == 2
    assert "nosuchdb+zz" in capsys.readouterr().err
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_text("not a database" * 100, encoding="utf-8")
    assert cli.main(["history", "import", str(GOLDEN), "--history", str(garbage)]) == 2
    assert f"cannot open history sqlite:///{garbage}" in capsys.readouterr().err


V1_SCHEMA = """
CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE runs (id INTEGER PRIMARY KEY, run_key VARCHAR(64) NOT NULL UNIQUE,
  run_path TEXT NOT NULL, state VARCHAR(32), scenario_key TEXT NOT NULL,
  scenario_name VARCHAR(200), scenario_hash VARCHAR(64), repo_root TEXT, git_commit VARCHAR(64),
  git_dirty BOOLEAN, commit_time BIGINT, started_at VARCHAR(40), torch_version VARCHAR(64),
  perfbench_version VARCHAR(64), machine VARCHAR(16) NOT NULL, machine_desc TEXT, command TEXT,
  recorded_at VARCHAR(40));
CREATE TABLE records (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
  point_key TEXT NOT NULL, backend VARCHAR(64) NOT NULL, repeat INTEGER, status VARCHAR(16) NOT NULL,
  error TEXT, median_ms FLOAT, iqr_ms FLOAT, p05_ms FLOAT, p95_ms FLOAT, noise FLOAT, reps INTEGER,
  median_ci_low_ms FLOAT, median_ci_high_ms FLOAT, speedup FLOAT, speedup_ci_low FLOAT,
  speedup_ci_high FLOAT, verdict VARCHAR(32), cold_start_s FLOAT, peak_mem_bytes BIGINT,
  command TEXT);
INSERT INTO runs (id, run_key, run_path, scenario_key, machine) VALUES (1, 'k', '/r', 's.py', 'm');
INSERT INTO records (run_id, point_key, backend, status, median_ms) VALUES (1, '{}', 'eager', 'ok', 2.5);
"""


def test_a_schema_1_store_migrates_to_2_and_keeps_its_records(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    raw = sa.create_engine(f"sqlite:///{db}")
    with raw.begin() as conn:
        for statement in V1_SCHEMA.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    raw.dispose()
    engine = store.make_engine(resolve_url(str(db)))
    assert store.migrate(engine) == 1
    with engine.connect() as conn:
        assert store.schema_version(conn) == 2
        rows = conn.execute(sa.select(store.records)).mappings().all()
    assert [(r["median_ms"], r["contended"], r["contention_note"]) for r in rows] == [
        (2.5, None, None)
    ]
    assert store.migrate(engine) == 2  # already current: nothing to do
    with engine.begin() as conn:  # a store from a newer perfbench is refused, not written
        conn.execute(store.meta_table.update().values(value="99"))
    with pytest.raises(store.HistoryError, match="schema 99 is newer"):
        store.migrate(engine)
    engine.dispose()


KILLED = """
import os, signal, sys
from perfbench.history import store
from perfbench.history.fingerprint import identify
from perfbench.history.record import resolve_url, run_records
engine = store.open_store(resolve_url(sys.argv[1]))
run, rows = run_records(sys.argv[2])
with engine.begin() as conn:
    run_id = conn.execute(store.runs.insert().values(**run)).inserted_primary_key[0]
    conn.execute(store.records.insert(), [{**r, "run_id": run_id} for r in rows[:5]])
    print("half written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed before the transaction commits
"""


def test_a_recording_killed_half_way_leaves_nothing_visible(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    out = subprocess.run(
        [sys.executable, "-c", KILLED, str(db), str(GOLDEN)], capture_output=True, text=True
    )
    assert out.returncode == -signal.SIGKILL and "half written" in out.stdout, out.stderr
    assert _counts(db) == (0, 0)
    assert cli.main(["history", "import", str(GOLDEN), "--history", str(db)]) == 0
    assert _counts(db) == (1, 12)


def test_two_processes_record_at_once(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    folders = []
    for n in range(8):  # copies are different run folders (their resolved paths differ)
        shutil.copytree(GOLDEN, tmp_path / f"run{n}")
        folders.append(str(tmp_path / f"run{n}"))
    cmd = [sys.executable, "-m", "perfbench.cli.main", "history", "import", "--history", str(db)]
    procs = [subprocess.Popen([*cmd[:5], *folders[k::2], *cmd[5:]], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in (0, 1)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert _counts(db) == (8, 8 * 12)
    with sqlite3.connect(db) as conn:  # readers never block the writer
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_perfbench_run_records_and_a_failing_store_only_warns(
    tmp_path: Path, write_scenario, capsys
) -> None:
    scenario = write_scenario(
        textwrap.dedent("""
        import torch
        SWEEP = {"backend": ["eager"], "batch_size": [2], "threads": [1]}
        def build_model():
            return torch.nn.Linear(4, 4)
        def make_batch(batch_size):
            return torch.randn(batch_size, 4)
        """)
    )
    db, run = tmp_path / "h.sqlite", tmp_path / "run"
    argv = ["run", str(scenario), "--budget", "0.05", "--no-control", "-q", "--out", str(run)]
    assert cli.main([*argv, "--history", str(db)]) == 0
    assert _counts(db) == (1, 1)
    capsys.readouterr()
    bad = "sqlite:////nonexistent-dir/never/h.sqlite"  # recorded after the rows are written
    assert cli.main([*argv[:-1], str(tmp_path / "run2"), "--history", bad]) == 0
    err = capsys.readouterr().err
    assert "warning: run not recorded in history" in err and "perfbench history import" in err
    assert (tmp_path / "run2" / "results.csv").is_file()


def test_store_location_from_flag_environment_or_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PERFBENCH_HISTORY", str(tmp_path / "env.sqlite"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'env.sqlite'}"
    assert resolve_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url(str(tmp_path / "flag.sqlite")).endswith("flag.sqlite")
    monkeypatch.setenv("PERFBENCH_HISTORY", "off")
    assert resolve_url() is None
    monkeypatch.setenv("PERFBENCH_HISTORY", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'cache' / 'perfbench' / 'history.sqlite'}"


def test_scenario_identity_in_and_outside_git(tmp_path: Path) -> None:
    outside = tmp_path / "plain" / "s.py"
    outside.parent.mkdir()
    outside.write_text("x = 1\n", encoding="utf-8")
    ident = identify(outside, None, live=True)
    assert ident.key == outside.resolve().as_posix() and ident.commit is None and ident.source_hash
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "s.py").write_text("x = 1\n", encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # fmt: skip
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "v1"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    commit = head.stdout.strip()
    clean = identify(repo / "sub" / "s.py", commit, live=True)
    assert (clean.key, clean.commit, clean.dirty) == ("sub/s.py", commit, False)
    assert clean.commit_time and clean.repo_root
    (repo / "sub" / "s.py").write_text("x = 2\n", encoding="utf-8")
    assert identify(repo / "sub" / "s.py", commit, live=True).dirty is True
    assert identify(repo / "sub" / "s.py", commit, live=False).dirty is None  # an import
