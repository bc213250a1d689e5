"""The history store: one SQL database of every recorded run, through SQLAlchemy Core.

Why SQLAlchemy Core and not the sqlite3 module: the same code talks to the embedded SQLite file
(the default, under the user's cache folder) and to a PostgreSQL server a team's CI machines
share (`--history postgresql+psycopg://...`). Core, not the ORM: the tables are plain rows, read
into dicts for the statistics; there are no objects with identity to keep.

Two tables: `runs` (one row per run folder: scenario, commit, versions, machine) and `records`
(one row per results.csv row: the point's axes, medians, speedup, verdict, contention). A run and
all its records are written in ONE transaction, so a run killed half-way through recording leaves
nothing visible, and the unique `run_key` makes recording a folder twice a no-op (a folder
recorded while still running is replaced when re-recorded complete). SQLite runs in
WAL mode (readers never block the writer) with `BEGIN IMMEDIATE` (two writers queue on the
busy timeout instead of failing when a read transaction tries to become a write one).

The schema is versioned in `meta.schema_version`; `migrate` brings an older database forward,
one step at a time (`MIGRATIONS`), inside a transaction. A database newer than this perfbench
is refused, never written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = 2
SQLITE_BUSY_TIMEOUT_S = 60.0

metadata = sa.MetaData()
meta_table = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_key", sa.String(64), nullable=False, unique=True),
    sa.Column("run_path", sa.Text, nullable=False),
    sa.Column("state", sa.String(32)),
    sa.Column("scenario_key", sa.Text, nullable=False, index=True),
    sa.Column("scenario_name", sa.String(200)),
    sa.Column("scenario_hash", sa.String(64)),
    sa.Column("repo_root", sa.Text),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("commit_time", sa.BigInteger),
    sa.Column("started_at", sa.String(40)),
    sa.Column("torch_version", sa.String(64)),
    sa.Column("perfbench_version", sa.String(64)),
    sa.Column("machine", sa.String(16), nullable=False),
    sa.Column("machine_desc", sa.Text),
    sa.Column("command", sa.Text),
    sa.Column("recorded_at", sa.String(40)),
)
records = sa.Table(
    "records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("point_key", sa.Text, nullable=False),  # the axes but backend, canonical JSON
    sa.Column("backend", sa.String(64), nullable=False),
    sa.Column("repeat", sa.Integer),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("median_ms", sa.Float),
    sa.Column("iqr_ms", sa.Float),
    sa.Column("p05_ms", sa.Float),
    sa.Column("p95_ms", sa.Float),
    sa.Column("noise", sa.Float),
    sa.Column("reps", sa.Integer),
    sa.Column("median_ci_low_ms", sa.Float),
    sa.Column("median_ci_high_ms", sa.Float),
    sa.Column("speedup", sa.Float),
    sa.Column("speedup_ci_low", sa.Float),
    sa.Column("speedup_ci_high", sa.Float),
    sa.Column("verdict", sa.String(32)),
    sa.Column("cold_start_s", sa.Float),
    sa.Column("peak_mem_bytes", sa.BigInteger),
    sa.Column("command", sa.Text),  # reruns this one point
    # added in schema 2: the contention caveat travels with the number
    sa.Column("contended", sa.Boolean),
    sa.Column("contention_note", sa.Text),
)


class HistoryError(RuntimeError):
    """The store cannot be opened or written (bad URL, newer schema, ...); names the URL."""


def _migrate_1_to_2(conn: Connection) -> None:
    """Schema 1 had no contention columns: add them (NULL: not known for old records)."""
    conn.execute(sa.text("ALTER TABLE records ADD COLUMN contended BOOLEAN"))
    conn.execute(sa.text("ALTER TABLE records ADD COLUMN contention_note TEXT"))


# version -> the step that brings a database at that version to the next one
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migrate_1_to_2}


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as err:
        raise HistoryError(f"history URL {url!r} is not a database URL: {err}") from None
    if parsed.get_backend_name() != "sqlite":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except (sa.exc.NoSuchModuleError, ImportError) as err:
            hint = " (pip install 'perfbench[postgres]')" if "postgres" in url else ""
            raise HistoryError(f"history URL {url!r}: no driver for it{hint}: {err}") from None
    engine = sa.create_engine(
        parsed,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None},
        poolclass=sa.pool.NullPool,
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def schema_version(conn: Connection) -> int | None:
    """The stored schema version; None for an empty database."""
    if not sa.inspect(conn).has_table("meta"):
        return None
    value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version"))
    row = value.first()
    return int(row[0]) if row else None


def migrate(engine: Engine) -> int:
    """Create the tables in an empty database, or bring an older schema to SCHEMA_VERSION.
    Returns the version found (0 for an empty database)."""
    with engine.begin() as conn:
        found = schema_version(conn)
        if found is None:
            metadata.create_all(conn)
            conn.execute(
                meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
            )
            return 0
        if found > SCHEMA_VERSION:
            raise HistoryError(
                f"{engine.url!r}: history schema {found} is newer than this perfbench's "
                f"{SCHEMA_VERSION}; upgrade perfbench to use it"
            )
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
            conn.execute(
                meta_table.update()
                .where(meta_table.c.key == "schema_version")
                .values(value=str(version + 1))
            )
        return found


def open_store(url: str) -> Engine:
    """An engine on a migrated store; errors name the URL."""
    engine = make_engine(url)
    try:
        migrate(engine)
    except sa.exc.SQLAlchemyError as err:
        engine.dispose()
        raise HistoryError(f"cannot open history {engine.url!r}: {err}") from None
    return engine


def insert_run(engine: Engine, run: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write one run and its records in one transaction; returns the records added. A run_key
    already stored with the same state and as many records adds nothing (re-recording a folder
    is a no-op); one stored while it was still being written (other state or fewer rows) is
    replaced, in the same transaction, so a folder recorded mid-run is complete once re-imported."""
    values = list(rows)
    with engine.begin() as conn:
        found = conn.execute(
            sa.select(runs.c.id, runs.c.state).where(runs.c.run_key == run["run_key"])
        ).first()
        if found is not None:
            stored = conn.execute(
                sa.select(sa.func.count()).select_from(records).where(records.c.run_id == found[0])
            ).scalar_one()
            if found[1] == run.get("state") and stored >= len(values):
                return 0
            conn.execute(records.delete().where(records.c.run_id == found[0]))
            conn.execute(runs.delete().where(runs.c.id == found[0]))
        run_id = conn.execute(runs.insert().values(**run)).inserted_primary_key[0]
        if values:
            conn.execute(records.insert(), [{**row, "run_id": run_id} for row in values])
        return len(values)


def load(engine: Engine, scenario_keys: Iterable[str]) -> list[dict[str, Any]]:
    """Every record of these scenarios joined with its run, as dicts (oldest run first)."""
    query = (
        sa.select(records, *[c for c in runs.c if c.name != "id"])
        .join(runs, records.c.run_id == runs.c.id)
        .where(runs.c.scenario_key.in_(list(scenario_keys)))
        .order_by(runs.c.id, records.c.id)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def scenario_keys(engine: Engine) -> list[tuple[str, str | None]]:
    """(scenario_key, scenario_name) of every stored scenario."""
    with engine.connect() as conn:
        query = sa.select(runs.c.scenario_key, runs.c.scenario_name).distinct()
        return [(r[0], r[1]) for r in conn.execute(query)]


def count(engine: Engine) -> tuple[int, int]:
    """(runs, records) stored."""
    with engine.connect() as conn:
        n_runs = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
        n_rec = conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one()
        return int(n_runs), int(n_rec)
