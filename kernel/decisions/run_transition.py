"""``run.transition``: advance, complete or fail a run whose group is done (SPEC §5.3)."""

from __future__ import annotations

from returns.result import Result, Success

from kernel.commands import RunTransition, RunTransitionResult
from kernel.decisions.context import Env
from kernel.decisions.lifecycle import StageState, transition
from kernel.effects import Decision
from kernel.errors import KernelError


def decide(
    cmd: RunTransition, state: StageState, env: Env
) -> Result[Decision[RunTransitionResult], KernelError]:
    """A missing or finished run, or one with an active stage, is a ``noop``.

    ``state.group_outputs`` holds the outputs of the run's latest group: they
    become the run's output when it completes.
    """
    step = transition(state.run, state.stages, state.group_outputs, state.workflow, env)
    return Success(
        Decision(RunTransitionResult(action=step.action, next_group=step.next_group), step.effects)
    )
