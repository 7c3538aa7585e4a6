"""``job.execute`` phase 1: mark the stage RUNNING before any user code runs (SPEC §5.6)."""

from __future__ import annotations

from typing import Any

from attrs import evolve, frozen
from returns.result import Failure, Result, Success

from kernel.commands import JobExecute, JobExecuteResult
from kernel.decisions.changes import bump_run, bump_stage, settle_job
from kernel.decisions.env import Env
from kernel.decisions.groups import new_stage
from kernel.effects import (
    Decision,
    ExecuteStage,
    InsertStage,
    StoreEffect,
    UpdateJob,
)
from kernel.errors import KernelError, RunNotFoundError, StageNotFoundError, WorkflowNotFoundError
from kernel.events import StageStarted, WorkflowStarted
from kernel.records import Job, Json, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow


@frozen
class JobStart:
    """Either the stage to execute now, or the result of a job with nothing to do."""

    execute: ExecuteStage | None
    skipped: JobExecuteResult | None = None


SKIPPED = JobExecuteResult(outcome="skipped")


def stage_input(
    run: WorkflowRun, workflow: Workflow[Any, Any], group: int, outputs: dict[str, Json]
) -> Json:
    """Input of a stage in ``group``: the run input, the previous stage's output, or
    ``{stage_id: output}`` of a previous parallel group (SPEC §4.3)."""
    if group == 1:
        return run.input
    previous = workflow.group(group - 1)
    if len(previous) == 1:
        return outputs.get(previous[0].id)
    return {stage.id: outputs.get(stage.id) for stage in previous}


def _skip(job: Job | None, settle_as: JobStatus) -> Decision[JobStart]:
    return Decision(JobStart(execute=None, skipped=SKIPPED), tuple(settle_job(job, settle_as)))


def decide(
    cmd: JobExecute,
    run: WorkflowRun | None,
    record: WorkflowStage | None,
    job: Job | None,
    workflow: Workflow[Any, Any] | None,
    previous_outputs: dict[str, Json],
    env: Env,
) -> Result[Decision[JobStart], KernelError]:
    """Start an attempt, or skip a job whose run or stage is already finished."""
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if workflow is None:
        return Failure(WorkflowNotFoundError(cmd.workflow_id))
    stage = workflow.stage(cmd.stage_id)
    if stage is None:
        return Failure(StageNotFoundError(cmd.stage_id, workflow.id))
    if run.is_terminal:
        return Success(_skip(job, JobStatus.CANCELLED))
    if record is not None and not record.is_active:
        settle = JobStatus.COMPLETED if record.status == Status.COMPLETED else JobStatus.CANCELLED
        return Success(_skip(job, settle))
    if record is not None and record.status == Status.SUSPENDED:
        return Success(Decision(JobStart(execute=None, skipped=SKIPPED)))
    if job is not None and job.status not in (JobStatus.QUEUED, JobStatus.LEASED):
        return Success(Decision(JobStart(execute=None, skipped=SKIPPED)))

    effects: list[StoreEffect] = []
    if run.status in (Status.PENDING, Status.SUSPENDED):
        was_pending = run.status == Status.PENDING
        run, update = bump_run(run, status=Status.RUNNING, started_at=run.started_at or env.now)
        effects.append(update)
        if was_pending:
            effects.append(env.record(WorkflowStarted(workflow_run_id=run.id, timestamp=env.now)))

    attempt = job.attempt + 1 if job is not None else (record.attempt + 1 if record else 1)
    if record is None:
        record = evolve(
            new_stage(run, workflow, stage, env),
            status=Status.RUNNING,
            config=cmd.config.get(stage.id, {}),
            attempt=attempt,
            started_at=env.now,
        )
        effects.append(InsertStage(record))
    else:
        record, running = bump_stage(
            record, status=Status.RUNNING, attempt=attempt, started_at=env.now, error=None
        )
        effects.append(running)
    if job is not None:
        job = evolve(
            job, status=JobStatus.LEASED, attempt=attempt, locked_at=job.locked_at or env.now
        )
        effects.append(UpdateJob(job))
    effects.append(
        env.record(
            StageStarted(
                workflow_run_id=run.id,
                timestamp=env.now,
                stage_id=stage.id,
                stage_name=stage.name,
                stage_number=record.stage_number,
            )
        )
    )
    execute = ExecuteStage(
        run=run,
        stage=record,
        job=job,
        input=stage_input(run, workflow, workflow.group_of(stage.id), previous_outputs),
        config={**stage.default_config(), **cmd.config.get(stage.id, {})},
    )
    return Success(Decision(JobStart(execute=execute), tuple(effects)))
