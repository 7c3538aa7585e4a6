"""The parts of ``wfk run show`` that depend on a run's state: no stages yet, tracebacks,
stages waiting for signals and the signals a run keeps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime

from adapters.cli.render import when
from adapters.cli.timeline import last_failure_tracebacks
from kernel.decisions.run_signal import waiting_for
from kernel.records import OutboxEvent, SignalRecord, WorkflowRun, WorkflowStage
from kernel.status import Status

ACTIVE = (Status.PENDING, Status.RUNNING, Status.SUSPENDED)


def no_stages(run: WorkflowRun) -> str:
    """What to say instead of a stages table, by the run's status."""
    if run.status == Status.PENDING:
        return "no stages yet (the run waits for a worker)"
    if run.status == Status.FAILED:
        return f"no stage ran: the run failed before its first stage ({run.error or 'no error'})"
    if run.status == Status.CANCELLED:
        return "no stage ran: the run was cancelled before any stage ran"
    if run.status == Status.RUNNING:
        return "no stages yet (the run is starting its first stage)"
    return "no stages"


def tracebacks(
    run: WorkflowRun, stages: Sequence[WorkflowStage], events: Sequence[OutboxEvent]
) -> str:
    """``--traceback``: where the last failure happened, or why there is nothing to show.

    The traceback each stage record keeps from its last failed attempt (a
    stage that failed for good, or one waiting for a retry); if no record
    keeps one, the last ``stage:failed`` event that carries one.
    """
    kept = [stage for stage in stages if stage.error_traceback]
    if kept:
        return "\n\n".join(
            f"stage {stage.stage_id!r} ({stage.status}, attempt {stage.attempt}): "
            f"{stage.error}\n{(stage.error_traceback or '').rstrip()}"
            for stage in kept
        )
    found = last_failure_tracebacks(events)
    if found:
        return "\n\n".join(
            f"stage {failure.stage_id!r} (attempt {failure.attempt}, from its stage:failed "
            f"event): {failure.error}\n{failure.traceback.rstrip()}"
            for failure in found
        )
    failed = [stage for stage in stages if stage.status == Status.FAILED]
    if failed:
        names = ", ".join(repr(stage.stage_id) for stage in failed)
        which = "stage" if len(failed) == 1 else "stages"
        return f"no traceback stored: {which} {names} failed without one ({failed[0].error})"
    if run.status == Status.FAILED:
        return f"no traceback: no stage failed; the run itself failed ({run.error})"
    return f"no traceback: no stage of this run failed (it is {run.status})"


def waiting_since(stage: WorkflowStage) -> datetime | None:
    """When a signal stage started waiting (``None``: unknown)."""
    state = stage.suspended_state
    since = state.get("waiting_since") if isinstance(state, dict) else None
    if isinstance(since, str):
        with suppress(ValueError):
            return datetime.fromisoformat(since)
    return None


def signal_waits(stages: Sequence[WorkflowStage]) -> dict[str, str]:
    """By stage id, what each stage waiting for a signal waits for.

    ``waiting for signal approval since 2026-11-25 13:07:35 (times out at
    2026-11-27 13:07:35)``; without a timeout, no parenthesis.
    """
    notes: dict[str, str] = {}
    for stage in stages:
        signal = waiting_for(stage)
        if signal is None:
            continue
        note = f"waiting for signal {signal}"
        since = waiting_since(stage)
        if since is not None:
            note += f" since {when(since)}"
        if stage.max_wait_until is not None:
            note += f" (times out at {when(stage.max_wait_until)})"
        notes[stage.stage_id] = note
    return notes


def kept_signals(signals: Sequence[SignalRecord]) -> str | None:
    """``signals kept: approval (1), reminder (2)``: the signals no stage took yet."""
    counts = Counter(signal.name for signal in signals if signal.is_buffered)
    if not counts:
        return None
    return "signals kept: " + ", ".join(f"{name} ({count})" for name, count in counts.items())


def waits_for_signals(run: WorkflowRun, stages: Sequence[WorkflowStage]) -> list[str]:
    """The signals a run cannot go on without: empty unless every stage that has not
    ended waits for a signal (so no worker has anything to do for it)."""
    if run.status != Status.SUSPENDED:
        return []
    active = [stage for stage in stages if stage.status in ACTIVE]
    signals = [waiting_for(stage) for stage in active]
    if not active or any(signal is None for signal in signals):
        return []
    return list(dict.fromkeys(signal for signal in signals if signal is not None))
