"""``stage.progress``: publish what a running attempt reports through ``ctx.progress``
(SPEC §19)."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import StageReportProgress, StageReportProgressResult
from kernel.decisions.context import Env
from kernel.effects import Decision
from kernel.errors import KernelError
from kernel.events import StageProgress
from kernel.records import WorkflowRun, WorkflowStage
from kernel.status import Status

NOT_RECORDED = StageReportProgressResult(recorded=False)


@frozen
class Reporting:
    """The run and its stage records, as the progress transaction read them."""

    run: WorkflowRun | None
    stages: Sequence[WorkflowStage]


def decide(
    cmd: StageReportProgress, state: Reporting, env: Env
) -> Result[Decision[StageReportProgressResult], KernelError]:
    """Append ``stage:progress`` if the reporting attempt is still the stage's running one.

    A report from an attempt that is over (it finished, timed out, or its run
    was cancelled or its lease reaped) is dropped quietly: the attempt's user
    code may not know yet, and its progress no longer describes the stage.
    """
    record = next((s for s in state.stages if s.stage_id == cmd.stage_id), None)
    run = state.run
    if run is None or run.is_terminal or record is None:
        return Success(Decision(NOT_RECORDED))
    if record.status != Status.RUNNING or record.attempt != cmd.attempt:
        return Success(Decision(NOT_RECORDED))
    event = StageProgress(
        workflow_run_id=run.id,
        timestamp=cmd.reported_at or env.now,
        stage_id=cmd.stage_id,
        progress=cmd.progress,
        message=cmd.message,
        details=cmd.details,
    )
    return Success(Decision(StageReportProgressResult(recorded=True), (env.record(event),)))
