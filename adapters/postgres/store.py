"""``PostgresStore``: the store for several processes or machines sharing the work.

Connections come from a ``psycopg_pool.ConnectionPool``; each is configured
with ``search_path`` set to the store's schema, so the named queries in
``queries.sql`` never mention it. Pooled connections run in autocommit: a
store transaction sends ``BEGIN`` itself (with its first statement) and
commits or rolls back at the end, and one-statement operations (reads,
``renew_lease``, ``append_log``, blob writes) are a single round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from adapters.postgres import migrations
from adapters.postgres.errors import is_connection_loss, translated
from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import Row, jsonb, params, record, records
from adapters.postgres.transaction import PostgresTransaction
from kernel.errors import StoreError
from kernel.records import Job, Json, LogEntry, OutboxEvent, WorkflowRun, WorkflowStage
from kernel.status import Status


class PostgresStore:
    """Runs, stages, jobs, outbox, idempotency keys, logs and blobs in one PostgreSQL schema.

    The schema is created or upgraded on first use (or by :meth:`migrate`).
    Claims (``pending_runs``, ``lease_next_job``, ``claim_outbox``) use
    ``FOR UPDATE SKIP LOCKED``, so any number of processes may share a schema.

    Args:
        dsn: a libpq connection string or URL.
        schema: the schema holding the tables (a plain identifier).
        pool_size: connections kept open.
        timeout: seconds to wait for a free connection before ``StoreError``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "workflow_kernel",
        pool_size: int = 4,
        timeout: float = 30.0,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size: expected >= 1, got {pool_size}")
        self.dsn = dsn
        self.schema = migrations.validate_schema(schema)
        self.channel = f"{self.schema}_jobs"
        self._connect_args: dict[str, Any] = {}
        if "application_name" not in conninfo_to_dict(dsn):
            # Names the store's sessions in pg_stat_activity.
            self._connect_args["application_name"] = f"workflow-kernel:{self.schema}"
        self._pool = ConnectionPool(
            dsn,
            connection_class=Connection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row, **self._connect_args},
            min_size=pool_size,
            max_size=pool_size,
            open=False,
            configure=self._configure,
            name=f"workflow-kernel:{self.schema}",
            timeout=timeout,
        )
        self._ready = False
        self._ready_lock = threading.Lock()
        self._local = threading.local()
        self._listener: Connection[Any] | None = None
        self._listener_lock = threading.Lock()

    # -- connections and schema -----------------------------------------------

    def _configure(self, conn: Connection[DictRow]) -> None:
        statement = sql.SQL("SET search_path TO {}; SET TIME ZONE 'UTC'").format(
            sql.Identifier(self.schema)
        )
        conn.execute(statement)

    @contextmanager
    def _connection(self) -> Iterator[Connection[DictRow]]:
        """A pooled connection; after a lost connection, the pool is checked."""
        self._ensure_ready()
        with translated("get a connection"):
            conn = self._pool.getconn()
        try:
            yield conn
        except StoreError as exc:
            lost = is_connection_loss(exc)
            self._pool.putconn(conn)  # a broken connection is discarded, not reused
            if lost:
                # The server may have restarted: drop the other dead idle
                # connections now instead of failing one call on each.
                with suppress(psycopg.Error):
                    self._pool.check()
            raise
        except BaseException:
            self._pool.putconn(conn)
            raise
        self._pool.putconn(conn)

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                with translated("open the connection pool"):
                    self._pool.open(wait=False)
                self._migrate()

    def _migrate(self) -> int:
        with translated(f"migrate schema {self.schema!r}"), self._pool.connection() as conn:
            version = migrations.migrate(conn, self.schema)
        self._ready = True
        return version

    def migrate(self) -> int:
        """Create the schema or upgrade it to the latest version; return that version.

        Safe to call from several processes at once, and again later.

        Raises:
            StoreError: the database is unreachable or its schema is newer than this code.
        """
        with self._ready_lock:
            with translated("open the connection pool"):
                self._pool.open(wait=False)
            return self._migrate()

    def drop_schema(self) -> None:
        """Drop the schema and all its data (tests); the next use creates it again."""
        with self._ready_lock:
            with translated("open the connection pool"):
                self._pool.open(wait=False)
            with translated(f"drop schema {self.schema!r}"), self._pool.connection() as conn:
                migrations.drop(conn, self.schema)
            self._ready = False

    # -- transactions ----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """Open a write transaction: commit on normal exit, roll back on an exception.

        Transactions do not nest within one thread (the second would wait for
        a pooled connection the first may need).
        """
        if getattr(self._local, "in_transaction", False):
            raise StoreError("PostgresStore transactions do not nest")
        self._local.in_transaction = True
        try:
            with self._connection() as conn:
                tx = PostgresTransaction(conn, self.channel)
                try:
                    yield tx
                    tx.commit()
                except BaseException:
                    tx.rollback()
                    raise
        finally:
            self._local.in_transaction = False

    def _rows(self, name: str, values: Row) -> list[Row]:
        with self._connection() as conn, translated(f"run query {name}"):
            return conn.execute(QUERIES[name], values).fetchall()

    def _write(self, name: str, values: Row) -> int:
        with self._connection() as conn, translated(f"run statement {name}"):
            return conn.execute(QUERIES[name], values).rowcount

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        values = {"id": job_id, "worker_id": worker_id, "now": now}
        return self._write("renew_lease", values) == 1

    def append_log(self, entry: LogEntry) -> None:
        self._write("insert_log", params(entry))

    # -- blobs (each its own transaction) ----------------------------------------

    def get_blob(self, key: str) -> tuple[bool, Json]:
        rows = self._rows("get_blob", {"key": key})
        return (True, rows[0]["value"]) if rows else (False, None)

    def put_blob(self, key: str, value: Json) -> None:
        self._write("put_blob", {"key": key, "value": jsonb(value)})

    def delete_blob(self, key: str) -> None:
        self._write("delete_blob", {"key": key})

    # -- queries for tools, tests and the CLI ----------------------------------

    def get_run(self, run_id: str) -> WorkflowRun | None:
        rows = self._rows("get_run", {"id": run_id})
        return record(rows[0], WorkflowRun) if rows else None

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return records(self._rows("get_stages", {"workflow_run_id": run_id}), WorkflowStage)

    def list_runs(
        self, status: Status | None = None, workflow_id: str | None = None, limit: int = 100
    ) -> list[WorkflowRun]:
        """Runs, newest first, optionally filtered."""
        values = {
            "status": None if status is None else Status(status).value,
            "workflow_id": workflow_id,
            "limit": max(limit, 0),
        }
        return records(self._rows("list_runs", values), WorkflowRun)

    def get_logs(self, run_id: str) -> list[LogEntry]:
        return records(self._rows("get_logs", {"workflow_run_id": run_id}), LogEntry)

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        """Outbox events in insertion order (per run: by sequence)."""
        if run_id is None:
            rows = self._rows("get_outbox", {})
        else:
            rows = self._rows("get_run_outbox", {"workflow_run_id": run_id})
        return records(rows, OutboxEvent)

    def get_jobs(self, run_id: str) -> list[Job]:
        return records(self._rows("get_jobs", {"workflow_run_id": run_id}), Job)

    # -- LISTEN/NOTIFY ---------------------------------------------------------

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block until a job is queued (``NOTIFY``) or ``timeout`` seconds pass.

        Listening starts on the first call, on a dedicated connection, and
        notifications that arrive between calls are kept, so a host that
        checks the queue and then waits misses nothing after its first wait.
        Concurrent callers take turns. Returns whether a notification came.

        Raises:
            StoreError: the listening connection failed (the next call reconnects).
        """
        self._ensure_ready()
        with self._listener_lock, translated("wait for jobs"):
            try:
                conn = self._listen()
                woke = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
                if woke:
                    # Coalesce whatever else already arrived into this wake-up.
                    for _ in conn.notifies(timeout=0):
                        pass
                return woke
            except psycopg.Error:
                self._close_listener()
                raise

    def _listen(self) -> Connection[Any]:
        if self._listener is None or self._listener.closed:
            conn = psycopg.connect(self.dsn, autocommit=True, **self._connect_args)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._listener = conn
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        """Close the pool and the listening connection."""
        with self._listener_lock:
            self._close_listener()
        self._pool.close()
        self._ready = False
