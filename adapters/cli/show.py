"""The parts of ``wfk run show`` that depend on a run's state: no stages yet, tracebacks."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.cli.timeline import last_failure_tracebacks
from kernel.records import OutboxEvent, WorkflowRun, WorkflowStage
from kernel.status import Status


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
