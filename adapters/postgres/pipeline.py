"""The round trips of one store transaction on one pooled (autocommit) connection.

Every statement of a transaction waits for the server once, and most carry
others along in the same round trip (psycopg's pipeline mode):

- ``BEGIN`` goes out with the transaction's first statement; a transaction
  that sends nothing ends without a round trip.
- Effects (``apply``) wait for the transaction's next statement and go out
  with it, or with its ``COMMIT``: a transaction that loads, decides and
  applies costs its loads plus one round trip. Effects applied one after
  another without a load in between go out together.
- A checked effect (an update at the version its decision read, an insert of
  a new id) fails on the server (``expect_rows``, migration 0009), so a
  ``COMMIT`` in the same pipeline never commits past it.
- Expectations (``expect``: statements that fail unless what a decision
  assumed still holds, such as a finish's records) wait too, and go out first
  in the next round trip, right after ``BEGIN``: if one fails, nothing after it
  runs, and the call raises the expectation's error.

Effects that go out with a load sit behind a savepoint. If one of them fails,
the savepoint is rolled back, the effects before the failed one are applied
again (with the next statement), and the call that sent them raises the
effect's error (``StaleVersionError`` for a stale version); the transaction
stays usable. So a failed effect is reported by the call after its
``apply`` at the latest, or by the commit.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import NoReturn

import psycopg
from psycopg import Connection, Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow

from adapters.effect_order import by_kind
from adapters.postgres.errors import translated
from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import Row
from adapters.postgres.statements import Statement, effect_statement, effect_statements
from kernel.effects import InsertRun, StoreEffect, queued_job_id
from kernel.errors import KernelError, StoreError

Query = tuple[bytes, Row | None]
"""A statement to send: its SQL and its parameters."""

CHECK_FAILED = "WK001"
"""The SQLSTATE of ``expect_rows``: a checked statement changed no row."""

_BEGIN = b"BEGIN"
_COMMIT = b"COMMIT"
_ROLLBACK = b"ROLLBACK"


def _work_made(effect: StoreEffect) -> tuple[bool, str | None]:
    """What ``effect`` makes for workers blocked in ``LISTEN``: whether it creates a run to
    claim, and the id of the job it puts in the queue (``None``: none)."""
    return isinstance(effect, InsertRun), queued_job_id(effect)


_KEPT_CURSORS: weakref.WeakKeyDictionary[Connection[DictRow], list[Cursor[DictRow]]] = (
    weakref.WeakKeyDictionary()
)


def _kept_cursors(conn: Connection[DictRow], count: int) -> Iterator[Cursor[DictRow]]:
    """``count`` cursors of ``conn``, the same ones from one round trip to the next:
    psycopg keeps, per cursor, how it dumps each parameter type, and a new cursor per
    statement cost about 12 µs more a statement (a third of its client time). A
    round trip's results are read before the next one is sent."""
    kept = _KEPT_CURSORS.get(conn)
    if kept is None:
        kept = _KEPT_CURSORS[conn] = []
    while len(kept) < count:
        kept.append(conn.cursor())
    return iter(kept[:count])


def _first_unfinished(cursors: Sequence[Cursor[DictRow]], sent: int) -> int | None:
    """The index of the first of ``sent`` statements that did not complete (``None``:
    all did); ``cursors`` holds those the driver accepted, in order."""
    for index, cursor in enumerate(cursors):
        if cursor.pgresult is None:
            return index
    return len(cursors) if len(cursors) < sent else None


class RoundTrips:
    """A transaction's statements on ``conn``, sent in as few round trips as possible."""

    def __init__(self, conn: Connection[DictRow], channel: str) -> None:
        self._conn = conn
        self._channel = channel
        self.begun = False
        """Whether ``BEGIN`` went out."""
        self._savepoint = False
        """Whether an apply savepoint is open (released by the next apply that sends)."""
        self._pending: list[StoreEffect] = []
        self._expected: list[Query] = []
        self._unmet: Callable[[], KernelError] | None = None
        """What to raise if an expectation fails (``expect``)."""
        self._new_runs = False
        """Whether a run was created (waiting workers should claim it)."""
        self._queued: set[str] = set()
        """Jobs put in the queue and not leased by this transaction since: the commit
        wakes waiting workers only for these and for new runs. A worker whose finish
        queues the next stage and leases it in the same transaction wakes nobody."""

    @property
    def idle(self) -> bool:
        """Whether the transaction holds nothing yet: no statement sent, no effect or
        expectation waiting."""
        return not self.begun and not self._pending and not self._expected

    @property
    def expecting(self) -> bool:
        """Whether expectations wait to be sent."""
        return bool(self._expected)

    def expect(self, queries: Sequence[Query], unmet: Callable[[], KernelError]) -> None:
        """Send ``queries`` first with the next round trip, before the waiting effects:
        statements that fail with ``CHECK_FAILED`` unless what the caller decided on
        still holds; then that call raises ``unmet()`` (the transaction is aborted:
        roll it back). One set of expectations at a time."""
        if self._expected:
            raise StoreError("PostgresStore: expectations are already waiting to be sent")
        self._expected = list(queries)
        self._unmet = unmet

    def defer(self, effects: Sequence[StoreEffect]) -> None:
        """Apply ``effects`` with the next statement (or the commit)."""
        self._pending.extend(effects)
        for effect in effects:
            new_run, queued = _work_made(effect)
            self._new_runs = self._new_runs or new_run
            if queued is not None:
                self._queued.add(queued)

    def leased(self, job_id: str) -> None:
        """This transaction leased ``job_id``: its queueing, if it happened here, needs no
        wake-up (a later ``defer`` that queues it again needs one again)."""
        self._queued.discard(job_id)

    def send(
        self, queries: Sequence[Query], action: str, *, ending: bool = False
    ) -> list[Cursor[DictRow]]:
        """Send the waiting effects and ``queries`` in one round trip; the queries'
        cursors, with their results, which the next call reuses: read them first.
        ``action`` names the queries in errors; ``ending``: the queries end the
        transaction (no savepoint is needed)."""
        conn = self._conn
        if self.begun and not self._pending and not self._expected and len(queries) == 1:
            query, values = queries[0]
            cursor = next(_kept_cursors(conn, 1))
            with translated(action):
                return [cursor.execute(query, values)]
        given = self._pending
        pending = by_kind(given)
        self._pending = []
        expected, self._expected = self._expected, []
        statements = effect_statements(pending) if pending else []
        checks: list[Cursor[DictRow]] = []
        applied: list[Cursor[DictRow]] = []
        cursors: list[Cursor[DictRow]] = []
        kept = _kept_cursors(conn, len(expected) + len(statements) + len(queries) + 3)
        try:
            with conn.pipeline():
                if not self.begun:
                    next(kept).execute(_BEGIN)
                    self.begun = True
                for query, values in expected:
                    cursor = next(kept)
                    cursor.execute(query, values)
                    checks.append(cursor)
                if statements and not ending:
                    if self._savepoint:
                        next(kept).execute(QUERIES["release_apply"])
                    next(kept).execute(QUERIES["savepoint_apply"])
                    self._savepoint = True
                for statement in statements:
                    cursor = next(kept)
                    cursor.execute(QUERIES[statement.name], statement.params)
                    applied.append(cursor)
                for query, values in queries:
                    cursor = next(kept)
                    cursor.execute(query, values)
                    cursors.append(cursor)
        except psycopg.Error as exc:
            # The server refused a statement (the transaction is aborted, and the
            # statements after it were skipped) or the driver refused to send one.
            if expected and _first_unfinished(checks, len(expected)) is not None:
                self._unmet_failed(exc)
            failed = _first_unfinished(applied, len(statements))
            if failed is not None:
                self._apply_failed(given, pending, statements[failed], exc, ending=ending)
            if ending and cursors and cursors[0].pgresult is not None:
                # Committed: only the wake-up after the COMMIT failed (workers
                # find the work at their next poll).
                return cursors
            with translated(action):
                raise
        return cursors

    def _unmet_failed(self, exc: psycopg.Error) -> NoReturn:
        """An expectation failed: raise what that means (another failure of its
        statement, such as a lock timeout, as itself)."""
        unmet, self._unmet = self._unmet, None
        if exc.sqlstate == CHECK_FAILED and unmet is not None:
            raise unmet() from exc
        with translated("check what a decision assumed"):
            raise exc

    def _apply_failed(
        self,
        given: list[StoreEffect],
        sent: Sequence[StoreEffect],
        statement: Statement,
        exc: psycopg.Error,
        *,
        ending: bool,
    ) -> NoReturn:
        """Undo the failed apply and raise what its failure means. A failed check
        leaves the effects before it applied (they go out again with the next
        statement), as if the effects had been applied one by one up to it.

        ``sent`` is ``given`` grouped by kind (``given`` itself when not regrouped):
        when it was regrouped, or the failed statement wrote several rows, which
        effects came before the refused one is found by applying ``given`` again one
        effect at a time (a failure is rare)."""
        checked = exc.sqlstate == CHECK_FAILED and statement.failure is not None
        refused: Exception | None = None
        if not ending and self._savepoint and not self._conn.broken:
            with suppress(psycopg.Error):  # if even this fails, the commit refuses
                self._conn.execute(QUERIES["rollback_apply"])
                if checked and sent is given and statement.failure_of is None:
                    self._pending = given[: statement.first]
                elif checked:
                    first, refused = self._first_refused(given)
                    self._pending = given[:first]
        if isinstance(refused, psycopg.Error):
            with translated("apply effects"):
                raise refused from exc
        if refused is not None:
            raise refused from exc
        if checked:
            raise statement.error(exc.diag.message_detail) from exc
        with translated("apply effects"):
            raise exc

    def _first_refused(self, effects: list[StoreEffect]) -> tuple[int, Exception | None]:
        """Apply ``effects`` one statement each, in order, and undo them: the index of
        the first refused and its error (``None``: none was, as when a concurrent
        commit made them fit meanwhile)."""
        statements = [effect_statement(effect) for effect in effects]
        applied: list[Cursor[DictRow]] = []
        conn = self._conn
        try:
            with conn.pipeline():
                for statement in statements:
                    cursor = conn.cursor()
                    cursor.execute(QUERIES[statement.name], statement.params)
                    applied.append(cursor)
        except psycopg.Error as exc:
            failed = _first_unfinished(applied, len(statements)) or 0
            conn.execute(QUERIES["rollback_apply"])
            if exc.sqlstate == CHECK_FAILED and statements[failed].failure is not None:
                return failed, statements[failed].error(None)
            return failed, exc
        conn.execute(QUERIES["rollback_apply"])
        return 0, None

    def commit(self) -> None:
        """Send the waiting effects and ``COMMIT``; refuse to report success for a
        transaction the server aborted."""
        if self.idle:
            return
        if self.begun and self._conn.info.transaction_status == TransactionStatus.INERROR:
            raise StoreError(
                "PostgresStore could not commit: an earlier statement failed and the "
                "transaction was rolled back"
            )
        if not (self._new_runs or self._queued):
            self.send([(_COMMIT, None)], "commit", ending=True)
            return
        notify = (QUERIES["notify_jobs"], {"channel": self._channel})
        self.send([(_COMMIT, None), notify], "commit", ending=True)

    def rollback(self) -> None:
        """Forget the waiting effects; roll back if the session is still there (a
        dead session has nothing to undo)."""
        self._pending, self._expected = [], []
        if not self.begun or self._conn.closed or self._conn.broken:
            return
        with suppress(psycopg.Error):  # it died meanwhile: the server rolled back
            self._conn.execute(_ROLLBACK)
