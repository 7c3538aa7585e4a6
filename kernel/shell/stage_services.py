"""The services a stage context uses, backed by the store's blob and log methods, and
the ``stage.progress`` command for live progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from kernel.commands import StageReportProgress, StageReportProgressResult
from kernel.convert import to_json
from kernel.decisions.lifecycle import output_key
from kernel.errors import KernelError
from kernel.ports import Clock, IdGenerator, Store
from kernel.records import Json, LogEntry
from kernel.stages import ProgressReport
from kernel.status import LogLevel

PROGRESS_INTERVAL = timedelta(milliseconds=500)
"""At most one ``stage.progress`` write per stage attempt in this long (SPEC §19)."""

ReportProgress = Callable[[StageReportProgress], StageReportProgressResult]
"""Dispatches ``stage.progress`` (the kernel's ``dispatch``)."""


class ProgressWriter:
    """Writes ``ctx.progress`` calls as they come, at most one per
    :data:`PROGRESS_INTERVAL`; a call inside the interval waits, replaced by any
    later one, until the next write or the attempt's finish (:meth:`unwritten`)."""

    def __init__(
        self, dispatch: ReportProgress, clock: Clock, run_id: str, stage_id: str, attempt: int
    ) -> None:
        self._dispatch = dispatch
        self._clock = clock
        self._run_id = run_id
        self._stage_id = stage_id
        self._attempt = attempt
        self._written_at: datetime | None = None
        self._waiting: ProgressReport | None = None

    def report(self, report: ProgressReport) -> None:
        now = self._clock.now()
        if self._written_at is not None and now - self._written_at < PROGRESS_INTERVAL:
            self._waiting = report
            return
        self._written_at = now
        try:
            self._dispatch(
                StageReportProgress(
                    workflow_run_id=self._run_id,
                    stage_id=self._stage_id,
                    attempt=self._attempt,
                    progress=report.progress,
                    message=report.message,
                    details=report.details,
                    reported_at=report.at,
                )
            )
            self._waiting = None
        except KernelError:
            # Progress is not worth failing the attempt over: the finish writes it.
            self._waiting = report

    def unwritten(self) -> tuple[ProgressReport, ...]:
        """The last call, if it was not written yet: the finish writes it."""
        return (self._waiting,) if self._waiting is not None else ()


class StoreStageServices:
    """Logs, stored outputs and ``ctx.storage`` for one stage attempt.

    Each call is its own short transaction: user code never runs inside one.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        workflow_run_id: str,
        stage_record_id: str | None,
        progress: ProgressWriter | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._run_id = workflow_run_id
        self._stage_record_id = stage_record_id
        self._progress = progress

    def log(self, level: LogLevel, message: str, meta: Mapping[str, Any] | None) -> None:
        self._store.append_log(
            LogEntry(
                id=self._ids.new_id(),
                workflow_run_id=self._run_id,
                stage_record_id=self._stage_record_id,
                level=level,
                message=message,
                metadata=to_json(dict(meta or {})),
                created_at=self._clock.now(),
            )
        )

    def load_output(self, stage_id: str) -> tuple[bool, Json]:
        return self._store.get_blob(output_key(self._run_id, stage_id))

    def save_blob(self, key: str, value: Json) -> None:
        self._store.put_blob(key, value)

    def load_blob(self, key: str) -> tuple[bool, Json]:
        return self._store.get_blob(key)

    def delete_blob(self, key: str) -> None:
        self._store.delete_blob(key)

    def now(self) -> datetime:
        return self._clock.now()

    def report_progress(self, report: ProgressReport) -> None:
        if self._progress is not None:
            self._progress.report(report)
