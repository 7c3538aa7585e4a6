"""Rules that moved out of the shell into pure decisions, checked without a store:
idempotency keys, lease release, leasing a named job, starting a leased job,
reaping, outbox flushing, the status tables' guard, and the command table."""

from __future__ import annotations

import typing
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve
from returns.result import Failure, Success

import kernel.commands
from kernel import (
    IdempotencyConflictError,
    IdempotencyInProgressError,
    InvalidInputError,
    InvalidStateError,
    JobExecute,
    JobStatus,
    LeaseReapStale,
    Status,
    WorkflowNotFoundError,
)
from kernel.commands import Command, JobLease, LeaseRelease
from kernel.decisions import idempotency, lease_reap_stale, lease_release, outbox_flush
from kernel.decisions.changes import bump_run, bump_stage
from kernel.decisions.context import IDEMPOTENCY_TIMEOUT, Env
from kernel.decisions.idempotency import Proceed, Replay
from kernel.decisions.job_execute import start
from kernel.decisions.job_execute.start import StartState
from kernel.decisions.lease_reap_stale import Stale
from kernel.decisions.lease_release import Held
from kernel.effects import (
    AppendOutbox,
    CompleteIdempotency,
    Decision,
    Deliver,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateStage,
)
from kernel.records import IdempotencyRecord, Job, OutboxEvent
from kernel.shell.steps import Entry
from kernel.shell.table import TABLE
from tests.harness import T0, env, make_job, make_run, make_stage
from tests.workflows import Batch, Calls, batch, linear, pipeline

LINEAR = linear(Calls())
BATCHY = pipeline("batchy", batch(Calls(), Batch()))


def decision(result: Any) -> Decision[Any]:
    assert isinstance(result, Success), result
    value: Decision[Any] = result.unwrap()
    return value


def of_type(effects: Any, kind: type[Any]) -> list[Any]:
    return [effect for effect in effects if isinstance(effect, kind)]


def counting_env() -> tuple[Env, list[str]]:
    """An environment that records every id it hands out."""
    drawn: list[str] = []

    def new_id() -> str:
        drawn.append(f"id-{len(drawn) + 1}")
        return drawn[-1]

    return Env(T0, new_id, "cause"), drawn


# -- idempotency keys -----------------------------------------------------------------

CLAIMED_AT = T0 + timedelta(hours=3)


def key_row(
    fingerprint: str = "fp-1",
    state: Any = "IN_PROGRESS",
    created_at: Any = CLAIMED_AT,
    result: Any = None,
) -> IdempotencyRecord:
    return IdempotencyRecord(
        key="key-1",
        command_type="run.create",
        state=state,
        fingerprint=fingerprint,
        result=result,
        created_at=created_at,
    )


CLAIM = key_row()


def test_a_new_key_proceeds_without_effects() -> None:
    """SPEC §6.3: with no row, the store inserted the claim: this caller holds the key."""
    made = decision(idempotency.decide_claim(CLAIM, None, IDEMPOTENCY_TIMEOUT))

    assert (made.result, made.effects) == (Proceed(), ())


def test_a_completed_key_with_the_same_payload_replays_its_result() -> None:
    """SPEC §6.3: the same command again returns the cached result and changes nothing."""
    done = key_row(state="COMPLETED", created_at=T0, result={"workflow_run_id": "run-1"})

    made = decision(idempotency.decide_claim(CLAIM, done, IDEMPOTENCY_TIMEOUT))

    assert (made.result, made.effects) == (Replay({"workflow_run_id": "run-1"}), ())


@pytest.mark.parametrize("state", ["COMPLETED", "IN_PROGRESS"])
@pytest.mark.parametrize("age", [timedelta(minutes=1), timedelta(hours=2)])
def test_a_key_used_with_another_payload_is_a_conflict(state: str, age: timedelta) -> None:
    """SPEC §6.3: a different fingerprint conflicts, whatever the row's state or age."""
    other = key_row(fingerprint="fp-2", state=state, created_at=CLAIMED_AT - age)

    result = idempotency.decide_claim(CLAIM, other, IDEMPOTENCY_TIMEOUT)

    assert result == Failure(IdempotencyConflictError("key-1", "run.create"))


def test_a_key_still_in_progress_is_refused() -> None:
    """SPEC §6.3: a key held by a command younger than the timeout is not shared."""
    held = key_row(created_at=CLAIMED_AT - IDEMPOTENCY_TIMEOUT + timedelta(seconds=1))

    result = idempotency.decide_claim(CLAIM, held, IDEMPOTENCY_TIMEOUT)

    assert result == Failure(IdempotencyInProgressError("key-1", "run.create"))


def test_a_key_in_progress_past_the_timeout_is_taken_over() -> None:
    """SPEC §6.3: its holder died mid-command; the same payload takes the key over,
    rewriting the row as this caller's claim."""
    abandoned = key_row(created_at=CLAIMED_AT - IDEMPOTENCY_TIMEOUT - timedelta(seconds=1))

    made = decision(idempotency.decide_claim(CLAIM, abandoned, IDEMPOTENCY_TIMEOUT))

    assert (made.result, made.effects) == (Proceed(), (CompleteIdempotency(CLAIM),))


def test_completing_a_key_stores_the_result_as_completed() -> None:
    """SPEC §6.3: the command's last transaction marks the key COMPLETED with its result."""
    [effect] = idempotency.complete(CLAIM, {"workflow_run_id": "run-1"})

    assert effect == CompleteIdempotency(
        evolve(CLAIM, state="COMPLETED", result={"workflow_run_id": "run-1"})
    )


# -- lease.release --------------------------------------------------------------------


def test_release_requeues_only_the_jobs_the_worker_holds() -> None:
    """SPEC §10.1: the worker's leased job goes back to the queue at once with its
    attempt given back; its RUNNING stage is PENDING again, one version on. Another
    worker's job and jobs no longer leased are left alone."""
    mine = make_job("first", status=JobStatus.LEASED, worker_id="w", attempt=2, locked_at=T0)
    theirs = make_job("first", run_id="run-2", status=JobStatus.LEASED, worker_id="other")
    queued = make_job("second", worker_id="w")
    done = make_job("third", status=JobStatus.COMPLETED, worker_id="w")
    stages = {
        "run-1": [
            make_stage("first", status=Status.RUNNING, attempt=2, version=3),
            make_stage("second", number=2, status=Status.PENDING),
        ],
        "run-2": [make_stage("first", run_id="run-2", status=Status.RUNNING)],
    }
    now = T0 + timedelta(minutes=5)

    made = decision(
        lease_release.decide(
            LeaseRelease(job_ids=[mine.id, theirs.id, queued.id, done.id], worker_id="w"),
            Held([mine, theirs, queued, done], stages),
            env(now),
        )
    )

    assert made.result.released == 1
    [job] = [effect.job for effect in of_type(made.effects, UpdateJob)]
    assert job == evolve(
        mine, status=JobStatus.QUEUED, worker_id=None, locked_at=None, available_at=now, attempt=1
    )
    [update] = of_type(made.effects, UpdateStage)
    assert (update.stage.id, update.stage.status) == ("run-1/first", Status.PENDING)
    assert (update.expected_version, update.stage.version) == (3, 4)
    assert len(made.effects) == 2


def test_release_of_a_job_leased_but_never_started_keeps_its_attempt() -> None:
    """A job leased by ``job.lease`` whose stage never started began no attempt, so
    releasing it gives none back (as the reaper does, SPEC §10.1)."""
    leased = make_job("first", status=JobStatus.LEASED, worker_id="w", attempt=1, locked_at=T0)
    stages = {"run-1": [make_stage("first", status=Status.PENDING)]}

    made = decision(
        lease_release.decide(
            LeaseRelease(job_ids=[leased.id], worker_id="w"), Held([leased], stages), env(T0)
        )
    )

    assert made.result.released == 1
    [job] = [effect.job for effect in of_type(made.effects, UpdateJob)]
    assert (job.status, job.attempt, job.worker_id) == (JobStatus.QUEUED, 1, None)
    assert of_type(made.effects, UpdateStage) == []


def test_release_of_jobs_the_worker_does_not_hold_decides_nothing() -> None:
    """SPEC §10.1: a worker cannot give back what another worker holds."""
    theirs = make_job("first", status=JobStatus.LEASED, worker_id="other")

    made = decision(
        lease_release.decide(
            LeaseRelease(job_ids=[theirs.id], worker_id="w"),
            Held([theirs], {"run-1": [make_stage("first", status=Status.RUNNING)]}),
            env(),
        )
    )

    assert (made.result.released, made.effects) == (0, ())


# -- job.lease ------------------------------------------------------------------------


def lease(job: Job | None, run_id: str = "run-1", stage_id: str = "first") -> Decision[Any]:
    cmd = JobLease(
        job_id="job-run-1-first", worker_id="w", workflow_run_id=run_id, stage_id=stage_id
    )
    return decision(start.lease_named(cmd, job, env()))


def test_lease_named_leases_a_queued_job_of_the_named_run_and_stage() -> None:
    """The job is LEASED to the worker from the decision's time."""
    made = lease(make_job("first"))

    leased = evolve(make_job("first"), status=JobStatus.LEASED, worker_id="w", locked_at=T0)
    assert (made.result.job, made.result.reason) == (leased, None)
    assert made.effects == (UpdateJob(leased),)


@pytest.mark.parametrize(
    ("job", "run_id", "stage_id", "reason"),
    [
        pytest.param(None, "run-1", "first", "does not exist", id="missing"),
        pytest.param(
            make_job("first"),
            "run-2",
            "first",
            "belongs to run 'run-1', stage 'first', not to run 'run-2', stage 'first'",
            id="other run",
        ),
        pytest.param(
            make_job("first"),
            "run-1",
            "second",
            "belongs to run 'run-1', stage 'first', not to run 'run-1', stage 'second'",
            id="other stage",
        ),
        pytest.param(
            make_job("first", status=JobStatus.LEASED, worker_id="other"),
            "run-1",
            "first",
            "is leased by worker 'other'",
            id="leased by another worker",
        ),
        pytest.param(
            make_job("first", status=JobStatus.COMPLETED),
            "run-1",
            "first",
            "is COMPLETED",
            id="not queued",
        ),
    ],
)
def test_lease_named_refuses_with_a_reason_naming_the_job(
    job: Job | None, run_id: str, stage_id: str, reason: str
) -> None:
    """Nothing is leased and nothing written; the reason names the job and what is wrong."""
    made = lease(job, run_id, stage_id)

    assert (made.result.job, made.effects) == (None, ())
    assert made.result.reason == f"job 'job-run-1-first' {reason}"


# -- starting a leased job ------------------------------------------------------------

UNKNOWN = "WORKFLOW_NOT_FOUND: workflow 'linear' is not registered"


def test_a_leased_job_of_an_unknown_workflow_fails_with_its_run() -> None:
    """SPEC §5.6: a job nobody can start must not spin in the queue: it fails for
    good, and so does its live run (``workflow:failed``)."""
    job = make_job("first", status=JobStatus.LEASED, worker_id="w")
    record = make_stage("first", status=Status.PENDING)

    made = decision(start.start_leased(job, StartState(make_run(), record, job, None, {}), env()))

    assert made.result.execute is None
    assert (made.result.skipped.outcome, made.result.skipped.error) == ("failed", UNKNOWN)
    [failed_job] = [effect.job for effect in of_type(made.effects, UpdateJob)]
    assert (failed_job.status, failed_job.last_error) == (JobStatus.FAILED, UNKNOWN)
    [failed_run] = [effect.run for effect in of_type(made.effects, UpdateRun)]
    assert (failed_run.status, failed_run.error) == (Status.FAILED, UNKNOWN)
    [event] = [effect.event for effect in of_type(made.effects, AppendOutbox)]
    assert (event.type, event.error) == ("workflow:failed", UNKNOWN)


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.CANCELLED])
def test_a_leased_job_of_an_unknown_workflow_does_not_fail_a_finished_run_again(
    status: Status,
) -> None:
    """SPEC §5.6: the job fails; the run, already terminal, is left as it is."""
    job = make_job("first", status=JobStatus.LEASED, worker_id="w")
    state = StartState(make_run(status=status), None, job, None, {})

    made = decision(start.start_leased(job, state, env()))

    assert made.effects == (UpdateJob(evolve(job, status=JobStatus.FAILED, last_error=UNKNOWN)),)


def test_reject_without_a_run_fails_only_the_job() -> None:
    """SPEC §5.6: a job whose run is gone is failed; there is no run to fail."""
    job = make_job("first", status=JobStatus.LEASED, worker_id="w")

    made = start.reject(job, None, WorkflowNotFoundError("linear"), env())

    assert made.effects == (UpdateJob(evolve(job, status=JobStatus.FAILED, last_error=UNKNOWN)),)
    assert made.result.skipped is not None and made.result.skipped.outcome == "failed"


def test_start_refuses_a_registered_workflow_that_is_not_the_runs() -> None:
    """SPEC §5.6: one workflow's code never runs on another's run; the refusal names
    both workflows, and nothing is written and no id drawn."""
    cmd = JobExecute(workflow_run_id="run-1", workflow_id="batchy", stage_id="batch")
    state = StartState(make_run(), None, make_job("batch"), BATCHY, {})
    counted, drawn = counting_env()

    result = start.decide(cmd, state, counted)

    assert isinstance(result, Failure)
    error = result.failure()
    assert type(error) is InvalidInputError
    assert str(error) == (
        "invalid input: workflow_id: run 'run-1' belongs to workflow 'linear', not 'batchy'"
    )
    assert drawn == []


# -- lease.reapStale --------------------------------------------------------------------


def test_reap_ignores_candidates_no_longer_leased() -> None:
    """SPEC §5.8: a job settled or re-queued since the stale read is left alone."""
    leased = make_job("first", status=JobStatus.LEASED, worker_id="w", attempt=1)
    others = [
        make_job("first", run_id=f"run-{status}", status=status, worker_id="w")
        for status in JobStatus
        if status != JobStatus.LEASED
    ]
    runs = {job.workflow_run_id: make_run(id=job.workflow_run_id) for job in [leased, *others]}
    stages = {
        run_id: [make_stage("first", run_id=run_id, status=Status.RUNNING)] for run_id in runs
    }

    made = decision(
        lease_reap_stale.decide(
            LeaseReapStale(stale_threshold_ms=0),
            Stale([*others, leased], runs, stages, dict.fromkeys(runs, LINEAR)),
            env(),
        )
    )

    assert made.result.released == 1
    touched = {effect.job.workflow_run_id for effect in of_type(made.effects, UpdateJob)}
    touched |= {effect.stage.workflow_run_id for effect in of_type(made.effects, UpdateStage)}
    assert touched == {"run-1"}


# -- outbox.flush ---------------------------------------------------------------------


def outbox_event(run_id: str, sequence: int) -> OutboxEvent:
    return OutboxEvent(
        id=f"{run_id}-{sequence}",
        workflow_run_id=run_id,
        sequence=sequence,
        event_type="workflow:created",
        payload={},
        causation_id="cause",
        occurred_at=T0,
    )


def test_a_flush_with_nothing_claimed_delivers_nothing() -> None:
    """SPEC §5.9: no events, no work and no effects."""
    made = decision(outbox_flush.plan([]))

    assert (made.result, made.effects) == (None, ())


def test_a_flush_delivers_the_claimed_events_in_claim_order() -> None:
    """SPEC §5.9: events go out in the order claimed (per run: sequence order)."""
    claimed = [outbox_event("b", 1), outbox_event("a", 1), outbox_event("b", 2)]

    made = decision(outbox_flush.plan(claimed))

    assert (made.result, made.effects) == (Deliver(events=tuple(claimed)), ())


def test_settle_releases_an_event_that_was_not_attempted() -> None:
    """SPEC §5.9: an event held back behind a failure of its run has its claim
    released with the event unchanged, counted neither published nor failed."""
    held = outbox_event("a", 2)

    made = decision(outbox_flush.settle([held], {}, 3, env()))

    assert made.effects == (UpdateOutbox(held),)
    assert (made.result.published, made.result.failed) == (0, 0)


# -- the status tables guard every change ----------------------------------------------


def test_an_illegal_stage_move_raises_naming_the_stage_and_both_statuses() -> None:
    """SPEC §3.1: a completed stage never runs again."""
    with pytest.raises(InvalidStateError) as raised:
        bump_stage(make_stage("first", status=Status.COMPLETED), status=Status.RUNNING)

    assert str(raised.value) == "stage 'run-1/first' cannot move from COMPLETED to RUNNING"


def test_an_illegal_run_move_raises_naming_the_run_and_both_statuses() -> None:
    """SPEC §3.1: a cancelled run stays cancelled (it cannot even be rerun)."""
    with pytest.raises(InvalidStateError) as raised:
        bump_run(make_run(status=Status.CANCELLED), status=Status.RUNNING)

    assert str(raised.value) == "run 'run-1' cannot move from CANCELLED to RUNNING"


def test_a_legal_move_bumps_the_version_it_read() -> None:
    """SPEC §6.4: the new record is one version on; the write expects the one read."""
    stage, stage_update = bump_stage(
        make_stage("first", status=Status.RUNNING, version=4), status=Status.COMPLETED
    )
    run, run_update = bump_run(make_run(status=Status.FAILED, version=7), status=Status.RUNNING)

    assert (stage.status, stage.version, stage_update.expected_version) == (
        Status.COMPLETED,
        5,
        4,
    )
    assert (run.status, run.version, run_update.expected_version) == (Status.RUNNING, 8, 7)
    assert (stage_update.stage, run_update.run) == (stage, run)


# -- the command table ----------------------------------------------------------------


def entries() -> list[Entry[Any, Any]]:
    found: list[Entry[Any, Any]] = []
    for item in TABLE:
        assert isinstance(item, Entry), item
        found.append(item)
    return found


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.command.type)
def test_each_handler_takes_its_own_command_class(entry: Entry[Any, Any]) -> None:
    """A table entry's ``begin`` is typed with the command class it is filed under."""
    hints = typing.get_type_hints(entry.begin)
    parameters = [hint for name, hint in hints.items() if name != "return"]

    assert parameters == [entry.command]


def test_every_command_class_has_a_handler() -> None:
    """Each ``Command`` subclass in :mod:`kernel.commands` can be dispatched."""
    commands = {
        value
        for value in vars(kernel.commands).values()
        if isinstance(value, type) and issubclass(value, Command) and value is not Command
    }
    handled = {entry.command for entry in entries()}

    assert commands
    assert sorted(c.__name__ for c in commands - handled) == []
    assert handled <= commands
