"""Migration 0006 (workflow versions) upgrades existing databases, SQLite and PostgreSQL:
every run and job written before it runs version ``"1"``, the version filters of
claims and leases work on the old rows, and an upgraded schema is the schema a new
database gets (SPEC §16)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlite_utils import Database

from adapters.postgres import PostgresStore
from adapters.postgres import queries as pg_queries
from adapters.postgres.rows import params
from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES
from adapters.sqlite.schema import migrate
from adapters.sqlite.transaction import RUNS
from kernel.effects import EnqueueJob, InsertRun
from kernel.ports import Store
from kernel.records import WorkflowRun
from kernel.status import JobStatus, Status
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

VERSIONS = 6
"""The version migration 0006 brings a schema to."""

OLD_RUNS = [
    make_run("run-1", 1, status=Status.RUNNING, budget=Decimal("2.50")),
    make_run("run-2", 2),
    make_run("run-3", 3, workflow_id="other"),
]
OLD_JOBS = [make_job("job-1", "run-1", 1), make_job("job-2", "run-1", 2, workflow_id="other")]


def version_5_row(row: dict[str, Any]) -> dict[str, Any]:
    """A run's columns as version 5 had them: no ``workflow_version``."""
    del row["workflow_version"]
    return row


def insert_statement(columns: list[str], placeholder: str) -> str:
    values = ", ".join(placeholder.format(name) for name in columns)
    return f"INSERT INTO runs ({', '.join(columns)}) VALUES ({values})"


def check_upgraded(store: Store) -> None:
    """The old rows are intact and run version "1"; the filters and new rows work."""
    for old in OLD_RUNS:
        assert store.get_run(old.id) == old
        assert old.workflow_version == "1"
    assert store.get_jobs("run-1") == OLD_JOBS
    with store.transaction() as tx:
        assert [run.id for run in tx.pending_runs(10, versions=[("wf", "1")])] == ["run-2"]
        assert tx.pending_runs(10, versions=[("wf", "2"), ("other", "2")]) == []
        assert tx.lease_next_job("w", at(10), versions=[("wf", "2")]) is None
        leased = tx.lease_next_job("w", at(10), versions=[("other", "1")])
    assert leased is not None and (leased.id, leased.status) == ("job-2", JobStatus.LEASED)
    apply(
        store,
        InsertRun(make_run("run-4", 4, workflow_version="2")),
        EnqueueJob(make_job("job-3", "run-4", 4, workflow_version="2")),
    )
    new_run = store.get_run("run-4")
    assert new_run is not None and new_run.workflow_version == "2"
    with store.transaction() as tx:
        job = tx.lease_next_job("w", at(10), versions=[("wf", "2")])
    assert job is not None and (job.id, job.workflow_version) == ("job-3", "2")


# -- SQLite --------------------------------------------------------------------


def sqlite_file_at_version_5(path: Path) -> None:
    """A file as version-5 code left it: runs and jobs without a workflow version."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=VERSIONS - 1)
        for run in OLD_RUNS:
            row = version_5_row(RUNS.encode(run))
            conn.execute(insert_statement(list(row), ":{}"), row)
        for job in OLD_JOBS:
            insert_sqlite_job(conn, job)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    assert "workflow_version" not in columns


def sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    return [(kind, name, " ".join(text.split())) for kind, name, text in rows]


def test_sqlite_file_at_version_5_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_file_at_version_5(path)
    store = SqliteStore(path, create=False)
    try:
        check_upgraded(store)
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
    assert versions[VERSIONS - 1] == (VERSIONS, "workflow_versions")


def test_sqlite_upgraded_schema_is_the_schema_of_a_new_file(tmp_path: Path) -> None:
    sqlite_file_at_version_5(tmp_path / "old.db")
    SqliteStore(tmp_path / "old.db", create=False).close()
    SqliteStore(tmp_path / "new.db").close()
    assert sqlite_schema(tmp_path / "old.db") == sqlite_schema(tmp_path / "new.db")


@pytest.mark.parametrize(
    ("query", "index"), [("pending_runs", "runs_pending"), ("lease_next_job", "jobs_queued")]
)
def test_sqlite_version_filters_keep_the_scan_on_its_index(
    tmp_path: Path, query: str, index: str
) -> None:
    """The pairs are a list built once ("LIST SUBQUERY"), checked on each row the scan
    walks in lease order: no sort, no scan of the whole table."""
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    values = {
        "limit": 1, "now": "", "now_us": 0, "worker_id": "w", "workflow_ids": None,
        "versions": '[["wf", "1"], ["wf", "2"]]',
    }  # fmt: skip
    with closing(sqlite3.connect(path)) as conn:
        plan = [
            row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {getattr(QUERIES, query)}", values)
        ]
    assert any(f"USING INDEX {index}" in step for step in plan), plan
    assert any("LIST SUBQUERY" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


# -- PostgreSQL ----------------------------------------------------------------


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = fresh_schema()
    yield name
    drop_schema(name)


COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable,
       CASE WHEN column_name = 'workflow_version' THEN column_default END AS version_default
FROM information_schema.columns
WHERE table_schema = %s AND table_name IN ('runs', 'jobs')
ORDER BY table_name, column_name
"""


def postgres_insert_run(conn: psycopg.Connection[Any], run: WorkflowRun) -> None:
    row = version_5_row(params(run))
    conn.execute(insert_statement(list(row), "%({})s").encode(), row)


@pytest.mark.postgres
def test_postgres_schema_at_version_5_is_upgraded_keeping_its_rows(schema: str) -> None:
    with connect_to(schema) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(pg_queries.QUERIES["create_schema_version"])
        for migration in pg_queries.MIGRATIONS[: VERSIONS - 1]:
            conn.execute(migration.sql.encode())
            conn.execute(pg_queries.QUERIES["record_version"], {"version": migration.version})
        for run in OLD_RUNS:
            postgres_insert_run(conn, run)
        for job in OLD_JOBS:
            insert_postgres_job(conn, job)
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
    version_columns = [row for row in upgraded if row["column_name"] == "workflow_version"]
    assert [
        (row["table_name"], row["is_nullable"], row["version_default"]) for row in version_columns
    ] == [("jobs", "NO", "'1'::text"), ("runs", "NO", "'1'::text")]


@pytest.mark.postgres
def test_postgres_lease_with_versions_walks_the_queued_index(schema: str) -> None:
    """The lease stays one walk of ``jobs_queued_idx``; the pairs are a hashed subplan
    built once, not a join that would sort the queue."""
    store = PostgresStore(DSN, schema=schema)
    try:
        store.migrate()
    finally:
        store.close()
    values = {
        "worker_id": "w", "now": at(10), "now_us": 0, "held": None, "workflow_ids": None,
        "version_ids": ["wf", "wf"], "version_names": ["1", "2"],
    }  # fmt: skip
    with connect_to(schema) as conn:
        rows = conn.execute(b"EXPLAIN " + pg_queries.QUERIES["lease_next_job"], values).fetchall()
    plan = [row["QUERY PLAN"] for row in rows]
    assert any("Index Scan using jobs_queued_idx" in step for step in plan), plan
    assert not any("Sort" in step for step in plan), plan
