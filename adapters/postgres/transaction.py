"""``PostgresTransaction``: loads and effect application inside one open transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import suppress
from datetime import datetime, timedelta

import psycopg
from psycopg import Connection, Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow

from adapters.columns import epoch_us
from adapters.postgres import limits
from adapters.postgres.errors import translated
from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import (
    Row,
    params,
    record,
    records,
    usage_entries,
)
from adapters.postgres.statements import Statement, effect_statement
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.effects import (
    EnqueueJob,
    InsertRun,
    StoreEffect,
    UpdateJob,
)
from kernel.errors import KernelError, StoreError
from kernel.records import (
    IdempotencyRecord,
    Job,
    Json,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import JobStatus, Status


def _wakes_workers(effect: StoreEffect) -> bool:
    """Whether ``effect`` makes work: a job in the queue, or a new run to claim
    (workers blocked in LISTEN should look)."""
    match effect:
        case EnqueueJob(job) | UpdateJob(job):
            return job.status == JobStatus.QUEUED
        case InsertRun():
            return True
    return False


def _id_list(ids: Collection[str] | None) -> list[str] | None:
    """``ids`` as a list, which psycopg sends as a ``text[]`` (``None``: every workflow)."""
    return None if ids is None else list(ids)


def _version_lists(pairs: Collection[tuple[str, str]] | None) -> dict[str, list[str] | None]:
    """``(workflow id, version)`` pairs as the two side-by-side arrays the queries
    ``unnest`` (``None``: every version)."""
    if pairs is None:
        return {"version_ids": None, "version_names": None}
    ordered = list(pairs)
    return {
        "version_ids": [workflow_id for workflow_id, _ in ordered],
        "version_names": [version for _, version in ordered],
    }


class PostgresTransaction:
    """One transaction on one pooled (autocommit) connection.

    ``BEGIN`` is sent lazily, in one round trip with the first statement, and
    a transaction that ran no statement ends without a round trip at all.
    """

    def __init__(self, conn: Connection[DictRow], channel: str) -> None:
        self._conn = conn
        self._channel = channel
        self._begun = False
        # An apply savepoint may be left open: it is released by the next
        # apply (in the same round trip) or by the commit.
        self._savepoint = False

    def _execute(self, query: bytes, values: Row) -> Cursor[DictRow]:
        if self._begun:
            return self._conn.execute(query, values)
        with self._conn.pipeline():
            self._begin()
            cursor = self._conn.cursor()
            cursor.execute(query, values)
        return cursor

    def _begin(self) -> None:
        """Queue ``BEGIN`` (the caller is in pipeline mode)."""
        self._conn.execute(b"BEGIN")
        self._begun = True

    # -- loads ---------------------------------------------------------------

    def _rows(self, name: str, values: Row) -> list[Row]:
        with translated(f"run query {name}"):
            return self._execute(QUERIES[name], values).fetchall()

    def get_run(self, run_id: str) -> WorkflowRun | None:
        rows = self._rows("lock_run", {"id": run_id})
        return record(rows[0], WorkflowRun) if rows else None

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return records(self._rows("get_stages", {"workflow_run_id": run_id}), WorkflowStage)

    def get_job(self, job_id: str) -> Job | None:
        """The job, locked until the transaction ends (a concurrent reader waits)."""
        rows = self._rows("lock_job", {"id": job_id})
        return record(rows[0], Job) if rows else None

    def get_jobs(self, run_id: str) -> list[Job]:
        return records(self._rows("get_jobs", {"workflow_run_id": run_id}), Job)

    def get_blob(self, key: str) -> tuple[bool, Json]:
        rows = self._rows("get_blob", {"key": key})
        return (True, rows[0]["value"]) if rows else (False, None)

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None:
        rows = self._rows("get_idempotency", {"key": key, "command_type": command_type})
        return record(rows[0], IdempotencyRecord) if rows else None

    def acquire_idempotency(self, claim: IdempotencyRecord) -> IdempotencyRecord | None:
        while True:
            with translated("run query acquire_idempotency"):
                inserted = self._execute(QUERIES["acquire_idempotency"], params(claim))
            if inserted.rowcount == 1:
                return None
            # Lost to a committed holder. Read it; if it released the key in
            # the meantime, try again rather than report a vanished holder.
            existing = self.get_idempotency(claim.key, claim.command_type)
            if existing is not None:
                return existing

    def pending_runs(
        self,
        limit: int,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> list[WorkflowRun]:
        values = {
            "limit": max(limit, 0),
            "workflow_ids": _id_list(workflow_ids),
            **_version_lists(versions),
        }
        return records(self._rows("pending_runs", values), WorkflowRun)

    def lease_next_job(
        self,
        worker_id: str,
        now: datetime,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> Job | None:
        # A fresh transaction holds no row lock: it may wait for a limit key's lock.
        wait = not self._begun
        now_us = epoch_us(now)
        values = {
            "worker_id": worker_id,
            "now": now,
            "now_us": now_us,
            "held": None,
            "workflow_ids": _id_list(workflow_ids),
            **_version_lists(versions),
        }
        held: list[str] = []
        for _ in range(limits.MAX_TRIES):
            rows = self._rows("lease_next_job", values)
            if not rows:
                return None
            job = record(rows[0], Job)
            if job.limit_key is None or limits.keep_lease(self._rows, job, now_us, wait=wait):
                return job
            held.append(job.limit_key)  # full under its lock: pass over it (SPEC §15)
            values["held"] = held
        return None

    def running_runs(self, workflow_ids: Collection[str]) -> dict[str, int]:
        return limits.running_runs(self._rows, workflow_ids)

    def stale_jobs(self, leased_before: datetime, limit: int) -> list[Job]:
        values = {"leased_before": leased_before, "limit": max(limit, 0)}
        return records(self._rows("stale_jobs", values), Job)

    def due_suspended_stages(self, now: datetime, limit: int) -> list[WorkflowStage]:
        values = {"now": now, "limit": max(limit, 0)}
        return records(self._rows("due_suspended_stages", values), WorkflowStage)

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxEvent]:
        values = {"now": now, "until": now + lease, "limit": max(limit, 0)}
        return records(self._rows("claim_outbox", values), OutboxEvent)

    def dead_letters(self, limit: int) -> list[OutboxEvent]:
        return records(self._rows("dead_letters", {"limit": max(limit, 0)}), OutboxEvent)

    def buffered_signals(self, run_id: str) -> list[SignalRecord]:
        return records(self._rows("buffered_signals", {"workflow_run_id": run_id}), SignalRecord)

    def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, locked until the transaction ends (a concurrent reader waits)."""
        rows = self._rows("lock_schedule", {"id": schedule_id})
        return record(rows[0], ScheduleRecord) if rows else None

    def due_schedules(
        self, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
    ) -> list[ScheduleRecord]:
        values = {"now": now, "limit": max(limit, 0), "workflow_ids": _id_list(workflow_ids)}
        return records(self._rows("due_schedules", values), ScheduleRecord)

    def get_usage_call(self, call_id: str) -> UsageEntry | None:
        rows = self._rows("get_usage_call", {"call_id": call_id})
        return usage_entries(rows)[0] if rows else None

    def pending_batch_cancels(self, limit: int) -> list[BatchCancel]:
        rows = self._rows("pending_batch_cancels", {"limit": max(limit, 0)})
        return records(rows, BatchCancel)

    def purgeable_runs(
        self, finished_before: datetime, statuses: Collection[Status], limit: int
    ) -> list[WorkflowRun]:
        values = {
            "finished_before": finished_before,
            "statuses": sorted(str(status) for status in statuses),
            "limit": max(limit, 0),
        }
        # Locked (SKIP LOCKED) by the first query; each run is then read whole.
        ids = [row["id"] for row in self._rows("purgeable_runs", values)]
        return [run for run_id in ids if (run := self.get_run(run_id)) is not None]

    # -- effects -------------------------------------------------------------

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        """Apply ``effects`` in order, in as few round trips as possible.

        Several statements go out as one pipeline behind a savepoint. Row
        counts are checked afterwards; on the first failed check the savepoint
        is rolled back and the effects before the failing one are applied
        again, so the outcome is exactly that of applying one by one and
        stopping at the failure (as the in-memory store does).
        """
        statements = [effect_statement(effect) for effect in effects]
        if any(_wakes_workers(effect) for effect in effects):
            statements.append(Statement("notify_jobs", {"channel": self._channel}))
        if not statements:
            return
        failure = self._run(statements)
        if failure is None:
            return
        index, error = failure
        if len(statements) > 1:
            with translated("roll back a failed apply"):
                self._conn.execute(QUERIES["rollback_apply"])
            self.apply(effects[:index])
        raise error

    def _run(self, statements: list[Statement]) -> tuple[int, KernelError] | None:
        """Execute ``statements``; the first failed row-count check, if any."""
        cursors: list[Cursor[DictRow]] = []
        with translated("apply effects"):
            if len(statements) == 1:
                only = statements[0]
                cursors.append(self._execute(QUERIES[only.name], only.params))
            else:
                self._pipeline(statements, cursors)
        for index, (statement, cursor) in enumerate(zip(statements, cursors, strict=True)):
            error = statement.check(cursor.rowcount) if statement.check else None
            if error is not None:
                return index, error
        return None

    def _pipeline(self, statements: list[Statement], cursors: list[Cursor[DictRow]]) -> None:
        savepoint = False
        try:
            with self._conn.pipeline():
                if not self._begun:
                    self._begin()
                elif self._savepoint:
                    self._conn.execute(QUERIES["release_apply"])
                self._conn.execute(QUERIES["savepoint_apply"])
                self._savepoint = savepoint = True
                for statement in statements:
                    cursor = self._conn.cursor()
                    cursor.execute(QUERIES[statement.name], statement.params)
                    cursors.append(cursor)
        except psycopg.Error:
            # The server refused a statement (the transaction is aborted) or
            # the driver refused to send one (those before it ran): either way
            # undo this apply and keep the transaction usable, unless the
            # session itself is gone.
            if savepoint and not self._conn.broken:
                with suppress(psycopg.Error):
                    self._conn.execute(QUERIES["rollback_apply"])
            raise

    # -- end -----------------------------------------------------------------

    def commit(self) -> None:
        """Commit; refuse to report success for a transaction the server aborted."""
        if not self._begun:
            return
        status = self._conn.info.transaction_status
        if status == TransactionStatus.INERROR:
            raise StoreError(
                "PostgresStore could not commit: an earlier statement failed and the "
                "transaction was rolled back"
            )
        with translated("commit"):
            self._conn.execute(b"COMMIT")

    def rollback(self) -> None:
        """Roll back if the session is still there; a dead session has nothing to undo."""
        if not self._begun or self._conn.closed or self._conn.broken:
            return
        with suppress(psycopg.Error):  # it died meanwhile: the server rolled back
            self._conn.execute(b"ROLLBACK")
