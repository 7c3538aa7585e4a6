"""Signal stages and ``run.signal`` (SPEC §13, §16.1): a run waits for the outside
world, a signal completes the waiting stage in one transaction, an early signal
is kept until a stage waits for it, and a wait can time out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from kernel import (
    DefinitionError,
    InvalidInputError,
    InvalidStateError,
    RunCancel,
    RunNotFoundError,
    RunSignal,
    Stage,
    StageContext,
    StagePollSuspended,
    Status,
    Workflow,
    WorkflowBuilder,
    define_signal_stage,
    define_stage,
)
from kernel.signal_stages import NoConfig
from testing import FakeClock
from tests.harness import (
    MakeKernel,
    create,
    event_types,
    events_of,
    job_of,
    outbox,
    run_of,
    stage_of,
    start,
)
from tests.workflows import Calls, Num, echo, pipeline


@attrs.frozen
class Approval:
    approved: bool
    by: str
    comment: str = ""


def approval_stage(
    id: str = "approve", signal: str = "approval", timeout: timedelta | None = None
) -> Stage[None, Approval, NoConfig]:
    return define_signal_stage(
        id=id, name=id.title(), signal=signal, output=Approval, timeout=timeout
    )


def publish(calls: Calls, after: str = "approve") -> Stage[None, Num, Any]:
    """Reads the approval and says 1 (approved) or 0."""

    def execute(ctx: StageContext[None, Any]) -> Num:
        calls.hit("publish", ctx.attempt)
        decision: Approval = ctx.require(after)
        return Num(1 if decision.approved else 0)

    return define_stage(
        id="publish", name="Publish", input=None, output=Num, config=NoConfig, execute=execute
    )


def review(calls: Calls, timeout: timedelta | None = None) -> Workflow[Any, Any]:
    """``review``: echo → wait for "approval" → publish."""
    return pipeline("review", echo(calls), approval_stage(timeout=timeout), publish(calls))


YES = {"approved": True, "by": "ana"}


def waiting_run(tk: Any, workflow_id: str = "review") -> str:
    """A run started and driven until its signal stage waits."""
    run_id = start(tk, workflow_id)
    tk.run_until_idle()
    return run_id


def test_a_signal_completes_the_waiting_stage_and_the_run_goes_on(make_tk: MakeKernel) -> None:
    """The stage waits as SUSPENDED (the run parks); the signal completes it and
    the run advances in the same transaction."""
    calls = Calls()
    tk = make_tk(review(calls))
    run_id = waiting_run(tk)
    assert stage_of(tk.store, run_id, "approve").status == Status.SUSPENDED
    assert run_of(tk.store, run_id).status == Status.SUSPENDED

    result = tk.dispatch(RunSignal(run_id, "approval", YES))

    assert (result.delivered, result.buffered) == (True, False)
    stage = stage_of(tk.store, run_id, "approve")
    assert stage.status == Status.COMPLETED
    # Transitioned with the signal: the next group is already queued.
    assert run_of(tk.store, run_id).status == Status.RUNNING
    assert stage_of(tk.store, run_id, "publish").status == Status.PENDING
    tk.run_until_idle()
    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 1})


def test_the_stored_output_is_the_structured_payload_with_defaults(make_tk: MakeKernel) -> None:
    tk = make_tk(review(Calls()))
    run_id = waiting_run(tk)

    tk.dispatch(RunSignal(run_id, "approval", YES))

    found, output = tk.store.get_blob(f"runs/{run_id}/stages/approve/output")
    assert found and output == {"approved": True, "by": "ana", "comment": ""}
    [signal] = tk.store.get_signals(run_id)
    assert (signal.name, signal.stage_id, signal.is_buffered) == ("approval", "approve", False)


def test_events_say_the_stage_waited_then_was_signalled(make_tk: MakeKernel) -> None:
    tk = make_tk(review(Calls()))
    run_id = waiting_run(tk)
    tk.dispatch(RunSignal(run_id, "approval", YES))
    tk.run_until_idle()

    types = event_types(tk.store, run_id)
    approve = [
        e.event_type
        for e in outbox(tk.store, run_id)
        if e.payload.get("stage_id") == "approve" or e.event_type == "workflow:suspended"
    ]
    assert approve == [
        "stage:started",
        "stage:suspended",
        "workflow:suspended",
        "stage:signalled",
        "stage:completed",
    ]
    assert types[-1] == "workflow:completed"
    [suspended] = events_of(tk.store, run_id, "stage:suspended")
    assert suspended.payload["signal"] == "approval"
    assert suspended.payload["next_poll_at"] is None
    [signalled] = events_of(tk.store, run_id, "stage:signalled")
    assert signalled.payload["signal"] == "approval"


def test_a_signal_sent_before_the_stage_waits_is_kept_and_taken_once(
    make_tk: MakeKernel,
) -> None:
    calls = Calls()
    tk = make_tk(review(calls))
    run_id = create(tk, "review")

    result = tk.dispatch(RunSignal(run_id, "approval", {"approved": False, "by": "bo"}))

    assert (result.delivered, result.buffered) == (False, True)
    [kept] = tk.store.get_signals(run_id)
    assert kept.is_buffered
    tk.run_until_idle()
    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 0})
    [taken] = tk.store.get_signals(run_id)
    assert (taken.is_buffered, taken.stage_id) == (False, "approve")
    assert "stage:suspended" not in event_types(tk.store, run_id)


def test_kept_signals_are_taken_in_arrival_order_one_per_stage(make_tk: MakeKernel) -> None:
    first, second = approval_stage("first"), approval_stage("second")

    def both(ctx: StageContext[None, Any]) -> dict[str, Any]:
        return {"first": ctx.require(first).by, "second": ctx.require(second).by}

    summary = define_stage(
        id="summary", name="Summary", input=None, output=dict, config=NoConfig, execute=both
    )
    tk = make_tk(pipeline("twice", echo(Calls()), first, second, summary))
    run_id = create(tk, "twice")
    for who in ("ana", "bo"):
        tk.dispatch(RunSignal(run_id, "approval", {"approved": True, "by": who}))

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"first": "ana", "second": "bo"})
    assert [s.is_buffered for s in tk.store.get_signals(run_id)] == [False, False]


def test_in_a_parallel_group_the_lowest_stage_number_takes_the_signal(
    make_tk: MakeKernel,
) -> None:
    tk = make_tk(pipeline("pair", echo(Calls()), [approval_stage("a"), approval_stage("b")]))
    run_id = waiting_run(tk, "pair")

    tk.dispatch(RunSignal(run_id, "approval", {"approved": True, "by": "ana"}))

    assert stage_of(tk.store, run_id, "a").status == Status.COMPLETED
    assert stage_of(tk.store, run_id, "b").status == Status.SUSPENDED
    assert run_of(tk.store, run_id).status == Status.SUSPENDED
    tk.dispatch(RunSignal(run_id, "approval", {"approved": False, "by": "bo"}))
    run = run_of(tk.store, run_id)
    assert run.status == Status.COMPLETED
    assert run.output == {
        "a": {"approved": True, "by": "ana", "comment": ""},
        "b": {"approved": False, "by": "bo", "comment": ""},
    }


def test_the_run_parks_only_when_every_active_stage_waits(make_tk: MakeKernel) -> None:
    calls = Calls()
    tk = make_tk(pipeline("mixed", echo(calls), [approval_stage(), echo(calls, "other")]))
    run_id = start(tk, "mixed")
    tk.kernel.execute_next_job("w1")  # echo
    tk.run_until_idle()

    assert run_of(tk.store, run_id).status == Status.SUSPENDED
    assert stage_of(tk.store, run_id, "other").status == Status.COMPLETED


def test_a_wait_that_times_out_fails_the_run_without_retry(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = make_tk(review(Calls(), timeout=timedelta(hours=48)))
    run_id = waiting_run(tk)
    waited_from = clock.now()
    assert stage_of(tk.store, run_id, "approve").max_wait_until == waited_from + timedelta(hours=48)

    clock.advance(timedelta(hours=47, minutes=59))
    assert tk.dispatch(StagePollSuspended()).checked == 0
    clock.advance(timedelta(minutes=1))
    assert tk.dispatch(StagePollSuspended()).failed == 1

    stage = stage_of(tk.store, run_id, "approve")
    assert stage.status == Status.FAILED
    assert stage.error is not None and stage.error.startswith("SIGNAL_TIMEOUT: stage 'approve'")
    run = run_of(tk.store, run_id)
    assert run.status == Status.FAILED and "SIGNAL_TIMEOUT" in (run.error or "")
    assert job_of(tk.store, run_id, "approve").attempt == 1


def test_run_until_idle_does_not_jump_the_clock_to_a_signal_timeout(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = make_tk(review(Calls(), timeout=timedelta(minutes=5)))
    run_id = waiting_run(tk)
    before = clock.now()

    tk.run_until_idle()

    assert clock.now() == before
    assert stage_of(tk.store, run_id, "approve").status == Status.SUSPENDED


def test_a_signal_after_the_timeout_is_refused_and_changes_nothing(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    tk = make_tk(review(Calls(), timeout=timedelta(minutes=5)))
    run_id = waiting_run(tk)
    clock.advance(timedelta(minutes=5))

    with pytest.raises(InvalidStateError, match="stopped waiting for signal 'approval'"):
        tk.dispatch(RunSignal(run_id, "approval", YES))

    assert tk.store.get_signals(run_id) == []
    assert stage_of(tk.store, run_id, "approve").status == Status.SUSPENDED


def test_a_payload_that_does_not_fit_names_the_field_and_writes_nothing(
    make_tk: MakeKernel,
) -> None:
    tk = make_tk(review(Calls()))
    run_id = waiting_run(tk)
    events = len(outbox(tk.store, run_id))

    with pytest.raises(InvalidInputError, match=r"payload\.approved: expected bool, got 'yes'"):
        tk.dispatch(RunSignal(run_id, "approval", {"approved": "yes", "by": "ana"}))
    with pytest.raises(InvalidInputError, match=r"payload\.by"):
        tk.dispatch(RunSignal(run_id, "approval", {"approved": True}))

    assert tk.store.get_signals(run_id) == []
    assert len(outbox(tk.store, run_id)) == events
    assert stage_of(tk.store, run_id, "approve").status == Status.SUSPENDED


def test_a_signal_no_stage_waits_for_is_refused_naming_it(make_tk: MakeKernel) -> None:
    tk = make_tk(review(Calls()))
    run_id = create(tk, "review")

    with pytest.raises(InvalidInputError, match=r"'approvall'.*its signals: 'approval'"):
        tk.dispatch(RunSignal(run_id, "approvall", YES))
    assert tk.store.get_signals(run_id) == []


def test_unknown_and_finished_runs_take_no_signals(make_tk: MakeKernel) -> None:
    tk = make_tk(review(Calls()))
    with pytest.raises(RunNotFoundError):
        tk.dispatch(RunSignal("no-such-run", "approval", YES))
    run_id = waiting_run(tk)
    tk.dispatch(RunCancel(workflow_run_id=run_id))

    with pytest.raises(InvalidStateError, match="CANCELLED"):
        tk.dispatch(RunSignal(run_id, "approval", YES))


def test_a_repeated_idempotency_key_replays_without_a_second_signal(
    make_tk: MakeKernel,
) -> None:
    tk = make_tk(review(Calls()))
    run_id = create(tk, "review")

    first = tk.dispatch(RunSignal(run_id, "approval", YES, idempotency_key="hook-42"))
    again = tk.dispatch(RunSignal(run_id, "approval", YES, idempotency_key="hook-42"))

    assert first == again
    assert len(tk.store.get_signals(run_id)) == 1


def test_stages_sharing_a_signal_must_share_its_output_type() -> None:
    @attrs.frozen
    class Other:
        ok: bool

    other = define_signal_stage(id="other", name="Other", signal="approval", output=Other)
    with pytest.raises(DefinitionError, match="'approve' and 'other' both wait for signal"):
        WorkflowBuilder("w", "W", "", input=Num, output=object).pipe(approval_stage()).pipe(
            other
        ).build()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"signal": ""}, "signal must be a non-empty string"),
        ({"timeout": 30}, "timeout must be a positive timedelta"),
        ({"output": int}, "output must be"),
    ],
)
def test_bad_signal_stage_definitions_name_the_stage(fields: dict[str, Any], message: str) -> None:
    given: dict[str, Any] = {
        "id": "approve",
        "name": "Approve",
        "signal": "approval",
        "output": Approval,
        **fields,
    }
    with pytest.raises(DefinitionError, match=message):
        define_signal_stage(**given)
