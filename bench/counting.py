"""A store wrapper that counts write transactions, for the benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.ports import Store, StoreTransaction
from kernel.records import (
    Job,
    Json,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import Status


class CountingStore:
    """Delegates to ``inner`` and counts ``transaction()`` calls (each one a write
    transaction: every store opens them with its write lock)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        self.transactions += 1
        with self.inner.transaction() as tx:
            yield tx

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        self.transactions += 1
        return self.inner.renew_lease(job_id, worker_id, now)

    def append_log(self, entry: LogEntry) -> None:
        self.transactions += 1
        self.inner.append_log(entry)

    def get_blob(self, key: str) -> tuple[bool, Json]:
        return self.inner.get_blob(key)

    def put_blob(self, key: str, value: Json) -> None:
        self.transactions += 1
        self.inner.put_blob(key, value)

    def delete_blob(self, key: str) -> None:
        self.transactions += 1
        self.inner.delete_blob(key)

    def get_run(self, run_id: str) -> WorkflowRun | None:
        return self.inner.get_run(run_id)

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return self.inner.get_stages(run_id)

    def list_runs(
        self,
        status: Status | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        return self.inner.list_runs(status, workflow_id, limit, before=before)

    def get_logs(self, run_id: str) -> list[LogEntry]:
        return self.inner.get_logs(run_id)

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        return self.inner.get_outbox(run_id)

    def get_jobs(self, run_id: str) -> list[Job]:
        return self.inner.get_jobs(run_id)

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        return self.inner.get_signals(run_id)

    def get_schedules(self) -> list[ScheduleRecord]:
        return self.inner.get_schedules()

    def get_usage(self, run_id: str) -> list[UsageEntry]:
        return self.inner.get_usage(run_id)

    def get_batch_cancels(self) -> list[BatchCancel]:
        return self.inner.get_batch_cancels()

    def close(self) -> None:
        self.inner.close()
