"""Migration 0003 (signals and schedules) upgrades existing databases, SQLite and
PostgreSQL, keeping what they hold; and its indexes serve the new queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from sqlite_utils import Database

from adapters.postgres import PostgresStore
from adapters.postgres import queries as pg_queries
from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES
from adapters.sqlite.schema import migrate
from adapters.sqlite.transaction import STAGES
from kernel.effects import ConsumeSignal, InsertSchedule, InsertSignal
from kernel.ports import Store
from kernel.status import Status
from testing.store_cases.base import at, make_run, make_stage
from testing.store_cases.signals_schedules import consumed, make_schedule, make_signal
from tests.adapters.old_runs import insert_postgres_run, insert_postgres_stage, insert_sqlite_run
from tests.postgres_support import DSN, apply, drop_schema, fresh_schema, require_postgres

SIGNALS_SCHEDULES = 3
"""The version migration 0003 brings a schema to."""

FAILED = make_stage(
    "run-1", "a", status=Status.FAILED, error="ValueError: bad", error_traceback="Traceback..."
)
"""A stage record as version 2 stores it (with its traceback)."""


def check_upgraded(store: Store) -> None:
    """The version-2 rows are intact and signals and schedules can be stored."""
    assert store.get_run("run-1") == make_run()
    assert store.get_stages("run-1") == [FAILED]
    assert store.get_signals("run-1") == []
    assert store.get_schedules() == []
    signal, schedule = make_signal("sig-1"), make_schedule("s-1", 5)
    apply(store, InsertSignal(signal), InsertSchedule(schedule))
    apply(store, ConsumeSignal(consumed(signal)))
    assert store.get_signals("run-1") == [consumed(signal)]
    with store.transaction() as tx:
        assert tx.due_schedules(at(5), limit=10) == [schedule]


# -- SQLite --------------------------------------------------------------------


def test_sqlite_file_at_version_2_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=SIGNALS_SCHEDULES - 1)
        insert_sqlite_run(conn, make_run())
        conn.execute(QUERIES.insert_stage, STAGES.encode(FAILED))
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "signals" not in tables and "schedules" not in tables
    store = SqliteStore(path, create=False)
    try:
        check_upgraded(store)
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
    assert versions[SIGNALS_SCHEDULES - 1] == (SIGNALS_SCHEDULES, "signals_schedules")


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("due_schedules", "schedules_due"),
        ("buffered_signals", "signals_run"),
        ("get_signals", "signals_run"),
    ],
)
def test_sqlite_signal_and_schedule_queries_use_their_indexes(
    tmp_path: Path, query: str, index: str
) -> None:
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    values = {"now": "", "limit": 1, "workflow_ids": '["wf"]', "workflow_run_id": "run-1"}
    with closing(sqlite3.connect(path)) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {getattr(QUERIES, query)}", values).fetchall()
    assert any(f"INDEX {index}" in row[-1] for row in plan), plan


# -- PostgreSQL ----------------------------------------------------------------


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = fresh_schema()
    yield name
    drop_schema(name)


@pytest.mark.postgres
def test_postgres_schema_at_version_2_is_upgraded_keeping_its_rows(schema: str) -> None:
    """A schema that version-2 code created and used is migrated on first use."""
    with (
        psycopg.connect(DSN, autocommit=True, row_factory=dict_row) as conn,
        conn.transaction(),
    ):
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(pg_queries.QUERIES["create_schema_version"])
        for migration in pg_queries.MIGRATIONS[: SIGNALS_SCHEDULES - 1]:
            conn.execute(migration.sql.encode())
            conn.execute(pg_queries.QUERIES["record_version"], {"version": migration.version})
        insert_postgres_run(conn, make_run())
        insert_postgres_stage(conn, FAILED)
        found = conn.execute(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = %s "
            "AND tablename IN ('signals', 'schedules')",
            (schema,),
        ).fetchone()
    assert found is not None and found["n"] == 0
    store = PostgresStore(DSN, schema=schema)
    try:
        assert store.migrate() == pg_queries.LATEST_VERSION
        check_upgraded(store)
    finally:
        store.close()
    with psycopg.connect(DSN) as plain:
        versions = plain.execute(
            sql.SQL("SELECT version FROM {}.schema_version ORDER BY version").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    assert versions == [(v,) for v in range(1, pg_queries.LATEST_VERSION + 1)]
