"""How ``SqliteTransaction.apply`` writes each kind of effect.

Consecutive effects of one kind are written together: most with one
``executemany``; versioned updates one statement each, so the row count tells
which lost its version race; the publication records of a flush with one
``UPDATE ... FROM json_each``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from adapters.sqlite.transaction import SqliteTransaction

Handler = Callable[["SqliteTransaction", list[Any]], None]
"""Writes one run of consecutive effects of the same kind."""


def _many(query: str, rows: Callable[[Any], dict[str, Any]]) -> Handler:
    """A handler writing a run of same-kind effects with one ``executemany``."""

    def handle(tx: SqliteTransaction, effects: list[Any]) -> None:
        tx.conn.executemany(query, [rows(effect) for effect in effects])

    return handle


def _update_runs(tx: SqliteTransaction, effects: list[UpdateRun]) -> None:
    # One statement each: the row count tells which update lost its version race.
    for effect in effects:
        row = RUNS.encode(effect.run)
        row["expected_version"] = effect.expected_version
        if tx.conn.execute(Q.update_run, row).rowcount != 1:
            raise StaleVersionError("run", effect.run.id, effect.expected_version)


def _update_stages(tx: SqliteTransaction, effects: list[UpdateStage]) -> None:
    for effect in effects:
        row = STAGES.encode(effect.stage)
        row["expected_version"] = effect.expected_version
        if tx.conn.execute(Q.update_stage, row).rowcount != 1:
            raise StaleVersionError("stage", effect.stage.id, effect.expected_version)


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


def _update_jobs(tx: SqliteTransaction, effects: list[UpdateJob]) -> None:
    for effect in effects:
        if tx.conn.execute(Q.update_job, JOBS.encode(effect.job)).rowcount != 1:
            raise StoreError(f"job {effect.job.id!r} does not exist")


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
    AppendOutbox: _many(Q.append_outbox, _outbox_row),
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
