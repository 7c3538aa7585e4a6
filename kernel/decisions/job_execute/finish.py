"""``job.execute`` phase 3: record what the stage did and settle its job (SPEC §5.6).

When the finished stage was the last active one of its group, the run's
transition happens in this same transaction (SPEC §10.1), so a worker that
dies right after the finish leaves no run behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from returns.result import Result, Success

from kernel.commands import JobExecuteResult
from kernel.decisions.changes import (
    bump_run,
    bump_stage,
    cancel_stage,
    requeue_job,
    settle_job,
)
from kernel.decisions.env import Env, elapsed_ms, next_attempt_at, poll_due
from kernel.decisions.groups import output_key, transition
from kernel.decisions.outcomes import Completed, Failed, StageOutcome, Suspended
from kernel.effects import (
    Decision,
    ExecuteStage,
    PutBlob,
    StoreEffect,
)
from kernel.errors import KernelError
from kernel.events import (
    StageCompleted,
    StageFailed,
    StageProgress,
    StageSuspended,
    WorkflowSuspended,
)
from kernel.records import Job, Json, WorkflowRun, WorkflowStage
from kernel.stages import ProgressReport
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow

SKIPPED = JobExecuteResult(outcome="skipped")


def _replace(stages: list[WorkflowStage], new: WorkflowStage) -> list[WorkflowStage]:
    return [new if stage.id == new.id else stage for stage in stages]


def complete_stage(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    outcome: Completed,
    stages: list[WorkflowStage],
    outputs: dict[str, Json],
    workflow: Workflow[Any, Any],
    env: Env,
) -> list[StoreEffect]:
    """Store the output, complete stage and job, and transition the run if the group is done."""
    key = output_key(run.id, record.stage_id)
    duration = elapsed_ms(record.started_at, env.now)
    done, update = bump_stage(
        record,
        status=Status.COMPLETED,
        output_ref=key,
        metrics=outcome.metrics,
        suspended_state=None,
        next_poll_at=None,
        error=None,
        completed_at=env.now,
        duration_ms=duration,
    )
    effects: list[StoreEffect] = [
        PutBlob(key, outcome.output),
        update,
        *settle_job(job, JobStatus.COMPLETED, last_error=None),
    ]
    effects.append(
        env.record(
            StageCompleted(
                workflow_run_id=run.id,
                timestamp=env.now,
                stage_id=record.stage_id,
                stage_name=record.stage_name,
                duration_ms=duration,
            )
        )
    )
    after = _replace(stages, done)
    active = [stage for stage in after if stage.is_active]
    if active and all(stage.status == Status.SUSPENDED for stage in active):
        # Only suspended siblings remain: the run waits for their polls.
        return effects + park_if_waiting(run, after, env)
    if run.status == Status.SUSPENDED:
        run, resumed = bump_run(run, status=Status.RUNNING)
        effects.append(resumed)
    step = transition(run, after, {**outputs, record.stage_id: outcome.output}, workflow, env)
    return effects + list(step.effects)


def fail_stage(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    error: str,
    stages: list[WorkflowStage],
    workflow: Workflow[Any, Any],
    env: Env,
    *,
    retryable: bool = True,
) -> tuple[bool, list[StoreEffect]]:
    """Retry with backoff while attempts remain; otherwise fail stage and job for good.

    Returns whether the stage will be retried, and the effects.
    """
    will_retry = retryable and job is not None and job.attempt < job.max_attempts
    if job is not None and will_retry:
        changed, update = bump_stage(record, status=Status.PENDING, error=error)
        effects: list[StoreEffect] = [
            update,
            requeue_job(job, next_attempt_at(job.attempt, env.now), last_error=error),
        ]
    else:
        changed, update = bump_stage(
            record,
            status=Status.FAILED,
            error=error,
            completed_at=env.now,
            duration_ms=elapsed_ms(record.started_at, env.now),
        )
        effects = [update, *settle_job(job, JobStatus.FAILED, last_error=error)]
    effects.append(
        env.record(
            StageFailed(
                workflow_run_id=run.id,
                timestamp=env.now,
                stage_id=record.stage_id,
                stage_name=record.stage_name,
                error=error,
                attempt=record.attempt,
                will_retry=will_retry,
            )
        )
    )
    if not will_retry:
        after = _replace(stages, changed)
        step = transition(run, after, {}, workflow, env)
        effects += step.effects if step.action != "noop" else park_if_waiting(run, after, env)
    return will_retry, effects


def suspend_stage(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    outcome: Suspended,
    stages: list[WorkflowStage],
    env: Env,
) -> tuple[JobExecuteResult, list[StoreEffect]]:
    """Park the stage until its next poll; park the run when nothing else is running."""
    suspend = outcome.suspend
    max_wait_until = env.now + suspend.max_wait if suspend.max_wait else None
    next_poll_at = poll_due(suspend.next_poll_at or env.now + suspend.poll_interval, max_wait_until)
    parked, update = bump_stage(
        record,
        status=Status.SUSPENDED,
        suspended_state=suspend.state,
        next_poll_at=next_poll_at,
        poll_interval=suspend.poll_interval,
        max_wait_until=max_wait_until,
    )
    effects: list[StoreEffect] = [
        update,
        *settle_job(
            job, JobStatus.SUSPENDED, worker_id=None, locked_at=None, available_at=next_poll_at
        ),
    ]
    effects.append(
        env.record(
            StageSuspended(
                workflow_run_id=run.id,
                timestamp=env.now,
                stage_id=record.stage_id,
                stage_name=record.stage_name,
                next_poll_at=next_poll_at,
            )
        )
    )
    effects += park_if_waiting(run, _replace(stages, parked), env)
    result = JobExecuteResult(outcome="suspended", next_poll_at=next_poll_at)
    return result, effects


def park_if_waiting(
    run: WorkflowRun | None, stages: list[WorkflowStage], env: Env
) -> list[StoreEffect]:
    """Park a RUNNING run whose every active stage is SUSPENDED (``workflow:suspended``)."""
    active = [stage for stage in stages if stage.is_active]
    if run is None or run.status != Status.RUNNING or not active:
        return []
    if any(stage.status != Status.SUSPENDED for stage in active):
        return []
    _, update = bump_run(run, status=Status.SUSPENDED)
    event = WorkflowSuspended(
        workflow_run_id=run.id, timestamp=env.now, stage_id=active[0].stage_id
    )
    return [update, env.record(event)]


def progress_events(
    run_id: str, stage_id: str, reports: Sequence[ProgressReport], env: Env
) -> list[StoreEffect]:
    """One ``stage:progress`` outbox append per ``ctx.progress`` call, in call order,
    stamped with the time of the call."""
    return [
        env.record(
            StageProgress(
                workflow_run_id=run_id,
                timestamp=report.at or env.now,
                stage_id=stage_id,
                progress=report.progress,
                message=report.message,
                details=report.details,
            )
        )
        for report in reports
    ]


def decide(
    started: ExecuteStage,
    outcome: StageOutcome,
    progress: Sequence[ProgressReport],
    run: WorkflowRun | None,
    stages: list[WorkflowStage],
    job: Job | None,
    outputs: dict[str, Json],
    workflow: Workflow[Any, Any],
    env: Env,
) -> Result[Decision[JobExecuteResult], KernelError]:
    """Record the outcome of the attempt that ``started`` began.

    If the stage record changed since the start (the run was cancelled, or the
    lease was reaped and the job handed to another worker), the result is
    discarded and the outcome is ``skipped``.
    """
    record = next((s for s in stages if s.id == started.stage.id), None)
    current = record is not None and record.version == started.stage.version
    if run is None or record is None or not current or run.is_terminal:
        effects: list[StoreEffect] = []
        if run is not None and run.is_terminal and record is not None and current:
            effects.append(cancel_stage(record, env.now))
            effects += settle_job(job, JobStatus.CANCELLED)
        return Success(Decision(SKIPPED, tuple(effects)))

    effects = progress_events(run.id, record.stage_id, progress, env)
    match outcome:
        case Completed():
            effects += complete_stage(run, record, job, outcome, stages, outputs, workflow, env)
            result = JobExecuteResult(outcome="completed", output=outcome.output)
        case Suspended():
            result, suspended = suspend_stage(run, record, job, outcome, stages, env)
            effects += suspended
        case Failed(error, retryable):
            _, failed = fail_stage(
                run, record, job, error, stages, workflow, env, retryable=retryable
            )
            effects += failed
            result = JobExecuteResult(outcome="failed", error=error)
    return Success(Decision(result, tuple(effects)))
