"""Retention in ``InMemoryStore`` (``runs.purge``, SPEC §16): the transaction's read of the
runs that may be purged, and :class:`~kernel.effects.PurgeRun`, as a mixin of
``adapters.memory.MemoryTransaction``.

A purge deletes the run and every row of it: stages, jobs (and their place in
the queue), outbox events, claims and the run's sequence, log lines, usage
rows, signals, and blobs under ``runs/<run id>/`` (stage outputs and
``ctx.storage``). Writes go through the undo log; log lines, which are a list,
are put back whole by one undo entry, so a rollback restores everything.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Protocol

from adapters.memory_ledger import LedgerEffect, LedgerLoads
from adapters.memory_ledger import _Tables as LedgerTableView
from adapters.memory_signals import SignalScheduleEffect
from kernel.effects import PurgeRun
from kernel.errors import StaleVersionError
from kernel.records import Job, Json, LogEntry, OutboxEvent, WorkflowRun, WorkflowStage
from kernel.status import RUN_TERMINAL, Status


class _Tables(LedgerTableView, Protocol):
    """The tables a purge reads and writes (``adapters.memory._Tables`` has them)."""

    runs: dict[str, WorkflowRun]
    stages: dict[str, dict[str, WorkflowStage]]
    jobs: dict[str, Job]
    queued: dict[str, None]
    outbox: dict[str, OutboxEvent]
    outbox_claims: dict[str, datetime]
    sequences: dict[str, int]
    blobs: dict[str, Json]
    logs: list[LogEntry]


class _LogList(dict[Any, Any]):
    """An undo-log "table" whose one assignment puts the log lines back as they were."""

    def __init__(self, logs: list[LogEntry]) -> None:
        super().__init__()
        self.logs = logs

    def __setitem__(self, _: Any, lines: list[LogEntry]) -> None:
        self.logs[:] = lines


def blob_prefix(run_id: str) -> str:
    """The start of every blob key a run owns (stage outputs, ``ctx.storage``)."""
    return f"runs/{run_id}/"


class PurgeLoads(LedgerLoads):
    """The purge part of ``MemoryTransaction``; other effects go on to :class:`LedgerLoads`."""

    t: _Tables

    def purgeable_runs(
        self, finished_before: datetime, statuses: Collection[Status], limit: int
    ) -> list[WorkflowRun]:
        unpublished = {
            event.workflow_run_id for event in self.t.outbox.values() if event.published_at is None
        }
        runs = [
            run
            for run in self.t.runs.values()
            if run.status in RUN_TERMINAL
            and run.status in statuses
            and run.completed_at is not None
            and run.completed_at < finished_before
            and run.id not in unpublished
        ]
        runs.sort(key=lambda run: (run.completed_at, run.id))
        return runs[: max(limit, 0)]

    def apply_purge(self, effect: PurgeRun | LedgerEffect | SignalScheduleEffect) -> None:
        """Apply :class:`PurgeRun`, or pass a ledger, signal or schedule effect on."""
        if isinstance(effect, PurgeRun):
            self._purge(effect.run_id, effect.expected_version)
        else:
            self.apply_ledger(effect)

    def _purge(self, run_id: str, expected_version: int) -> None:
        t = self.t
        run = t.runs.get(run_id)
        if run is None or run.version != expected_version:
            raise StaleVersionError("run", run_id, expected_version)
        self._pop(t.runs, run_id)
        self._pop(t.stages, run_id)
        self._pop(t.sequences, run_id)
        for job_id in [job_id for job_id, job in t.jobs.items() if job.workflow_run_id == run_id]:
            self._pop(t.jobs, job_id)
            self._pop(t.queued, job_id)
        for event_id in [e.id for e in t.outbox.values() if e.workflow_run_id == run_id]:
            self._pop(t.outbox, event_id)
            self._pop(t.outbox_claims, event_id)
        for table in (t.usage, t.signals):
            for row_key in [k for k, row in table.items() if row.workflow_run_id == run_id]:
                self._pop(table, row_key)
        prefix = blob_prefix(run_id)
        for blob_key in [k for k in t.blobs if k.startswith(prefix)]:
            self._pop(t.blobs, blob_key)
        kept = [entry for entry in t.logs if entry.workflow_run_id != run_id]
        if len(kept) != len(t.logs):
            self._undo.append((_LogList(t.logs), None, list(t.logs)))
            t.logs[:] = kept
