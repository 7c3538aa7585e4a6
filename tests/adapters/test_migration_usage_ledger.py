"""Migration 0005 (usage ledger, batch cancels, exact money) upgrades existing databases,
SQLite and PostgreSQL, keeping what they hold: float costs become the Decimal of their
shortest repr, the rebuilt SQLite runs table keeps its rows, order, references and
indexes, and an upgraded schema is the schema a new database gets (SPEC §11, §12.1)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve
from psycopg import sql
from sqlite_utils import Database

from adapters.postgres import PostgresStore
from adapters.postgres import queries as pg_queries
from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES
from adapters.sqlite.schema import migrate
from adapters.sqlite.transaction import STAGES
from kernel.effects import InsertBatchCancel, InsertRun, InsertUsage, UpdateRun
from kernel.ports import Store
from kernel.status import Status
from testing.store_cases.base import bump, make_job, make_run, make_stage
from testing.store_cases.ledger import make_cancel, make_entry
from tests.adapters.old_runs import (
    insert_postgres_job,
    insert_postgres_run,
    insert_postgres_stage,
    insert_sqlite_job,
    insert_sqlite_run,
)
from tests.postgres_support import (
    DSN,
    apply,
    connect_to,
    drop_schema,
    fresh_schema,
    require_postgres,
)

USAGE_LEDGER = 5
"""The version migration 0005 brings a schema to."""

OLD_COSTS = {
    "run-1": 0.1 + 0.2,
    "run-2": 12345678.12345678,
    "run-3": 0.0,
    "run-4": 1e-05,
    "run-5": 0.25,
}
"""The float each version-4 run spent, by run id."""

OLD_RUNS = [
    make_run(run_id, n, status=Status.COMPLETED if n % 2 else Status.PENDING, total_tokens=n)
    for n, run_id in enumerate(OLD_COSTS, start=1)
]
STAGE = make_stage("run-1", "extract", status=Status.COMPLETED)
JOB = make_job("job-1", "run-2")


def expected(run_id: str) -> Decimal:
    """What an old run's float cost reads back as: the Decimal of its repr."""
    return Decimal(repr(OLD_COSTS[run_id]))


def check_upgraded(store: Store) -> None:
    """The version-4 rows are intact, costs exact, and the new tables work."""
    for old in OLD_RUNS:
        run = store.get_run(old.id)
        assert run == evolve(old, total_cost=expected(old.id)), old.id
    # Every digit of the repr (an integral float may read back as 0 or 0.0: one value).
    digits = {run.id: str(run.total_cost) for run in store.list_runs()}
    assert (digits["run-1"], digits["run-2"], digits["run-4"]) == (
        "0.30000000000000004",
        "12345678.12345678",
        "0.00001",
    )
    assert [run.id for run in store.list_runs()] == ["run-5", "run-4", "run-3", "run-2", "run-1"]
    assert store.get_stages("run-1") == [STAGE]
    assert store.get_jobs("run-2") == [JOB]
    with store.transaction() as tx:
        assert [run.id for run in tx.pending_runs(10)] == ["run-2", "run-4"]
    run = store.get_run("run-1")
    assert run is not None
    spent = bump(run, total_cost=Decimal("0.30000000"), budget=Decimal("5.00"))
    entry = make_entry("call-1")
    apply(store, UpdateRun(spent, expected_version=run.version), InsertUsage(entry))
    apply(store, InsertBatchCancel(make_cancel("b-1")), InsertRun(make_run("run-6", 9)))
    assert store.get_run("run-1") == spent
    assert store.get_usage("run-1") == [entry]
    assert store.get_batch_cancels() == [make_cancel("b-1")]


# -- SQLite --------------------------------------------------------------------


def sqlite_file_at_version_4(path: Path) -> None:
    """A file as version-4 code left it: float costs, a stage and a job referencing runs."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=USAGE_LEDGER - 1)
        for run in OLD_RUNS:
            insert_sqlite_run(conn, run, OLD_COSTS[run.id])
        conn.execute(QUERIES.insert_stage, STAGES.encode(STAGE))
        insert_sqlite_job(conn, JOB)
        kinds = conn.execute("SELECT DISTINCT typeof(total_cost) FROM runs").fetchall()
    assert kinds == [("real",)]


def sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    """Every table and index of the file: (type, name, SQL), SQLite's own indexes included."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    return [(kind, name, " ".join(text.split())) for kind, name, text in rows]


def test_sqlite_file_at_version_4_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_file_at_version_4(path)
    store = SqliteStore(path, create=False)
    try:
        check_upgraded(store)
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
        kinds = conn.execute("SELECT DISTINCT typeof(total_cost) FROM runs").fetchall()
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
    assert versions[USAGE_LEDGER - 1] == (USAGE_LEDGER, "usage_ledger")
    assert kinds == [("text",)]
    assert dangling == []


def test_sqlite_upgraded_schema_is_the_schema_of_a_new_file(tmp_path: Path) -> None:
    """Tables, columns and indexes (the list_runs indexes of version 4 included) match."""
    sqlite_file_at_version_4(tmp_path / "old.db")
    SqliteStore(tmp_path / "old.db", create=False).close()
    SqliteStore(tmp_path / "new.db").close()
    upgraded = sqlite_schema(tmp_path / "old.db")
    assert upgraded == sqlite_schema(tmp_path / "new.db")
    names = {name for _, name, _ in upgraded}
    assert {"runs_pending", "runs_created_at", "runs_status", "runs_workflow"} <= names
    assert {"usage", "usage_run", "batch_cancels", "batch_cancels_pending"} <= names
    assert "runs_before_0005" not in names


def test_sqlite_money_is_text_that_a_float_column_would_have_rounded(tmp_path: Path) -> None:
    """``total_cost``, ``budget`` and ``cost`` are TEXT: the Decimal's digits as written."""
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    try:
        run = make_run(total_cost=Decimal("0.10000000000000000001"), budget=Decimal("1.10"))
        apply(store, InsertRun(run), InsertUsage(make_entry("c", cost=Decimal("0.30000000"))))
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT total_cost, budget FROM runs").fetchone() == (
            "0.10000000000000000001",
            "1.10",
        )
        assert conn.execute("SELECT cost FROM usage").fetchone() == ("0.30000000",)


@pytest.mark.parametrize(
    ("query", "index", "values"),
    [
        ("get_usage", "usage_run", {"workflow_run_id": "run-1"}),
        ("pending_batch_cancels", "batch_cancels_pending", {"limit": 10}),
    ],
)
def test_sqlite_ledger_queries_walk_their_indexes_without_sorting(
    tmp_path: Path, query: str, index: str, values: dict[str, Any]
) -> None:
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        plan = [
            row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {getattr(QUERIES, query)}", values)
        ]
    assert any(f"INDEX {index}" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


# -- PostgreSQL ----------------------------------------------------------------


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = fresh_schema()
    yield name
    drop_schema(name)


COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable
FROM information_schema.columns
WHERE table_schema = %s AND table_name IN ('runs', 'usage', 'batch_cancels')
ORDER BY table_name, column_name
"""


@pytest.mark.postgres
def test_postgres_schema_at_version_4_is_upgraded_keeping_its_rows(schema: str) -> None:
    """A schema that version-4 code created and used is migrated on first use; its
    columns are then those of a new schema."""
    with connect_to(schema) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(pg_queries.QUERIES["create_schema_version"])
        for migration in pg_queries.MIGRATIONS[: USAGE_LEDGER - 1]:
            conn.execute(migration.sql.encode())
            conn.execute(pg_queries.QUERIES["record_version"], {"version": migration.version})
        for run in OLD_RUNS:
            insert_postgres_run(conn, run, OLD_COSTS[run.id])
        insert_postgres_stage(conn, STAGE)
        insert_postgres_job(conn, JOB)
    store = PostgresStore(DSN, schema=schema)
    try:
        assert store.migrate() == len(pg_queries.MIGRATIONS)
        check_upgraded(store)
    finally:
        store.close()
    fresh = fresh_schema()
    try:
        new_store = PostgresStore(DSN, schema=fresh)
        try:
            new_store.migrate()
        finally:
            new_store.close()
        with connect_to(schema) as conn:
            upgraded = conn.execute(COLUMNS, (schema,)).fetchall()
            new = conn.execute(COLUMNS, (fresh,)).fetchall()
    finally:
        drop_schema(fresh)
    assert upgraded == new
    types = {(row["table_name"], row["column_name"]): row["data_type"] for row in upgraded}
    assert types["runs", "total_cost"] == types["runs", "budget"] == "numeric"
    assert types["usage", "cost"] == "numeric"
