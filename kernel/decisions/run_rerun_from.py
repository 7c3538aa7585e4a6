"""``run.rerunFrom``: re-run a finished run from one stage's group onwards (SPEC §5.5).

The run keeps its spend: ``total_cost`` and ``total_tokens`` are not reset,
since the calls of the replaced stages were paid for and stay in the ledger
(SPEC §12.1); the new stages add to them.
"""

from __future__ import annotations

from returns.result import Failure, Result, Success

from kernel.commands import RunRerunFrom, RunRerunFromResult
from kernel.decisions.changes import bump_run
from kernel.decisions.context import Env
from kernel.decisions.lifecycle import StageState, open_group, output_key
from kernel.effects import Decision, DeleteBlob, DeleteStage, StoreEffect
from kernel.errors import (
    InvalidStateError,
    KernelError,
    RunNotFoundError,
    StageNotFoundError,
    WorkflowNotFoundError,
)
from kernel.events import WorkflowStarted
from kernel.status import Status

RERUNNABLE = (Status.COMPLETED, Status.FAILED)


def decide(
    cmd: RunRerunFrom, state: StageState, env: Env
) -> Result[Decision[RunRerunFromResult], KernelError]:
    """Delete the target group and later groups (records and outputs), keep earlier
    outputs and the run's totals, and enqueue the target group again."""
    run, stages, workflow = state.run, state.stages, state.workflow
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if workflow is None:
        return Failure(WorkflowNotFoundError(run.workflow_id))
    if workflow.stage(cmd.from_stage_id) is None:
        return Failure(StageNotFoundError(cmd.from_stage_id, workflow.id))
    if run.status not in RERUNNABLE:
        return Failure(
            InvalidStateError(
                f"run {run.id!r} is {run.status}: only COMPLETED or FAILED runs can be "
                f"rerun from stage {cmd.from_stage_id!r}"
            )
        )
    group = workflow.group_of(cmd.from_stage_id)
    # Earlier outputs are kept and fed forward, so every earlier stage must have them.
    status_of = {stage.stage_id: stage.status for stage in stages}
    for earlier in workflow.stages:
        if workflow.group_of(earlier.id) < group and status_of.get(earlier.id) != Status.COMPLETED:
            found = status_of.get(earlier.id)
            return Failure(
                InvalidStateError(
                    f"run {run.id!r} cannot be rerun from stage {cmd.from_stage_id!r}: "
                    f"earlier stage {earlier.id!r} is {found or 'missing'}, not COMPLETED"
                )
            )
    doomed = [stage for stage in stages if stage.execution_group >= group]
    effects: list[StoreEffect] = []
    for stage in doomed:
        effects += [DeleteStage(stage), DeleteBlob(output_key(run.id, stage.stage_id))]
    restarted, update = bump_run(
        run,
        status=Status.RUNNING,
        output=None,
        error=None,
        completed_at=None,
        duration_ms=None,
        started_at=env.now,
    )
    group_effects, _ = open_group(restarted, workflow, group, env)
    effects += [
        update,
        env.record(WorkflowStarted(workflow_run_id=run.id, timestamp=env.now)),
        *group_effects,
    ]
    result = RunRerunFromResult(deleted_stages=[stage.stage_id for stage in doomed])
    return Success(Decision(result, tuple(effects)))
