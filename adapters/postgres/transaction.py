"""``PostgresTransaction``: loads and effect application inside one open transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from psycopg import Connection
from psycopg.rows import DictRow

from adapters.columns import epoch_us
from adapters.postgres import limits
from adapters.postgres.ahead import ReadAhead, plain
from adapters.postgres.finish_checks import Doubts, FinishChecks, run_reads
from adapters.postgres.pipeline import RoundTrips
from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import (
    Row,
    params,
    record,
    records,
    usage_entries,
)
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.effects import StoreEffect
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

_RUN_COLUMNS = tuple(
    f"run__{name}"
    for name in (
        "id",
        "workflow_id",
        "workflow_name",
        "status",
        "input",
        "config",
        "priority",
        "metadata",
        "output",
        "error",
        "created_at",
        "started_at",
        "completed_at",
        "duration_ms",
        "total_cost",
        "total_tokens",
        "budget",
        "version",
        "workflow_version",
    )
)
"""The run's columns in ``lease_next_job``'s row."""


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
    """One transaction on one pooled (autocommit) connection, in as few round trips
    as it can (:class:`~adapters.postgres.pipeline.RoundTrips`).

    Reads go out together where the kernel's next ones are known
    (:mod:`adapters.postgres.ahead`): a read of a run (which locks it) brings
    the run's stage records; a lease brings the leased job's run (locked), its
    stage records and the stored outputs the stage takes as input;
    ``unchanged`` is answered at once and checked with the next round trip, or,
    asked first, brings the job, the run's version and its stage records
    (:mod:`adapters.postgres.finish_checks`).
    """

    def __init__(
        self, conn: Connection[DictRow], channel: str, doubts: Doubts | None = None
    ) -> None:
        self._trips = RoundTrips(conn, channel)
        self._ahead = ReadAhead()
        self._checks = FinishChecks(self._trips, self._ahead, doubts)
        self._applied = False
        """Whether effects were applied: a check must then see them (it goes out
        before them), so ``unchanged`` asks first."""

    def _rows(self, name: str, values: Row) -> list[Row]:
        return self._trips.send([(QUERIES[name], values)], f"run query {name}")[0].fetchall()

    # -- loads ---------------------------------------------------------------

    def _read_run(self, run_id: str, group: int) -> None:
        """Lock and read the run, with its stage records (and ``group``'s outputs)."""
        self._read_runs([(run_id, group)])

    def _read_runs(self, requests: Sequence[tuple[str, int]]) -> None:
        """:meth:`_read_run` of each ``(run_id, group)``, in one round trip, locking the
        runs in the order given."""
        queries = [query for run_id, group in requests for query in run_reads(run_id, group)]
        cursors = self._trips.send(queries, "run query lock_run")
        for index, (run_id, group) in enumerate(requests):
            self._ahead.keep_run(run_id, cursors[2 * index].fetchall())
            stages = cursors[2 * index + 1].fetchall()
            self._ahead.keep_stages(run_id, stages, group if group else None)

    def get_run(self, run_id: str) -> WorkflowRun | None:
        if run_id not in self._ahead.runs:
            self._read_run(run_id, 0)
        row = self._ahead.runs[run_id]
        return record(row, WorkflowRun) if row is not None else None

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        rows = self._ahead.stages.get(run_id)
        if rows is None:
            rows = self._rows("get_stages", {"workflow_run_id": run_id})
        return records(rows, WorkflowStage)

    def get_run_with_stages(self, run_id: str, group: int = 0) -> RunSnapshot:
        """``get_run`` and ``get_stages`` at once, with the stored outputs of execution
        group ``group``'s COMPLETED stages by stage record id: one round trip, or
        none when they were read ahead."""
        ahead = self._ahead
        if run_id not in ahead.runs:
            self._read_run(run_id, group)
        row = ahead.runs[run_id]
        if row is None:
            return None, [], {}
        outputs = ahead.outputs_of(run_id, group) if group else {}
        if outputs is None:
            values = {"workflow_run_id": run_id, "group": group}
            ahead.keep_stages(run_id, self._rows("get_stages_with_outputs", values), group)
            outputs = ahead.outputs_of(run_id, group) or {}
        return record(row, WorkflowRun), records(ahead.stages[run_id], WorkflowStage), outputs

    def get_runs_with_stages(self, requests: Sequence[tuple[str, int]]) -> list[RunSnapshot]:
        """``get_run_with_stages`` of each ``(run_id, group)`` (distinct runs): those not
        read ahead are locked and read in one round trip, in the order given (the shell
        gives a group's runs in run id order, so workers lock runs in one order)."""
        missing = [(run_id, group) for run_id, group in requests if run_id not in self._ahead.runs]
        if missing:
            self._read_runs(missing)
        return [self.get_run_with_stages(run_id, group) for run_id, group in requests]

    def unchanged(self, run: WorkflowRun, stages: Sequence[WorkflowStage], job: Job | None) -> bool:
        """Whether ``job`` (if any) is still exactly this, and the run and its stage
        records are still at these versions (:mod:`adapters.postgres.finish_checks`)."""
        return self.unchanged_many([(run, stages, job)])[0]

    def unchanged_many(
        self, items: Sequence[tuple[WorkflowRun, Sequence[WorkflowStage], Job | None]]
    ) -> list[bool]:
        """:meth:`unchanged` of each ``(run, stages, job)`` (distinct runs), locking in
        the order given (the shell gives run id order)."""
        return self._checks.unchanged_many(items, applied=self._applied)

    def get_job(self, job_id: str) -> Job | None:
        """The job, locked until the transaction ends (a concurrent reader waits)."""
        if job_id in self._ahead.jobs:
            row = self._ahead.jobs[job_id]
        else:
            rows = self._rows("lock_job", {"id": job_id})
            row = rows[0] if rows else None
        return record(row, Job) if row is not None else None

    def get_jobs(self, run_id: str) -> list[Job]:
        return records(self._rows("get_jobs", {"workflow_run_id": run_id}), Job)

    def get_blob(self, key: str) -> tuple[bool, Json]:
        known = self._ahead.blobs.get(key)
        if known is not None:
            return known
        rows = self._rows("get_blob", {"key": key})
        return (True, rows[0]["value"]) if rows else (False, None)

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None:
        rows = self._rows("get_idempotency", {"key": key, "command_type": command_type})
        return record(rows[0], IdempotencyRecord) if rows else None

    def acquire_idempotency(self, claim: IdempotencyRecord) -> IdempotencyRecord | None:
        while True:
            inserted = self._trips.send(
                [(QUERIES["acquire_idempotency"], params(claim))],
                "run query acquire_idempotency",
            )[0]
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
        wait = self._trips.idle
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
            rows = self._lease(values)
            if not rows:
                return None
            job = record(rows[0], Job)
            if job.limit_key is None or limits.keep_lease(self._rows, job, now_us, wait=wait):
                self._trips.leased(job.id)
                return job
            held.append(job.limit_key)  # full under its lock: pass over it (SPEC §15)
            values["held"] = held
        return None

    def lease_next_jobs(
        self,
        worker_id: str,
        now: datetime,
        n: int,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> tuple[list[Job], bool]:
        """Up to ``n`` jobs, as ``n`` calls of :meth:`lease_next_job` would lease them,
        with their runs (locked, in id order) and stages, in one round trip while none
        has a limit key (``kernel.shell.reads.ManyLeases``). The first with a key ends
        the batch; when it is the first of all, it is leased by :meth:`lease_next_job`,
        under its limits. The caller asks again for more (the ``True`` that comes
        with them)."""
        values = {
            "worker_id": worker_id,
            "now": now,
            "limit": n,
            "workflow_ids": None,
            **_version_lists(versions),
        }
        leased, runs, stages = self._trips.send(
            [
                (QUERIES["lease_jobs"], values),
                (QUERIES["leased_runs"], {}),
                (QUERIES["leased_runs_stages"], {}),
            ],
            "run query lease_jobs",
        )
        rows = leased.fetchall()
        if rows[0]["id"] is None:
            if rows[0]["first_limited"] != 1:
                return [], False
            alone = self.lease_next_job(worker_id, now, versions=versions)
            return ([], False) if alone is None else ([alone], True)
        at_limit = rows[0]["first_limited"] <= n
        for row in rows:
            for extra in ("n", "first_limited"):
                del row[extra]
        by_run: dict[str, list[Row]] = {}
        for row in stages.fetchall():
            by_run.setdefault(row["workflow_run_id"], []).append(row)
        for run in runs.fetchall():
            stage_rows = by_run.get(run["id"], [])
            group = stage_rows[0]["input_group"] if stage_rows else None
            for row in stage_rows:
                del row["input_group"]
            self._keep_leased(run, stage_rows, group)
        jobs = [row for row in rows if row["id"] is not None]
        for row in jobs:
            self._trips.leased(row["id"])
        return records(jobs, Job), at_limit

    def _lease(self, values: Row) -> list[Row]:
        """Lease a job; an unlimited one's run (locked), stages and inputs come along."""
        lease, stages = self._trips.send(
            [(QUERIES["lease_next_job"], values), (QUERIES["leased_stages"], values)],
            "run query lease_next_job",
        )
        rows = lease.fetchall()
        if rows:
            job = rows[0]
            del job["leased"]
            run = {name[len("run__") :]: job.pop(name) for name in _RUN_COLUMNS}
            if run["id"] is not None:
                stage_rows = stages.fetchall()
                leased = [row for row in stage_rows if row["stage_id"] == job["stage_id"]]
                group = leased[0]["execution_group"] - 1 if leased else None
                self._keep_leased(run, stage_rows, group)
        return rows

    def _keep_leased(self, run: Row, stage_rows: list[Row], group: int | None) -> None:
        """Keep a leased job's run and its stage rows, read with the lease; the rows carry
        the stored outputs of execution group ``group`` (``None``: they carry none that
        can be trusted, and the columns are dropped)."""
        self._ahead.keep_run(run["id"], [run])
        if group is None:
            self._ahead.keep_stages(run["id"], plain(stage_rows))
        else:
            self._ahead.keep_stages(run["id"], stage_rows, group)

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
        """Apply ``effects`` in order: they go out with the transaction's next
        statement, or with its commit, which raises the error of one that failed
        (``StaleVersionError`` for a stale version; see
        :mod:`adapters.postgres.pipeline`)."""
        if effects:
            self._applied = True
            self._ahead.forget()
            self._trips.defer(effects)

    # -- end -----------------------------------------------------------------

    def commit(self) -> None:
        """Commit; refuse to report success for a transaction the server aborted."""
        self._trips.commit()

    def rollback(self) -> None:
        """Roll back if the session is still there; a dead session has nothing to undo."""
        self._trips.rollback()
