"""Each store effect as the one named statement that applies it on PostgreSQL,
with the check that turns its row count into an error (a stale version, a
missing row, a duplicate)."""

from __future__ import annotations

from collections.abc import Callable

from adapters.postgres.rows import (
    Row,
    event_params,
    jsonb,
    params,
    usage_params,
)
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
    StoreEffect,
    UpdateBatchCancel,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateSchedule,
    UpdateStage,
)
from kernel.errors import KernelError, StaleVersionError, StoreError

Check = Callable[[int], KernelError | None]
"""Turns an effect statement's row count into the error it means, if any."""


class Statement:
    __slots__ = ("check", "name", "params")

    def __init__(self, name: str, params: Row, check: Check | None = None) -> None:
        self.name = name
        self.params = params
        self.check = check


def _expect_row(error: Callable[[], KernelError]) -> Check:
    return lambda count: error() if count == 0 else None


def effect_statement(effect: StoreEffect) -> Statement:
    """The one SQL statement that applies ``effect``, with its row-count check."""
    match effect:
        case InsertRun(run):
            return Statement(
                "insert_run",
                params(run),
                _expect_row(lambda: StoreError(f"run {run.id!r} already exists")),
            )
        case UpdateRun(run, expected):
            return Statement(
                "update_run",
                params(run, expected_version=expected),
                _expect_row(lambda: StaleVersionError("run", run.id, expected)),
            )
        case InsertStage(stage):
            message = f"stage {stage.stage_id!r} of run {stage.workflow_run_id!r} already exists"
            return Statement(
                "insert_stage", params(stage), _expect_row(lambda: StoreError(message))
            )
        case UpdateStage(stage, expected):
            return Statement(
                "update_stage",
                params(stage, expected_version=expected),
                _expect_row(lambda: StaleVersionError("stage", stage.id, expected)),
            )
        case DeleteStage(stage):
            return Statement(
                "delete_stage",
                {"workflow_run_id": stage.workflow_run_id, "stage_id": stage.stage_id},
            )
        case EnqueueJob(job):
            return Statement(
                "insert_job",
                params(job),
                _expect_row(lambda: StoreError(f"job {job.id!r} already exists")),
            )
        case UpdateJob(job):
            return Statement(
                "update_job",
                params(job),
                _expect_row(lambda: StoreError(f"job {job.id!r} does not exist")),
            )
        case AppendOutbox(event, event_id, causation_id):
            return Statement("append_outbox", event_params(event, event_id, causation_id))
        case UpdateOutbox(event):
            return Statement("update_outbox", params(event))
        case PutBlob(key, value):
            return Statement("put_blob", {"key": key, "value": jsonb(value)})
        case DeleteBlob(key):
            return Statement("delete_blob", {"key": key})
        case AppendLog(entry):
            return Statement("insert_log", params(entry))
        case CompleteIdempotency(idempotency):
            return Statement("complete_idempotency", params(idempotency))
        case ReleaseIdempotency(key, command_type):
            return Statement("release_idempotency", {"key": key, "command_type": command_type})
        case InsertSignal(signal):
            return Statement(
                "insert_signal",
                params(signal),
                _expect_row(lambda: StoreError(f"signal {signal.id!r} already exists")),
            )
        case ConsumeSignal(signal):
            return Statement(
                "consume_signal",
                {"id": signal.id, "consumed_at": signal.consumed_at, "stage_id": signal.stage_id},
                _expect_row(lambda: StaleVersionError("signal", signal.id, 1)),
            )
        case InsertSchedule(schedule):
            return Statement(
                "insert_schedule",
                params(schedule),
                _expect_row(lambda: StoreError(f"schedule {schedule.id!r} already exists")),
            )
        case UpdateSchedule(schedule, expected):
            return Statement(
                "update_schedule",
                params(schedule, expected_version=expected),
                _expect_row(lambda: StaleVersionError("schedule", schedule.id, expected)),
            )
        case DeleteSchedule(schedule_id):
            return Statement("delete_schedule", {"id": schedule_id})
        case InsertUsage(entry):
            message = f"call {entry.call_id!r} is already in the usage ledger"
            return Statement(
                "insert_usage", usage_params(entry), _expect_row(lambda: StoreError(message))
            )
        case InsertBatchCancel(cancel):
            return Statement("insert_batch_cancel", params(cancel))
        case UpdateBatchCancel(cancel):
            # A cancel another tick cleared meanwhile stays cleared: no check.
            return Statement("update_batch_cancel", params(cancel))
        case DeleteBatchCancel(batch_id):
            return Statement("delete_batch_cancel", {"batch_id": batch_id})
        case PurgeRun(run_id, expected):
            return Statement(
                "purge_run",
                {
                    "id": run_id,
                    "expected_version": expected,
                    "low": f"runs/{run_id}/",
                    "high": f"runs/{run_id}0",
                },
                _expect_row(lambda: StaleVersionError("run", run_id, expected)),
            )
    raise TypeError(f"apply: expected a store effect, got {effect!r}")  # pragma: no cover
