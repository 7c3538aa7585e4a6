"""Schedules (SPEC §14, §16.1): ``schedule.upsert``, ``schedule.delete`` and
``schedule.tick``.

A tick creates the run of each due fire time, with its idempotency key
``schedule:<id>:<fire time>``, in the transaction that moves the schedule's
``next_fire_at``; stores hand a due schedule to one ticking transaction at a
time, so two hosts ticking together never start a fire twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from attrs import frozen
from returns.result import Failure, Result, Success

from kernel.commands import (
    RunCreate,
    ScheduleDelete,
    ScheduleDeleteResult,
    ScheduleTick,
    ScheduleTickResult,
    ScheduleUpsert,
    ScheduleUpsertResult,
)
from kernel.convert import command_fingerprint, structure, to_json
from kernel.copying import evolve
from kernel.decisions import run_create
from kernel.decisions.context import Env
from kernel.effects import (
    CompleteIdempotency,
    Decision,
    DeleteSchedule,
    InsertSchedule,
    StoreEffect,
    UpdateSchedule,
)
from kernel.errors import InvalidInputError, KernelError
from kernel.records import IdempotencyRecord, WorkflowRun
from kernel.schedules import ScheduleRecord, due_fires, next_fire, schedule_problems
from kernel.workflows import Workflow


def fire_key(schedule_id: str, fire_time: datetime) -> str:
    """The idempotency key of the run of one fire time.

    >>> fire_key("nightly", datetime(2026, 3, 8, 8, 0, tzinfo=UTC))
    'schedule:nightly:2026-03-08T08:00:00+00:00'
    """
    return f"schedule:{schedule_id}:{fire_time.astimezone(UTC).isoformat()}"


# -- upsert and delete -------------------------------------------------------------


@frozen
class Upserting:
    """What ``schedule.upsert`` reads: the stored schedule (if any) and the workflow."""

    existing: ScheduleRecord | None
    workflow: Workflow[Any, Any] | None


def _workflow_problems(cmd: ScheduleUpsert, workflow: Workflow[Any, Any] | None) -> list[str]:
    schedule = cmd.schedule
    if workflow is None:
        return [f"workflow_id: workflow {schedule.workflow_id!r} is not registered"]
    problems: list[str] = []
    match structure(schedule.input, workflow.input_type, "input"):
        case Failure(found):
            problems += found
    match workflow.validate_config(schedule.config):
        case Failure(found):
            problems += found
    return problems


def upsert(
    cmd: ScheduleUpsert, state: Upserting, env: Env
) -> Result[Decision[ScheduleUpsertResult], KernelError]:
    """Store the schedule, or refuse it naming each bad field (nothing written).

    A new or re-timed schedule fires next strictly after now; re-upserting one
    whose timing (``cron``/``every``/``timezone``) is unchanged and which stays
    enabled keeps its next fire time, so hosts may upsert their schedules at
    every start. A paused schedule has no next fire time; resuming starts
    from the first fire time after the resume.
    """
    schedule = cmd.schedule
    problems = schedule_problems(schedule, env.settings.zone_of)
    if not problems:
        problems = _workflow_problems(cmd, state.workflow)
    if problems:
        return Failure(InvalidInputError(problems))
    zone = env.settings.zone_of(schedule.timezone)
    assert zone is not None  # schedule_problems checked it
    existing = state.existing
    timing = (schedule.cron, schedule.every, schedule.timezone)
    keeps = (
        existing is not None
        and existing.enabled
        and schedule.enabled
        and existing.next_fire_at is not None
        and (existing.cron, existing.every, existing.timezone) == timing
    )
    if keeps:
        assert existing is not None
        next_fire_at = existing.next_fire_at
    else:
        next_fire_at = next_fire(schedule, zone, env.now) if schedule.enabled else None
    fields = {
        "workflow_id": schedule.workflow_id,
        "cron": schedule.cron,
        "every": schedule.every,
        "input": to_json(schedule.input),
        "config": to_json(schedule.config),
        "timezone": schedule.timezone,
        "overlap": schedule.overlap,
        "catchup": schedule.catchup,
        "enabled": schedule.enabled,
        "next_fire_at": next_fire_at,
        "updated_at": env.now,
    }
    effect: StoreEffect
    if existing is None:
        effect = InsertSchedule(ScheduleRecord(id=schedule.id, created_at=env.now, **fields))
    else:
        changed = evolve(existing, version=existing.version + 1, **fields)
        effect = UpdateSchedule(changed, existing.version)
    result = ScheduleUpsertResult(created=existing is None, next_fire_at=next_fire_at)
    return Success(Decision(result, (effect,)))


def delete(
    cmd: ScheduleDelete, existing: ScheduleRecord | None
) -> Result[Decision[ScheduleDeleteResult], KernelError]:
    """Remove the schedule; the runs it created stay."""
    if existing is None:
        return Success(Decision(ScheduleDeleteResult(deleted=False)))
    effects = (DeleteSchedule(cmd.schedule_id),)
    return Success(Decision(ScheduleDeleteResult(deleted=True), effects))


# -- tick -------------------------------------------------------------------------


@frozen
class DueSchedule:
    """A due schedule (locked for this tick), its workflow, and its previous run
    when its overlap policy needs to know whether that run is still going."""

    record: ScheduleRecord
    workflow: Workflow[Any, Any] | None
    last_run: WorkflowRun | None


def _create_for(
    record: ScheduleRecord, workflow: Workflow[Any, Any] | None, fire: datetime, env: Env
) -> Result[Decision[Any], KernelError]:
    """``run.create`` for one fire time, with the idempotency record a caller
    dispatching the same command with the fire's key would have left."""
    fire_time = fire.astimezone(UTC).isoformat()
    cmd = RunCreate(
        workflow_id=record.workflow_id,
        input=record.input,
        config=record.config,
        metadata={"schedule_id": record.id, "fire_time": fire_time},
        idempotency_key=fire_key(record.id, fire),
    )

    def remember(decision: Decision[Any]) -> Decision[Any]:
        key = IdempotencyRecord(
            key=fire_key(record.id, fire),
            command_type=RunCreate.type,
            state="COMPLETED",
            fingerprint=command_fingerprint(cmd),
            result=to_json(decision.result),
            created_at=env.now,
        )
        return Decision(decision.result, (*decision.effects, CompleteIdempotency(key)))

    return run_create.decide(cmd, workflow, env).map(remember)


def tick(
    cmd: ScheduleTick, due: list[DueSchedule], env: Env
) -> Result[Decision[ScheduleTickResult], KernelError]:
    """Fire every due schedule under its catch-up and overlap policies and move its
    next fire time, at most ``cmd.max_fires`` fire times in all (the rest stay due).

    A fire whose run cannot be created (the workflow's input type changed under
    the schedule's input, say) creates nothing; it is reported in ``problems``
    and the schedule moves on.
    """
    created: list[str] = []
    problems: list[str] = []
    skipped = 0
    budget = cmd.max_fires
    effects: list[StoreEffect] = []
    for item in due:
        record = item.record
        zone = env.settings.zone_of(record.timezone)
        if budget <= 0 or record.next_fire_at is None:
            continue
        if zone is None:
            problems.append(
                f"schedule {record.id!r}: timezone: unknown time zone {record.timezone!r}"
            )
            continue
        fires = due_fires(record.schedule, zone, record.next_fire_at, env.now, budget)
        budget -= len(fires.fire_times)
        running = item.last_run is not None and not item.last_run.is_terminal
        last_run_id = record.last_run_id
        for fire in fires.fire_times:
            if record.overlap == "skip" and running:
                skipped += 1
                continue
            match _create_for(record, item.workflow, fire, env):
                case Success(decision):
                    effects += decision.effects
                    last_run_id = decision.result.workflow_run_id
                    created.append(last_run_id)
                    running = True
                case Failure(error):
                    problems.append(f"schedule {record.id!r}: fire {fire.isoformat()}: {error}")
        moved = evolve(
            record,
            next_fire_at=fires.next_fire_at,
            last_fire_at=fires.fire_times[-1] if fires.fire_times else record.last_fire_at,
            last_run_id=last_run_id,
            updated_at=env.now,
            version=record.version + 1,
        )
        effects.append(UpdateSchedule(moved, record.version))
    result = ScheduleTickResult(created=created, skipped=skipped, problems=problems)
    return Success(Decision(result, tuple(effects)))
