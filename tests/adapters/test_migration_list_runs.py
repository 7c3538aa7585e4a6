"""Migration 0004 (list_runs pages) upgrades existing databases, SQLite and PostgreSQL,
keeping what they hold; and every page of ``list_runs`` is an index scan in the
list's order that stops after ``limit`` rows, never a sort of the whole table."""

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
from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES
from adapters.sqlite.schema import migrate
from kernel.ports import Store
from kernel.status import Status
from testing.store_cases.base import make_run
from tests.adapters.old_runs import insert_postgres_run, insert_sqlite_run
from tests.postgres_support import DSN, connect_to, drop_schema, fresh_schema, require_postgres

LIST_RUNS_PAGES = 4
"""The version migration 0004 brings a schema to."""

OLD_RUNS = [
    make_run("run-1", 1, workflow_id="alpha", status=Status.COMPLETED),
    make_run("run-2", 2, workflow_id="beta", status=Status.FAILED),
    make_run("run-3", 3, workflow_id="alpha", status=Status.FAILED),
]
"""Runs as a version-3 schema stores them."""


def check_upgraded(store: Store) -> None:
    """The version-3 runs are intact and list by page, filtered or not."""
    assert store.get_run("run-2") == OLD_RUNS[1]
    assert [run.id for run in store.list_runs(limit=2, before="run-3")] == ["run-2", "run-1"]
    failed = store.list_runs(status=Status.FAILED, before="run-3")
    assert [run.id for run in failed] == ["run-2"]
    assert [run.id for run in store.list_runs(workflow_id="alpha")] == ["run-3", "run-1"]


# -- SQLite --------------------------------------------------------------------


def test_sqlite_file_at_version_3_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(Database(conn), str(path), target=LIST_RUNS_PAGES - 1)
        for run in OLD_RUNS:
            insert_sqlite_run(conn, run)
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "runs_status" not in indexes and "runs_workflow" not in indexes
    store = SqliteStore(path, create=False)
    try:
        check_upgraded(store)
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert versions[LIST_RUNS_PAGES - 1] == (LIST_RUNS_PAGES, "list_runs_pages")
    assert {"runs_status", "runs_workflow"} <= indexes


def sqlite_plan(path: Path, query: str, before: str | None) -> list[str]:
    values = {"status": "FAILED", "workflow_id": "alpha", "limit": 50, "before": before}
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {getattr(QUERIES, query)}", values).fetchall()
    return [row[-1] for row in rows]


@pytest.mark.parametrize("before", [None, "run-2"])
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("list_runs", "runs_created_at (created_at<?)"),
        ("list_runs_by_status", "runs_status (status=? AND created_at<?)"),
        ("list_runs_by_workflow", "runs_workflow (workflow_id=? AND created_at<?)"),
        ("list_runs_by_status_and_workflow", "AND created_at<?)"),
    ],
)
def test_sqlite_list_runs_pages_are_index_range_scans(
    tmp_path: Path, query: str, index: str, before: str | None
) -> None:
    """Each page is a search of its index from the ``before`` run, in the list's order."""
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    plan = sqlite_plan(path, query, before)
    assert plan[0].startswith("SEARCH runs USING INDEX") and plan[0].endswith(index), plan
    assert not any("TEMP B-TREE" in step or step.startswith("SCAN runs") for step in plan), plan


def test_sqlite_claims_still_walk_the_pending_index(tmp_path: Path) -> None:
    """The new status index does not lure the claim of PENDING runs into a sort."""
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        values = {"limit": 1, "workflow_ids": None, "versions": '[["wf", "1"]]'}
        plan = [
            row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {QUERIES.pending_runs}", values)
        ]
    assert any("USING INDEX runs_pending" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


# -- PostgreSQL ----------------------------------------------------------------


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = fresh_schema()
    yield name
    drop_schema(name)


@pytest.mark.postgres
def test_postgres_schema_at_version_3_is_upgraded_keeping_its_rows(schema: str) -> None:
    """A schema that version-3 code created and used is migrated on first use."""
    with connect_to(schema) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(pg_queries.QUERIES["create_schema_version"])
        for migration in pg_queries.MIGRATIONS[: LIST_RUNS_PAGES - 1]:
            conn.execute(migration.sql.encode())
            conn.execute(pg_queries.QUERIES["record_version"], {"version": migration.version})
        for run in OLD_RUNS:
            insert_postgres_run(conn, run)
    store = PostgresStore(DSN, schema=schema)
    try:
        assert store.migrate() == pg_queries.LATEST_VERSION
        check_upgraded(store)
    finally:
        store.close()
    with connect_to(schema) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
        ).fetchall()
    assert {"runs_status_idx", "runs_workflow_idx"} <= {row["indexname"] for row in rows}


FILL = """
INSERT INTO runs (id, workflow_id, workflow_name, status, input, config, priority, metadata,
                  output, created_at, total_cost, total_tokens, version)
SELECT 'run-' || n, CASE WHEN n % 100 = 0 THEN 'rare' ELSE 'wf-' || n % 3 END, 'W',
       CASE WHEN n % 100 = 7 THEN 'FAILED' WHEN n % 50 = 3 THEN 'RUNNING' ELSE 'COMPLETED' END,
       '{}', '{}', 0, '{}', 'null', timestamptz '2024-01-01' + n * interval '1 second', 0, 0, 1
FROM generate_series(1, 20000) AS n
"""
"""20,000 runs: three workflows and a rare one (1 %), mostly COMPLETED, 1 % FAILED."""


@pytest.fixture(scope="module")
def filled_schema() -> Iterator[str]:
    """A schema at the latest version holding ``FILL``'s runs, analysed."""
    require_postgres()
    name = fresh_schema()
    store = PostgresStore(DSN, schema=name)
    try:
        store.migrate()
    finally:
        store.close()
    with connect_to(name) as conn:
        conn.execute(FILL)
        conn.execute("ANALYZE runs")
    yield name
    drop_schema(name)


@pytest.mark.postgres
@pytest.mark.parametrize("before", [None, "run-15000"])
@pytest.mark.parametrize(
    ("query", "status", "workflow_id", "index"),
    [
        ("list_runs", None, None, "runs_created_idx"),
        ("list_runs_by_status", "FAILED", None, "runs_status_idx"),
        ("list_runs_by_status", "COMPLETED", None, "runs_"),
        ("list_runs_by_workflow", None, "rare", "runs_workflow_idx"),
        ("list_runs_by_workflow", None, "wf-1", "runs_"),
        ("list_runs_by_status_and_workflow", "FAILED", "wf-1", "runs_status_idx"),
        ("list_runs_by_status_and_workflow", "COMPLETED", "wf-1", "runs_"),
    ],
)
def test_postgres_list_runs_pages_are_index_scans_that_stop_at_the_limit(
    filled_schema: str,
    query: str,
    status: str | None,
    workflow_id: str | None,
    index: str,
    before: str | None,
) -> None:
    """Planned for its values (as list_runs runs it), a page walks an index from the
    ``before`` run in the list's order: a selective filter its own index, a filter most
    runs match whichever index is cheaper; the Limit stops the walk, nothing is sorted.

    (When it expects fewer matches than about a page, PostgreSQL may rather fetch them
    all through the filter's index and sort those few: never the whole table.)"""
    values = {"status": status, "workflow_id": workflow_id, "limit": 50, "before": before}
    with connect_to(filled_schema) as conn:
        rows = conn.execute(b"EXPLAIN " + pg_queries.QUERIES[query], values).fetchall()
    plan = [row["QUERY PLAN"] for row in rows]
    assert plan[0].startswith("Limit"), plan
    # The InitPlans look the "before" run up by its key; the page is the one other scan.
    scans = [step for step in plan if "Scan" in step and "runs_pkey" not in step]
    assert len(scans) == 1 and f"Index Scan using {index}" in scans[0], plan
    assert not any("Sort" in step for step in plan), plan
    conditions = " ".join(step for step in plan if "Index Cond" in step)
    assert "ROW(created_at, seq) <" in conditions, plan


@pytest.mark.postgres
def test_postgres_claims_still_walk_the_pending_index(filled_schema: str) -> None:
    """The new status index does not lure the claim of PENDING runs away from its own."""
    values = {"limit": 10, "workflow_ids": None, "version_ids": ["wf"], "version_names": ["1"]}
    with connect_to(filled_schema) as conn:
        rows = conn.execute(b"EXPLAIN " + pg_queries.QUERIES["pending_runs"], values).fetchall()
    plan = [row["QUERY PLAN"] for row in rows]
    assert any("Index Scan using runs_pending_idx" in step for step in plan), plan
