"""What individual decisions decide, read straight from their effects (SPEC §5, §6.1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from returns.result import Success

from kernel import (
    JobExecute,
    JobStatus,
    LeaseReapStale,
    RunCancel,
    RunClaimPending,
    RunCreate,
    Status,
)
from kernel.decisions import (
    lease_reap_stale,
    outbox_flush,
    run_cancel,
    run_claim_pending,
    run_create,
)
from kernel.decisions.context import Env, elapsed_ms, next_attempt_at
from kernel.decisions.job_execute import finish, start
from kernel.decisions.job_execute.start import StartState
from kernel.decisions.lease_reap_stale import Stale
from kernel.decisions.lifecycle import StageState
from kernel.decisions.run_cancel import Cancellable
from kernel.decisions.run_claim_pending import Claimable
from kernel.effects import (
    AppendOutbox,
    Decision,
    EnqueueJob,
    ExecuteStage,
    InsertRun,
    InsertStage,
    UpdateJob,
    UpdateOutbox,
    UpdateRun,
    UpdateStage,
)
from kernel.events import WorkflowStarted
from kernel.outcomes import Completed, Failed, StageRun
from kernel.records import OutboxEvent
from tests.harness import T0, env, make_job, make_run, make_stage
from tests.workflows import Calls, fan_out, linear

LINEAR = linear(Calls())
FAN_OUT = fan_out(Calls())


def decision(result: Any) -> Decision[Any]:
    assert isinstance(result, Success), result
    value: Decision[Any] = result.unwrap()
    return value


def of_type(effects: Any, kind: type[Any]) -> list[Any]:
    return [effect for effect in effects if isinstance(effect, kind)]


def event_types(effects: Any) -> list[str]:
    return [effect.event.type for effect in of_type(effects, AppendOutbox)]


def test_create_decides_one_run_and_one_event() -> None:
    """SPEC §5.1: insert the run and record ``workflow:created``, nothing else."""
    made = decision(
        run_create.decide(RunCreate(workflow_id="linear", input={"value": 1}), LINEAR, env())
    )

    insert, append = made.effects
    assert isinstance(insert, InsertRun) and isinstance(append, AppendOutbox)
    assert insert.run.id == made.result.workflow_run_id
    assert (append.event.type, append.causation_id) == ("workflow:created", "cause")


def test_claim_numbers_parallel_stages_by_position() -> None:
    """SPEC §3.2: stage_number is the 1-based position, execution_group the group."""
    made = decision(
        run_claim_pending.decide(
            RunClaimPending(worker_id="w"),
            Claimable([make_run("fan-out", status=Status.PENDING)], {"run-1": FAN_OUT}),
            env(),
        )
    )

    [stage] = [effect.stage for effect in of_type(made.effects, InsertStage)]
    assert (stage.stage_id, stage.stage_number, stage.execution_group) == ("start", 1, 1)
    [job] = [effect.job for effect in of_type(made.effects, EnqueueJob)]
    assert (job.stage_id, job.status, job.available_at) == ("start", JobStatus.QUEUED, T0)


def test_claim_skips_runs_that_are_no_longer_pending() -> None:
    """SPEC §5.2: a run claimed meanwhile is not claimed twice."""
    made = decision(
        run_claim_pending.decide(
            RunClaimPending(worker_id="w"), Claimable([make_run()], {"run-1": LINEAR}), env()
        )
    )

    assert (made.result.claimed, made.effects) == ([], ())


def test_cancel_leaves_a_running_stage_and_its_lease_to_their_worker() -> None:
    """SPEC §5.4: a running stage finishes on its worker, which then discards it."""
    stages = [
        make_stage("first", status=Status.RUNNING),
        make_stage("left", number=2, status=Status.PENDING),
        make_stage("right", number=3, group=2, status=Status.SUSPENDED),
    ]
    jobs = [
        make_job("first", status=JobStatus.LEASED),
        make_job("left"),
        make_job("right", status=JobStatus.SUSPENDED),
    ]

    made = decision(
        run_cancel.decide(
            RunCancel(workflow_run_id="run-1"), Cancellable(make_run(), stages, jobs), env()
        )
    )

    cancelled = {effect.stage.stage_id for effect in of_type(made.effects, UpdateStage)}
    dropped = {effect.job.stage_id for effect in of_type(made.effects, UpdateJob)}
    assert cancelled == dropped == {"left", "right"}


def test_cancel_of_a_finished_run_decides_nothing() -> None:
    """SPEC §5.4: ``cancelled`` is false and there are no effects."""
    made = decision(
        run_cancel.decide(
            RunCancel(workflow_run_id="run-1"),
            Cancellable(make_run(status=Status.FAILED), [], []),
            env(),
        )
    )

    assert (made.result.cancelled, made.effects) == (False, ())


def test_updates_state_the_version_they_read() -> None:
    """SPEC §6.4: each update carries the version it read; the new record is one more."""
    stages = [make_stage("first", status=Status.PENDING, version=4)]
    made = decision(
        run_cancel.decide(
            RunCancel(workflow_run_id="run-1"), Cancellable(make_run(version=7), stages, []), env()
        )
    )

    [run_update] = of_type(made.effects, UpdateRun)
    [stage_update] = of_type(made.effects, UpdateStage)
    assert (run_update.expected_version, run_update.run.version) == (7, 8)
    assert (stage_update.expected_version, stage_update.stage.version) == (4, 5)


def test_start_takes_the_next_attempt_and_the_previous_output() -> None:
    """SPEC §5.6: attempt is the job's attempt plus one; input is the previous output."""
    made = decision(
        start.decide(
            JobExecute(workflow_run_id="run-1", workflow_id="linear", stage_id="second"),
            StartState(
                make_run(),
                make_stage("second", number=2, status=Status.PENDING),
                make_job("second", attempt=1),
                LINEAR,
                {"first": {"value": 5}},
            ),
            env(),
        )
    )

    plan = made.result.execute
    assert isinstance(plan, ExecuteStage)
    assert (plan.stage.attempt, plan.job and plan.job.attempt, plan.input) == (
        2,
        2,
        {"value": 5},
    )
    assert event_types(made.effects) == ["stage:started"]


def test_start_of_an_unclaimed_run_starts_the_run_too() -> None:
    """SPEC §5.6: executing a stage of a PENDING run makes it RUNNING (``workflow:started``)."""
    made = decision(
        start.decide(
            JobExecute(workflow_run_id="run-1", workflow_id="linear", stage_id="first"),
            StartState(make_run(status=Status.PENDING), None, None, LINEAR, {}),
            env(),
        )
    )

    [update] = of_type(made.effects, UpdateRun)
    assert (update.run.status, update.run.started_at) == (Status.RUNNING, T0)
    assert event_types(made.effects) == ["workflow:started", "stage:started"]
    assert len(of_type(made.effects, InsertStage)) == 1


def test_start_for_a_terminal_run_settles_the_job_and_skips() -> None:
    """SPEC §5.6: no user code for a finished run; its open job is cancelled."""
    made = decision(
        start.decide(
            JobExecute(workflow_run_id="run-1", workflow_id="linear", stage_id="first"),
            StartState(
                make_run(status=Status.CANCELLED),
                make_stage("first", status=Status.CANCELLED),
                make_job("first"),
                LINEAR,
                {},
            ),
            env(),
        )
    )

    assert made.result.execute is None
    assert made.result.skipped.outcome == "skipped"
    [settle] = of_type(made.effects, UpdateJob)
    assert settle.job.status == JobStatus.CANCELLED


def finished(
    outcome: Any, *, stage_version: int = 2, run: Any = None, job_attempt: int = 1
) -> Decision[Any]:
    record = make_stage("first", status=Status.RUNNING, version=2)
    job = make_job("first", status=JobStatus.LEASED, attempt=job_attempt)
    started = ExecuteStage(
        run=make_run(), stage=record, job=job, input={"value": 1}, config={"amount": 1}
    )
    now = make_stage("first", status=Status.RUNNING, version=stage_version)
    return decision(
        finish.decide(
            started,
            StageRun(outcome, ()),
            StageState(run or make_run(), [now], job, {}, LINEAR),
            env(),
        )
    )


def test_finish_discards_an_attempt_whose_stage_moved_on() -> None:
    """SPEC §5.6: a reaped and restarted stage is not overwritten by the lost worker."""
    made = finished(Completed({"value": 2}, {}), stage_version=3)

    assert (made.result.outcome, made.effects) == ("skipped", ())


def test_finish_after_a_cancel_cancels_the_stage() -> None:
    """SPEC §5.4: the result of a stage that ran into a cancel is discarded."""
    made = finished(Completed({"value": 2}, {}), run=make_run(status=Status.CANCELLED))

    [update] = of_type(made.effects, UpdateStage)
    assert update.stage.status == Status.CANCELLED
    assert event_types(made.effects) == []


def test_finish_retries_while_attempts_remain() -> None:
    """SPEC §5.6: attempt 1 of 3 fails: back to PENDING, job re-queued after 1 s."""
    made = finished(Failed("RuntimeError: boom"))

    [job] = [effect.job for effect in of_type(made.effects, UpdateJob)]
    assert (job.status, job.available_at, job.worker_id) == (
        JobStatus.QUEUED,
        T0 + timedelta(seconds=1),
        None,
    )
    [stage] = [effect.stage for effect in of_type(made.effects, UpdateStage)]
    assert stage.status == Status.PENDING
    assert event_types(made.effects) == ["stage:failed"]


def test_finish_of_the_last_attempt_fails_stage_and_run() -> None:
    """SPEC §5.6: attempt 3 of 3 fails: stage, job and run FAILED."""
    made = finished(Failed("RuntimeError: boom"), job_attempt=3)

    assert [effect.job.status for effect in of_type(made.effects, UpdateJob)] == [JobStatus.FAILED]
    assert [effect.run.status for effect in of_type(made.effects, UpdateRun)] == [Status.FAILED]
    assert event_types(made.effects) == ["stage:failed", "workflow:failed"]


def test_reap_gives_the_attempt_back() -> None:
    """SPEC §10.1: a reaped job's attempt is not used up."""
    made = decision(
        lease_reap_stale.decide(
            LeaseReapStale(stale_threshold_ms=0),
            Stale(
                [make_job("first", status=JobStatus.LEASED, attempt=2, worker_id="w")],
                {"run-1": make_run()},
                {"run-1": [make_stage("first", status=Status.RUNNING, attempt=2)]},
                {"run-1": LINEAR},
            ),
            env(),
        )
    )

    [job] = [effect.job for effect in of_type(made.effects, UpdateJob)]
    assert (job.status, job.attempt, job.reap_count, job.available_at) == (
        JobStatus.QUEUED,
        1,
        1,
        T0,
    )


def event(run_id: str, sequence: int, retry_count: int = 0) -> OutboxEvent:
    return OutboxEvent(
        id=f"{run_id}-{sequence}",
        workflow_run_id=run_id,
        sequence=sequence,
        event_type="workflow:created",
        payload={},
        causation_id="cause",
        occurred_at=T0,
        retry_count=retry_count,
    )


def test_settle_records_each_delivery_outcome() -> None:
    """SPEC §5.9: published, failed (counted), dead-lettered at the limit, or held back."""
    events = [event("a", 1), event("a", 2), event("b", 1, retry_count=2), event("c", 1)]
    outcomes = {"a-1": "ConnectionError: x", "b-1": "ConnectionError: x", "c-1": None}

    made = decision(outbox_flush.settle(events, outcomes, 3, env()))

    settled = {effect.event.id: effect.event for effect in of_type(made.effects, UpdateOutbox)}
    assert made.result.published == 1
    assert (settled["a-1"].retry_count, settled["a-1"].dlq_at) == (1, None)
    assert settled["a-2"] == events[1]
    assert (settled["b-1"].retry_count, settled["b-1"].dlq_at) == (3, T0)
    assert settled["c-1"].published_at == T0


def test_backoff_doubles_from_one_second() -> None:
    """SPEC §5.6: exponential backoff: 1 s, 2 s, 4 s, ... after attempts 1, 2, 3."""
    assert [next_attempt_at(n, T0) - T0 for n in (1, 2, 3, 4)] == [
        timedelta(seconds=s) for s in (1, 2, 4, 8)
    ]


def test_elapsed_ms_without_a_start_is_zero() -> None:
    """SPEC §3.2: a record that never started has no duration."""
    assert elapsed_ms(None, T0) == 0
    assert elapsed_ms(T0, T0 + timedelta(seconds=1.5)) == 1500


def test_env_records_events_with_its_causation_id() -> None:
    """SPEC §3.2: every outbox event names the command that caused it."""
    e = Env(T0, iter(["e-1", "e-2"]).__next__, "cmd-9")
    effect = e.record(WorkflowStarted(workflow_run_id="r", timestamp=T0))

    assert (effect.event_id, effect.causation_id) == ("e-1", "cmd-9")
