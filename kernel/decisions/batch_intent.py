"""``batch.intent``: record that an LLM batch stage is about to submit a batch, in a
transaction of its own, before it does (SPEC §12)."""

from __future__ import annotations

from typing import Any

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.commands import BatchIntent, BatchIntentResult
from kernel.decisions.changes import bump_stage
from kernel.decisions.context import Env
from kernel.effects import Decision
from kernel.errors import InvalidInputError, KernelError, RunNotFoundError
from kernel.llm_batch_state import read_progress
from kernel.records import WorkflowRun, WorkflowStage
from kernel.stages import Stage
from kernel.status import Status

_LIVE = (Status.RUNNING, Status.SUSPENDED)


@frozen
class Intending:
    """The run, the stage's record, and the stage's definition (``None``: unknown)."""

    run: WorkflowRun | None
    record: WorkflowStage | None
    stage: Stage[Any, Any, Any] | None


def _refused(reason: str) -> Result[Decision[BatchIntentResult], KernelError]:
    return Success(Decision(BatchIntentResult(recorded=False, reason=reason)))


def decide(
    cmd: BatchIntent, state: Intending, env: Env
) -> Result[Decision[BatchIntentResult], KernelError]:
    """Write ``cmd.state`` as the stage's ``suspended_state`` if the attempt that asks is
    still the stage's own (same attempt, running or being polled, run live).

    An intent already recorded under the same tag is not written again: the
    result says so (``earlier``) and carries its batch id when that is known; the
    caller adopts that id, or asks the provider for the tag before submitting.
    An older generation than the one recorded is refused.
    """
    run, record, stage = state.run, state.record, state.stage
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if stage is None or stage.batch_provider != cmd.provider:
        return Failure(
            InvalidInputError(
                [f"stage_id: {cmd.stage_id!r} is not an LLM batch stage of {cmd.provider!r}"]
            )
        )
    intent = read_progress(cmd.state)
    if intent is None or (intent.tag, intent.generation, intent.provider) != (
        cmd.tag,
        cmd.generation,
        cmd.provider,
    ):
        return Failure(
            InvalidInputError(["state: expected the batch state of this tag and generation"])
        )
    if run.is_terminal:
        return _refused(f"run {run.id!r} is {run.status}")
    if record is None or record.status not in _LIVE or record.attempt != cmd.attempt:
        return _refused(f"stage {cmd.stage_id!r} is not at attempt {cmd.attempt}")
    current = read_progress(record.suspended_state)
    if current is not None and current.generation > cmd.generation:
        return _refused(f"generation {current.generation} is already recorded")
    if current is not None and current.tag == cmd.tag:
        return Success(
            Decision(BatchIntentResult(recorded=True, batch_id=current.batch_id, earlier=True))
        )
    _, update = bump_stage(record, suspended_state=cmd.state)
    return Success(Decision(BatchIntentResult(recorded=True), (update,)))
