"""``run.claimPending``: start pending runs and enqueue their first group (SPEC §5.2)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from attrs import field, frozen
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
    caps: Mapping[str, int] = field(factory=dict)
    """``max_running_runs`` by workflow id, for the workflows that set one."""
    running: Mapping[str, int] = field(factory=dict)
    """RUNNING runs of each workflow in ``caps``, counted under its lock."""


def run_caps(
    get_workflow: Callable[[str, str], Workflow[Any, Any] | None],
    versions: Collection[tuple[str, str]],
) -> dict[str, int]:
    """``max_running_runs`` by workflow id, of the registered versions that set one
    (the smallest, if versions differ): RUNNING runs of every version count."""
    caps: dict[str, int] = {}
    for workflow_id, version in versions:
        workflow = get_workflow(workflow_id, version)
        if workflow is not None and workflow.max_running_runs is not None:
            cap = workflow.max_running_runs
            caps[workflow_id] = min(cap, caps.get(workflow_id, cap))
    return caps


def within_caps(
    runs: Sequence[WorkflowRun], caps: Mapping[str, int], running: Mapping[str, int]
) -> tuple[list[WorkflowRun], set[str]]:
    """The runs (in order) that fit their workflow's ``max_running_runs``, and the
    capped workflows with no room left after them.

    >>> from kernel.records import WorkflowRun
    >>> from datetime import datetime, UTC
    >>> def run(i, wf): return WorkflowRun(id=i, workflow_id=wf, workflow_name=wf,
    ...     status=Status.PENDING, input=None, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> taken, full = within_caps([run("1", "a"), run("2", "a"), run("3", "b")], {"a": 2}, {"a": 1})
    >>> [r.id for r in taken], full
    (['1', '3'], {'a'})
    """
    counts = dict(running)
    taken: list[WorkflowRun] = []
    for run in runs:
        cap = caps.get(run.workflow_id)
        if cap is not None:
            if counts.get(run.workflow_id, 0) >= cap:
                continue
            counts[run.workflow_id] = counts.get(run.workflow_id, 0) + 1
        taken.append(run)
    full = {wid for wid, cap in caps.items() if counts.get(wid, 0) >= cap}
    return taken, full


def decide(
    cmd: RunClaimPending, state: Claimable, env: Env
) -> Result[Decision[RunClaimPendingResult], KernelError]:
    """Move each claimed run to RUNNING with its group-1 stages and jobs.

    A run whose workflow is unknown fails with ``WORKFLOW_NOT_FOUND``; one
    whose workflow has no stages fails with ``EMPTY_STAGE_GRAPH``. A run whose
    workflow already has ``max_running_runs`` RUNNING stays PENDING (SPEC §15).
    """
    effects: list[StoreEffect] = []
    claimed: list[ClaimedRun] = []
    # The load took only runs within their workflow's max_running_runs (SPEC §15).
    for run in within_caps(state.runs, state.caps, state.running)[0]:
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
