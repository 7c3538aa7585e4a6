"""Record changes several decisions make: each new record with the effect that writes it.

Runs and stages change by copy with their version bumped, and the effect states
the version read (optimistic concurrency, SPEC §6.4). Jobs carry no version:
their writes are ordered by the run they belong to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import evolve

from kernel.effects import StoreEffect, UpdateJob, UpdateRun, UpdateStage
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status


def bump_run(run: WorkflowRun, **changes: Any) -> tuple[WorkflowRun, UpdateRun]:
    """The changed run and the effect that writes it, guarded by the version read."""
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
    """
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
