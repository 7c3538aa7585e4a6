"""``lease.reapStale``: give the jobs of dead workers back to the queue (SPEC §5.8, §10.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import evolve
from returns.result import Result, Success

from kernel.commands import LeaseReapStale, LeaseReapStaleResult
from kernel.decisions.env import Env
from kernel.decisions.job_finish import fail_stage
from kernel.effects import Decision, StoreEffect, UpdateJob, UpdateStage
from kernel.errors import KernelError
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow

WORKER_LOST = "WORKER_LOST"


def decide(
    cmd: LeaseReapStale,
    jobs: Sequence[Job],
    runs: Mapping[str, WorkflowRun],
    stages: Mapping[str, list[WorkflowStage]],
    workflows: Mapping[str, Workflow[Any, Any] | None],
    env: Env,
) -> Result[Decision[LeaseReapStaleResult], KernelError]:
    """Re-queue each stale job at once and put its stage back to PENDING.

    A crash is not a failure of the user's code, so the attempt is given back.
    A job reaped ``max_reaps`` times fails for good with ``WORKER_LOST``.
    """
    effects: list[StoreEffect] = []
    for job in jobs:
        run = runs.get(job.workflow_run_id)
        run_stages = stages.get(job.workflow_run_id, [])
        record = next((s for s in run_stages if s.stage_id == job.stage_id), None)
        reaps = job.reap_count + 1
        if run is None or run.is_terminal:
            # A finished (e.g. cancelled) run must not get its work back: settle the
            # dead worker's job and stage instead of re-queuing them (SPEC §5.4).
            effects.append(UpdateJob(evolve(job, status=JobStatus.CANCELLED, reap_count=reaps)))
            if record is not None and record.status == Status.RUNNING:
                cancelled = evolve(
                    record,
                    status=Status.CANCELLED,
                    completed_at=env.now,
                    version=record.version + 1,
                )
                effects.append(UpdateStage(cancelled, expected_version=record.version))
            continue
        if reaps >= cmd.max_reaps and record is not None:
            error = f"{WORKER_LOST}: the worker running this stage was lost {reaps} times"
            workflow = workflows.get(job.workflow_id)
            lost = evolve(job, reap_count=reaps, attempt=job.max_attempts)
            if not record.is_active or workflow is None:
                effects.append(UpdateJob(evolve(lost, status=JobStatus.FAILED, last_error=error)))
                continue
            _, failed = fail_stage(
                run, record, lost, error, run_stages, workflow, env, retryable=False
            )
            effects += failed
            continue
        effects.append(
            UpdateJob(
                evolve(
                    job,
                    status=JobStatus.QUEUED,
                    worker_id=None,
                    locked_at=None,
                    available_at=env.now,
                    attempt=max(job.attempt - 1, 0),
                    reap_count=reaps,
                )
            )
        )
        if record is not None and record.status == Status.RUNNING:
            pending = evolve(record, status=Status.PENDING, version=record.version + 1)
            effects.append(UpdateStage(pending, expected_version=record.version))
    return Success(Decision(LeaseReapStaleResult(released=len(jobs)), tuple(effects)))
