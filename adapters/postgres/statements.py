"""Each store effect as the named statement that applies it on PostgreSQL, with
the error its statement's failed check means (a stale version, a missing row,
a duplicate): a checked statement fails on the server (``expect_rows``,
migration 0009) and the store raises that error. Consecutive outbox appends,
consecutive publication records, consecutive stored values (blobs), and
consecutive inserts or updates of one kind of record (runs, stages, jobs) on
distinct rows share one statement
(``batched.sql``; ``expect_ids``, migration 0010, names the row that failed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.postgres.rows import (
    Row,
    event_params,
    jsonb,
    params,
    rows_json,
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
from kernel.events import event_payload
from kernel.records import OutboxEvent

Failure = Callable[[], KernelError]
"""The error a checked statement's failure means (it changed no row)."""


class Statement:
    """A named query of ``queries.sql`` with its parameters; ``failure`` for a
    checked one; ``first``: the index of the first effect it applies. A checked
    statement of several rows has ``failure_of``: the error for the row its
    failure names (by id)."""

    __slots__ = ("failure", "failure_of", "first", "name", "params")

    def __init__(
        self,
        name: str,
        params: Row,
        failure: Failure | None = None,
        first: int = 0,
        failure_of: Callable[[str], KernelError] | None = None,
    ) -> None:
        self.name = name
        self.params = params
        self.failure = failure
        self.first = first
        self.failure_of = failure_of

    def error(self, row_id: str | None) -> KernelError:
        """What this checked statement's failure means, for the row it names (if any)."""
        if self.failure_of is not None and row_id:
            return self.failure_of(row_id)
        assert self.failure is not None
        return self.failure()


_MANY: dict[type[StoreEffect], str] = {
    UpdateRun: "update_runs",
    UpdateStage: "update_stages",
    UpdateJob: "update_jobs",
    InsertStage: "insert_stages",
    EnqueueJob: "insert_jobs",
    PutBlob: "put_blobs",
}
"""Effects whose consecutive runs on distinct rows share one statement, and its name."""


def effect_statements(effects: Sequence[StoreEffect]) -> list[Statement]:
    """The statements that apply ``effects``: one per effect, except that the
    ``AppendOutbox`` effects share one (where the first of them is), and so do
    consecutive ``UpdateOutbox`` effects. Appends are grouped only between
    effects that touch the outbox otherwise (``UpdateOutbox``, ``PurgeRun``)
    and only with distinct event ids (a repeated id replaces its event): their
    order among themselves is kept, which is all their outcome depends on."""
    appends = _append_groups(effects)
    statements: list[Statement] = []
    index = 0
    while index < len(effects):
        effect = effects[index]
        if isinstance(effect, AppendOutbox) and index in appends:
            group = appends[index]
            if len(group) > 1:
                statements.append(_append_many(group, index))
            else:
                statements.append(_single(effect, index))
            index += 1
        elif isinstance(effect, AppendOutbox):
            index += 1  # in the statement of its group
        elif isinstance(effect, UpdateOutbox):
            end = index + 1
            ids = {effect.event.id}
            while end < len(effects):
                following = effects[end]
                if not isinstance(following, UpdateOutbox) or following.event.id in ids:
                    break
                ids.add(following.event.id)
                end += 1
            if end - index > 1:
                updates = [e.event for e in effects[index:end] if isinstance(e, UpdateOutbox)]
                statements.append(_update_many(updates, index))
            else:
                statements.append(_single(effect, index))
            index = end
        elif type(effect) in _MANY:
            end = _same_kind_end(effects, index)
            if end - index > 1:
                statements.append(_rows_many(effects[index:end], index))
            else:
                statements.append(_single(effect, index))
            index = end
        else:
            statements.append(_single(effect, index))
            index += 1
    return statements


def _same_kind_end(effects: Sequence[StoreEffect], start: int) -> int:
    """The end of the run of effects from ``start`` of its kind, on distinct rows."""
    kind = type(effects[start])
    ids = {_row_id(effects[start])}
    end = start + 1
    while end < len(effects) and type(effects[end]) is kind:
        row_id = _row_id(effects[end])
        if row_id in ids:  # a row's second change: after the statement of its first
            break
        ids.add(row_id)
        end += 1
    return end


def _row_id(effect: StoreEffect) -> str:
    match effect:
        case UpdateRun(run):
            return run.id
        case UpdateStage(stage) | InsertStage(stage):
            return stage.id
        case UpdateJob(job) | EnqueueJob(job):
            return job.id
        case PutBlob(key):
            return key
    raise TypeError(f"expected a row's effect, got {effect!r}")  # pragma: no cover


def _rows_many(effects: Sequence[StoreEffect], first: int) -> Statement:
    """One statement of ``batched.sql`` for effects of one kind on distinct rows: the
    single-row statements' parameters, one JSON object per row."""
    singles = [effect_statement(effect) for effect in effects]
    rows = {"rows": rows_json([single.params for single in singles]), "count": len(singles)}
    failures = {_row_id(e): single.failure for e, single in zip(effects, singles, strict=True)}

    def failure_of(row_id: str) -> KernelError:
        failure = failures.get(row_id) or singles[0].failure
        assert failure is not None
        return failure()

    checked = singles[0].failure is not None
    return Statement(
        _MANY[type(effects[0])],
        rows,
        singles[0].failure,
        first,
        failure_of=failure_of if checked else None,
    )


def _single(effect: StoreEffect, index: int) -> Statement:
    statement = effect_statement(effect)
    statement.first = index
    return statement


def _append_groups(effects: Sequence[StoreEffect]) -> dict[int, list[AppendOutbox]]:
    """The appends, grouped as described in :func:`effect_statements`: by the index of
    each group's first append (an append with a repeated id makes a group of its own
    wherever it is: it must follow the event it replaces)."""
    groups: dict[int, list[AppendOutbox]] = {}
    first: int | None = None
    ids: set[str] = set()
    for index, effect in enumerate(effects):
        if isinstance(effect, AppendOutbox):
            if first is not None and effect.event_id not in ids:
                groups[first].append(effect)
                ids.add(effect.event_id)
                continue
            first, ids = index, {effect.event_id}
            groups[first] = [effect]
        elif isinstance(effect, UpdateOutbox | PurgeRun):
            first, ids = None, set()
    return groups


def _append_many(effects: Sequence[AppendOutbox], first: int) -> Statement:
    rows = [
        {
            "id": effect.event_id,
            "workflow_run_id": effect.event.workflow_run_id,
            "event_type": effect.event.type,
            "payload": event_payload(effect.event),
            "causation_id": effect.causation_id,
            "occurred_at": effect.event.timestamp,
        }
        for effect in effects
    ]
    return Statement(
        "append_outbox_many", {"rows": rows_json(rows), "count": len(rows)}, first=first
    )


def _update_many(events: Sequence[OutboxEvent], first: int) -> Statement:
    rows = [
        {
            "id": event.id,
            "workflow_run_id": event.workflow_run_id,
            "sequence": event.sequence,
            "published_at": event.published_at,
            "retry_count": event.retry_count,
            "dlq_at": event.dlq_at,
        }
        for event in events
    ]
    return Statement(
        "update_outbox_many", {"rows": rows_json(rows), "count": len(rows)}, first=first
    )


def effect_statement(effect: StoreEffect) -> Statement:
    """The one SQL statement that applies ``effect``, with what its failure means."""
    match effect:
        case InsertRun(run):
            return Statement(
                "insert_run",
                params(run),
                lambda: StoreError(f"run {run.id!r} already exists"),
            )
        case UpdateRun(run, expected):
            return Statement(
                "update_run",
                params(run, expected_version=expected),
                lambda: StaleVersionError("run", run.id, expected),
            )
        case InsertStage(stage):
            message = f"stage {stage.stage_id!r} of run {stage.workflow_run_id!r} already exists"
            return Statement("insert_stage", params(stage), lambda: StoreError(message))
        case UpdateStage(stage, expected):
            return Statement(
                "update_stage",
                params(stage, expected_version=expected),
                lambda: StaleVersionError("stage", stage.id, expected),
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
                lambda: StoreError(f"job {job.id!r} already exists"),
            )
        case UpdateJob(job):
            return Statement(
                "update_job",
                params(job),
                lambda: StoreError(f"job {job.id!r} does not exist"),
            )
        case AppendOutbox(event, event_id, causation_id):
            return Statement("append_outbox", event_params(event, event_id, causation_id))
        case UpdateOutbox(event):
            return _update_many([event], 0)
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
                lambda: StoreError(f"signal {signal.id!r} already exists"),
            )
        case ConsumeSignal(signal):
            return Statement(
                "consume_signal",
                {"id": signal.id, "consumed_at": signal.consumed_at, "stage_id": signal.stage_id},
                lambda: StaleVersionError("signal", signal.id, 1),
            )
        case InsertSchedule(schedule):
            return Statement(
                "insert_schedule",
                params(schedule),
                lambda: StoreError(f"schedule {schedule.id!r} already exists"),
            )
        case UpdateSchedule(schedule, expected):
            return Statement(
                "update_schedule",
                params(schedule, expected_version=expected),
                lambda: StaleVersionError("schedule", schedule.id, expected),
            )
        case DeleteSchedule(schedule_id):
            return Statement("delete_schedule", {"id": schedule_id})
        case InsertUsage(entry):
            message = f"call {entry.call_id!r} is already in the usage ledger"
            return Statement("insert_usage", usage_params(entry), lambda: StoreError(message))
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
                lambda: StaleVersionError("run", run_id, expected),
            )
    raise TypeError(f"apply: expected a store effect, got {effect!r}")  # pragma: no cover
