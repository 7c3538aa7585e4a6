"""Display rows: what the dashboard's pages and live updates show of the store's records.

Everything here is a pure function of records (and ``now``, for stages
still running), so pages and the live stream show the same text and tests
need no server. Values are plain text: the templates escape them, and the
browser script only ever sets them as ``textContent``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from attrs import asdict, frozen

from adapters.cli.render import compact_json, cost, duration, run_duration, stage_groups, when
from adapters.cli.show import signal_waits
from adapters.cli.timeline import last_failure_tracebacks, latest_progress, run_duration_text
from kernel.convert import to_json
from kernel.decisions.run_signal import waiting_for
from kernel.records import Job, LogEntry, OutboxEvent, SignalRecord, WorkflowRun, WorkflowStage
from kernel.status import Status

MIN_BAR_PERCENT = 3
"""The narrowest a timeline bar gets, so a stage of a few milliseconds still shows."""


def iso(moment: datetime | None) -> str:
    """ISO 8601 text for a ``<time datetime=...>`` attribute, or empty."""
    return "" if moment is None else moment.isoformat()


def delivery(event: OutboxEvent) -> str:
    """``published``, ``pending`` or ``dead-lettered``."""
    if event.dlq_at is not None:
        return "dead-lettered"
    return "published" if event.published_at is not None else "pending"


@frozen
class RunRow:
    """One line of the runs list (and the head of a run's page)."""

    id: str
    workflow_id: str
    workflow_name: str
    status: str
    created: str
    created_iso: str
    duration: str
    cost: str
    tokens: int
    error: str

    @property
    def is_terminal(self) -> bool:
        return self.status in {Status.COMPLETED, Status.FAILED, Status.CANCELLED}

    def live(self) -> dict[str, Any]:
        """What the live stream sends when the run changes."""
        return {
            "status": self.status,
            "duration": self.duration,
            "cost": self.cost,
            "tokens": str(self.tokens),
            "error": self.error,
        }


def run_row(run: WorkflowRun, events: Sequence[OutboxEvent] | None = None) -> RunRow:
    """The run as a row; with its ``events``, the duration counts reruns too."""
    took = run_duration(run) if events is None else run_duration_text(run, events)
    return RunRow(
        id=run.id,
        workflow_id=run.workflow_id,
        workflow_name=run.workflow_name,
        status=str(run.status),
        created=when(run.created_at),
        created_iso=iso(run.created_at),
        duration=took,
        cost=cost(run.total_cost),
        tokens=run.total_tokens,
        error=run.error or "",
    )


@frozen
class StageRow:
    """One stage: a row of the stages table and a bar of the timeline."""

    stage_id: str
    name: str
    group: int
    number: int
    status: str
    attempt: int
    started: str
    duration: str
    elapsed_ms: int
    width: int
    """The bar's width, in percent of its group's longest stage."""
    share: int
    """The group's share of the timeline's width, in percent."""
    error: str
    traceback: str
    progress: float | None
    """The latest ``ctx.progress`` of the running attempt (0 to 1), if it reported one."""
    percent: str
    message: str
    waiting: str
    """``waiting for signal NAME since T (times out at T)``, or empty."""
    signal: str
    """The signal the stage waits for, or empty."""

    def live(self) -> dict[str, Any]:
        """What the live stream sends when the stage changes (no traceback: it is long)."""
        shown = asdict(self)
        del shown["traceback"], shown["elapsed_ms"]
        return shown


def elapsed_ms(stage: WorkflowStage, now: datetime) -> int:
    """How long the stage ran: its duration, or the time since it started while it runs."""
    if stage.duration_ms is not None:
        return stage.duration_ms
    if stage.started_at is not None and stage.status == Status.RUNNING:
        return max(int((now - stage.started_at) / timedelta(milliseconds=1)), 0)
    return 0


def stage_rows(
    stages: Sequence[WorkflowStage], events: Sequence[OutboxEvent], now: datetime
) -> list[StageRow]:
    """The run's stages in timeline order (group, then stage number), with progress,
    signal waits and bar widths."""
    progress = latest_progress(events)
    notes = signal_waits(stages)
    groups = stage_groups(stages)
    spans = [max([elapsed_ms(stage, now) for stage in group] + [1]) for group in groups]
    total = sum(spans)
    rows: list[StageRow] = []
    for group, span in zip(groups, spans, strict=True):
        share = round(span * 100 / total)
        for stage in group:
            spent = elapsed_ms(stage, now)
            report = progress.get(stage.stage_id) if stage.status == Status.RUNNING else None
            shown_ms = stage.duration_ms if stage.duration_ms is not None else spent or None
            rows.append(
                StageRow(
                    stage_id=stage.stage_id,
                    name=stage.stage_name,
                    group=stage.execution_group,
                    number=stage.stage_number,
                    status=str(stage.status),
                    attempt=stage.attempt,
                    started=when(stage.started_at),
                    duration=duration(shown_ms) if stage.started_at else "-",
                    elapsed_ms=spent,
                    width=max(round(spent * 100 / span), MIN_BAR_PERCENT),
                    share=share,
                    error=stage.error or "",
                    traceback=(stage.error_traceback or "").rstrip(),
                    progress=None if report is None else report.progress,
                    percent="" if report is None else report.percent,
                    message="" if report is None else report.message,
                    waiting=notes.get(stage.stage_id, ""),
                    signal=waiting_for(stage) or "",
                )
            )
    return rows


@frozen
class TimelineGroup:
    """One execution group of the timeline: its stages side by side with the others'."""

    number: int
    share: int
    stages: list[StageRow]


def timeline(rows: Sequence[StageRow]) -> list[TimelineGroup]:
    """The stage rows by execution group, in order."""
    groups: dict[int, list[StageRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    return [TimelineGroup(number, stages[0].share, stages) for number, stages in groups.items()]


@frozen
class LastError:
    """Where the run last failed: a stage's error with its traceback, or the run's error."""

    where: str
    error: str
    traceback: str


def last_error(
    run: WorkflowRun, stages: Sequence[WorkflowStage], events: Sequence[OutboxEvent]
) -> LastError | None:
    """The latest failure a stage record keeps, else the last ``stage:failed`` event's,
    else the run's own error; ``None`` when nothing failed."""
    failed = [stage for stage in stages if stage.error]
    if failed:
        stage = max(failed, key=lambda s: (s.completed_at or s.created_at, s.stage_number))
        return LastError(
            where=f"stage {stage.stage_id} (attempt {stage.attempt}, {stage.status})",
            error=stage.error or "",
            traceback=(stage.error_traceback or "").rstrip(),
        )
    found = last_failure_tracebacks(events)
    if found:
        last = found[-1]
        return LastError(
            f"stage {last.stage_id} (attempt {last.attempt})", last.error, last.traceback.rstrip()
        )
    if run.error:
        return LastError("run", run.error, "")
    return None


@frozen
class EventRow:
    """One outbox event of a run."""

    sequence: int
    type: str
    stage: str
    at: str
    delivery: str
    retries: int
    details: str

    def live(self) -> dict[str, Any]:
        return asdict(self)


HEADER_FIELDS = ("type", "workflow_run_id", "timestamp", "stage_id")


def event_row(event: OutboxEvent) -> EventRow:
    payload = event.payload
    rest = {key: value for key, value in payload.items() if key not in HEADER_FIELDS}
    return EventRow(
        sequence=event.sequence,
        type=event.event_type,
        stage=str(payload.get("stage_id") or ""),
        at=when(event.occurred_at),
        delivery=delivery(event),
        retries=event.retry_count,
        details=compact_json(rest) if rest else "",
    )


@frozen
class JobRow:
    """One queued unit of work: an attempt (or the next) of a stage."""

    stage_id: str
    status: str
    attempt: str
    worker: str
    available: str
    last_error: str


def job_row(job: Job) -> JobRow:
    return JobRow(
        stage_id=job.stage_id,
        status=str(job.status),
        attempt=f"{job.attempt} of {job.max_attempts}",
        worker=job.worker_id or "",
        available=when(job.available_at),
        last_error=job.last_error or "",
    )


@frozen
class LogRow:
    at: str
    level: str
    stage: str
    message: str
    metadata: str


def log_rows(logs: Sequence[LogEntry], stages: Sequence[WorkflowStage]) -> list[LogRow]:
    names = {stage.id: stage.stage_id for stage in stages}
    return [
        LogRow(
            at=when(entry.created_at),
            level=str(entry.level),
            stage=names.get(entry.stage_record_id or "", ""),
            message=entry.message,
            metadata=compact_json(entry.metadata) if entry.metadata else "",
        )
        for entry in logs
    ]


@frozen
class SignalRow:
    name: str
    sent: str
    state: str
    payload: str


def signal_rows(signals: Sequence[SignalRecord]) -> list[SignalRow]:
    return [
        SignalRow(
            name=signal.name,
            sent=when(signal.created_at),
            state="kept (no stage took it yet)"
            if signal.is_buffered
            else f"taken by {signal.stage_id} at {when(signal.consumed_at)}",
            payload=compact_json(signal.payload),
        )
        for signal in signals
    ]


def pretty_json(value: Any) -> str:
    """Indented JSON of a run's input or output (escaped by the template like any text)."""
    return json.dumps(to_json(value), ensure_ascii=False, indent=2)


@frozen
class OutboxCounts:
    pending: int
    published: int
    dead_lettered: int


def outbox_counts(events: Sequence[OutboxEvent]) -> OutboxCounts:
    states = [delivery(event) for event in events]
    return OutboxCounts(
        pending=states.count("pending"),
        published=states.count("published"),
        dead_lettered=states.count("dead-lettered"),
    )


@frozen
class DeadLetterRow:
    run_id: str
    sequence: int
    type: str
    at: str
    dead_since: str
    retries: int
    details: str


def dead_letter_row(event: OutboxEvent) -> DeadLetterRow:
    row = event_row(event)
    return DeadLetterRow(
        run_id=event.workflow_run_id,
        sequence=event.sequence,
        type=event.event_type,
        at=row.at,
        dead_since=when(event.dlq_at),
        retries=event.retry_count,
        details=row.details,
    )
