"""The read-only queries of ``PostgresStore``, for tools, tests, the CLI and the dashboard.

Each is one statement on a pooled connection, outside any store transaction.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from psycopg import Connection
from psycopg.rows import DictRow

from adapters.postgres.errors import translated
from adapters.postgres.queries import QUERIES
from adapters.postgres.rows import Row, record, records, usage_entries
from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.records import Job, LogEntry, OutboxEvent, SignalRecord, WorkflowRun, WorkflowStage
from kernel.schedules import ScheduleRecord
from kernel.status import Status

_LISTINGS = {
    (False, False): "list_runs",
    (True, False): "list_runs_by_status",
    (False, True): "list_runs_by_workflow",
    (True, True): "list_runs_by_status_and_workflow",
}
"""``list_runs``' query, by (filtered by status, filtered by workflow)."""


class PostgresReads:
    """Queries of ``PostgresStore`` that read committed records (each its own statement)."""

    if TYPE_CHECKING:

        def _connection(self) -> AbstractContextManager[Connection[DictRow]]: ...

    def _rows(self, name: str, values: Row, *, prepare: bool | None = None) -> list[Row]:
        """The rows of query ``name``; ``prepare=False`` plans it for these values."""
        with self._connection() as conn, translated(f"run query {name}"):
            return conn.execute(QUERIES[name], values, prepare=prepare).fetchall()

    def get_run(self, run_id: str) -> WorkflowRun | None:
        rows = self._rows("get_run", {"id": run_id})
        return record(rows[0], WorkflowRun) if rows else None

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        return records(self._rows("get_stages", {"workflow_run_id": run_id}), WorkflowStage)

    def list_runs(
        self,
        status: Status | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        """Runs, newest first, optionally filtered; the page after the run ``before``
        (none for an unknown id).

        Never prepared: planned for its values each time, the server walks the
        index that suits them (a rare status by ``runs_status_idx``, a status
        most runs have by ``runs_created_idx``), where one generic plan could not.
        """
        values = {
            "status": None if status is None else Status(status).value,
            "workflow_id": workflow_id,
            "limit": max(limit, 0),
            "before": before,
        }
        name = _LISTINGS[status is not None, workflow_id is not None]
        return records(self._rows(name, values, prepare=False), WorkflowRun)

    def get_logs(self, run_id: str) -> list[LogEntry]:
        return records(self._rows("get_logs", {"workflow_run_id": run_id}), LogEntry)

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        """Outbox events in insertion order (per run: by sequence)."""
        if run_id is None:
            rows = self._rows("get_outbox", {})
        else:
            rows = self._rows("get_run_outbox", {"workflow_run_id": run_id})
        return records(rows, OutboxEvent)

    def get_jobs(self, run_id: str) -> list[Job]:
        return records(self._rows("get_jobs", {"workflow_run_id": run_id}), Job)

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        return records(self._rows("get_signals", {"workflow_run_id": run_id}), SignalRecord)

    def get_schedules(self) -> list[ScheduleRecord]:
        return records(self._rows("get_schedules", {}), ScheduleRecord)

    def get_usage(self, run_id: str) -> list[UsageEntry]:
        """The run's usage ledger, in record order."""
        return usage_entries(self._rows("get_usage", {"workflow_run_id": run_id}))

    def get_batch_cancels(self) -> list[BatchCancel]:
        """Every pending provider batch cancel, oldest first."""
        return records(self._rows("get_batch_cancels", {}), BatchCancel)
