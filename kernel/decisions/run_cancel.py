"""``run.cancel``: stop a live run; no further user code runs for it (SPEC §5.4)."""

from __future__ import annotations

from typing import Any

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import RunCancel, RunCancelResult
from kernel.decisions.batch_cancel import pending_cancel
from kernel.decisions.changes import bump_run, cancel_stage, settle_job
from kernel.decisions.context import Env, elapsed_ms
from kernel.effects import Decision, StoreEffect
from kernel.errors import KernelError
from kernel.events import WorkflowCancelled
from kernel.records import Job, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow


@frozen
class Cancellable:
    """A run with its stage records and jobs (``None`` and empty: no such run), and its
    workflow (to know its LLM batch stages)."""

    run: WorkflowRun | None
    stages: list[WorkflowStage]
    jobs: list[Job]
    workflow: Workflow[Any, Any] | None = None


def decide(
    cmd: RunCancel, state: Cancellable, env: Env
) -> Result[Decision[RunCancelResult], KernelError]:
    """Cancel the run, its pending and suspended stages, and its queued jobs.

    A running stage keeps its status until its worker finishes: the finish
    sees the cancelled run, discards the result and cancels the stage. The batch
    of a suspended LLM batch stage is left pending for cancelling at the provider
    (``batch.cancelPending``, after commit; SPEC §12.1).
    """
    run = state.run
    if run is None or run.is_terminal:
        return Success(Decision(RunCancelResult(cancelled=False)))
    _, update = bump_run(
        run,
        status=Status.CANCELLED,
        completed_at=env.now,
        duration_ms=elapsed_ms(run.started_at, env.now),
    )
    effects: list[StoreEffect] = [update]
    for stage in state.stages:
        if stage.status in (Status.PENDING, Status.SUSPENDED):
            effects.append(cancel_stage(stage, env.now))
        if stage.status == Status.SUSPENDED:
            effects += pending_cancel(stage, state.workflow, env.now)
    for job in state.jobs:
        if job.status in (JobStatus.QUEUED, JobStatus.SUSPENDED):
            effects += settle_job(job, JobStatus.CANCELLED)
    event = WorkflowCancelled(workflow_run_id=run.id, timestamp=env.now, reason=cmd.reason)
    effects.append(env.record(event))
    return Success(Decision(RunCancelResult(cancelled=True), tuple(effects)))
