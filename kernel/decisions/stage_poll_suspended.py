"""``stage.pollSuspended``: claim due suspended stages, then record each check (SPEC §5.7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from attrs import frozen
from returns.result import Result, Success

from kernel.copying import evolve
from kernel.decisions import run_signal
from kernel.decisions.batch_cancel import pending_cancel
from kernel.decisions.changes import bump_stage
from kernel.decisions.context import DEFAULT_POLL_INTERVAL, Env, poll_due
from kernel.decisions.lifecycle import StageState, complete_stage, fail_stage, stage_input
from kernel.decisions.totals import same_attempt
from kernel.effects import CheckCompletion, Decision, StoreEffect, UpdateJob
from kernel.errors import KernelError
from kernel.outcomes import CheckOutcome, Completed, Failed, NotReady
from kernel.records import Json, WorkflowRun, WorkflowStage
from kernel.workflows import Workflow

CHECK_LEASE = timedelta(minutes=1)
"""How long a poller holds a due stage while its check runs; a crashed poller's
stages come due again after this."""


@frozen
class DueStage:
    """A suspended stage whose poll time has come, with what its check needs: the
    run, its workflow, and the outputs of the group before the stage's."""

    record: WorkflowStage
    run: WorkflowRun | None
    workflow: Workflow[Any, Any] | None
    previous_outputs: dict[str, Json]


@frozen
class ClaimedCheck:
    """A claimed stage (its record as claimed) and either the check to run or, for a
    stage that cannot be polled here, the failure to record instead."""

    record: WorkflowStage
    check: CheckCompletion | Failed


def claim(due: Sequence[DueStage], env: Env) -> Result[Decision[list[ClaimedCheck]], KernelError]:
    """Push each due stage's ``next_poll_at`` past the check, so concurrent pollers
    do not check it twice; the claimed records carry the new versions.

    Each check gets the same input and config as the stage's ``execute``.
    """
    claimed: list[ClaimedCheck] = []
    effects: list[StoreEffect] = []
    for item in due:
        record, update = bump_stage(item.record, next_poll_at=env.now + CHECK_LEASE)
        effects.append(update)
        claimed.append(ClaimedCheck(record, _check_for(item, record)))
    return Success(Decision(claimed, tuple(effects)))


def _check_for(item: DueStage, record: WorkflowStage) -> CheckCompletion | Failed:
    run, workflow = item.run, item.workflow
    stage = workflow.stage(record.stage_id) if workflow else None
    signal = run_signal.waiting_for(item.record)
    if signal is not None:
        # A waiting signal stage comes due only when its timeout has passed.
        return run_signal.timed_out(item.record, signal)
    if run is None or workflow is None or stage is None or stage.check_completion is None:
        return Failed(
            f"stage {record.stage_id!r} cannot be polled: its workflow or "
            "check_completion is not registered"
        )
    return CheckCompletion(
        run=run,
        stage=record,
        input=stage_input(run, workflow, record.execution_group, item.previous_outputs),
        config={**stage.default_config(), **run.config.get(stage.id, {})},
    )


Verdict = Literal["resumed", "failed", "waiting", "skipped"]


def _timed_out(
    record: WorkflowStage, new_state: Json, state: StageState, env: Env
) -> list[StoreEffect]:
    """Fail a stage whose check at (or after) its max wait found it not ready; an LLM
    batch stage's batch is left pending for cancelling, in the same transaction."""
    assert state.run is not None and record.max_wait_until is not None
    deadline = record.max_wait_until.isoformat()
    stage = state.workflow.stage(record.stage_id) if state.workflow is not None else None
    if stage is not None and stage.batch_provider is not None:
        error = (
            f"BATCH_TIMEOUT: the batch of stage {record.stage_id!r} had not ended by its "
            f"max wait ({deadline}); it is being cancelled"
        )
    else:
        error = (
            f"TimeoutError: stage {record.stage_id!r} did not complete before "
            f"its max wait ({deadline})"
        )
    cancels = pending_cancel(record, state.workflow, env.now, new_state)
    _, effects = fail_stage(state.run, record, state.job, error, state, env, retryable=False)
    return [*cancels, *effects]


def decide(
    checked: WorkflowStage, outcome: CheckOutcome, state: StageState, env: Env
) -> Result[Decision[Verdict], KernelError]:
    """Ready: complete the stage (and transition the run). Error or ``max_wait``
    passed: fail it. Otherwise: poll again after ``next_check_in``, the stage's
    poll interval, or 60 s, but no later than the end of its max wait."""
    run, job = state.run, state.job
    record = next((s for s in state.stages if s.id == checked.id), None)
    # Calls recorded (``usage.record``) while the check ran leave the claim standing.
    if run is None or run.is_terminal or record is None or not same_attempt(record, checked):
        return Success(Decision("skipped"))
    if state.workflow is None:
        return Success(Decision("skipped"))
    effects: list[StoreEffect]
    match outcome:
        case Completed():
            effects = complete_stage(run, record, job, outcome, state, env)
            return Success(Decision("resumed", tuple(effects)))
        case Failed(error):
            # A failed check is final: polling is the stage's retry.
            _, effects = fail_stage(run, record, job, error, state, env, retryable=False)
            return Success(Decision("failed", tuple(effects)))
        case NotReady(next_check_in, new_state):
            if record.max_wait_until is not None and env.now >= record.max_wait_until:
                effects = _timed_out(record, new_state, state, env)
                return Success(Decision("failed", tuple(effects)))
            wait = next_check_in or record.poll_interval or DEFAULT_POLL_INTERVAL
            due = poll_due(env.now + wait, record.max_wait_until)
            changes: dict[str, Any] = {"next_poll_at": due}
            if new_state is not None:
                changes["suspended_state"] = new_state
            effects = [bump_stage(record, **changes)[1]]
            if job is not None and job.is_open:
                effects.append(UpdateJob(evolve(job, available_at=due)))
            return Success(Decision("waiting", tuple(effects)))
    return Success(Decision("skipped"))  # pragma: no cover
