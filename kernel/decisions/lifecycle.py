"""Lifecycle rules several commands share: open a group, complete or fail a stage,
park, advance, complete or fail a run (SPEC §5.3, §5.6, §5.7).

Every command that changes a stage's or a run's fate goes through these
functions, so each rule has one home. Spend is counted as it happens, never
summed at the end (:mod:`kernel.decisions.totals`): a completing stage adds
the figures it reported to the run, and a completing run keeps its totals.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen
from returns.result import Failure, Success

from kernel.commands import TransitionAction
from kernel.copying import evolve
from kernel.decisions.changes import bump_run, bump_stage, requeue_job, settle_job
from kernel.decisions.context import Env, elapsed_ms
from kernel.decisions.totals import charge_run, merge_metrics, reported_spend
from kernel.effects import EnqueueJob, InsertStage, PutBlob, StoreEffect
from kernel.events import (
    StageCompleted,
    StageFailed,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowSuspended,
)
from kernel.limits import LIMIT_ERROR, resolve_limit
from kernel.outcomes import Completed
from kernel.records import Job, Json, SignalRecord, WorkflowRun, WorkflowStage
from kernel.retry import DEFAULT_RETRY
from kernel.stages import Stage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow


@frozen
class StageState:
    """A stage's run as one transaction read it: the run, its stage records, the
    stage's open job, the stored outputs of the stage's group, and the workflow."""

    run: WorkflowRun | None
    stages: list[WorkflowStage]
    job: Job | None
    group_outputs: dict[str, Json]
    workflow: Workflow[Any, Any] | None
    signals: tuple[SignalRecord, ...] = ()
    """The run's buffered signals, when the decision takes one (a signal stage
    starting to wait)."""


def output_key(run_id: str, stage_id: str) -> str:
    """The blob key of a stage's output."""
    return f"runs/{run_id}/stages/{stage_id}/output"


def new_stage(
    run: WorkflowRun, workflow: Workflow[Any, Any], stage: Stage[Any, Any, Any], env: Env
) -> WorkflowStage:
    """A fresh PENDING record of ``stage`` for ``run``, placed where the workflow puts it."""
    return WorkflowStage(
        id=env.new_id(),
        workflow_run_id=run.id,
        stage_id=stage.id,
        stage_name=stage.name,
        stage_number=workflow.stage_number(stage.id),
        execution_group=workflow.group_of(stage.id),
        status=Status.PENDING,
        config=run.config.get(stage.id, {}),
        created_at=env.now,
    )


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


def _limited(job: Job, stage: Stage[Any, Any, Any], input_json: Json) -> Job:
    """``job`` carrying its stage's limit, its key resolved now, once (SPEC §15).

    A key that cannot be resolved is kept in the job's payload instead: the
    attempt then fails for good without running the stage's code.
    """
    if stage.limit is None:
        return job
    match resolve_limit(stage.id, stage.limit, stage.input_type, input_json):
        case Success(fields):
            return evolve(
                job,
                limit_key=fields.limit_key,
                limit_max_running=fields.limit_max_running,
                limit_rate_count=fields.limit_rate_count,
                limit_rate_per_us=fields.limit_rate_per_us,
            )
        case Failure(error):
            return evolve(job, payload={**job.payload, LIMIT_ERROR: error})
    return job  # pragma: no cover - the match above is exhaustive


def open_group(
    run: WorkflowRun,
    workflow: Workflow[Any, Any],
    group: int,
    env: Env,
    outputs: dict[str, Json] | None = None,
) -> tuple[list[StoreEffect], list[str]]:
    """Create the stage records of ``group`` and enqueue one job for each.

    Both land in the caller's transaction, so a run in a group always has
    its jobs. ``outputs`` are those of the group before (a stage's input, which
    a limit's key function reads).
    """
    effects: list[StoreEffect] = []
    job_ids: list[str] = []
    for stage in workflow.group(group):
        record = new_stage(run, workflow, stage, env)
        job = Job(
            id=env.new_id(),
            workflow_run_id=run.id,
            workflow_id=run.workflow_id,
            workflow_version=run.workflow_version,
            stage_id=stage.id,
            status=JobStatus.QUEUED,
            priority=run.priority,
            max_attempts=workflow.retry_for(stage.id).max_attempts,
            available_at=env.now,
            created_at=env.now,
        )
        if stage.limit is not None:
            job = _limited(job, stage, stage_input(run, workflow, group, outputs or {}))
        effects += [InsertStage(record), EnqueueJob(job)]
        job_ids.append(job.id)
    return effects, job_ids


def fail_run(run: WorkflowRun, error: str, env: Env) -> tuple[WorkflowRun, list[StoreEffect]]:
    """Mark a run FAILED with ``error`` and record ``workflow:failed``."""
    failed, update = bump_run(
        run,
        status=Status.FAILED,
        error=error,
        completed_at=env.now,
        duration_ms=elapsed_ms(run.started_at, env.now),
    )
    return failed, [
        update,
        env.record(WorkflowFailed(workflow_run_id=run.id, timestamp=env.now, error=error)),
    ]


@frozen
class Transition:
    """The outcome of looking at a run whose stages may all be done."""

    action: TransitionAction
    next_group: int | None
    run: WorkflowRun | None
    effects: tuple[StoreEffect, ...]


NOOP = Transition("noop", None, None, ())


def transition(
    run: WorkflowRun | None,
    stages: list[WorkflowStage],
    outputs: dict[str, Json],
    workflow: Workflow[Any, Any] | None,
    env: Env,
) -> Transition:
    """Advance, complete or fail ``run`` once none of its stages is active (SPEC §5.3).

    ``outputs`` holds the outputs of the stages of the latest group, by stage
    id; they become the run's output when it completes.
    """
    if run is None or run.is_terminal or run.status == Status.PENDING:
        return NOOP
    if any(stage.is_active for stage in stages):
        return NOOP
    failed = next((s for s in stages if s.status == Status.FAILED), None)
    if failed is not None:
        error = failed.error or f"stage {failed.stage_id!r} failed"
        new, effects = fail_run(run, error, env)
        return Transition("failed", None, new, tuple(effects))
    if workflow is None:
        new, effects = fail_run(run, f"workflow {run.workflow_id!r} is not registered", env)
        return Transition("failed", None, new, tuple(effects))
    current = max((stage.execution_group for stage in stages), default=0)
    if current < len(workflow.groups):
        moved, update = bump_run(run, status=Status.RUNNING)
        effects, _ = open_group(moved, workflow, current + 1, env, outputs)
        return Transition("advanced", current + 1, moved, (update, *effects))
    last = workflow.group(current) if current else ()
    output: Json = (
        outputs.get(last[0].id)
        if len(last) == 1
        else {stage.id: outputs.get(stage.id) for stage in last}
    )
    # The totals are the run's running counters (the ledger's and what stages
    # reported as they completed): nothing is summed again here.
    duration = elapsed_ms(run.started_at, env.now)
    done, update = bump_run(
        run, status=Status.COMPLETED, output=output, completed_at=env.now, duration_ms=duration
    )
    event = WorkflowCompleted(
        workflow_run_id=run.id,
        timestamp=env.now,
        duration_ms=duration,
        total_cost=run.total_cost,
        total_tokens=run.total_tokens,
        output=output,
    )
    return Transition("completed", None, done, (update, env.record(event)))


def latest_group_ids(stages: list[WorkflowStage]) -> list[str]:
    """Stage ids of the highest execution group present."""
    if not stages:
        return []
    current = max(stage.execution_group for stage in stages)
    return [stage.stage_id for stage in stages if stage.execution_group == current]


def replace_stage(stages: list[WorkflowStage], new: WorkflowStage) -> list[WorkflowStage]:
    """``stages`` with ``new`` in place of the record with its id."""
    return [new if stage.id == new.id else stage for stage in stages]


def complete_stage(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    outcome: Completed,
    state: StageState,
    env: Env,
) -> list[StoreEffect]:
    """Store the output, complete stage and job, and transition the run if the group is done.

    The metrics the stage reported are merged into the record's (costs, tokens and
    calls added to what earlier attempts and ``usage.record`` counted), and the
    cost and tokens it reported are added to the run's totals.
    """
    key = output_key(run.id, record.stage_id)
    duration = elapsed_ms(record.started_at, env.now)
    done, update = bump_stage(
        record,
        status=Status.COMPLETED,
        output_ref=key,
        metrics=merge_metrics(record.metrics, outcome.metrics),
        suspended_state=None,
        next_poll_at=None,
        error=None,
        error_traceback=None,
        completed_at=env.now,
        duration_ms=duration,
    )
    effects: list[StoreEffect] = [
        PutBlob(key, outcome.output),
        update,
        *settle_job(job, JobStatus.COMPLETED, last_error=None),
    ]
    cost, tokens = reported_spend(outcome.metrics)
    if cost or tokens:
        run, charged = charge_run(run, cost, tokens)
        effects.append(charged)
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
    after = replace_stage(state.stages, done)
    active = [stage for stage in after if stage.is_active]
    if active and all(stage.status == Status.SUSPENDED for stage in active):
        # Only suspended siblings remain: the run waits for their polls.
        return effects + park_if_waiting(run, after, env)
    if run.status == Status.SUSPENDED:
        run, resumed = bump_run(run, status=Status.RUNNING)
        effects.append(resumed)
    outputs = {**state.group_outputs, record.stage_id: outcome.output}
    step = transition(run, after, outputs, state.workflow, env)
    return effects + list(step.effects)


def fail_stage(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    error: str,
    state: StageState,
    env: Env,
    *,
    retryable: bool = True,
    traceback: str | None = None,
) -> tuple[bool, list[StoreEffect]]:
    """Retry after the stage's backoff while attempts remain; otherwise fail stage and
    job for good. ``traceback`` (of what the attempt raised) is kept on the stage and
    in ``stage:failed``.

    Returns whether the stage will be retried, and the effects.
    """
    will_retry = retryable and job is not None and job.attempt < job.max_attempts
    if job is not None and will_retry:
        policy = state.workflow.retry_for(record.stage_id) if state.workflow else DEFAULT_RETRY
        changed, update = bump_stage(
            record, status=Status.PENDING, error=error, error_traceback=traceback
        )
        effects: list[StoreEffect] = [
            update,
            requeue_job(job, policy.next_attempt_at(job.attempt, env.now), last_error=error),
        ]
    else:
        changed, update = bump_stage(
            record,
            status=Status.FAILED,
            error=error,
            error_traceback=traceback,
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
                traceback=traceback,
            )
        )
    )
    if not will_retry:
        after = replace_stage(state.stages, changed)
        step = transition(run, after, {}, state.workflow, env)
        effects += step.effects if step.action != "noop" else park_if_waiting(run, after, env)
    return will_retry, effects


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
