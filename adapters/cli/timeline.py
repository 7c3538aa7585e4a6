"""What a run's outbox events say: live lines, progress, executions and tracebacks.

Every change of a run writes its events to the outbox in the same
transaction, numbered per run (``sequence``) in commit order. So the outbox
is the run's history in causal order: ``wfk run create --wait`` prints it as
it grows, and ``wfk run show`` reads the progress of running stages and the
durations of reruns from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from attrs import frozen

from adapters.cli.render import duration, when
from kernel.records import OutboxEvent, WorkflowRun

RUN_ENDS = ("workflow:completed", "workflow:failed", "workflow:cancelled")
"""The events that end one execution of a run (its first, or a rerun)."""


@frozen
class Progress:
    """The latest ``ctx.progress`` report of a running stage."""

    progress: float
    message: str

    @property
    def percent(self) -> str:
        """``42%``."""
        return f"{round(self.progress * 100)}%"

    def __str__(self) -> str:
        return f"{self.percent}  {self.message}".rstrip()


@frozen
class Execution:
    """One execution of a run: from a ``workflow:started`` to the event that ended it."""

    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None


@frozen
class StageTraceback:
    """Where a stage attempt failed: the traceback from a ``stage:failed`` event."""

    stage_id: str
    attempt: int
    error: str
    traceback: str


def in_order(events: Iterable[OutboxEvent]) -> list[OutboxEvent]:
    """By per-run sequence: the order the changes committed in."""
    return sorted(events, key=lambda event: (event.workflow_run_id, event.sequence))


def latest_progress(events: Iterable[OutboxEvent]) -> dict[str, Progress]:
    """Each stage's latest ``stage:progress`` report since it last started, by stage id.

    A stage that ended (completed, failed, suspended) has none: its report
    was about an attempt that is over.
    """
    found: dict[str, Progress] = {}
    for event in in_order(events):
        payload = event.payload
        stage_id = payload.get("stage_id")
        if not isinstance(stage_id, str):
            continue
        if event.event_type == "stage:progress":
            value = payload.get("progress")
            progress = float(value) if isinstance(value, int | float) else 0.0
            found[stage_id] = Progress(progress, str(payload.get("message") or ""))
        elif event.event_type.startswith("stage:"):
            found.pop(stage_id, None)  # started again, or ended: older reports are stale
    return found


def executions(events: Iterable[OutboxEvent]) -> list[Execution]:
    """The run's executions in order: its first one, then one per rerun."""
    found: list[Execution] = []
    started: datetime | None = None
    for event in in_order(events):
        if event.event_type == "workflow:started":
            started = event.occurred_at
        elif event.event_type in RUN_ENDS and started is not None:
            ms = event.payload.get("duration_ms")
            if not isinstance(ms, int):
                ms = max(int((event.occurred_at - started).total_seconds() * 1000), 0)
            found.append(Execution(started, event.occurred_at, ms))
            started = None
    if started is not None:
        found.append(Execution(started, None, None))
    return found


def run_duration_text(run: WorkflowRun, events: Sequence[OutboxEvent] = ()) -> str:
    """How long the run took: ``33 ms``; after reruns, ``16 ms for the rerun, 49 ms in all``.

    ``-`` while the run has not ended, or if it never started. "In all" adds
    up the time of every execution (the first one and each rerun), not the
    idle time between them.
    """
    if not (run.started_at and run.completed_at):
        return "-"
    runs = executions(events)
    if len(runs) < 2 or run.duration_ms is None:
        return duration(run.duration_ms)
    total = sum(execution.duration_ms or 0 for execution in runs[:-1]) + run.duration_ms
    reruns = len(runs) - 1
    which = "the rerun" if reruns == 1 else f"the last of {reruns} reruns"
    return f"{duration(run.duration_ms)} for {which}, {duration(total)} in all"


def last_failure_tracebacks(events: Iterable[OutboxEvent]) -> list[StageTraceback]:
    """The tracebacks of the last ``stage:failed`` events that carry one (one per stage)."""
    found: dict[str, StageTraceback] = {}
    for event in in_order(events):
        payload = event.payload
        text = payload.get("traceback")
        stage_id = payload.get("stage_id")
        if event.event_type == "stage:failed" and isinstance(text, str) and text:
            attempt = payload.get("attempt")
            found[str(stage_id)] = StageTraceback(
                stage_id=str(stage_id),
                attempt=attempt if isinstance(attempt, int) else 0,
                error=str(payload.get("error") or ""),
                traceback=text,
            )
    return list(found.values())


class LineWriter:
    """Turns one run's events into status lines, remembering attempts between calls.

    ``81467d67  extract      RUNNING``, ``81467d67  extract      COMPLETED  3 ms``,
    ``81467d67  extract      50%  halfway``, ``81467d67  run          COMPLETED``.
    """

    def __init__(self, run_id: str) -> None:
        self.prefix = run_id[:8]
        self.next_attempt: dict[str, int] = {}

    def line(self, event: OutboxEvent) -> str | None:
        """The line for ``event``, or ``None`` for an event not worth one."""
        payload = event.payload
        kind = event.event_type
        if kind.startswith("workflow:"):
            return self._run_line(kind, payload)
        stage_id = str(payload.get("stage_id") or "")
        text = self._stage_text(kind, stage_id, payload)
        return None if text is None else self._format(stage_id, text)

    def _run_line(self, kind: str, payload: dict[str, object]) -> str | None:
        if kind == "workflow:started":
            self.next_attempt.clear()  # a rerun starts its stages afresh
        text = {
            "workflow:created": "PENDING",
            "workflow:started": "RUNNING",
            "workflow:completed": "COMPLETED",
            "workflow:failed": f"FAILED  {payload.get('error') or ''}",
            "workflow:cancelled": f"CANCELLED  {payload.get('reason') or ''}",
            "workflow:suspended": f"SUSPENDED  (waiting on {payload.get('stage_id')})",
        }.get(kind)
        return None if text is None else self._format("run", text)

    def _stage_text(self, kind: str, stage_id: str, payload: dict[str, object]) -> str | None:
        if kind == "stage:started":
            attempt = self.next_attempt.get(stage_id, 1)
            return "RUNNING" + (f" (attempt {attempt})" if attempt > 1 else "")
        if kind == "stage:progress":
            value = payload.get("progress")
            progress = float(value) if isinstance(value, int | float) else 0.0
            return str(Progress(progress, str(payload.get("message") or "")))
        if kind == "stage:completed":
            ms = payload.get("duration_ms")
            return f"COMPLETED  {duration(ms if isinstance(ms, int) else None)}"
        if kind == "stage:suspended":
            at = payload.get("next_poll_at")
            signal = payload.get("signal")
            if isinstance(signal, str):  # a signal stage: its next poll is its timeout
                until = (
                    f", times out at {when(datetime.fromisoformat(at))}"
                    if isinstance(at, str)
                    else ""
                )
                return f"SUSPENDED  (waiting for signal {signal}{until})"
            return (
                f"SUSPENDED  (next poll {when(datetime.fromisoformat(at))})"
                if isinstance(at, str)
                else "SUSPENDED"
            )
        if kind == "stage:signalled":
            return f"SIGNALLED  {payload.get('signal')}"
        if kind == "stage:failed":
            given = payload.get("attempt")
            attempt = given if isinstance(given, int) else 1
            error = payload.get("error") or ""
            if payload.get("will_retry"):
                self.next_attempt[stage_id] = attempt + 1
                return f"FAILED (attempt {attempt}, will retry)  {error}"
            return "FAILED" + (f" (attempt {attempt})" if attempt > 1 else "") + f"  {error}"
        return None

    def _format(self, name: str, text: str) -> str:
        return f"{self.prefix}  {name:<12} {text}".rstrip()
