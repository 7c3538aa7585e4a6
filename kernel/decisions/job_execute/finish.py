"""``job.execute`` phase 3: record what the stage did and settle its job (SPEC §5.6).

When the finished stage was the last active one of its group, the run's
transition happens in this same transaction (SPEC §10.1), so a worker that
dies right after the finish leaves no run behind.
"""

from __future__ import annotations

from collections.abc import Sequence

from returns.result import Result, Success

from kernel.commands import JobExecuteResult
from kernel.copying import evolve
from kernel.decisions import run_signal
from kernel.decisions.batch_cancel import pending_cancel
from kernel.decisions.changes import bump_stage, cancel_stage, settle_job
from kernel.decisions.context import Env, poll_due
from kernel.decisions.job_execute import SKIPPED
from kernel.decisions.lifecycle import (
    StageState,
    complete_stage,
    fail_stage,
    park_if_waiting,
    replace_stage,
)
from kernel.decisions.totals import same_attempt
from kernel.effects import Decision, ExecuteStage, StoreEffect, queued_job_id
from kernel.errors import KernelError
from kernel.events import StageProgress, StageSuspended
from kernel.outcomes import AwaitSignal, Completed, Failed, StageRun, Suspended
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.stages import ProgressReport
from kernel.status import JobStatus, Status


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
    effects += park_if_waiting(run, replace_stage(stages, parked), env)
    result = JobExecuteResult(outcome="suspended", next_poll_at=next_poll_at)
    return result, effects


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
    started: ExecuteStage, ran: StageRun, state: StageState, env: Env
) -> Result[Decision[JobExecuteResult], KernelError]:
    """Record the outcome of the attempt that ``started`` began.

    If the stage record changed since the start (the run was cancelled, or the
    lease was reaped and the job handed to another worker), the result is
    discarded and the outcome is ``skipped``. Calls the attempt recorded through
    ``usage.record`` meanwhile change only the record's metrics: they do not
    make it stale.
    """
    run, stages, job = state.run, state.stages, state.job
    record = next((s for s in stages if s.id == started.stage.id), None)
    current = record is not None and same_attempt(record, started.stage)
    if run is None or record is None or not current or run.is_terminal:
        effects: list[StoreEffect] = []
        if run is not None and run.is_terminal and record is not None and current:
            effects.append(cancel_stage(record, env.now))
            effects += settle_job(job, JobStatus.CANCELLED)
            if isinstance(ran.outcome, Suspended):
                # An LLM batch submitted as the run was cancelled: cancel it too.
                effects += pending_cancel(
                    record, state.workflow, env.now, ran.outcome.suspend.state
                )
        return Success(Decision(SKIPPED, tuple(effects)))

    effects = progress_events(run.id, record.stage_id, ran.progress, env)
    outcome = ran.outcome
    match outcome:
        case Completed():
            effects += complete_stage(run, record, job, outcome, state, env)
            result = JobExecuteResult(outcome="completed", output=outcome.output)
        case Suspended():
            result, suspended = suspend_stage(run, record, job, outcome, stages, env)
            effects += suspended
        case AwaitSignal():
            result, waiting = run_signal.start_waiting(run, record, job, outcome, state, env)
            effects += waiting
        case Failed(error, retryable, traceback):
            _, failed = fail_stage(
                run, record, job, error, state, env, retryable=retryable, traceback=traceback
            )
            effects += failed
            result = JobExecuteResult(outcome="failed", error=error)
    queued = tuple(job_id for e in effects if (job_id := queued_job_id(e)) is not None)
    if queued:
        result = evolve(result, queued_jobs=queued)
    return Success(Decision(result, tuple(effects)))
