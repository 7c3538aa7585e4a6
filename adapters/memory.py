"""``InMemoryStore``: a faithful, thread-safe store that keeps everything in memory.

It enforces what the databases enforce: versions on runs, stages and schedules, one
stage record per (run, stage_id), one ledger row per call id, (key, command type)
idempotency, and exclusive claims. One lock serialises transactions (as SQLite's write lock
does); a transaction writes the live tables and keeps an undo log, so an
exception rolls back every effect it applied.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from attrs import define, field

from adapters import memory_limits
from adapters.memory_ledger import LedgerQueries, LedgerTables
from adapters.memory_purge import PurgeLoads
from adapters.memory_signals import MISSING
from kernel.convert import to_json
from kernel.copying import evolve
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
from kernel.events import event_payload
from kernel.records import (
    IdempotencyRecord,
    Job,
    Json,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import JobStatus, Status


@define
class _Tables(LedgerTables):
    runs: dict[str, WorkflowRun] = field(factory=dict)
    # run id -> stage_id -> record
    stages: dict[str, dict[str, WorkflowStage]] = field(factory=dict)
    jobs: dict[str, Job] = field(factory=dict)
    # ids of QUEUED jobs (a dict as an ordered set): leasing does not scan finished jobs
    queued: dict[str, None] = field(factory=dict)
    outbox: dict[str, OutboxEvent] = field(factory=dict)
    outbox_claims: dict[str, datetime] = field(factory=dict)
    sequences: dict[str, int] = field(factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(factory=dict)
    blobs: dict[str, Json] = field(factory=dict)
    logs: list[LogEntry] = field(factory=list)
    signals: dict[str, SignalRecord] = field(factory=dict)  # in arrival order
    schedules: dict[str, ScheduleRecord] = field(factory=dict)
    # limit key -> its recent lease times (adapters.memory_limits)
    lease_times: dict[str, tuple[datetime, ...]] = field(factory=dict)


def _lease_order(job: Job) -> tuple[int, datetime]:
    return (-job.priority, job.created_at)


def _json_copy(value: Json) -> Json:
    """Detach a stored JSON value from the caller's objects (as a database would)."""
    return to_json(value)


class MemoryTransaction(PurgeLoads):
    """A transaction over the live tables that remembers how to undo each write."""

    t: _Tables

    def __init__(self, tables: _Tables) -> None:
        self.t = tables
        self._undo: list[tuple[dict[Any, Any], Any, Any]] = []
        self._logs_before = len(tables.logs)

    def rollback(self) -> None:
        """Undo every write of this transaction, newest first."""
        for table, key, old in reversed(self._undo):
            if old is MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        del self.t.logs[self._logs_before :]
        self._undo.clear()

    def _put_job(self, job: Job) -> None:
        self._set(self.t.jobs, job.id, job)
        if job.status == JobStatus.QUEUED:
            if job.id not in self.t.queued:
                self._set(self.t.queued, job.id, None)
        else:
            self._pop(self.t.queued, job.id)

    def _stage_table(self, run_id: str) -> dict[str, WorkflowStage]:
        if run_id not in self.t.stages:
            self._set(self.t.stages, run_id, {})
        return self.t.stages[run_id]

    # -- loads ---------------------------------------------------------------

    def get_run(self, run_id: str) -> WorkflowRun | None:
        return self.t.runs.get(run_id)

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return sorted(self.t.stages.get(run_id, {}).values(), key=lambda s: s.stage_number)

    def get_job(self, job_id: str) -> Job | None:
        return self.t.jobs.get(job_id)

    def get_jobs(self, run_id: str) -> list[Job]:
        jobs = [job for job in self.t.jobs.values() if job.workflow_run_id == run_id]
        return sorted(jobs, key=lambda job: job.created_at)

    def get_blob(self, key: str) -> tuple[bool, Json]:
        if key in self.t.blobs:
            return True, _json_copy(self.t.blobs[key])
        return False, None

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None:
        return self.t.idempotency.get((key, command_type))

    def acquire_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = self.t.idempotency.get((record.key, record.command_type))
        if existing is None:
            self._set(self.t.idempotency, (record.key, record.command_type), record)
        return existing

    def pending_runs(
        self,
        limit: int,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> list[WorkflowRun]:
        # Dict order is insertion order, so a stable sort keeps the oldest first.
        pending = [
            run
            for run in self.t.runs.values()
            if run.status == Status.PENDING
            and (workflow_ids is None or run.workflow_id in workflow_ids)
            and (versions is None or (run.workflow_id, run.workflow_version) in versions)
        ]
        pending.sort(key=lambda run: (-run.priority, run.created_at))
        return pending[:limit]

    def lease_next_job(
        self,
        worker_id: str,
        now: datetime,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> Job | None:
        ready = [
            job
            for job in (self.t.jobs[job_id] for job_id in self.t.queued)
            if job.available_at <= now
            and (workflow_ids is None or job.workflow_id in workflow_ids)
            and (versions is None or (job.workflow_id, job.workflow_version) in versions)
        ]
        if not ready:
            return None
        job = min(ready, key=_lease_order)
        if job.limit_key is not None:
            # A limited job first in line: pass over held keys (SPEC §15).
            times = self.t.lease_times
            ordered = sorted(ready, key=_lease_order)
            found = memory_limits.first_with_room(ordered, self.t.jobs.values(), times, now)
            if found is None:
                return None
            job = found
            memory_limits.record_lease(job, now, times, lambda k, v: self._set(times, k, v))
        leased = evolve(job, status=JobStatus.LEASED, worker_id=worker_id, locked_at=now)
        self._put_job(leased)
        return leased

    def running_runs(self, workflow_ids: Collection[str]) -> dict[str, int]:
        # The store's one lock already serialises claims.
        return memory_limits.running_runs(self.t.runs.values(), workflow_ids)

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
            self._set(self.t.outbox_claims, event.id, now + lease)
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
                self._insert(t.runs, run.id, run, f"run {run.id!r}")
            case UpdateRun(run, expected):
                self._replace(t.runs, run, expected, "run")
            case InsertStage(stage):
                what = f"stage {stage.stage_id!r} of run {stage.workflow_run_id!r}"
                self._insert(self._stage_table(stage.workflow_run_id), stage.stage_id, stage, what)
            case UpdateStage(stage, expected):
                stages = self._stage_table(stage.workflow_run_id)
                existing = stages.get(stage.stage_id)
                if existing is None or existing.version != expected or existing.id != stage.id:
                    raise StaleVersionError("stage", stage.id, expected)
                self._set(stages, stage.stage_id, stage)
            case DeleteStage(stage):
                self._pop(self._stage_table(stage.workflow_run_id), stage.stage_id)
            case EnqueueJob(job):
                if job.id in t.jobs:
                    raise StoreError(f"job {job.id!r} already exists")
                self._put_job(job)
            case UpdateJob(job):
                if job.id not in t.jobs:
                    raise StoreError(f"job {job.id!r} does not exist")
                self._put_job(job)
            case AppendOutbox(event, event_id, causation_id):
                if event_id in t.outbox:
                    raise StoreError(f"outbox event {event_id!r} already exists")
                run_id = event.workflow_run_id
                sequence = t.sequences.get(run_id, 0) + 1
                self._set(t.sequences, run_id, sequence)
                outboxed = OutboxEvent(
                    id=event_id,
                    workflow_run_id=run_id,
                    sequence=sequence,
                    event_type=event.type,
                    payload=event_payload(event),
                    causation_id=causation_id,
                    occurred_at=event.timestamp,
                )
                self._set(t.outbox, event_id, outboxed)
            case UpdateOutbox(event):
                if event.id not in t.outbox:
                    raise StoreError(f"outbox event {event.id!r} does not exist")
                self._set(t.outbox, event.id, event)
                self._pop(t.outbox_claims, event.id)
            case PutBlob(key, value):
                self._set(t.blobs, key, _json_copy(value))
            case DeleteBlob(key):
                self._pop(t.blobs, key)
            case AppendLog(entry):
                t.logs.append(entry)
            case CompleteIdempotency(record):
                self._set(t.idempotency, (record.key, record.command_type), record)
            case ReleaseIdempotency(key, command_type):
                held = t.idempotency.get((key, command_type))
                if held is not None and held.state == "IN_PROGRESS":
                    self._pop(t.idempotency, (key, command_type))
            case _:  # the rest: purge, ledger, signals, schedules (checked exhaustive there)
                self.apply_purge(effect)


class InMemoryStore(LedgerQueries):
    """A store for tests and single-process use: fast, exact, and forgotten on exit.

    >>> store = InMemoryStore()
    >>> store.list_runs()
    []
    """

    def __init__(self) -> None:
        # One lock serialises transactions, as SQLite's write lock does.
        self._lock = threading.RLock()
        self._tables: _Tables = _Tables()
        # The open transaction; only the thread holding the lock can see it set.
        self._current: MemoryTransaction | None = None

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            if self._current is not None:
                raise StoreError("InMemoryStore transactions do not nest")
            tx = MemoryTransaction(self._tables)
            self._current = tx
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            finally:
                self._current = None

    @contextmanager
    def _writing(self) -> Iterator[MemoryTransaction]:
        """The calling thread's open transaction, or a new one (as SQLite joins an
        open transaction on its one connection)."""
        with self._lock:
            if self._current is not None:
                yield self._current
                return
            with self.transaction() as tx:
                yield tx

    def _read(self) -> MemoryTransaction:
        return MemoryTransaction(self._tables)

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        with self._writing() as tx:
            job = self._tables.jobs.get(job_id)
            if job is None or job.status != JobStatus.LEASED or job.worker_id != worker_id:
                return False
            tx.apply([UpdateJob(evolve(job, locked_at=now))])
            return True

    def append_log(self, entry: LogEntry) -> None:
        with self._writing() as tx:
            tx.apply([AppendLog(entry)])

    def get_blob(self, key: str) -> tuple[bool, Json]:
        with self._lock:
            return self._read().get_blob(key)

    def put_blob(self, key: str, value: Json) -> None:
        with self._writing() as tx:
            tx.apply([PutBlob(key, value)])

    def delete_blob(self, key: str) -> None:
        with self._writing() as tx:
            tx.apply([DeleteBlob(key)])

    def get_run(self, run_id: str) -> WorkflowRun | None:
        with self._lock:
            return self._tables.runs.get(run_id)

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        with self._lock:
            return self._read().get_stages(run_id)

    def list_runs(
        self,
        status: Status | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        with self._lock:
            # Newest first: by creation time, then by insertion order.
            ordered = sorted(
                enumerate(self._tables.runs.values()),
                key=lambda item: (item[1].created_at, item[0]),
                reverse=True,
            )
        if before is not None:
            ids = [run.id for _, run in ordered]
            ordered = ordered[ids.index(before) + 1 :] if before in ids else []
        runs = [
            run
            for _, run in ordered
            if (status is None or run.status == status)
            and (workflow_id is None or run.workflow_id == workflow_id)
        ]
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
