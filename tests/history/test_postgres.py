"""The history store on a real PostgreSQL server, started by this test in a temp folder (Debian's
`postgresql`, installed by .ci/run): a unix socket only, no TCP port, trust auth, fsync off.
PostgreSQL refuses to run as root, so under root (CI) initdb and pg_ctl run as the `postgres`
user via runuser. Skipped, with the reason, where the server cannot start."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfbench.cli import main as cli
from perfbench.history import store

GOLDEN = Path(__file__).parents[1] / "report" / "data" / "mlp_run"


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _run(argv: list[str], as_postgres: bool) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    pytest.importorskip(
        "psycopg", reason="psycopg not installed (pip install 'perfbench[postgres]')"
    )
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("postgresql not installed (apt-get install postgresql; .ci/run does this)")
    as_postgres = os.geteuid() == 0
    if as_postgres and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: PostgreSQL refuses to start as root")
    base = Path(tempfile.mkdtemp(prefix="perfbench-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_postgres:
        for path in (base, sock):
            shutil.chown(path, "postgres")
    try:
        init = _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], as_postgres)
        if init.returncode:
            pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
        options = f"-c listen_addresses='' -k {sock} -p 54329 -c fsync=off"
        start = _run(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
            as_postgres,
        )
        if start.returncode:
            pytest.skip(f"PostgreSQL did not start: {start.stderr.strip()[-300:]}")
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}&port=54329"
        _run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], as_postgres)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_history_on_a_real_postgresql_server(pg_url: str, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "mlp_run"
    shutil.copytree(GOLDEN, copy)
    assert cli.main(["history", "import", str(GOLDEN), str(copy), "--history", pg_url]) == 0
    assert cli.main(["history", "import", str(GOLDEN), "--history", pg_url]) == 0
    engine = store.open_store(pg_url)
    with engine.connect() as conn:
        assert engine.dialect.name == "postgresql" and store.schema_version(conn) == 2
    assert store.count(engine) == (2, 24)
    engine.dispose()
    capsys.readouterr()
    argv = ["history", "scenarios/mlp.py", "--history", pg_url, "--point", "batch_size=4"]
    assert cli.main([*argv, "--point", "amp=off", "--fail-on-regression", "5"]) == 0
    out = capsys.readouterr().out
    assert "48 [" in out or "48 n=2" in out  # the two identical records of eager at batch 4
