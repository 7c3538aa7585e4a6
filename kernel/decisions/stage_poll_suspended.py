"""``stage.pollSuspended``: claim due suspended stages, then record each check (SPEC §5.7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from attrs import evolve, frozen
from returns.result import Result, Success

from kernel.decisions.changes import bump_stage
from kernel.decisions.env import DEFAULT_POLL_INTERVAL, Env, poll_due
from kernel.decisions.job_finish import complete_stage, fail_stage
from kernel.decisions.outcomes import CheckOutcome, Completed, Failed, NotReady
from kernel.effects import Decision, StoreEffect, UpdateJob
from kernel.errors import KernelError
from kernel.records import Job, Json, WorkflowRun, WorkflowStage
from kernel.workflows import Workflow

CHECK_LEASE = timedelta(minutes=1)
"""How long a poller holds a due stage while its check runs; a crashed poller's
stages come due again after this."""


def claim(
    due: Sequence[WorkflowStage], env: Env
) -> Result[Decision[list[WorkflowStage]], KernelError]:
    """Push each due stage's ``next_poll_at`` past the check, so concurrent pollers
    do not check it twice; the returned records carry the new versions."""
    bumped = [bump_stage(stage, next_poll_at=env.now + CHECK_LEASE) for stage in due]
    return Success(
        Decision([claimed for claimed, _ in bumped], tuple(update for _, update in bumped))
    )


@frozen
class PollResult:
    """What one check changed: ``resumed``, ``failed``, ``waiting`` or ``skipped``."""

    verdict: str


def decide(
    checked: WorkflowStage,
    outcome: CheckOutcome,
    run: WorkflowRun | None,
    stages: list[WorkflowStage],
    job: Job | None,
    outputs: dict[str, Json],
    workflow: Workflow[Any, Any],
    env: Env,
) -> Result[Decision[PollResult], KernelError]:
    """Ready: complete the stage (and transition the run). Error or ``max_wait``
    passed: fail it. Otherwise: poll again after ``next_check_in``, the stage's
    poll interval, or 60 s, but no later than the end of its max wait."""
    record = next((s for s in stages if s.id == checked.id), None)
    if run is None or run.is_terminal or record is None or record.version != checked.version:
        return Success(Decision(PollResult("skipped")))
    effects: list[StoreEffect]
    match outcome:
        case Completed():
            effects = complete_stage(run, record, job, outcome, stages, outputs, workflow, env)
            return Success(Decision(PollResult("resumed"), tuple(effects)))
        case Failed(error):
            # A failed check is final: polling is the stage's retry.
            _, effects = fail_stage(run, record, job, error, stages, workflow, env, retryable=False)
            return Success(Decision(PollResult("failed"), tuple(effects)))
        case NotReady(next_check_in):
            if record.max_wait_until is not None and env.now >= record.max_wait_until:
                error = (
                    f"TimeoutError: stage {record.stage_id!r} did not complete before "
                    f"its max wait ({record.max_wait_until.isoformat()})"
                )
                _, effects = fail_stage(
                    run, record, job, error, stages, workflow, env, retryable=False
                )
                return Success(Decision(PollResult("failed"), tuple(effects)))
            wait = next_check_in or record.poll_interval or DEFAULT_POLL_INTERVAL
            due = poll_due(env.now + wait, record.max_wait_until)
            effects = [bump_stage(record, next_poll_at=due)[1]]
            if job is not None and job.is_open:
                effects.append(UpdateJob(evolve(job, available_at=due)))
            return Success(Decision(PollResult("waiting"), tuple(effects)))
    return Success(Decision(PollResult("skipped")))  # pragma: no cover
