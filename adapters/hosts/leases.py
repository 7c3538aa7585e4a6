"""Taking and giving back the lease of one named job, outside the queue order.

``lease.reapStale`` gives back the jobs of *dead* workers, counting each
reap. A host that stops on purpose gives back the jobs it could not finish
within its drain timeout; a serverless call leases the job its message
names. Both are small decisions over plain values, applied with
:meth:`Kernel.transact <kernel.dispatch.Kernel.transact>` (one transaction,
re-decided on a version conflict), so no new kernel command is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from attrs import evolve
from returns.result import Result, Success

from kernel.decisions.env import Env
from kernel.dispatch import Kernel
from kernel.effects import Decision, StoreEffect, UpdateJob, UpdateStage
from kernel.errors import KernelError
from kernel.ports import StoreTransaction
from kernel.records import Job, WorkflowStage
from kernel.status import JobStatus, Status


def decide_release(
    jobs: Sequence[Job],
    stages: Mapping[str, Sequence[WorkflowStage]],
    worker_id: str,
    now: datetime,
) -> Result[Decision[int], KernelError]:
    """Re-queue the jobs ``worker_id`` still holds and put their RUNNING stages back to PENDING.

    Like a reaped job, a released one is available at once and gets its
    attempt back (stopping a worker is not a failure of the user's code), but
    it does not count as a reap. The stage's version moves on, so if the
    abandoned user code ever finishes, the kernel discards its result.
    Jobs that another worker holds, or that are no longer leased, are left alone.
    The result is the number of jobs released.
    """
    effects: list[StoreEffect] = []
    released = 0
    for job in jobs:
        if job.status != JobStatus.LEASED or job.worker_id != worker_id:
            continue
        released += 1
        effects.append(
            UpdateJob(
                evolve(
                    job,
                    status=JobStatus.QUEUED,
                    worker_id=None,
                    locked_at=None,
                    available_at=now,
                    attempt=max(job.attempt - 1, 0),
                )
            )
        )
        record = next(
            (s for s in stages.get(job.workflow_run_id, ()) if s.stage_id == job.stage_id), None
        )
        if record is not None and record.status == Status.RUNNING:
            pending = evolve(record, status=Status.PENDING, version=record.version + 1)
            effects.append(UpdateStage(pending, expected_version=record.version))
    return Success(Decision(released, tuple(effects)))


def decide_lease(
    job: Job | None, worker_id: str, now: datetime, run_id: str, stage_id: str
) -> Decision[Job | None]:
    """Lease ``job`` to ``worker_id`` if it is QUEUED and is the job of ``(run_id, stage_id)``;
    otherwise lease nothing (``None``)."""
    if job is None or job.status != JobStatus.QUEUED:
        return Decision(None)
    if job.workflow_run_id != run_id or job.stage_id != stage_id:
        return Decision(None)
    leased = evolve(job, status=JobStatus.LEASED, worker_id=worker_id, locked_at=now)
    return Decision(leased, (UpdateJob(leased),))


def release_leases(kernel: Kernel, job_ids: Sequence[str], worker_id: str) -> int:
    """Give the named jobs back to the queue, in one transaction; returns how many were."""

    def load_and_decide(tx: StoreTransaction, env: Env) -> Result[Decision[int], KernelError]:
        jobs = [job for job_id in job_ids if (job := tx.get_job(job_id)) is not None]
        stages = {job.workflow_run_id: tx.get_stages(job.workflow_run_id) for job in jobs}
        return decide_release(jobs, stages, worker_id, env.now)

    return kernel.transact(load_and_decide)


def lease_job(
    kernel: Kernel, job_id: str, worker_id: str, run_id: str, stage_id: str
) -> tuple[Job | None, Job | None]:
    """Lease one named job of ``(run_id, stage_id)`` if it is QUEUED.

    Returns ``(leased, found)``: the leased job or ``None``, and the job as it
    was found (``None`` if it does not exist), to say why nothing was leased.
    """
    found: list[Job | None] = [None]

    def load_and_decide(
        tx: StoreTransaction, env: Env
    ) -> Result[Decision[Job | None], KernelError]:
        found[0] = tx.get_job(job_id)
        return Success(decide_lease(found[0], worker_id, env.now, run_id, stage_id))

    leased = kernel.transact(load_and_decide)
    return leased, found[0]
