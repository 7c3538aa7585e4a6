"""The store's ``LISTEN`` connection: wake-ups (``NOTIFY``) and the look turn.

One connection per store, outside the pool, in autocommit. It listens on the
store's channel from the first wait on, so notifications that arrive between two
waits are kept (psycopg holds them until the next wait reads them).

The look turn (``LookTurns``): a session advisory lock, one per schema, that idle
workers woken by the same notification take one at a time. The one holding it
checks whether work may be waiting (a PENDING run or a QUEUED job, read from the
tables' partial indexes) and keeps the turn while its host looks (claims and
leases); it gives the turn up once that look has committed, so the next one's
check sees the run as claimed and the job as leased, and it goes back to
waiting at the cost of one round trip instead of an empty claim and lease. A
worker whose session ends (a crash, a lost connection) gives the turn up with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg import errors as pg_errors
from psycopg.rows import DictRow, dict_row

from adapters.postgres.errors import connect_failure, translated
from adapters.postgres.queries import QUERIES


class Listener:
    """The dedicated ``LISTEN`` connection of one store; callers take turns using it."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str,
        channel: str,
        connect_args: dict[str, Any],
        connect_timeout: float,
        connection_class: type[Connection[DictRow]] = Connection,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._channel = channel
        self._connect_args = connect_args
        self._connect_timeout = connect_timeout
        self._connection_class = connection_class
        self._conn: Connection[DictRow] | None = None
        self._lock_timeout: str | None = None
        """The session's ``lock_timeout``, as last set (``None``: the server's default)."""
        self.lock = threading.Lock()
        """Held by the caller using the connection (a wait, a turn, the store's close)."""
        self.closing = False
        """Set by the store's close: whoever holds the connection closes it when done."""

    def wait(self, timeout: float) -> bool:
        """Block until a notification arrives or ``timeout`` seconds pass; whether one came."""
        with self.lock, translated("wait for jobs"):
            try:
                conn = self._connect()
                woke = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
                if woke:
                    # Coalesce whatever else already arrived into this wake-up.
                    for _ in conn.notifies(timeout=0):
                        pass
                return woke
            except psycopg.Error:
                self.close()
                raise
            finally:
                if self.closing:  # closed meanwhile: close() could not take the lock
                    self.close()

    @contextmanager
    def turn(self, timeout: float) -> Iterator[bool]:
        """The look turn, waited for up to ``timeout`` seconds; yields whether work may be
        waiting (``True`` when the turn did not come in time)."""
        if not timeout > 0:
            raise ValueError(f"timeout: expected seconds > 0, got {timeout!r}")
        with self.lock:
            held, work = False, True
            try:
                with translated("take the look turn"):
                    try:
                        # Work found: the turn is held. None: it went back with the check.
                        held = work = self._take(self._connect(), timeout)
                    except pg_errors.LockNotAvailable:
                        pass  # another worker's look is slow: look anyway, not in turn
                    except psycopg.Error:
                        self.close()
                        raise
                yield work
            finally:
                if held:
                    self._give()
                if self.closing:
                    self.close()

    def _take(self, conn: Connection[DictRow], timeout: float) -> bool:
        """Wait for the turn, then check; whether work may be waiting. The turn is held
        if so, and given back in the check's statement if not."""
        key = {"schema": self._schema}
        lock_timeout = f"{max(int(timeout * 1000), 1)}ms"
        with conn.pipeline():
            if lock_timeout != self._lock_timeout:
                conn.execute(QUERIES["look_turn_wait"], {"timeout": lock_timeout})
                self._lock_timeout = lock_timeout
            conn.execute(QUERIES["look_turn_take"], key)
            checked = conn.execute(QUERIES["look_turn_check"], key)
        row = checked.fetchone()
        assert row is not None
        return bool(row["work"])

    def _give(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            return  # the session, and the lock with it, is gone
        try:
            conn.execute(QUERIES["look_turn_give"], {"schema": self._schema})
        except psycopg.Error:
            self.close()  # ending the session gives the turn up

    def _connect(self) -> Connection[DictRow]:
        if self._conn is None or self._conn.closed:
            try:
                conn = self._connection_class.connect(
                    self._dsn, autocommit=True, row_factory=dict_row, **self._connect_args
                )
            except psycopg.Error as exc:
                raise connect_failure(self._dsn, exc, self._connect_timeout) from exc
            try:
                conn.execute(
                    sql.SQL("SET search_path TO {}; LISTEN {}").format(
                        sql.Identifier(self._schema), sql.Identifier(self._channel)
                    )
                )
            except psycopg.Error:
                conn.close()
                raise
            self._conn, self._lock_timeout = conn, None
        return self._conn

    def close(self) -> None:
        """Close the connection (the caller holds :attr:`lock`, or knows nobody uses it)."""
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
