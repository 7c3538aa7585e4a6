"""``InMemoryStore``: a faithful, thread-safe store that keeps everything in memory.

It enforces what the databases enforce: versions on runs and stages, one
stage record per (run, stage_id), (key, command type) idempotency, and
exclusive claims. A transaction works on copies of the tables it writes and
swaps them in on commit, so an exception rolls back every effect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from attrs import define, evolve, field

from kernel.convert import to_json
from kernel.effects import (
    AppendLog,
    AppendOutbox,
    CompleteIdempotency,
    DeleteBlob,
    DeleteStage,
    EnqueueJob,
    InsertRun,
    InsertStage,
    PutBlob,
    ReleaseIdempotency,
    StoreEffect,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateStage,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.records import (
    IdempotencyRecord,
    Job,
    Json,
    LogEntry,
    OutboxEvent,
    WorkflowRun,
    WorkflowStage,
)
from kernel.status import JobStatus, Status


@define
class _Tables:
    runs: dict[str, WorkflowRun] = field(factory=dict)
    # run id -> stage_id -> record; the inner dicts are replaced, never mutated.
    stages: dict[str, dict[str, WorkflowStage]] = field(factory=dict)
    jobs: dict[str, Job] = field(factory=dict)
    outbox: dict[str, OutboxEvent] = field(factory=dict)
    outbox_claims: dict[str, datetime] = field(factory=dict)
    sequences: dict[str, int] = field(factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(factory=dict)
    blobs: dict[str, Json] = field(factory=dict)
    logs: list[LogEntry] = field(factory=list)

    def copy(self) -> _Tables:
        return _Tables(
            runs=dict(self.runs),
            stages=dict(self.stages),
            jobs=dict(self.jobs),
            outbox=dict(self.outbox),
            outbox_claims=dict(self.outbox_claims),
            sequences=dict(self.sequences),
            idempotency=dict(self.idempotency),
            blobs=dict(self.blobs),
            logs=list(self.logs),
        )


def _json_copy(value: Json) -> Json:
    """Detach a stored JSON value from the caller's objects (as a database would)."""
    return to_json(value)


class MemoryTransaction:
    """A transaction over a private copy of the tables."""

    def __init__(self, tables: _Tables) -> None:
        self.t = tables

    # -- loads ---------------------------------------------------------------

    def get_run(self, run_id: str) -> WorkflowRun | None:
        return self.t.runs.get(run_id)

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return sorted(self.t.stages.get(run_id, {}).values(), key=lambda s: s.stage_number)

    def get_job(self, job_id: str) -> Job | None:
        return self.t.jobs.get(job_id)

    def get_jobs(self, run_id: str) -> list[Job]:
        return [job for job in self.t.jobs.values() if job.workflow_run_id == run_id]

    def get_blob(self, key: str) -> tuple[bool, Json]:
        if key in self.t.blobs:
            return True, _json_copy(self.t.blobs[key])
        return False, None

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None:
        return self.t.idempotency.get((key, command_type))

    def acquire_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = self.t.idempotency.get((record.key, record.command_type))
        if existing is None:
            self.t.idempotency[(record.key, record.command_type)] = record
        return existing

    def pending_runs(self, limit: int) -> list[WorkflowRun]:
        # Dict order is insertion order, so a stable sort keeps the oldest first.
        pending = [run for run in self.t.runs.values() if run.status == Status.PENDING]
        pending.sort(key=lambda run: (-run.priority, run.created_at))
        return pending[:limit]

    def lease_next_job(self, worker_id: str, now: datetime) -> Job | None:
        ready = [
            job
            for job in self.t.jobs.values()
            if job.status == JobStatus.QUEUED and job.available_at <= now
        ]
        if not ready:
            return None
        job = min(ready, key=lambda j: (-j.priority, j.created_at))
        leased = evolve(job, status=JobStatus.LEASED, worker_id=worker_id, locked_at=now)
        self.t.jobs[job.id] = leased
        return leased

    def stale_jobs(self, leased_before: datetime, limit: int) -> list[Job]:
        stale = [
            job
            for job in self.t.jobs.values()
            if job.status == JobStatus.LEASED
            and job.locked_at is not None
            and job.locked_at < leased_before
        ]
        return stale[:limit]

    def due_suspended_stages(self, now: datetime, limit: int) -> list[WorkflowStage]:
        due = [
            stage
            for stages in self.t.stages.values()
            for stage in stages.values()
            if stage.status == Status.SUSPENDED
            and stage.next_poll_at is not None
            and stage.next_poll_at <= now
        ]
        due.sort(key=lambda s: (s.next_poll_at, s.created_at))
        return due[:limit]

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxEvent]:
        claimed: list[OutboxEvent] = []
        blocked_runs: set[str] = set()
        for event in self.t.outbox.values():
            if len(claimed) >= limit:
                break
            if event.published_at is not None or event.dlq_at is not None:
                continue
            if event.workflow_run_id in blocked_runs:
                continue
            until = self.t.outbox_claims.get(event.id)
            if until is not None and until > now:
                # Another flush holds this event: keep its run's order by
                # leaving every later event of the run to that flush too.
                blocked_runs.add(event.workflow_run_id)
                continue
            self.t.outbox_claims[event.id] = now + lease
            claimed.append(event)
        return claimed

    def dead_letters(self, limit: int) -> list[OutboxEvent]:
        return [event for event in self.t.outbox.values() if event.dlq_at is not None][:limit]

    # -- effects -------------------------------------------------------------

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        for effect in effects:
            self._apply_one(effect)

    def _apply_one(self, effect: StoreEffect) -> None:
        t = self.t
        match effect:
            case InsertRun(run):
                if run.id in t.runs:
                    raise StoreError(f"run {run.id!r} already exists")
                t.runs[run.id] = run
            case UpdateRun(run, expected):
                current = t.runs.get(run.id)
                if current is None or current.version != expected:
                    raise StaleVersionError("run", run.id, expected)
                t.runs[run.id] = run
            case InsertStage(stage):
                stages = t.stages.get(stage.workflow_run_id, {})
                if stage.stage_id in stages:
                    raise StoreError(
                        f"stage {stage.stage_id!r} of run {stage.workflow_run_id!r} already exists"
                    )
                t.stages[stage.workflow_run_id] = {**stages, stage.stage_id: stage}
            case UpdateStage(stage, expected):
                stages = t.stages.get(stage.workflow_run_id, {})
                existing = stages.get(stage.stage_id)
                if existing is None or existing.version != expected or existing.id != stage.id:
                    raise StaleVersionError("stage", stage.id, expected)
                t.stages[stage.workflow_run_id] = {**stages, stage.stage_id: stage}
            case DeleteStage(stage):
                stages = dict(t.stages.get(stage.workflow_run_id, {}))
                stages.pop(stage.stage_id, None)
                t.stages[stage.workflow_run_id] = stages
            case EnqueueJob(job):
                if job.id in t.jobs:
                    raise StoreError(f"job {job.id!r} already exists")
                t.jobs[job.id] = job
            case UpdateJob(job):
                if job.id not in t.jobs:
                    raise StoreError(f"job {job.id!r} does not exist")
                t.jobs[job.id] = job
            case AppendOutbox(event, event_id, causation_id):
                run_id = event.workflow_run_id
                sequence = t.sequences.get(run_id, 0) + 1
                t.sequences[run_id] = sequence
                payload: dict[str, Any] = {"type": event.type, **to_json(event)}
                t.outbox[event_id] = OutboxEvent(
                    id=event_id,
                    workflow_run_id=run_id,
                    sequence=sequence,
                    event_type=event.type,
                    payload=payload,
                    causation_id=causation_id,
                    occurred_at=event.timestamp,
                )
            case UpdateOutbox(event):
                t.outbox[event.id] = event
                t.outbox_claims.pop(event.id, None)
            case PutBlob(key, value):
                t.blobs[key] = _json_copy(value)
            case DeleteBlob(key):
                t.blobs.pop(key, None)
            case AppendLog(entry):
                t.logs.append(entry)
            case CompleteIdempotency(record):
                t.idempotency[(record.key, record.command_type)] = record
            case ReleaseIdempotency(key, command_type):
                t.idempotency.pop((key, command_type), None)


class InMemoryStore:
    """A store for tests and single-process use: fast, exact, and forgotten on exit.

    >>> store = InMemoryStore()
    >>> store.list_runs()
    []
    """

    def __init__(self) -> None:
        # One lock serialises transactions, as SQLite's write lock does.
        self._lock = threading.RLock()
        self._tables = _Tables()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            if self._depth:
                raise StoreError("InMemoryStore transactions do not nest")
            self._depth += 1
            try:
                work = self._tables.copy()
                yield MemoryTransaction(work)
                self._tables = work
            finally:
                self._depth -= 1

    def _read(self) -> MemoryTransaction:
        return MemoryTransaction(self._tables)

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        with self._lock:
            job = self._tables.jobs.get(job_id)
            if job is None or job.status != JobStatus.LEASED or job.worker_id != worker_id:
                return False
            self._tables.jobs = {**self._tables.jobs, job_id: evolve(job, locked_at=now)}
            return True

    def append_log(self, entry: LogEntry) -> None:
        with self.transaction() as tx:
            tx.apply([AppendLog(entry)])

    def get_blob(self, key: str) -> tuple[bool, Json]:
        with self._lock:
            return self._read().get_blob(key)

    def put_blob(self, key: str, value: Json) -> None:
        with self.transaction() as tx:
            tx.apply([PutBlob(key, value)])

    def delete_blob(self, key: str) -> None:
        with self.transaction() as tx:
            tx.apply([DeleteBlob(key)])

    def get_run(self, run_id: str) -> WorkflowRun | None:
        with self._lock:
            return self._tables.runs.get(run_id)

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        with self._lock:
            return self._read().get_stages(run_id)

    def list_runs(
        self, status: Status | None = None, workflow_id: str | None = None, limit: int = 100
    ) -> list[WorkflowRun]:
        with self._lock:
            runs = [
                run
                for run in reversed(self._tables.runs.values())
                if (status is None or run.status == status)
                and (workflow_id is None or run.workflow_id == workflow_id)
            ]
        runs.sort(key=lambda run: run.created_at, reverse=True)
        return runs[:limit]

    def get_logs(self, run_id: str) -> list[LogEntry]:
        with self._lock:
            return [entry for entry in self._tables.logs if entry.workflow_run_id == run_id]

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        with self._lock:
            events = list(self._tables.outbox.values())
        if run_id is not None:
            events = [event for event in events if event.workflow_run_id == run_id]
        return events

    def get_jobs(self, run_id: str) -> list[Job]:
        with self._lock:
            return self._read().get_jobs(run_id)

    def close(self) -> None:
        """Nothing to release."""
