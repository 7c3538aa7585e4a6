"""Signals (SPEC §13, §16.1): ``run.signal``, and a signal stage that starts waiting.

A signal goes to the waiting signal stage of its name with the lowest stage
number, which completes with the payload in the same transaction (and the
run transitions with it). With no stage waiting yet, the signal is kept on the
run; a signal stage that starts waiting takes the oldest kept signal of its
name at once. Either way a signal is consumed once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.commands import JobExecuteResult, RunSignal, RunSignalResult
from kernel.convert import structure, to_json
from kernel.decisions.changes import bump_stage, settle_job
from kernel.decisions.context import Env
from kernel.decisions.lifecycle import StageState, complete_stage, park_if_waiting, replace_stage
from kernel.effects import ConsumeSignal, Decision, InsertSignal, StoreEffect
from kernel.errors import (
    InvalidInputError,
    InvalidStateError,
    KernelError,
    RunNotFoundError,
    WorkflowNotFoundError,
    named_version,
)
from kernel.events import StageSignalled, StageSuspended
from kernel.outcomes import AwaitSignal, Completed, Failed
from kernel.records import Job, Json, SignalRecord, WorkflowRun, WorkflowStage
from kernel.status import JobStatus, Status
from kernel.workflows import Workflow

SIGNAL_TIMEOUT = "SIGNAL_TIMEOUT"


@frozen
class Signalling:
    """A run as ``run.signal`` reads it: the run (locked), its stages and jobs, the
    stored outputs of its current group, and its workflow."""

    run: WorkflowRun | None
    stages: list[WorkflowStage]
    jobs: list[Job]
    group_outputs: dict[str, Json]
    workflow: Workflow[Any, Any] | None


def waiting_for(record: WorkflowStage) -> str | None:
    """The signal a SUSPENDED signal stage waits for (``None`` for any other stage)."""
    state = record.suspended_state
    if record.status != Status.SUSPENDED or not isinstance(state, dict):
        return None
    signal = state.get("signal")
    return signal if isinstance(signal, str) else None


def timed_out(record: WorkflowStage, signal: str) -> Failed:
    """The failure of a signal stage whose wait ran out (not retried)."""
    until = record.max_wait_until.isoformat() if record.max_wait_until else "its timeout"
    return Failed(
        f"{SIGNAL_TIMEOUT}: stage {record.stage_id!r} waited for signal {signal!r} "
        f"until {until} and none came",
        retryable=False,
    )


def _consume(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    signal: SignalRecord,
    state: StageState,
    env: Env,
) -> list[StoreEffect]:
    """``stage:signalled``, then complete the stage with the payload (and transition
    the run when its group is done)."""
    event = StageSignalled(
        workflow_run_id=run.id, timestamp=env.now, stage_id=record.stage_id, signal=signal.name
    )
    return [
        env.record(event),
        *complete_stage(run, record, job, Completed(signal.payload, {}), state, env),
    ]


def start_waiting(
    run: WorkflowRun,
    record: WorkflowStage,
    job: Job | None,
    outcome: AwaitSignal,
    state: StageState,
    env: Env,
) -> tuple[JobExecuteResult, list[StoreEffect]]:
    """A signal stage's finish: take the oldest buffered signal of its name, or wait
    as SUSPENDED until one is sent or its timeout passes (then ``stage.pollSuspended``
    fails it)."""
    kept = next((s for s in state.signals if s.name == outcome.signal and s.is_buffered), None)
    if kept is not None:
        taken = SignalRecord(
            id=kept.id,
            workflow_run_id=kept.workflow_run_id,
            name=kept.name,
            payload=kept.payload,
            created_at=kept.created_at,
            consumed_at=env.now,
            stage_id=record.stage_id,
        )
        effects: list[StoreEffect] = [ConsumeSignal(taken)]
        effects += _consume(run, record, job, taken, state, env)
        return JobExecuteResult(outcome="completed", output=taken.payload), effects
    timeout_at: datetime | None = env.now + outcome.timeout if outcome.timeout else None
    parked, update = bump_stage(
        record,
        status=Status.SUSPENDED,
        suspended_state={"signal": outcome.signal, "waiting_since": env.now.isoformat()},
        next_poll_at=timeout_at,
        poll_interval=None,
        max_wait_until=timeout_at,
    )
    effects = [
        update,
        *settle_job(
            job,
            JobStatus.SUSPENDED,
            worker_id=None,
            locked_at=None,
            available_at=timeout_at or env.now,
        ),
        env.record(
            StageSuspended(
                workflow_run_id=run.id,
                timestamp=env.now,
                stage_id=record.stage_id,
                stage_name=record.stage_name,
                next_poll_at=timeout_at,
                signal=outcome.signal,
            )
        ),
    ]
    effects += park_if_waiting(run, replace_stage(state.stages, parked), env)
    return JobExecuteResult(outcome="suspended", next_poll_at=timeout_at), effects


def decide(
    cmd: RunSignal, state: Signalling, env: Env
) -> Result[Decision[RunSignalResult], KernelError]:
    """Deliver the signal to the stage waiting for it, or keep it for one that will;
    refuse, writing nothing, a signal no stage of the run's workflow waits for or a
    payload that does not fit."""
    run, workflow = state.run, state.workflow
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if run.is_terminal:
        return Failure(
            InvalidStateError(
                f"workflow run {run.id!r} is {run.status.value}: it takes no more signals"
            )
        )
    if workflow is None:
        return Failure(WorkflowNotFoundError(run.workflow_id, named_version(run.workflow_version)))
    listeners = workflow.signal_stages(cmd.signal)
    if not listeners:
        known = ", ".join(repr(name) for name in workflow.signals) or "none"
        return Failure(
            InvalidInputError(
                [
                    f"signal: no stage of workflow {workflow.id!r} waits for signal "
                    f"{cmd.signal!r} (its signals: {known})"
                ]
            )
        )
    match structure(cmd.payload, listeners[0].output_type, "payload"):
        case Failure(problems):
            return Failure(InvalidInputError(problems))
        case Success(typed):
            payload = to_json(typed)
    ids = {stage.id for stage in listeners}
    waiting = [s for s in state.stages if s.stage_id in ids and waiting_for(s) == cmd.signal]
    if not waiting:
        kept = SignalRecord(
            id=env.new_id(),
            workflow_run_id=run.id,
            name=cmd.signal,
            payload=payload,
            created_at=env.now,
        )
        result = RunSignalResult(delivered=False, buffered=True)
        return Success(Decision(result, (InsertSignal(kept),)))
    record = min(waiting, key=lambda s: s.stage_number)
    if record.max_wait_until is not None and env.now >= record.max_wait_until:
        return Failure(
            InvalidStateError(
                f"stage {record.stage_id!r} of run {run.id!r} stopped waiting for signal "
                f"{cmd.signal!r} at {record.max_wait_until.isoformat()} ({SIGNAL_TIMEOUT})"
            )
        )
    job = next(
        (j for j in reversed(state.jobs) if j.stage_id == record.stage_id and j.is_open), None
    )
    delivered = SignalRecord(
        id=env.new_id(),
        workflow_run_id=run.id,
        name=cmd.signal,
        payload=payload,
        created_at=env.now,
        consumed_at=env.now,
        stage_id=record.stage_id,
    )
    stage_state = StageState(run, state.stages, job, state.group_outputs, workflow)
    effects = [InsertSignal(delivered), *_consume(run, record, job, delivered, stage_state, env)]
    return Success(Decision(RunSignalResult(delivered=True, buffered=False), tuple(effects)))
