"""``lease.release``: a worker that stops on purpose gives back the jobs it still holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import LeaseRelease, LeaseReleaseResult
from kernel.decisions.changes import bump_stage, requeue_job
from kernel.decisions.context import Env
from kernel.effects import Decision, StoreEffect
from kernel.errors import KernelError
from kernel.records import Job, WorkflowStage
from kernel.status import JobStatus, Status


@frozen
class Held:
    """The named jobs that exist, and the stage records of their runs (by run id)."""

    jobs: Sequence[Job]
    stages: Mapping[str, Sequence[WorkflowStage]]


def decide(
    cmd: LeaseRelease, state: Held, env: Env
) -> Result[Decision[LeaseReleaseResult], KernelError]:
    """Re-queue the jobs ``cmd.worker_id`` still holds; their RUNNING stages go back to PENDING.

    Like a reaped job, a released one is available at once and gets its
    attempt back (stopping a worker is not a failure of the user's code), but
    it does not count as a reap. The stage's version moves on, so if the
    abandoned user code ever finishes, its result is discarded. Jobs another
    worker holds, or that are no longer leased, are left alone.
    """
    effects: list[StoreEffect] = []
    released = 0
    for job in state.jobs:
        if job.status != JobStatus.LEASED or job.worker_id != cmd.worker_id:
            continue
        released += 1
        stages = state.stages.get(job.workflow_run_id, ())
        record = next((s for s in stages if s.stage_id == job.stage_id), None)
        if record is not None and record.status == Status.RUNNING:
            effects.append(requeue_job(job, env.now, attempt=max(job.attempt - 1, 0)))
            effects.append(bump_stage(record, status=Status.PENDING)[1])
        else:
            # Leased but never started (``job.lease``): no attempt began, none is given back.
            effects.append(requeue_job(job, env.now))
    return Success(Decision(LeaseReleaseResult(released=released), tuple(effects)))
