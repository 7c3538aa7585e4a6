"""How ``SqliteTransaction.apply`` writes each kind of effect.

Consecutive effects of one kind are written together: inserts, record
updates and outbox appends of several rows with one multi-row statement
(:mod:`adapters.sqlite.batched`), the rest with one ``executemany``; the
publication records of a flush with one ``UPDATE ... FROM json_each``. A
versioned multi-row update whose row count falls short names the first row
that lost its version race.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from adapters.sqlite.batched import OUTBOX_COLUMNS, MultiInsert, MultiUpdate, append_outbox_sql
from adapters.sqlite.codec import dump_json, timestamp
from adapters.sqlite.ledger import (
    delete_batch_cancels,
    insert_batch_cancels,
    insert_usage,
    update_batch_cancels,
)
from adapters.sqlite.purge import purge_runs
from adapters.sqlite.queries import QUERIES as Q
from adapters.sqlite.rows import IDEMPOTENCY, JOBS, LOGS, RUNS, SCHEDULES, SIGNALS, STAGES
from kernel.effects import (
    AppendLog,
    AppendOutbox,
    CompleteIdempotency,
    ConsumeSignal,
    DeleteBatchCancel,
    DeleteBlob,
    DeleteSchedule,
    DeleteStage,
    EnqueueJob,
    InsertBatchCancel,
    InsertRun,
    InsertSchedule,
    InsertSignal,
    InsertStage,
    InsertUsage,
    PurgeRun,
    PutBlob,
    ReleaseIdempotency,
    UpdateBatchCancel,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateSchedule,
    UpdateStage,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.events import event_payload
from kernel.records import Job, WorkflowRun, WorkflowStage

if TYPE_CHECKING:
    from adapters.sqlite.transaction import SqliteTransaction

Handler = Callable[["SqliteTransaction", list[Any]], None]
"""Writes one run of consecutive effects of the same kind."""


_LARGEST = 32
"""Rows per multi-row statement at most."""


def chunks(items: list[Any]) -> Iterator[list[Any]]:
    """``items`` in runs of 32, 16, 8, 4, 2 or 1 (the binary digits of how many are left):
    every multi-row statement has one of six sizes, so a few prepared statements per
    kind serve every group (each size is a statement text of its own, and a prepared
    statement for dozens of rows takes tens of KiB of the connection's cache).

    >>> [len(chunk) for chunk in chunks(list(range(45)))]
    [32, 8, 4, 1]
    """
    at = 0
    while at < len(items):
        size = 1 << (min(len(items) - at, _LARGEST).bit_length() - 1)
        yield items[at : at + size]
        at += size


def _many(query: str, rows: Callable[[Any], dict[str, Any]]) -> Handler:
    """A handler writing a run of same-kind effects: one statement for one row,
    multi-row INSERTs for several (``executemany`` where the query has no such form)."""
    try:
        multi: MultiInsert | None = MultiInsert.of(query)
    except ValueError:
        multi = None

    def handle(tx: SqliteTransaction, effects: list[Any]) -> None:
        if multi is None:
            tx.conn.executemany(query, [rows(effect) for effect in effects])
            return
        for chunk in chunks(effects):
            if len(chunk) == 1:
                tx.conn.execute(query, rows(chunk[0]))
            else:
                encoded = [rows(effect) for effect in chunk]
                tx.conn.execute(multi.sql(len(encoded)), multi.args(encoded))

    return handle


def _row_updates(
    query: str,
    table: str,
    record: Callable[[Any], Any],
    encode: Callable[[Any], dict[str, Any]],
    refused: Callable[[Any], Exception],
) -> Handler:
    """A handler for updates of rows by id: multi-row statements for distinct rows, one
    statement each for a row updated twice. An effect with an ``expected_version``
    must find its row at that version; an update that finds no row raises
    ``refused(effect)``."""
    multi = MultiUpdate.of(query)

    def row_of(effect: Any) -> dict[str, Any]:
        row = encode(record(effect))
        if hasattr(effect, "expected_version"):
            row["expected_version"] = effect.expected_version
        return row

    def one(tx: SqliteTransaction, effect: Any) -> None:
        if tx.conn.execute(query, row_of(effect)).rowcount != 1:
            raise refused(effect)

    def several(tx: SqliteTransaction, effects: list[Any]) -> None:
        rows = [row_of(effect) for effect in effects]
        sql = multi.sql(len(rows)) + f" RETURNING {table}.id"
        updated = {row[0] for row in tx.conn.execute(sql, multi.args(rows)).fetchall()}
        if len(updated) != len(rows):  # name the first row that was not there
            raise refused(next(e for e in effects if record(e).id not in updated))

    def handle(tx: SqliteTransaction, effects: list[Any]) -> None:
        ids = [record(effect).id for effect in effects]
        if len(set(ids)) != len(ids):
            for effect in effects:
                one(tx, effect)
            return
        for chunk in chunks(effects):
            if len(chunk) == 1:
                one(tx, chunk[0])
            else:
                several(tx, chunk)

    return handle


def _stale(kind: str, record: Callable[[Any], Any]) -> Callable[[Any], Exception]:
    return lambda effect: StaleVersionError(kind, record(effect).id, effect.expected_version)


def _run(effect: UpdateRun) -> WorkflowRun:
    return effect.run


def _stage(effect: UpdateStage) -> WorkflowStage:
    return effect.stage


def _job(effect: UpdateJob) -> Job:
    return effect.job


_update_runs = _row_updates(Q.update_run, "runs", _run, RUNS.encode, _stale("run", _run))
_update_stages = _row_updates(
    Q.update_stage, "stages", _stage, STAGES.encode, _stale("stage", _stage)
)
_update_jobs = _row_updates(
    Q.update_job,
    "jobs",
    _job,
    JOBS.encode,
    lambda effect: StoreError(f"job {effect.job.id!r} does not exist"),
)


def _consume_signals(tx: SqliteTransaction, effects: list[ConsumeSignal]) -> None:
    for effect in effects:
        signal = effect.signal
        row = {
            "id": signal.id,
            "consumed_at": None if signal.consumed_at is None else timestamp(signal.consumed_at),
            "stage_id": signal.stage_id,
        }
        if tx.conn.execute(Q.consume_signal, row).rowcount != 1:
            raise StaleVersionError("signal", signal.id, 1)


def _update_schedules(tx: SqliteTransaction, effects: list[UpdateSchedule]) -> None:
    for effect in effects:
        row = SCHEDULES.encode(effect.schedule)
        row["expected_version"] = effect.expected_version
        if tx.conn.execute(Q.update_schedule, row).rowcount != 1:
            raise StaleVersionError("schedule", effect.schedule.id, effect.expected_version)


def _outbox_row(effect: AppendOutbox) -> dict[str, Any]:
    # No sequence here: append_outbox numbers the event inside this BEGIN
    # IMMEDIATE transaction, which serialises every writer of the file.
    event = effect.event
    return {
        "id": effect.event_id,
        "workflow_run_id": event.workflow_run_id,
        "event_type": event.type,
        "payload": dump_json(event_payload(event)),
        "causation_id": effect.causation_id,
        "occurred_at": timestamp(event.timestamp),
    }


def _publication(effect: UpdateOutbox) -> list[Any]:
    event = effect.event
    return [
        event.workflow_run_id,
        event.sequence,
        event.id,
        None if event.published_at is None else timestamp(event.published_at),
        event.retry_count,
        None if event.dlq_at is None else timestamp(event.dlq_at),
    ]


def _append_outbox(tx: SqliteTransaction, effects: list[AppendOutbox]) -> None:
    for chunk in chunks(effects):
        if len(chunk) == 1:
            tx.conn.execute(Q.append_outbox, _outbox_row(chunk[0]))
            continue
        args: list[Any] = []
        for number, effect in enumerate(chunk):
            row = _outbox_row(effect)
            args += [row[column] for column in OUTBOX_COLUMNS]
            args.append(number)
        tx.conn.execute(append_outbox_sql(len(chunk)), args)


def _record_publications(tx: SqliteTransaction, effects: list[UpdateOutbox]) -> None:
    # One statement for a whole flush (update_outbox in queries.sql).
    events = dump_json([_publication(effect) for effect in effects])
    tx.conn.execute(Q.update_outbox, {"events": events})


HANDLERS: dict[type[Any], Handler] = {
    InsertRun: _many(Q.insert_run, lambda e: RUNS.encode(e.run)),
    UpdateRun: _update_runs,
    InsertStage: _many(Q.insert_stage, lambda e: STAGES.encode(e.stage)),
    UpdateStage: _update_stages,
    DeleteStage: _many(
        Q.delete_stage,
        lambda e: {"workflow_run_id": e.stage.workflow_run_id, "stage_id": e.stage.stage_id},
    ),
    EnqueueJob: _many(Q.insert_job, lambda e: JOBS.encode(e.job)),
    UpdateJob: _update_jobs,
    AppendOutbox: _append_outbox,
    UpdateOutbox: _record_publications,
    PutBlob: _many(Q.put_blob, lambda e: {"key": e.key, "value": dump_json(e.value)}),
    DeleteBlob: _many(Q.delete_blob, lambda e: {"key": e.key}),
    AppendLog: _many(Q.insert_log, lambda e: LOGS.encode(e.entry)),
    CompleteIdempotency: _many(Q.complete_idempotency, lambda e: IDEMPOTENCY.encode(e.record)),
    ReleaseIdempotency: _many(
        Q.release_idempotency, lambda e: {"key": e.key, "command_type": e.command_type}
    ),
    InsertSignal: _many(Q.insert_signal, lambda e: SIGNALS.encode(e.signal)),
    ConsumeSignal: _consume_signals,
    InsertSchedule: _many(Q.insert_schedule, lambda e: SCHEDULES.encode(e.schedule)),
    UpdateSchedule: _update_schedules,
    DeleteSchedule: _many(Q.delete_schedule, lambda e: {"id": e.schedule_id}),
    InsertUsage: insert_usage,
    InsertBatchCancel: insert_batch_cancels,
    UpdateBatchCancel: update_batch_cancels,
    DeleteBatchCancel: delete_batch_cancels,
    PurgeRun: purge_runs,
}


ANNOUNCED = (InsertRun, EnqueueJob)
"""Effects after whose commit the store calls its work subscribers (a new run, a queued job)."""
