"""Migration 0008 (limits) upgrades existing databases, SQLite and PostgreSQL: jobs
written before it have no limit and lease as they did, new limited jobs are held
by their key, and an upgraded schema is the schema a new database gets (SPEC §15)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from psycopg import sql
from sqlite_utils import Database

from adapters.postgres import PostgresStore
from adapters.postgres import queries as pg_queries
from adapters.postgres.rows import params
from adapters.sqlite import SqliteStore
from adapters.sqlite.schema import migrate
from adapters.sqlite.transaction import RUNS
from kernel.effects import EnqueueJob
from kernel.ports import Store
from kernel.status import JobStatus
from testing.store_cases.base import at, make_job, make_run
from tests.adapters.old_runs import insert_postgres_job, insert_sqlite_job
from tests.postgres_support import (
    DSN,
    apply,
    connect_to,
    drop_schema,
    fresh_schema,
    require_postgres,
)

LIMITS = 8
"""The version migration 0008 brings a schema to."""

OLD_JOBS = [make_job("job-1", "run-1", 1), make_job("job-2", "run-1", 2)]


def check_upgraded(store: Store) -> None:
    """Old jobs read back without a limit and lease; limited jobs now wait for room."""
    assert store.get_jobs("run-1") == OLD_JOBS
    assert all(job.limit_key is None for job in store.get_jobs("run-1"))
    apply(
        store,
        *(
            EnqueueJob(make_job(f"new-{i}", "run-1", 3 + i, limit_key="k", limit_max_running=1))
            for i in range(2)
        ),
    )
    leased: list[str] = []
    with store.transaction() as tx:
        while (job := tx.lease_next_job("w", at(10))) is not None:
            leased.append(job.id)
    assert leased == ["job-1", "job-2", "new-0"]
    assert [job.status for job in store.get_jobs("run-1")][-1] == JobStatus.QUEUED


# -- SQLite --------------------------------------------------------------------


def sqlite_file_at_version_7(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=LIMITS - 1)
        row = RUNS.encode(make_run("run-1"))
        names = ", ".join(row)
        conn.execute(f"INSERT INTO runs ({names}) VALUES ({', '.join(':' + n for n in row)})", row)
        for job in OLD_JOBS:
            insert_sqlite_job(conn, job)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    assert "limit_key" not in columns


def sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    return [(kind, name, " ".join(text.split())) for kind, name, text in rows]


def test_sqlite_file_at_version_7_is_upgraded_keeping_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_file_at_version_7(path)
    store = SqliteStore(path, create=False)
    try:
        check_upgraded(store)
    finally:
        store.close()
    SqliteStore(tmp_path / "new.db").close()
    assert sqlite_schema(path) == sqlite_schema(tmp_path / "new.db")


# -- PostgreSQL ----------------------------------------------------------------


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = fresh_schema()
    yield name
    drop_schema(name)


COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
WHERE table_schema = %s ORDER BY table_name, column_name
"""
INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY indexname"


def _shape(schema: str) -> list[tuple[object, ...]]:
    with connect_to(schema) as conn:
        columns = conn.execute(COLUMNS.encode(), (schema,)).fetchall()
        indexes = conn.execute(INDEXES.encode(), (schema,)).fetchall()
    drop = f"{schema}."
    return [tuple(row.values()) for row in columns] + [
        (row["indexname"], row["indexdef"].replace(drop, "")) for row in indexes
    ]


@pytest.mark.postgres
def test_postgres_schema_at_version_7_is_upgraded_keeping_its_jobs(schema: str) -> None:
    with connect_to(schema) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(pg_queries.QUERIES["create_schema_version"])
        for migration in pg_queries.MIGRATIONS[: LIMITS - 1]:
            conn.execute(migration.sql.encode())
            conn.execute(pg_queries.QUERIES["record_version"], {"version": migration.version})
        run = params(make_run("run-1"))
        names, values = ", ".join(run), ", ".join(f"%({name})s" for name in run)
        conn.execute(f"INSERT INTO runs ({names}) VALUES ({values})".encode(), run)
        for job in OLD_JOBS:
            insert_postgres_job(conn, job)
    store = PostgresStore(DSN, schema=schema)
    try:
        assert store.migrate() == len(pg_queries.MIGRATIONS) >= LIMITS
        check_upgraded(store)
    finally:
        store.close()
    fresh = fresh_schema()
    try:
        new_store = PostgresStore(DSN, schema=fresh)
        new_store.migrate()
        new_store.close()
        assert _shape(schema) == _shape(fresh)
    finally:
        drop_schema(fresh)
