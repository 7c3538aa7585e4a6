"""``job.execute`` phase 1: mark the stage RUNNING before any user code runs (SPEC §5.6)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.commands import JobExecute, JobExecuteResult, JobLease, JobLeaseResult
from kernel.copying import evolve
from kernel.decisions.changes import bump_run, bump_stage, settle_job
from kernel.decisions.context import Env
from kernel.decisions.job_execute import SKIPPED
from kernel.decisions.lifecycle import fail_run, new_stage, stage_input
from kernel.effects import Decision, ExecuteStage, InsertStage, StoreEffect, UpdateJob
from kernel.errors import (
    InvalidInputError,
    KernelError,
    RunNotFoundError,
    StageNotFoundError,
    WorkflowNotFoundError,
    named_version,
)
from kernel.events import StageStarted, WorkflowStarted
from kernel.records import Job, Json, WorkflowRun, WorkflowStage
from kernel.stages import Stage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow


@frozen
class JobStart:
    """Either the stage to execute now, or the result of a job with nothing to do."""

    execute: ExecuteStage | None
    skipped: JobExecuteResult | None = None


@frozen
class StartState:
    """What the start of one attempt reads: the run, the stage's record and job, the
    workflow the command names, and the outputs of the group before the stage's."""

    run: WorkflowRun | None
    record: WorkflowStage | None
    job: Job | None
    workflow: Workflow[Any, Any] | None
    previous_outputs: dict[str, Json]


def _nothing_to_do(
    run: WorkflowRun, record: WorkflowStage | None, job: Job | None
) -> Decision[JobStart] | None:
    """A job whose run or stage is finished, or is not in a state to run, is settled
    (or left alone) without running user code."""
    skipped = JobStart(execute=None, skipped=SKIPPED)
    if run.is_terminal:
        return Decision(skipped, tuple(settle_job(job, JobStatus.CANCELLED)))
    if record is not None and not record.is_active:
        settle = JobStatus.COMPLETED if record.status == Status.COMPLETED else JobStatus.CANCELLED
        return Decision(skipped, tuple(settle_job(job, settle)))
    if record is not None and record.status == Status.SUSPENDED:
        return Decision(skipped)
    if job is not None and job.status not in (JobStatus.QUEUED, JobStatus.LEASED):
        return Decision(skipped)
    return None


def decide(cmd: JobExecute, state: StartState, env: Env) -> Result[Decision[JobStart], KernelError]:
    """Start an attempt, or skip a job whose run or stage is already finished.

    The stage's code is always the run's own workflow's: a command naming
    another workflow is refused, so one workflow's code never runs on another's run.
    """
    run, workflow = state.run, state.workflow
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if workflow is None:
        version = run.workflow_version if run.workflow_id == cmd.workflow_id else None
        return Failure(WorkflowNotFoundError(cmd.workflow_id, named_version(version)))
    if workflow.id != run.workflow_id:
        problem = (
            f"workflow_id: run {run.id!r} belongs to workflow {run.workflow_id!r}, "
            f"not {cmd.workflow_id!r}"
        )
        return Failure(InvalidInputError([problem]))
    stage = workflow.stage(cmd.stage_id)
    if stage is None:
        return Failure(StageNotFoundError(cmd.stage_id, workflow.id))
    skipped = _nothing_to_do(run, state.record, state.job)
    if skipped is not None:
        return Success(skipped)
    return Success(_start_attempt(cmd, state, run, workflow, stage, env))


def _start_attempt(
    cmd: JobExecute,
    state: StartState,
    run: WorkflowRun,
    workflow: Workflow[Any, Any],
    stage: Stage[Any, Any, Any],
    env: Env,
) -> Decision[JobStart]:
    """Run RUNNING (``workflow:started`` if it was pending), stage RUNNING with the next
    attempt, job leased, ``stage:started``; and the stage to execute."""
    record, job = state.record, state.job
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
    started = StageStarted(
        workflow_run_id=run.id,
        timestamp=env.now,
        stage_id=stage.id,
        stage_name=stage.name,
        stage_number=record.stage_number,
    )
    effects.append(env.record(started))
    execute = ExecuteStage(
        run=run,
        stage=record,
        job=job,
        input=stage_input(run, workflow, workflow.group_of(stage.id), state.previous_outputs),
        config={**stage.default_config(), **cmd.config.get(stage.id, {})},
    )
    return Decision(JobStart(execute=execute), tuple(effects))


def command_for(job: Job, run: WorkflowRun | None) -> JobExecute:
    """The ``job.execute`` command a worker runs for a job it leased from the queue."""
    return JobExecute(
        workflow_run_id=job.workflow_run_id,
        workflow_id=job.workflow_id,
        stage_id=job.stage_id,
        config=run.config if run else {},
        job_id=job.id,
    )


def start_leased(job: Job, state: StartState, env: Env) -> Result[Decision[JobStart], KernelError]:
    """Start a job just leased from the queue.

    A job that cannot start here (its run, workflow or stage is unknown) must
    not spin in the queue: it fails for good, and so does its live run.
    """
    match decide(command_for(job, state.run), state, env):
        case Success(started):
            return Success(started)
        case Failure(error):
            return Success(reject(job, state.run, error, env))
    raise AssertionError("unreachable")  # pragma: no cover


def reject(job: Job, run: WorkflowRun | None, error: KernelError, env: Env) -> Decision[JobStart]:
    """Fail a job nobody can start, and its run if that is still live."""
    message = f"{error.code}: {error}"
    effects: list[StoreEffect] = [
        UpdateJob(evolve(job, status=JobStatus.FAILED, last_error=message))
    ]
    if run is not None and not run.is_terminal:
        effects += fail_run(run, message, env)[1]
    skipped = JobExecuteResult(outcome="failed", error=message)
    return Decision(JobStart(execute=None, skipped=skipped), tuple(effects))


def lease_named(
    cmd: JobLease, job: Job | None, env: Env, known: Collection[tuple[str, str]] | None = None
) -> Result[Decision[JobLeaseResult], KernelError]:
    """``job.lease``: lease the named job to the worker if it is queued, belongs to
    the named run and stage, and its workflow version is among ``known`` (the
    registry's ``(workflow id, version)`` pairs; ``None``: any); otherwise lease
    nothing and say why. A job of a version this worker lacks stays queued for
    one that has it, as with leases a worker chooses itself (SPEC §16)."""
    job_id, run_id, stage_id = cmd.job_id, cmd.workflow_run_id, cmd.stage_id
    if job is None:
        return Success(Decision(JobLeaseResult(job=None, reason=f"job {job_id!r} does not exist")))
    if job.workflow_run_id != run_id or job.stage_id != stage_id:
        reason = (
            f"job {job_id!r} belongs to run {job.workflow_run_id!r}, stage "
            f"{job.stage_id!r}, not to run {run_id!r}, stage {stage_id!r}"
        )
        return Success(Decision(JobLeaseResult(job=None, reason=reason)))
    if job.status == JobStatus.LEASED:
        reason = f"job {job_id!r} is leased by worker {job.worker_id!r}"
        return Success(Decision(JobLeaseResult(job=None, reason=reason)))
    if job.status != JobStatus.QUEUED:
        reason = f"job {job_id!r} is {job.status}"
        return Success(Decision(JobLeaseResult(job=None, reason=reason)))
    if known is not None and (job.workflow_id, job.workflow_version) not in known:
        reason = (
            f"job {job_id!r} is of workflow {job.workflow_id!r} version "
            f"{job.workflow_version!r}, which this worker does not have: it stays queued"
        )
        return Success(Decision(JobLeaseResult(job=None, reason=reason)))
    leased = evolve(job, status=JobStatus.LEASED, worker_id=cmd.worker_id, locked_at=env.now)
    return Success(Decision(JobLeaseResult(job=leased), (UpdateJob(leased),)))
