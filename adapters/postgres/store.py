"""``PostgresStore``: the store for several processes or machines sharing the work.

Connections come from a ``psycopg_pool.ConnectionPool``; each is configured
with ``search_path`` set to the store's schema, so the named queries in
``queries.sql`` never mention it. Pooled connections run in autocommit: a
store transaction sends ``BEGIN`` itself, with its first statement, and its
effects with its next statement or its ``COMMIT``, in pipeline mode
(:mod:`adapters.postgres.pipeline`); reads the kernel makes one after the
other go out together (:mod:`adapters.postgres.ahead`). One-statement
operations (reads, ``renew_lease``, ``append_log``, blob writes) are a single
round trip.

The first use connects once directly, outside the pool, and migrates on that
connection: an unreachable server, an unknown host or a wrong database fails
at once with libpq's reason (:class:`StoreUnavailableError`) instead of after
the pool's timeout. Every connect is bounded by ``connect_timeout``. When the
pool's last connect failed, callers wait for a pooled connection at most
:data:`FAIL_FAST_S` and get that failure's reason.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from adapters.postgres import migrations
from adapters.postgres.errors import (
    ConnectHealth,
    StoreUnavailableError,
    connect_failure,
    describe,
    is_connection_loss,
    recording_connection,
    server,
    translated,
)
from adapters.postgres.finish_checks import Doubts
from adapters.postgres.listener import Listener
from adapters.postgres.queries import QUERIES
from adapters.postgres.reads import PostgresReads
from adapters.postgres.rows import JsonbLoader, Row, jsonb, params
from adapters.postgres.transaction import PostgresTransaction
from kernel.errors import StoreError
from kernel.records import Json, LogEntry

FAIL_FAST_S = 1.0
"""How long a caller waits for a pooled connection once the pool's last connect failed."""

CLOSE_WAIT_S = 0.5
"""How long :meth:`PostgresStore.close` waits for threads busy with the server (a hung connect)."""


class PostgresStore(PostgresReads):
    """Runs, stages, jobs, outbox, idempotency keys, logs, blobs, signals and schedules in
    one PostgreSQL schema.

    The schema is created or upgraded on first use (or by :meth:`migrate`).
    Claims (``pending_runs``, ``lease_next_job``, ``claim_outbox``, ``due_schedules``) use
    ``FOR UPDATE SKIP LOCKED``, so any number of processes may share a schema.

    Args:
        dsn: a libpq connection string or URL.
        schema: the schema holding the tables (a plain identifier).
        pool_size: connections kept open.
        timeout: seconds to wait for a free connection before ``StoreError``.
        connect_timeout: seconds one connection attempt may take (libpq's
            ``connect_timeout``, at least 2); default: the DSN's
            ``connect_timeout``, else ``timeout``.
        connection_class: the class of pooled connections and of the ``LISTEN``
            connection, a subclass of ``psycopg.Connection`` (to instrument them, as
            ``bench/pg_counting.py`` counts round trips).

    Raises:
        ValueError: a bad setting or DSN (the message names it).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "workflow_kernel",
        pool_size: int = 4,
        timeout: float = 30.0,
        connect_timeout: float | None = None,
        connection_class: type[Connection[DictRow]] = Connection,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size: expected >= 1, got {pool_size}")
        if timeout <= 0 or (connect_timeout is not None and connect_timeout <= 0):
            raise ValueError(
                f"timeout and connect_timeout: expected seconds > 0, got {timeout} and "
                f"{connect_timeout}"
            )
        self.dsn = dsn
        self._doubts: Doubts | None = Doubts()
        """Jobs whose optimistic finish check failed (None: every finish checks first)."""
        self.schema = migrations.validate_schema(schema)
        self.channel = f"{self.schema}_jobs"
        self.timeout = timeout
        try:
            info = conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise ValueError(f"dsn: {' '.join(str(exc).split())}") from None
        self._connect_args: dict[str, Any] = {}
        if "application_name" not in info:
            # Names the store's sessions in pg_stat_activity.
            self._connect_args["application_name"] = f"workflow-kernel:{self.schema}"
        if connect_timeout is None and info.get("connect_timeout") is not None:
            given = float(str(info["connect_timeout"]))
            # As libpq and psycopg read it: 0 or less waits psycopg's default, 130 s.
            self.connect_timeout = max(given, 2.0) if given > 0 else 130.0
        else:
            # Without one, a black-holed address would hold each connect for minutes.
            self.connect_timeout = max(float(math.ceil(connect_timeout or timeout)), 2.0)
            self._connect_args["connect_timeout"] = int(self.connect_timeout)
        self._health = ConnectHealth()
        self._closed = False
        self._pool = ConnectionPool(
            dsn,
            connection_class=recording_connection(self._health, connection_class),
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
        self._listener = Listener(
            dsn,
            schema=self.schema,
            channel=self.channel,
            connect_args=self._connect_args,
            connect_timeout=self.connect_timeout,
            connection_class=connection_class,
        )

    # -- connections and schema -----------------------------------------------

    def _configure(self, conn: Connection[DictRow]) -> None:
        # enable_seqscan off: every statement of the store finds its rows by key or
        # walks an index. psycopg prepares a statement after a few runs, and PostgreSQL
        # then keeps the plan it chose for the tables as they were: nearly empty on a
        # new schema, where a join of a group's rows scanned the whole runs, stages or
        # jobs table. Until an ANALYZE (autovacuum's) made it plan again, it went on
        # scanning them as they grew. A table no index serves is still scanned.
        statement = sql.SQL(
            "SET search_path TO {}; SET TIME ZONE 'UTC'; SET enable_seqscan = off"
        ).format(sql.Identifier(self.schema))
        conn.execute(statement)
        conn.adapters.register_loader("jsonb", JsonbLoader)

    @contextmanager
    def _connection(self) -> Iterator[Connection[DictRow]]:
        """A pooled connection; after a lost connection, the pool is checked."""
        self._ensure_ready()
        conn = self._getconn()
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

    def _getconn(self) -> Connection[DictRow]:
        """A connection from the pool; when the pool's last connect failed, fail fast with it.

        Waits up to ``timeout``, in slices of :data:`FAIL_FAST_S`: after a
        slice, a failed connect of the pool ends the wait with its reason.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            wait = max(min(FAIL_FAST_S, deadline - time.monotonic()), 0.001)
            try:
                return self._pool.getconn(timeout=wait)
            except PoolTimeout as exc:
                failure = self._health.failure
                if failure is not None:
                    raise connect_failure(self.dsn, failure, self.connect_timeout) from exc
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(
                        f"PostgresStore could not get a connection: no PostgreSQL connection to "
                        f"{server(self.dsn)} became available within {self.timeout:g} s (all "
                        f"{self._pool.max_size} pooled connections are in use, or still "
                        "connecting)"
                    ) from exc
            except PoolClosed as exc:
                raise StoreUnavailableError(
                    f"PostgresStore could not get a connection: {describe(exc)}"
                ) from exc
            except psycopg.Error as exc:
                raise StoreError(
                    f"PostgresStore could not get a connection: {describe(exc)}"
                ) from exc

    def _connect_direct(self) -> Connection[DictRow]:
        """One connection outside the pool: a connect failure gives libpq's reason at once."""
        if self._closed:
            raise StoreUnavailableError("PostgresStore could not connect: the store is closed")
        try:
            return Connection.connect(
                self.dsn, autocommit=True, row_factory=dict_row, **self._connect_args
            )
        except psycopg.Error as exc:
            raise connect_failure(self.dsn, exc, self.connect_timeout) from exc

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                self._open()

    def _open(self) -> int:
        """Connect directly and migrate (so a bad server fails fast), then open the pool."""
        with self._connect_direct() as conn:
            self._configure(conn)
            with translated(f"migrate schema {self.schema!r}"):
                version = migrations.migrate(conn, self.schema)
        with translated("open the connection pool"):
            self._pool.open(wait=False)
        self._ready = True
        return version

    def migrate(self) -> int:
        """Create the schema or upgrade it to the latest version; return that version.

        Safe to call from several processes at once, and again later.

        Raises:
            StoreError: the database is unreachable or its schema is newer than this code.
        """
        with self._ready_lock:
            if not self._ready:
                return self._open()
        with self._connection() as conn, translated(f"migrate schema {self.schema!r}"):
            return migrations.migrate(conn, self.schema)

    def drop_schema(self) -> None:
        """Drop the schema and all its data (tests); the next use creates it again."""
        with self._ready_lock:
            with self._connect_direct() as conn, translated(f"drop schema {self.schema!r}"):
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
                tx = PostgresTransaction(conn, self.channel, self._doubts)
                try:
                    yield tx
                    tx.commit()
                except BaseException:
                    tx.rollback()
                    raise
        finally:
            self._local.in_transaction = False

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
        return self._listener.wait(timeout)

    def look_turn(self, timeout: float) -> AbstractContextManager[bool]:
        """The look turn of this schema's idle workers (``kernel.ports.LookTurns``): wait
        up to ``timeout`` seconds for it; the context's value is whether a PENDING run or
        a QUEUED job exists (``True`` also when the turn did not come in time). Held,
        on the ``LISTEN`` connection, until the context is left.

        Raises:
            StoreError: the listening connection failed (the next call reconnects).
        """
        self._ensure_ready()
        return self._listener.turn(timeout)

    def close(self) -> None:
        """Close the pool and the listening connection.

        Bounded even when the server hangs: a thread stuck in a connect or a
        wait is not waited for beyond :data:`CLOSE_WAIT_S` (its connection is
        closed when it lets go).
        """
        self._closed = True
        deadline = time.monotonic() + CLOSE_WAIT_S
        self._listener.closing = True
        if self._listener.lock.acquire(timeout=CLOSE_WAIT_S / 2):
            try:
                self._listener.close()
            finally:
                self._listener.lock.release()
        # The pool waits for each of its worker threads in turn (one may be in
        # a connect): close it in a thread, and wait for that thread only so long.
        closing = threading.Thread(
            target=self._pool.close, kwargs={"timeout": CLOSE_WAIT_S}, daemon=True
        )
        closing.start()
        closing.join(max(deadline - time.monotonic(), 0.05))
        self._ready = False
