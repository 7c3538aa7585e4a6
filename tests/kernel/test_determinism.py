"""The same inputs always give the same decision (SPEC §6.1).

Each scenario calls one decision with hand-built records and no store. Two
calls with equal inputs and fresh, equal id generators must return equal
``Result`` values, effects included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve
from returns.result import Result, Success

from kernel import (
    JobExecute,
    JobStatus,
    LeaseReapStale,
    RunCancel,
    RunClaimPending,
    RunCreate,
    RunRerunFrom,
    RunTransition,
    Status,
    Suspend,
)
from kernel.decisions import (
    lease_reap_stale,
    outbox_flush,
    plugin_replay_dlq,
    run_cancel,
    run_claim_pending,
    run_create,
    run_rerun_from,
    run_transition,
)
from kernel.decisions import stage_poll_suspended as poll
from kernel.decisions.context import Env
from kernel.decisions.job_execute import finish, start
from kernel.decisions.job_execute.start import StartState
from kernel.decisions.lease_reap_stale import Stale
from kernel.decisions.lifecycle import StageState
from kernel.decisions.run_cancel import Cancellable
from kernel.decisions.run_claim_pending import Claimable
from kernel.decisions.stage_poll_suspended import DueStage
from kernel.effects import ExecuteStage
from kernel.outcomes import Completed, Failed, NotReady, StageRun, Suspended
from kernel.records import OutboxEvent
from kernel.stages import ProgressReport
from tests.harness import T0, env, make_job, make_run, make_stage
from tests.workflows import Batch, Calls, batch, linear, pipeline

LINEAR = linear(Calls())
BATCHY = pipeline("batchy", batch(Calls(), Batch()))
STAGES = ["first", "second", "third"]


def done_stages(count: int) -> list[Any]:
    return [make_stage(s, number=n) for n, s in enumerate(STAGES[:count], 1)]


def started(stage_id: str = "first", job: bool = True) -> ExecuteStage:
    return ExecuteStage(
        run=make_run(),
        stage=make_stage(stage_id, status=Status.RUNNING, version=2),
        job=make_job(stage_id, status=JobStatus.LEASED, attempt=1) if job else None,
        input={"value": 1},
        config={"amount": 1},
    )


def finished(outcome: Any, job_attempt: int = 1) -> Callable[[Env], Result[Any, Any]]:
    def decide(e: Env) -> Result[Any, Any]:
        begun = started()
        return finish.decide(
            begun,
            StageRun(
                outcome,
                (ProgressReport(progress=0.5, message="half", details=None, at_index=0),),
            ),
            StageState(
                make_run(),
                [begun.stage],
                make_job("first", status=JobStatus.LEASED, attempt=job_attempt),
                {},
                LINEAR,
            ),
            e,
        )

    return decide


def polled(outcome: Any, now_offset: timedelta = timedelta(0)) -> Callable[[Env], Any]:
    def decide(e: Env) -> Result[Any, Any]:
        record = make_stage(
            "batch",
            status=Status.SUSPENDED,
            poll_interval=timedelta(seconds=30),
            max_wait_until=T0 + timedelta(minutes=1),
            suspended_state={"value": 1},
        )
        return poll.decide(
            record,
            outcome,
            StageState(
                make_run("batchy", status=Status.SUSPENDED),
                [record],
                make_job("batch", workflow_id="batchy", status=JobStatus.SUSPENDED),
                {},
                BATCHY,
            ),
            Env(e.now + now_offset, e.new_id, e.causation_id),
        )

    return decide


def outbox_event(run_id: str, sequence: int, retry_count: int = 0) -> OutboxEvent:
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


SCENARIOS: dict[str, Callable[[Env], Result[Any, Any]]] = {
    "run.create": lambda e: run_create.decide(
        RunCreate(workflow_id="linear", input={"value": 1}, config={"first": {"amount": 2}}),
        LINEAR,
        e,
    ),
    "run.claimPending": lambda e: run_claim_pending.decide(
        RunClaimPending(worker_id="w"),
        Claimable(
            [
                make_run(id="a", status=Status.PENDING),
                make_run("gone", id="b", status=Status.PENDING),
            ],
            {"a": LINEAR, "b": None},
        ),
        e,
    ),
    "run.transition advances": lambda e: run_transition.decide(
        RunTransition(workflow_run_id="run-1"),
        StageState(make_run(), done_stages(1), None, {}, LINEAR),
        e,
    ),
    "run.transition completes": lambda e: run_transition.decide(
        RunTransition(workflow_run_id="run-1"),
        StageState(make_run(), done_stages(3), None, {"third": {"value": 4}}, LINEAR),
        e,
    ),
    "run.transition fails": lambda e: run_transition.decide(
        RunTransition(workflow_run_id="run-1"),
        StageState(
            make_run(), [make_stage("first", status=Status.FAILED, error="boom")], None, {}, LINEAR
        ),
        e,
    ),
    "run.cancel": lambda e: run_cancel.decide(
        RunCancel(workflow_run_id="run-1", reason="why"),
        Cancellable(make_run(), [make_stage("first", status=Status.PENDING)], [make_job("first")]),
        e,
    ),
    "run.rerunFrom": lambda e: run_rerun_from.decide(
        RunRerunFrom(workflow_run_id="run-1", from_stage_id="second"),
        StageState(make_run(status=Status.COMPLETED), done_stages(3), None, {}, LINEAR),
        e,
    ),
    "job.execute start": lambda e: start.decide(
        JobExecute(workflow_run_id="run-1", workflow_id="linear", stage_id="second"),
        StartState(
            make_run(),
            make_stage("second", number=2, status=Status.PENDING),
            make_job("second"),
            LINEAR,
            {"first": {"value": 2}},
        ),
        e,
    ),
    "job.execute finish completed": finished(Completed({"value": 2}, {"total_tokens": 3})),
    "job.execute finish failed, will retry": finished(Failed("RuntimeError: boom")),
    "job.execute finish failed for good": finished(Failed("RuntimeError: boom"), job_attempt=3),
    "job.execute finish suspended": lambda e: finish.decide(
        started("batch"),
        StageRun(Suspended(Suspend({"n": 1}, poll_interval=timedelta(seconds=5))), ()),
        StageState(make_run("batchy"), [started("batch").stage], started("batch").job, {}, BATCHY),
        e,
    ),
    "stage.pollSuspended claim": lambda e: poll.claim(
        [
            DueStage(
                make_stage("batch", status=Status.SUSPENDED, next_poll_at=T0),
                make_run("batchy", status=Status.SUSPENDED),
                BATCHY,
                {},
            )
        ],
        e,
    ),
    "stage.pollSuspended ready": polled(Completed({"value": 10}, {})),
    "stage.pollSuspended not ready": polled(NotReady(None)),
    "stage.pollSuspended timed out": polled(NotReady(None), timedelta(minutes=2)),
    "lease.reapStale": lambda e: lease_reap_stale.decide(
        LeaseReapStale(stale_threshold_ms=1000, max_reaps=2),
        Stale(
            [
                make_job("first", status=JobStatus.LEASED, attempt=1, locked_at=T0),
                make_job("first", run_id="run-2", status=JobStatus.LEASED, reap_count=1, attempt=1),
            ],
            {"run-1": make_run(), "run-2": make_run(id="run-2")},
            {
                "run-1": [make_stage("first", status=Status.RUNNING)],
                "run-2": [make_stage("first", run_id="run-2", status=Status.RUNNING)],
            },
            {"run-1": LINEAR, "run-2": LINEAR},
        ),
        e,
    ),
    "outbox.flush settle": lambda e: outbox_flush.settle(
        [outbox_event("a", 1), outbox_event("a", 2), outbox_event("b", 1, retry_count=2)],
        {"a-1": "ConnectionError: down", "b-1": "ConnectionError: down"},
        3,
        e,
    ),
    "plugin.replayDLQ": lambda e: plugin_replay_dlq.decide(
        [evolve_dead(outbox_event("a", 1, retry_count=3))]
    ),
}


def evolve_dead(event: OutboxEvent) -> OutboxEvent:
    return evolve(event, dlq_at=T0)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_inputs_give_equal_decisions(name: str) -> None:
    """SPEC §6.1: a decision is a pure function of state, command, time and ids."""
    decide = SCENARIOS[name]

    first, second = decide(env()), decide(env())

    assert isinstance(first, Success), first
    assert first == second
    assert first.unwrap().effects


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_decisions_differ_when_the_time_differs(name: str) -> None:
    """SPEC §6.1: time is an input like any other: it is never read from a clock."""
    decide = SCENARIOS[name]

    early, late = decide(env(T0)), decide(env(T0 + timedelta(days=1)))

    assert isinstance(early, Success)
    if name == "plugin.replayDLQ":
        return  # a replay records no time at all
    assert early != late
