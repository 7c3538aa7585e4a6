"""``run.create``: validate input and config, then write a PENDING run (SPEC §5.1)."""

from __future__ import annotations

from typing import Any

from returns.result import Failure, Result, Success

from kernel.commands import RunCreate, RunCreateResult
from kernel.convert import structure, to_json
from kernel.decisions.context import Env
from kernel.effects import Decision, InsertRun
from kernel.errors import InvalidConfigError, InvalidInputError, KernelError, WorkflowNotFoundError
from kernel.events import WorkflowCreated
from kernel.records import WorkflowRun
from kernel.status import Status
from kernel.workflows import Workflow


def decide(
    cmd: RunCreate, workflow: Workflow[Any, Any] | None, env: Env
) -> Result[Decision[RunCreateResult], KernelError]:
    """Create a run, or fail without effects when the workflow, input or config is wrong.

    ``workflow`` is the version the command names, else the newest registered; the
    run records its version. The run's budget is the command's, else the
    workflow's default (``None``: no limit).

    >>> from datetime import UTC, datetime
    >>> env = Env(datetime(2025, 1, 1, tzinfo=UTC), lambda: "id-1", "cmd-1")
    >>> decide(RunCreate(workflow_id="nope", input={}), None, env)
    <Failure: workflow 'nope' is not registered>
    """
    if workflow is None:
        return Failure(WorkflowNotFoundError(cmd.workflow_id, cmd.version))
    match structure(cmd.input, workflow.input_type, "input"):
        case Failure(input_problems):
            return Failure(InvalidInputError(input_problems))
        case Success(typed_input):
            pass
    match workflow.validate_config(cmd.config):
        case Failure(config_problems):
            return Failure(InvalidConfigError(config_problems))
        case Success(config):
            pass
    run = WorkflowRun(
        id=env.new_id(),
        workflow_id=workflow.id,
        workflow_name=workflow.name,
        workflow_version=workflow.version,
        status=Status.PENDING,
        input=to_json(typed_input),
        config=config,
        priority=cmd.priority,
        metadata=dict(cmd.metadata or {}),
        created_at=env.now,
        budget=cmd.budget if cmd.budget is not None else workflow.budget,
    )
    event = WorkflowCreated(workflow_run_id=run.id, timestamp=env.now, workflow_id=workflow.id)
    return Success(
        Decision(
            RunCreateResult(workflow_run_id=run.id, status=run.status),
            (InsertRun(run), env.record(event)),
        )
    )
