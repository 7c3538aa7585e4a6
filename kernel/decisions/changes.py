"""Record changes several decisions make: each new record with the effect that writes it.

Runs and stages change by copy with their version bumped, and the effect states
the version read (optimistic concurrency, SPEC §6.4). Jobs carry no version:
their writes are ordered by the run they belong to.

A status change is checked against the tables in :mod:`kernel.status`: an
illegal move raises :class:`~kernel.errors.InvalidStateError` instead of
being written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kernel.copying import evolve
from kernel.effects import StoreEffect, UpdateJob, UpdateRun, UpdateStage
from kernel.errors import InvalidStateError
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status, can_run_move, can_stage_move


def _check_move(kind: str, record_id: str, src: Status, dst: Status, allowed: bool) -> None:
    if not allowed:
        raise InvalidStateError(f"{kind} {record_id!r} cannot move from {src} to {dst}")


def bump_run(run: WorkflowRun, **changes: Any) -> tuple[WorkflowRun, UpdateRun]:
    """The changed run and the effect that writes it, guarded by the version read.

    Raises:
        InvalidStateError: ``status`` is a move the run's status table forbids.
    """
    status = changes.get("status", run.status)
    if status != run.status:
        _check_move("run", run.id, run.status, status, can_run_move(run.status, status))
    new = evolve(run, version=run.version + 1, **changes)
    return new, UpdateRun(new, expected_version=run.version)


def bump_stage(stage: WorkflowStage, **changes: Any) -> tuple[WorkflowStage, UpdateStage]:
    """The changed stage record and the effect that writes it, guarded by the version read.

    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
    >>> stage = WorkflowStage(id="s1", workflow_run_id="r1", stage_id="a", stage_name="A",
    ...                       stage_number=1, execution_group=1, status=Status.PENDING,
    ...                       created_at=t0)
    >>> new, update = bump_stage(stage, status=Status.RUNNING)
    >>> new.version, update.expected_version
    (2, 1)
    >>> bump_stage(new, status=Status.PENDING)[0].status == Status.PENDING
    True
    >>> bump_stage(bump_stage(new, status=Status.COMPLETED)[0], status=Status.RUNNING)
    Traceback (most recent call last):
    ...
    kernel.errors.InvalidStateError: stage 's1' cannot move from COMPLETED to RUNNING
    """
    status = changes.get("status", stage.status)
    if status != stage.status:
        _check_move("stage", stage.id, stage.status, status, can_stage_move(stage.status, status))
    new = evolve(stage, version=stage.version + 1, **changes)
    return new, UpdateStage(new, expected_version=stage.version)


def cancel_stage(stage: WorkflowStage, now: datetime) -> UpdateStage:
    """Cancel a stage whose run ended without it."""
    return bump_stage(stage, status=Status.CANCELLED, completed_at=now)[1]


def settle_job(job: Job | None, status: JobStatus, **changes: Any) -> list[StoreEffect]:
    """Move an open job (queued, leased or suspended) to ``status``; a missing or already
    settled job is left as it is."""
    if job is None or not job.is_open:
        return []
    return [UpdateJob(evolve(job, status=status, **changes))]


def requeue_job(job: Job, available_at: datetime, **changes: Any) -> UpdateJob:
    """Give a job back to the queue, free of its lease, from ``available_at`` on."""
    return UpdateJob(
        evolve(
            job,
            status=JobStatus.QUEUED,
            worker_id=None,
            locked_at=None,
            available_at=available_at,
            **changes,
        )
    )
