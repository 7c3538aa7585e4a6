"""``run.rerunFrom``: re-run a finished run from one stage's group onwards (SPEC §5.5).

The run keeps its spend: ``total_cost`` and ``total_tokens`` are not reset,
since the calls of the replaced stages were paid for and stay in the ledger
(SPEC §12.1); the new stages add to them.

With ``version=``, the run moves to that version of its workflow (SPEC §16):
the rerun stage must exist there, the stages the run keeps take that
version's numbers, and its config is checked again against that version's
stages (stages new to the run get their defaults).
"""

from __future__ import annotations

from typing import Any

from returns.result import Failure, Result, Success

from kernel.commands import RunRerunFrom, RunRerunFromResult
from kernel.decisions.changes import bump_run, bump_stage
from kernel.decisions.context import Env
from kernel.decisions.lifecycle import StageState, open_group, output_key
from kernel.effects import Decision, DeleteBlob, DeleteStage, StoreEffect
from kernel.errors import (
    InvalidConfigError,
    InvalidStateError,
    KernelError,
    RunNotFoundError,
    StageNotFoundError,
    WorkflowNotFoundError,
    named_version,
)
from kernel.events import WorkflowStarted
from kernel.records import Json, WorkflowRun, WorkflowStage
from kernel.status import Status
from kernel.workflows import Workflow

RERUNNABLE = (Status.COMPLETED, Status.FAILED)


def decide(
    cmd: RunRerunFrom,
    state: StageState,
    env: Env,
    target: Workflow[Any, Any] | None = None,
) -> Result[Decision[RunRerunFromResult], KernelError]:
    """Delete the target group and later groups (records and outputs), keep earlier
    outputs and the run's totals, and enqueue the target group again.

    ``state.workflow`` is the run's own version; ``target`` the version
    ``cmd.version`` names (``None``: not registered), read only when it names one."""
    run, stages = state.run, state.stages
    workflow = state.workflow if cmd.version is None else target
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    asked = cmd.version is not None
    if workflow is None:
        wanted = cmd.version if cmd.version is not None else run.workflow_version
        return Failure(WorkflowNotFoundError(run.workflow_id, named_version(wanted, asked=asked)))
    if workflow.stage(cmd.from_stage_id) is None:
        named = named_version(workflow.version, asked=asked)
        return Failure(StageNotFoundError(cmd.from_stage_id, workflow.id, named))
    if run.status not in RERUNNABLE:
        return Failure(
            InvalidStateError(
                f"run {run.id!r} is {run.status}: only COMPLETED or FAILED runs can be "
                f"rerun from stage {cmd.from_stage_id!r}"
            )
        )
    group = workflow.group_of(cmd.from_stage_id)
    # Earlier outputs are kept and fed forward, so every earlier stage must have them.
    by_id = {stage.stage_id: stage for stage in stages}
    for earlier in workflow.stages:
        found = by_id.get(earlier.id)
        if workflow.group_of(earlier.id) < group and (
            found is None or found.status != Status.COMPLETED
        ):
            return Failure(
                InvalidStateError(
                    f"run {run.id!r} cannot be rerun from stage {cmd.from_stage_id!r}: "
                    f"earlier stage {earlier.id!r} is "
                    f"{found.status if found is not None else 'missing'}, not COMPLETED"
                )
            )
    kept = {s.id for s in workflow.stages if workflow.group_of(s.id) < group}
    doomed = [stage for stage in stages if stage.stage_id not in kept]
    effects: list[StoreEffect] = []
    for stage in doomed:
        effects += [DeleteStage(stage), DeleteBlob(output_key(run.id, stage.stage_id))]
    moved: dict[str, Any] = {}
    if workflow.version != run.workflow_version:
        match _moved_config(run, workflow):
            case Failure(problem):
                return Failure(problem)
            case Success(config):
                moved = {
                    "workflow_version": workflow.version,
                    "workflow_name": workflow.name,
                    "config": config,
                }
        effects += _renumbered([by_id[stage_id] for stage_id in kept], workflow)
    restarted, update = bump_run(
        run,
        status=Status.RUNNING,
        output=None,
        error=None,
        completed_at=None,
        duration_ms=None,
        started_at=env.now,
        **moved,
    )
    group_effects, _ = open_group(restarted, workflow, group, env, state.group_outputs)
    effects += [
        update,
        env.record(WorkflowStarted(workflow_run_id=run.id, timestamp=env.now)),
        *group_effects,
    ]
    result = RunRerunFromResult(deleted_stages=[stage.stage_id for stage in doomed])
    return Success(Decision(result, tuple(effects)))


def _moved_config(
    run: WorkflowRun, workflow: Workflow[Any, Any]
) -> Result[dict[str, dict[str, Json]], KernelError]:
    """The run's config for ``workflow``: its values for the stages that version has,
    checked and completed with that version's defaults."""
    given = {
        stage_id: values for stage_id, values in run.config.items() if workflow.stage(stage_id)
    }
    match workflow.validate_config(given):
        case Failure(problems):
            return Failure(InvalidConfigError(problems))
        case Success(config):
            return Success(config)
    raise AssertionError("unreachable")  # pragma: no cover


def _renumbered(kept: list[WorkflowStage], workflow: Workflow[Any, Any]) -> list[StoreEffect]:
    """Give the kept stage records the numbers and names they have in ``workflow``."""
    effects: list[StoreEffect] = []
    for stage in kept:
        numbers = {
            "stage_name": workflow.stage(stage.stage_id).name,  # type: ignore[union-attr]
            "stage_number": workflow.stage_number(stage.stage_id),
            "execution_group": workflow.group_of(stage.stage_id),
        }
        if any(getattr(stage, name) != value for name, value in numbers.items()):
            effects.append(bump_stage(stage, **numbers)[1])
    return effects
