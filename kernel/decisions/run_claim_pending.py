"""``run.claimPending``: start pending runs and enqueue their first group (SPEC §5.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import ClaimedRun, RunClaimPending, RunClaimPendingResult
from kernel.decisions.changes import bump_run
from kernel.decisions.context import Env
from kernel.decisions.lifecycle import fail_run, open_group
from kernel.effects import Decision, StoreEffect
from kernel.errors import KernelError, WorkflowNotFoundError, named_version
from kernel.events import WorkflowStarted
from kernel.records import WorkflowRun
from kernel.status import Status
from kernel.workflows import Workflow


@frozen
class Claimable:
    """Pending runs this caller locked, and the registered workflow version of each
    (by run id)."""

    runs: Sequence[WorkflowRun]
    workflows: Mapping[str, Workflow[Any, Any] | None]


def decide(
    cmd: RunClaimPending, state: Claimable, env: Env
) -> Result[Decision[RunClaimPendingResult], KernelError]:
    """Move each claimed run to RUNNING with its group-1 stages and jobs.

    A run whose workflow is unknown fails with ``WORKFLOW_NOT_FOUND``; one
    whose workflow has no stages fails with ``EMPTY_STAGE_GRAPH``.
    """
    effects: list[StoreEffect] = []
    claimed: list[ClaimedRun] = []
    for run in state.runs:
        if run.status != Status.PENDING:
            continue
        workflow = state.workflows.get(run.id)
        if workflow is None:
            missing = WorkflowNotFoundError(run.workflow_id, named_version(run.workflow_version))
            _, failed = fail_run(run, f"{missing.code}: {missing}", env)
            effects += failed
            continue
        if not workflow.groups:
            _, failed = fail_run(
                run, f"EMPTY_STAGE_GRAPH: workflow {run.workflow_id!r} has no stages", env
            )
            effects += failed
            continue
        started, update = bump_run(run, status=Status.RUNNING, started_at=env.now)
        group_effects, job_ids = open_group(started, workflow, 1, env)
        effects += [
            update,
            env.record(WorkflowStarted(workflow_run_id=run.id, timestamp=env.now)),
            *group_effects,
        ]
        claimed.append(
            ClaimedRun(workflow_run_id=run.id, workflow_id=run.workflow_id, job_ids=job_ids)
        )
    return Success(Decision(RunClaimPendingResult(claimed=claimed), tuple(effects)))
