"""``SqliteTransaction``: loads state and applies effects inside ``BEGIN IMMEDIATE``.

Every method runs on the store's one connection while the store's lock and
SQLite's write lock are held (see ``SqliteStore.transaction``). Because
writers are serialised for the whole transaction, "choose rows for this
caller" methods (``pending_runs``, ``lease_next_job``, ``claim_outbox``) can
never hand the same row to two transactions, in this process or another.

This is a hot path: statements run through the raw ``sqlite3`` connection
of the sqlite-utils ``Database`` (``db.conn.execute``), which skips the
savepoint that ``Database.query`` wraps around every read, and consecutive
effects of one kind are written together (:mod:`adapters.sqlite.handlers`).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from adapters.columns import epoch_us
from adapters.effect_order import by_kind
from adapters.sqlite.codec import dump_json, fetch_dicts, load_json, timestamp
from adapters.sqlite.errors import ErrorMap
from adapters.sqlite.handlers import ANNOUNCED, HANDLERS
from adapters.sqlite.ledger import CANCELS, usage_entry
from adapters.sqlite.purge import purgeable_rows
from adapters.sqlite.queries import QUERIES as Q
from adapters.sqlite.rows import (
    IDEMPOTENCY,
    JOBS,
    LOGS,
    OUTBOX,
    RUNS,
    SCHEDULES,
    SIGNALS,
    STAGES,
)
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.effects import StoreEffect
from kernel.errors import StoreError
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
from kernel.shell.reads import RunSnapshot
from kernel.status import Status

__all__ = [
    "IDEMPOTENCY",
    "JOBS",
    "LOGS",
    "OUTBOX",
    "RUNS",
    "SCHEDULES",
    "SIGNALS",
    "STAGES",
    "SqliteTransaction",
]

CLAIM_WINDOW = 1000
"""How many of the oldest unpublished events a claim looks at, at least (see queries.sql)."""


def _id_list(ids: Collection[str] | None) -> str | None:
    """``ids`` as the JSON array text the queries read with ``json_each`` (``None``: all)."""
    if ids is None:
        return None
    if isinstance(ids, frozenset):
        return _frozen_id_list(ids)
    return dump_json(list(ids))


@functools.lru_cache(maxsize=64)
def _frozen_id_list(ids: frozenset[str]) -> str:
    # A registry hands the same frozenset to every lease: encode it once.
    return dump_json(sorted(ids))


def _version_list(pairs: Collection[tuple[str, str]] | None) -> str | None:
    """``(workflow id, version)`` pairs as the JSON array of pairs the queries read
    with ``json_each`` (``None``: all)."""
    if pairs is None:
        return None
    if isinstance(pairs, frozenset):
        return _frozen_version_list(pairs)
    return dump_json([list(pair) for pair in pairs])


@functools.lru_cache(maxsize=64)
def _frozen_version_list(pairs: frozenset[tuple[str, str]]) -> str:
    return dump_json([list(pair) for pair in sorted(pairs)])


def _snapshots(cursor: sqlite3.Cursor, rows: list[Any]) -> list[RunSnapshot]:
    """Rows of ``get_run(s)_with_stages`` as snapshots, one per run, in row order: the
    run's columns, the marker column ``stage_columns``, the stage's columns, then
    ``stored_output`` (last)."""
    names = [column[0] for column in cursor.description]
    split, last = names.index("stage_columns"), len(names) - 1
    run_names, stage_names = names[:split], names[split + 1 : last]
    at_id = run_names.index("id")
    found: list[RunSnapshot] = []
    current: str | None = None
    stages: list[WorkflowStage] = []
    outputs: dict[str, Json] = {}
    for row in rows:
        if row[at_id] != current:
            current = row[at_id]
            run = RUNS.decode(dict(zip(run_names, row[:split], strict=True)))
            stages, outputs = [], {}
            found.append((run, stages, outputs))
        if row[split + 1] is None:  # the LEFT JOIN found no stage
            continue
        stage = STAGES.decode(dict(zip(stage_names, row[split + 1 : last], strict=True)))
        stages.append(stage)
        if row[last] is not None:
            outputs[stage.id] = load_json(row[last])
    return found


class SqliteTransaction:
    """One open ``BEGIN IMMEDIATE`` transaction (a :class:`~kernel.ports.StoreTransaction`)."""

    __slots__ = ("announces_work", "conn", "errors")

    def __init__(self, conn: sqlite3.Connection, errors: ErrorMap) -> None:
        self.conn = conn
        self.errors = errors
        self.announces_work = False
        """Whether this transaction created a run or queued a job (reset at each BEGIN)."""

    def _select(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.errors:
            return fetch_dicts(self.conn.execute(query, params))

    # -- loads -------------------------------------------------------------

    def get_run(self, run_id: str) -> WorkflowRun | None:
        rows = self._select(Q.get_run, {"id": run_id})
        return RUNS.decode(rows[0]) if rows else None

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return STAGES.decode_all(self._select(Q.get_stages, {"workflow_run_id": run_id}))

    def get_run_with_stages(self, run_id: str, group: int = 0) -> RunSnapshot:
        """``get_run``, ``get_stages`` and the stored outputs of ``group``'s completed stages
        (by stage record id), in one statement (``SnapshotReads``)."""
        with self.errors:
            cursor = self.conn.execute(Q.get_run_with_stages, {"id": run_id, "group": group})
            rows = cursor.fetchall()
        if not rows:
            return None, [], {}
        return _snapshots(cursor, rows)[0]

    def get_runs_with_stages(self, requests: Sequence[tuple[str, int]]) -> list[RunSnapshot]:
        """``get_run_with_stages`` of each ``(run_id, group)``, in one statement
        (``kernel.shell.reads.ManySnapshots``)."""
        wanted = dump_json([[run_id, group] for run_id, group in requests])
        with self.errors:
            cursor = self.conn.execute(Q.get_runs_with_stages, {"runs": wanted})
            rows = cursor.fetchall()
        found = {snapshot[0].id: snapshot for snapshot in _snapshots(cursor, rows) if snapshot[0]}
        return [found.get(run_id, (None, [], {})) for run_id, _ in requests]

    def unchanged(self, run: WorkflowRun, stages: Sequence[WorkflowStage], job: Job | None) -> bool:
        """Whether the run, its stage records and ``job`` are still exactly these, in one
        statement (``kernel.shell.reads.SnapshotReads``). BEGIN IMMEDIATE keeps it so
        until this transaction ends."""
        expected = {("run", run.id, run.version), *(("stage", s.id, s.version) for s in stages)}
        if job is None:
            query, params = Q.run_versions, {"workflow_run_id": run.id}
        elif job.workflow_run_id != run.id:
            return False
        else:
            query, params = Q.run_versions_and_job, JOBS.encode(job)
            expected.add(("job", job.id, 0))
        with self.errors:
            rows = self.conn.execute(query, params).fetchall()
        return len(rows) == len(expected) and set(rows) == expected

    def unchanged_many(
        self, items: Sequence[tuple[WorkflowRun, Sequence[WorkflowStage], Job | None]]
    ) -> list[bool]:
        """:meth:`unchanged` of each ``(run, stages, job)`` (distinct runs), in two
        statements (``kernel.shell.reads.ManySnapshots``)."""
        runs = [run.id for run, _, _ in items]
        jobs = {job.id: job for _, _, job in items if job is not None}
        with self.errors:
            versions = self.conn.execute(Q.versions_of_runs, {"runs": dump_json(runs)}).fetchall()
            cursor = self.conn.execute(Q.jobs_as_written, {"jobs": dump_json(list(jobs))})
            written = cursor.fetchall()
        columns = [column[0] for column in cursor.description]
        found: dict[str, set[tuple[str, str, int]]] = {run_id: set() for run_id in runs}
        counts = dict.fromkeys(runs, 0)
        for kind, run_id, record_id, version in versions:
            found[run_id].add((kind, record_id, version))
            counts[run_id] += 1
        same_jobs = set()
        for row in written:  # each job's columns as it would write them, compared
            encoded = JOBS.encode(jobs[row[0]])
            if tuple(row) == tuple(encoded[column] for column in columns):
                same_jobs.add(row[0])
        answers = []
        for run, stages, job in items:
            expected = {("run", run.id, run.version), *(("stage", s.id, s.version) for s in stages)}
            same = counts[run.id] == len(expected) and found[run.id] == expected
            if job is not None:
                same = same and job.workflow_run_id == run.id and job.id in same_jobs
            answers.append(same)
        return answers

    def get_job(self, job_id: str) -> Job | None:
        rows = self._select(Q.get_job, {"id": job_id})
        return JOBS.decode(rows[0]) if rows else None

    def get_jobs(self, run_id: str) -> list[Job]:
        return JOBS.decode_all(self._select(Q.get_jobs, {"workflow_run_id": run_id}))

    def get_blob(self, key: str) -> tuple[bool, Json]:
        with self.errors:
            row = self.conn.execute(Q.get_blob, {"key": key}).fetchone()
        return (False, None) if row is None else (True, load_json(row[0]))

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None:
        rows = self._select(Q.get_idempotency, {"key": key, "command_type": command_type})
        return IDEMPOTENCY.decode(rows[0]) if rows else None

    def acquire_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        # ON CONFLICT DO NOTHING: the unique (key, command_type) resolves the
        # race in the database; no row inserted means someone holds the key.
        with self.errors:
            inserted = self.conn.execute(Q.acquire_idempotency, IDEMPOTENCY.encode(record))
        if inserted.rowcount == 1:
            return None
        return self.get_idempotency(record.key, record.command_type)

    def pending_runs(
        self,
        limit: int,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> list[WorkflowRun]:
        # BEGIN IMMEDIATE holds the write lock until this transaction ends, so
        # no other transaction can read these runs as PENDING meanwhile.
        params = {
            "limit": limit,
            "workflow_ids": _id_list(workflow_ids),
            "versions": _version_list(versions),
        }
        return RUNS.decode_all(self._select(Q.pending_runs, params))

    def lease_next_job(
        self,
        worker_id: str,
        now: datetime,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> Job | None:
        params = {
            "worker_id": worker_id,
            "now": timestamp(now),
            "now_us": epoch_us(now),
            "workflow_ids": _id_list(workflow_ids),
            "versions": _version_list(versions),
        }
        rows = self._select(Q.lease_next_job, params)
        if not rows:
            return None
        job = JOBS.decode(rows[0])
        if job.limit_key is not None and job.limit_rate_count is not None:
            # The rate window's record of this lease, in the same transaction (SPEC §15).
            lease = {"limit_key": job.limit_key, "now_us": params["now_us"]}
            with self.errors:
                self.conn.execute(Q.record_limit_lease, {**lease, "per_us": job.limit_rate_per_us})
                self.conn.execute(Q.insert_limit_lease, lease)
        return job

    def lease_next_jobs(
        self,
        worker_id: str,
        now: datetime,
        n: int,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> tuple[list[Job], bool]:
        """Up to ``n`` jobs, as ``n`` calls of :meth:`lease_next_job` would lease them,
        in two statements while none of them has a limit key (``ManyLeases``). At the
        first with a key, that job is leased alone (its limits apply), and the call
        ends: the caller asks again for more (the ``True`` that comes with them)."""
        params: dict[str, Any] = {
            "now": timestamp(now),
            "workflow_ids": None,
            "versions": _version_list(versions),
            "limit": n,
        }
        with self.errors:
            candidates = self.conn.execute(Q.next_queued_jobs, params).fetchall()
        if not candidates:
            return [], False
        free: list[int] = []
        for position, limit_key in candidates:
            if limit_key is not None:
                break
            free.append(position)
        if not free:  # the first has a limit key
            job = self.lease_next_job(worker_id, now, versions=versions)
            return ([], False) if job is None else ([job], True)
        at_limit = len(free) < len(candidates)
        lease = {"worker_id": worker_id, "now": params["now"], "positions": dump_json(free)}
        rows = self._select(Q.lease_jobs, lease)
        order = {position: index for index, position in enumerate(free)}
        rows.sort(key=lambda row: order[row["position"]])  # RETURNING has no order
        return JOBS.decode_all(rows), at_limit

    def running_runs(self, workflow_ids: Collection[str]) -> dict[str, int]:
        # BEGIN IMMEDIATE already serialises claims: the count cannot go stale.
        rows = self._select(Q.running_runs, {"workflow_ids": _id_list(workflow_ids)})
        return {row["workflow_id"]: int(row["running"]) for row in rows}

    def stale_jobs(self, leased_before: datetime, limit: int) -> list[Job]:
        params = {"leased_before": timestamp(leased_before), "limit": limit}
        return JOBS.decode_all(self._select(Q.stale_jobs, params))

    def due_suspended_stages(self, now: datetime, limit: int) -> list[WorkflowStage]:
        params = {"now": timestamp(now), "limit": limit}
        return STAGES.decode_all(self._select(Q.due_suspended_stages, params))

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxEvent]:
        params = {
            "now": timestamp(now),
            "until": timestamp(now + lease),
            "limit": limit,
            "window": max(limit, CLAIM_WINDOW),
        }
        rows = self._select(Q.claim_outbox, params)
        rows.sort(key=lambda row: row["position"])  # RETURNING has no order
        return OUTBOX.decode_all(rows)

    def dead_letters(self, limit: int) -> list[OutboxEvent]:
        return OUTBOX.decode_all(self._select(Q.dead_letters, {"limit": limit}))

    def buffered_signals(self, run_id: str) -> list[SignalRecord]:
        return SIGNALS.decode_all(self._select(Q.buffered_signals, {"workflow_run_id": run_id}))

    def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        rows = self._select(Q.get_schedule, {"id": schedule_id})
        return SCHEDULES.decode(rows[0]) if rows else None

    def due_schedules(
        self, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
    ) -> list[ScheduleRecord]:
        # As pending_runs: BEGIN IMMEDIATE keeps every other transaction out
        # until this one has moved the schedules' next fire times.
        params = {"now": timestamp(now), "limit": limit, "workflow_ids": _id_list(workflow_ids)}
        return SCHEDULES.decode_all(self._select(Q.due_schedules, params))

    def get_usage_call(self, call_id: str) -> UsageEntry | None:
        rows = self._select(Q.get_usage_call, {"call_id": call_id})
        return usage_entry(rows[0]) if rows else None

    def pending_batch_cancels(self, limit: int) -> list[BatchCancel]:
        return CANCELS.decode_all(self._select(Q.pending_batch_cancels, {"limit": limit}))

    def purgeable_runs(
        self, finished_before: datetime, statuses: Collection[Status], limit: int
    ) -> list[WorkflowRun]:
        # BEGIN IMMEDIATE: no other writer runs until these runs are gone.
        return RUNS.decode_all(purgeable_rows(self, finished_before, statuses, limit))

    # -- effects -----------------------------------------------------------

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        """Apply ``effects`` in order, each run of one kind as one batch."""
        with self.errors:
            for kind, group in groupby(by_kind(effects), type):
                if kind in ANNOUNCED:
                    self.announces_work = True
                handler = HANDLERS.get(kind)
                if handler is None:
                    raise StoreError(f"SqliteStore cannot apply effect {kind.__name__}")
                handler(self, list(group))
