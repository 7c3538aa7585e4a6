"""Writing runs the way code before schema version 5 did, for the migration upgrade tests.

Versions 1 to 4 had no ``budget`` column and stored ``total_cost`` as a float
(SQLite REAL, PostgreSQL double precision); today's ``insert_run`` no longer
fits those schemas, so the tests that build an old schema write its runs with
the statement of that time.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from adapters.postgres.rows import params
from adapters.sqlite.transaction import RUNS
from kernel.records import WorkflowRun

COLUMNS = (
    "id, workflow_id, workflow_name, status, input, config, priority, metadata, output, error, "
    "created_at, started_at, completed_at, duration_ms, total_cost, total_tokens, version"
)
SQLITE_INSERT_RUN = (
    f"INSERT INTO runs ({COLUMNS}) VALUES ("
    + ", ".join(f":{name}" for name in COLUMNS.split(", "))
    + ")"
)
POSTGRES_INSERT_RUN = (
    f"INSERT INTO runs ({COLUMNS}) VALUES ("
    + ", ".join(f"%({name})s" for name in COLUMNS.split(", "))
    + ")"
)


def _as_before(row: dict[str, Any], run: WorkflowRun, cost: float | None) -> dict[str, Any]:
    if run.budget is not None:
        raise ValueError(f"runs before version 5 have no budget, got {run.budget!r}")
    del row["budget"]
    row["total_cost"] = float(run.total_cost) if cost is None else cost
    return row


def insert_sqlite_run(
    conn: sqlite3.Connection, run: WorkflowRun, cost: float | None = None
) -> None:
    """Insert ``run`` into a version 1-4 SQLite schema, its cost the float ``cost`` (default:
    ``float(run.total_cost)``)."""
    conn.execute(SQLITE_INSERT_RUN, _as_before(RUNS.encode(run), run, cost))


def insert_postgres_run(
    conn: psycopg.Connection[Any], run: WorkflowRun, cost: float | None = None
) -> None:
    """Insert ``run`` into a version 1-4 PostgreSQL schema (as :func:`insert_sqlite_run`)."""
    conn.execute(POSTGRES_INSERT_RUN.encode(), _as_before(params(run), run, cost))
