"""Writing runs and jobs the way older code did, for the migration upgrade tests.

Versions 1 to 4 had no ``budget`` column and stored ``total_cost`` as a float
(SQLite REAL, PostgreSQL double precision); versions 1 to 5 had no
``workflow_version`` on runs and jobs. Today's ``insert_run`` and
``insert_job`` no longer fit those schemas, so the tests that build an old
schema write its rows with the statements of that time.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from adapters.postgres.rows import params
from adapters.sqlite.transaction import JOBS, RUNS
from kernel.records import Job, WorkflowRun, WorkflowStage

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
    if run.workflow_version != "1":
        raise ValueError(f"runs before version 6 ran version '1', got {run.workflow_version!r}")
    del row["budget"], row["workflow_version"]
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


def insert_postgres_stage(conn: psycopg.Connection[Any], stage: WorkflowStage) -> None:
    """Insert ``stage`` into a version 2-8 PostgreSQL schema (a plain ``INSERT``: the
    store's own ``insert_stage`` calls ``expect_rows``, which version 9 adds)."""
    values = params(stage)
    names = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    conn.execute(f"INSERT INTO stages ({names}) VALUES ({placeholders})".encode(), values)


JOB_COLUMNS = (
    "id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts, "
    "worker_id, locked_at, available_at, payload, last_error, reap_count, created_at"
)
"""The columns of ``jobs`` in versions 1 to 5."""


def _job_before(job: Job) -> None:
    if job.workflow_version != "1":
        raise ValueError(f"jobs before version 6 ran version '1', got {job.workflow_version!r}")


def insert_sqlite_job(conn: sqlite3.Connection, job: Job) -> None:
    """Insert ``job`` into a version 1-5 SQLite schema."""
    _job_before(job)
    values = ", ".join(f":{name}" for name in JOB_COLUMNS.split(", "))
    conn.execute(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({values})", JOBS.encode(job))


def insert_postgres_job(conn: psycopg.Connection[Any], job: Job) -> None:
    """Insert ``job`` into a version 1-5 PostgreSQL schema."""
    _job_before(job)
    values = ", ".join(f"%({name})s" for name in JOB_COLUMNS.split(", "))
    conn.execute(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({values})".encode(), params(job))
