"""``run.transition``: advance, complete or fail a run whose group is done (SPEC §5.3)."""

from __future__ import annotations

from typing import Any

from returns.result import Result, Success

from kernel.commands import RunTransition, RunTransitionResult
from kernel.decisions.env import Env
from kernel.decisions.groups import transition
from kernel.effects import Decision
from kernel.errors import KernelError
from kernel.records import Json, WorkflowRun, WorkflowStage
from kernel.workflows import Workflow


def decide(
    cmd: RunTransition,
    run: WorkflowRun | None,
    stages: list[WorkflowStage],
    outputs: dict[str, Json],
    workflow: Workflow[Any, Any] | None,
    env: Env,
) -> Result[Decision[RunTransitionResult], KernelError]:
    """A missing or finished run, or one with an active stage, is a ``noop``."""
    step = transition(run, stages, outputs, workflow, env)
    return Success(
        Decision(RunTransitionResult(action=step.action, next_group=step.next_group), step.effects)
    )
