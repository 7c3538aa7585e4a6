"""``SqliteStore``: the embedded default store, one SQLite file (or ``:memory:``).

Connection model: one ``sqlite3`` connection per store, shared by all
threads and guarded by one re-entrant lock, rather than a connection per
thread. The reasons:

* SQLite admits one writer at a time anyway, and every kernel transaction
  writes; per-thread connections would only add parallel reads, which the
  GIL mostly cancels for statements this short.
* Threads of one process wait on the lock, which wakes the next one as soon
  as a transaction ends, instead of colliding on SQLite's write lock and
  sleeping in its busy handler (up to 100 ms a retry).
* ``:memory:`` is a separate database per connection: one connection is
  the only way to share it between threads.
* One connection keeps one warm prepared-statement cache and needs no
  bookkeeping to close connections of threads that have exited.

Processes sharing a file coordinate through SQLite itself: WAL lets readers
run beside the writer, ``BEGIN IMMEDIATE`` takes the write lock at the
start of every transaction (so a transaction never fails half-way on a lock
upgrade), and the busy timeout makes a writer wait for another process's
transaction before giving up with a ``StoreError``.

sqlite-utils opens and migrates the database and runs the tools' listings;
the hot paths call the ``sqlite3`` connection it wraps (``db.conn``)
directly, because ``Database.execute``/``query`` add a tracer check,
implicit-commit bookkeeping and, for every read, a savepoint.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from adapters.sqlite.codec import dump_json, fetch_dicts, load_json, timestamp
from adapters.sqlite.errors import ErrorMap, NoDatabaseError
from adapters.sqlite.ledger import CANCELS, usage_entry
from adapters.sqlite.queries import QUERIES as Q
from adapters.sqlite.schema import check_read_only, migrate, require_schema
from adapters.sqlite.transaction import (
    JOBS,
    LOGS,
    OUTBOX,
    RUNS,
    SCHEDULES,
    SIGNALS,
    STAGES,
    SqliteTransaction,
)
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.errors import StoreError
from kernel.records import (
    Job,
    Json,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import Status

_log = logging.getLogger("workflow_kernel.sqlite")

BUSY_TIMEOUT_S = 5.0
"""By default, how long a write waits for another connection's transaction before failing."""

_LISTINGS = {
    (False, False): Q.list_runs,
    (True, False): Q.list_runs_by_status,
    (False, True): Q.list_runs_by_workflow,
    (True, True): Q.list_runs_by_status_and_workflow,
}
"""``list_runs``' statement, by (filtered by status, filtered by workflow)."""

CHECKPOINT_PAGES = 10_000
"""WAL pages after which a commit copies the WAL into the database file (SQLite's
``wal_autocheckpoint``; its default is 1,000). Fewer, larger checkpoints copy a page
changed by many commits once, and sync the files less often: about 13 % more stage
executions/s on the end-to-end benchmark (docs/performance.md)."""

_STATEMENT_CACHE = 256
"""Prepared statements kept per connection: more than ``queries.sql`` has, so none is re-parsed."""


class SqliteStore:
    """A store in one SQLite file, safe for several threads and processes.

    The schema is created or migrated when the store opens. ``create=False``
    opens only an existing workflow-kernel database (it may still migrate an
    older schema); ``read_only=True`` also never writes: it opens the file
    read-only and requires this code's schema version.

    >>> store = SqliteStore(":memory:")
    >>> store.list_runs()
    []
    >>> store.close()

    Args:
        path: a filesystem path, or ``":memory:"`` for a private in-memory database.
        busy_timeout_s: how long a write waits for another process's
            transaction before failing with ``StoreError``.
        synchronous: SQLite's ``synchronous`` setting. ``"NORMAL"`` (the
            default, with WAL) never corrupts the file but a power loss may
            drop the last commits; ``"FULL"`` flushes the WAL to disk at every
            commit, so a committed transaction survives a power loss too, at
            the price measured in docs/performance.md.
        create: create the file (not its directory) and the schema if they
            do not exist. ``False`` refuses a missing or empty file, or one
            without the schema, and writes nothing to it.
        read_only: open the file read-only (``mode=ro``; for a WAL file in a
            directory that cannot be written, ``immutable=1``), migrate
            nothing, and refuse a schema version other than this code's.
            Writes then fail with ``StoreError``. Implies ``create=False``.
        checkpoint_pages: how many pages the WAL holds before a commit copies
            them into the database file (``wal_autocheckpoint``; 0: never
            automatically). Under ``"NORMAL"`` the WAL reaches the disk at
            checkpoints, so this also bounds what a power loss may drop: about
            40 MB of WAL, a few seconds of a busy worker's commits, with the
            default 10,000. The WAL file keeps the size it reached.

    Raises:
        StoreError: the file cannot be opened, is corrupt or read-only, or has
            a schema newer than this code knows.
        NoDatabaseError: ``create=False`` (or ``read_only``) and the file is
            missing, empty, or has no schema.
        SchemaVersionError: ``read_only`` and the schema is older or newer.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        create: bool = True,
        read_only: bool = False,
        checkpoint_pages: int = CHECKPOINT_PAGES,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous: expected 'NORMAL' or 'FULL', got {synchronous!r}")
        if (
            isinstance(checkpoint_pages, bool)
            or not isinstance(checkpoint_pages, int)
            or checkpoint_pages < 0
        ):
            raise ValueError(f"checkpoint_pages: expected an int >= 0, got {checkpoint_pages!r}")
        self.checkpoint_pages = checkpoint_pages
        self.path = str(path)
        if read_only and self.path == ":memory:":
            raise ValueError("read_only: a ':memory:' database is always new and empty")
        self.synchronous = synchronous
        self.read_only = read_only
        create = (create and not read_only) or self.path == ":memory:"
        if not create and not os.path.exists(self.path):
            raise NoDatabaseError(self.path, "missing")
        self._errors = ErrorMap(self.path, busy_timeout_s)
        # Re-entrant, so a thread inside a transaction may still call the
        # store's own reads; nesting a second transaction is refused below.
        self._lock = threading.RLock()
        self._work_subscribers: tuple[Callable[[], None], ...] = ()
        self._in_transaction = False
        with self._errors:
            # isolation_level=None: the driver never opens transactions by
            # itself; transaction() issues BEGIN IMMEDIATE / COMMIT explicitly.
            # check_same_thread=False: the lock above serialises all use.
            # timeout: SQLite's busy timeout, for locks held by other processes.
            conn = self._connect(busy_timeout_s, create)
            try:
                self._db = Database(conn, recursive_triggers=False, execute_plugins=False)
                # Checked before anything is written (WAL mode writes the header).
                if read_only:
                    check_read_only(self._db, self.path)
                elif not create:
                    require_schema(self._db, self.path)
                self._configure()
                if not read_only:
                    migrate(self._db, self.path)
            except BaseException:
                conn.close()
                raise
        self._conn = conn
        self._tx = SqliteTransaction(conn, self._errors)

    def _connect(self, busy_timeout_s: float, create: bool) -> sqlite3.Connection:
        """The connection: ``mode=rw`` (never creates) without ``create``, ``mode=ro`` read-only."""

        def connect(target: str, uri: bool = True) -> sqlite3.Connection:
            return sqlite3.connect(
                target,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=_STATEMENT_CACHE,
                uri=uri,
            )

        if create:
            return connect(self.path, uri=False)
        uri = Path(self.path).absolute().as_uri()
        if not self.read_only:
            return connect(f"{uri}?mode=rw")
        conn = connect(f"{uri}?mode=ro")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            name = getattr(exc, "sqlite_errorname", "") or ""
            if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
                conn.close()
                raise
            # A WAL file whose directory cannot be written (no -shm can be
            # made): read it as immutable, which needs no -shm.
            conn.close()
            conn = connect(f"{uri}?mode=ro&immutable=1")
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self) -> None:
        db = self._db
        db.execute("PRAGMA foreign_keys = ON")
        if self.read_only:
            return  # journal mode and syncing are the writers' business
        if self.path != ":memory:":
            db.enable_wal()
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power
        # loss may drop the last commits but never corrupts the file. FULL
        # syncs the WAL at every commit.
        db.execute(f"PRAGMA synchronous = {self.synchronous}")
        db.execute(f"PRAGMA wal_autocheckpoint = {self.checkpoint_pages:d}")

    # -- transactions ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """Open a write transaction: commit on normal exit, roll back on an exception.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so transactions
        of every thread and process run one after another.
        """
        announce = False
        with self._lock:
            if self._in_transaction:
                raise StoreError("SqliteStore transactions do not nest")
            with self._errors:
                self._conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            self._tx.announces_work = False
            try:
                yield self._tx
            except BaseException:
                self._rollback()
                raise
            else:
                self._commit()
                announce = self._tx.announces_work and bool(self._work_subscribers)
            finally:
                self._in_transaction = False
        if announce:
            self._announce_work()

    def subscribe_work(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after each commit of this store object that created a run or
        queued a job, outside the transaction (``kernel.ports.WorkAnnouncer``): a
        ``WorkerHost`` on this store wakes at once for a run created in its process.
        Returns the function that unsubscribes."""
        with self._lock:
            self._work_subscribers = (*self._work_subscribers, callback)
        return lambda: self._unsubscribe(callback)

    def _unsubscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._work_subscribers = tuple(
                known for known in self._work_subscribers if known is not callback
            )

    def _announce_work(self) -> None:
        for callback in self._work_subscribers:
            try:
                callback()
            except Exception:
                _log.exception("a work subscriber raised; it is unsubscribed")
                self._unsubscribe(callback)

    def _commit(self) -> None:
        try:
            with self._errors:
                self._conn.execute("COMMIT")
        except StoreError:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # An error such as SQLITE_FULL may already have ended the transaction.
        if self._conn.in_transaction:
            with self._errors:
                self._conn.execute("ROLLBACK")

    def _select(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock, self._errors:
            return fetch_dicts(self._conn.execute(query, params or {}))

    # -- single-statement writes (autocommit: each is its own transaction) --

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        params = {"job_id": job_id, "worker_id": worker_id, "now": timestamp(now)}
        with self._lock, self._errors:
            return self._conn.execute(Q.renew_lease, params).rowcount == 1

    def append_log(self, entry: LogEntry) -> None:
        row = LOGS.encode(entry)
        with self._lock, self._errors:
            self._conn.execute(Q.insert_log, row)

    def get_blob(self, key: str) -> tuple[bool, Json]:
        with self._lock, self._errors:
            row = self._conn.execute(Q.get_blob, {"key": key}).fetchone()
        return (False, None) if row is None else (True, load_json(row[0]))

    def put_blob(self, key: str, value: Json) -> None:
        params = {"key": key, "value": dump_json(value)}
        with self._lock, self._errors:
            self._conn.execute(Q.put_blob, params)

    def delete_blob(self, key: str) -> None:
        with self._lock, self._errors:
            self._conn.execute(Q.delete_blob, {"key": key})

    # -- queries for tools, tests and the CLI --------------------------------

    def get_run(self, run_id: str) -> WorkflowRun | None:
        rows = self._select(Q.get_run, {"id": run_id})
        return RUNS.decode(rows[0]) if rows else None

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return STAGES.decode_all(self._select(Q.get_stages, {"workflow_run_id": run_id}))

    def get_jobs(self, run_id: str) -> list[Job]:
        return JOBS.decode_all(self._select(Q.get_jobs, {"workflow_run_id": run_id}))

    def list_runs(
        self,
        status: Status | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        """Runs, newest first, optionally filtered by status and workflow; the page after
        the run ``before`` (none for an unknown id). Each page is one index range scan."""
        params = {
            "status": None if status is None else Status(status).value,
            "workflow_id": workflow_id,
            "limit": limit,
            "before": before,
        }
        return RUNS.decode_all(
            self._select(_LISTINGS[status is not None, workflow_id is not None], params)
        )

    def get_logs(self, run_id: str) -> list[LogEntry]:
        return LOGS.decode_all(self._cold_query(Q.get_logs, {"workflow_run_id": run_id}))

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        """Outbox events in insertion order (for one run: by sequence)."""
        if run_id is None:
            return OUTBOX.decode_all(self._cold_query(Q.get_outbox, {}))
        return OUTBOX.decode_all(self._cold_query(Q.get_run_outbox, {"workflow_run_id": run_id}))

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        """Every signal sent to the run, in arrival order."""
        return SIGNALS.decode_all(self._cold_query(Q.get_signals, {"workflow_run_id": run_id}))

    def get_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by id."""
        return SCHEDULES.decode_all(self._cold_query(Q.get_schedules, {}))

    def get_usage(self, run_id: str) -> list[UsageEntry]:
        """The run's usage ledger, in record order."""
        rows = self._cold_query(Q.get_usage, {"workflow_run_id": run_id})
        return [usage_entry(row) for row in rows]

    def get_batch_cancels(self) -> list[BatchCancel]:
        """Every pending provider batch cancel, oldest first."""
        return CANCELS.decode_all(self._cold_query(Q.get_batch_cancels, {}))

    def _cold_query(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        # Tools' listings are not hot: sqlite-utils' query() (dict rows, run in
        # a savepoint) is plenty; a thread inside transaction() sees its writes.
        with self._lock, self._errors:
            return list(self._db.query(query, params))

    def close(self) -> None:
        """Close the connection; in WAL mode the last close also checkpoints the file."""
        with self._lock, self._errors:
            self._db.close()
