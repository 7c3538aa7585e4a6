"""``lease.reapStale``: give the jobs of dead workers back to the queue (SPEC §5.8, §10.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import LeaseReapStale, LeaseReapStaleResult
from kernel.copying import evolve
from kernel.decisions.changes import bump_stage, cancel_stage, requeue_job, settle_job
from kernel.decisions.context import Env
from kernel.decisions.lifecycle import StageState, fail_stage
from kernel.effects import Decision, StoreEffect
from kernel.errors import KernelError
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow

WORKER_LOST = "WORKER_LOST"


@frozen
class Stale:
    """Jobs whose lease was last taken or renewed before the threshold, with their
    runs, the runs' stage records and the runs' workflows (all by run id)."""

    jobs: Sequence[Job]
    runs: Mapping[str, WorkflowRun]
    stages: Mapping[str, list[WorkflowStage]]
    workflows: Mapping[str, Workflow[Any, Any] | None]


def decide(
    cmd: LeaseReapStale, state: Stale, env: Env
) -> Result[Decision[LeaseReapStaleResult], KernelError]:
    """Re-queue each stale LEASED job at once and put its stage back to PENDING.

    ``jobs`` are the jobs whose lease was last taken or renewed before the
    threshold; any that is no longer LEASED is left alone.

    A crash is not a failure of the user's code, so the attempt is given back.
    A job reaped ``max_reaps`` times fails for good with ``WORKER_LOST``.
    """
    effects: list[StoreEffect] = []
    jobs = [job for job in state.jobs if job.status == JobStatus.LEASED]
    for job in jobs:
        run = state.runs.get(job.workflow_run_id)
        run_stages = state.stages.get(job.workflow_run_id, [])
        record = next((s for s in run_stages if s.stage_id == job.stage_id), None)
        reaps = job.reap_count + 1
        if run is None or run.is_terminal:
            # A finished (e.g. cancelled) run must not get its work back: settle the
            # dead worker's job and stage instead of re-queuing them (SPEC §5.4).
            effects += settle_job(job, JobStatus.CANCELLED, reap_count=reaps)
            if record is not None and record.status == Status.RUNNING:
                effects.append(cancel_stage(record, env.now))
            continue
        if reaps >= cmd.max_reaps and record is not None:
            error = f"{WORKER_LOST}: the worker running this stage was lost {reaps} times"
            workflow = state.workflows.get(job.workflow_run_id)
            lost = evolve(job, reap_count=reaps, attempt=job.max_attempts)
            if not record.is_active or workflow is None:
                effects += settle_job(lost, JobStatus.FAILED, last_error=error)
                continue
            context = StageState(run, run_stages, lost, {}, workflow)
            _, failed = fail_stage(run, record, lost, error, context, env, retryable=False)
            effects += failed
            continue
        # Only a started attempt (its stage RUNNING) is given back: a worker that died
        # between the lease and the start began none.
        if record is not None and record.status == Status.RUNNING:
            effects.append(bump_stage(record, status=Status.PENDING)[1])
            effects.append(
                requeue_job(job, env.now, attempt=max(job.attempt - 1, 0), reap_count=reaps)
            )
        else:
            effects.append(requeue_job(job, env.now, reap_count=reaps))
    return Success(Decision(LeaseReapStaleResult(released=len(jobs)), tuple(effects)))
