"""``stage.pollSuspended`` (SPEC §4.2, §5.7)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from kernel import (
    CompletionCheck,
    JobStatus,
    StageContext,
    StagePollSuspended,
    Status,
    Suspend,
    define_async_batch_stage,
)
from kernel.decisions.lifecycle import output_key
from testing import FakeClock
from tests.harness import (
    T0,
    TK,
    MakeKernel,
    event_types,
    events_of,
    job_of,
    payload_without_time,
    run_of,
    stage_of,
    start,
)
from tests.workflows import Batch, Calls, NoConfig, Num, add, batch, pipeline


def suspended_run(
    make_tk: MakeKernel, control: Batch, calls: Calls | None = None
) -> tuple[TK, str]:
    """A run of ``batch`` (then ``add "after"``) whose batch stage has suspended."""
    calls = calls or Calls()
    tk = make_tk(pipeline("batchy", batch(calls, control), add(calls, "after")))
    run_id = start(tk, "batchy", 3)
    tk.kernel.execute_next_job("w1")
    assert stage_of(tk.store, run_id, "batch").status == Status.SUSPENDED
    return tk, run_id


def test_poll_before_the_poll_time_checks_nothing(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: only stages whose ``next_poll_at`` has passed are checked."""
    calls = Calls()
    tk, _ = suspended_run(make_tk, Batch(poll_interval=timedelta(seconds=30)), calls)
    clock.advance(timedelta(seconds=29))

    result = tk.dispatch(StagePollSuspended())

    assert (result.checked, result.resumed, result.failed) == (0, 0, 0)
    assert calls["batch.check"] == 0


def test_poll_of_a_ready_stage_completes_it_with_its_output(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.7: ready → COMPLETED, output stored, metrics kept."""
    tk, run_id = suspended_run(make_tk, Batch())
    clock.advance(timedelta(seconds=30))

    result = tk.dispatch(StagePollSuspended())

    assert (result.checked, result.resumed, result.failed) == (1, 1, 0)
    assert result.resumed_workflow_run_ids == [run_id]
    stage = stage_of(tk.store, run_id, "batch")
    assert (stage.status, stage.metrics, stage.suspended_state, stage.next_poll_at) == (
        Status.COMPLETED,
        {"total_tokens": 7},
        None,
        None,
    )
    assert tk.store.get_blob(output_key(run_id, "batch")) == (True, {"value": 30})
    assert job_of(tk.store, run_id, "batch").status == JobStatus.COMPLETED


def test_poll_names_each_resumed_run_once(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: two stages of one parallel group resuming in the same poll count as
    two resumed stages, and their run is listed once (a host transitions it once)."""
    calls = Calls()
    tk = make_tk(pipeline("pair", [batch(calls, Batch(), "left"), batch(calls, Batch(), "right")]))
    run_id = start(tk, "pair")
    while tk.kernel.execute_next_job("w1") is not None:
        pass
    clock.advance(timedelta(seconds=30))

    result = tk.dispatch(StagePollSuspended())

    assert (result.checked, result.resumed, result.resumed_workflow_run_ids) == (2, 2, [run_id])
    assert run_of(tk.store, run_id).status == Status.COMPLETED


def test_poll_of_a_ready_stage_resumes_the_run(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: the resumed run is RUNNING again and its next group is queued."""
    tk, run_id = suspended_run(make_tk, Batch())
    clock.advance(timedelta(seconds=30))

    tk.dispatch(StagePollSuspended())

    assert run_of(tk.store, run_id).status == Status.RUNNING
    assert job_of(tk.store, run_id, "after").status == JobStatus.QUEUED


def test_poll_of_a_ready_stage_writes_stage_completed(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §3.3: the resumed stage announces ``stage:completed``."""
    tk, run_id = suspended_run(make_tk, Batch())
    clock.advance(timedelta(seconds=30))

    tk.dispatch(StagePollSuspended())

    assert event_types(tk.store, run_id)[-3:] == [
        "stage:suspended",
        "workflow:suspended",
        "stage:completed",
    ]
    [completed] = events_of(tk.store, run_id, "stage:completed")
    assert payload_without_time(completed) == {
        "type": "stage:completed",
        "workflow_run_id": run_id,
        "stage_id": "batch",
        "stage_name": "Batch",
        "duration_ms": 30_000,
    }


def test_poll_of_a_stage_not_ready_waits_its_next_check_in(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.7: not ready → next poll at ``now + next_check_in``."""
    control = Batch(ready_on_check=None, next_check_in=timedelta(seconds=7))
    tk, run_id = suspended_run(make_tk, control)
    clock.advance(timedelta(seconds=30))

    result = tk.dispatch(StagePollSuspended())

    assert (result.checked, result.resumed, result.failed) == (1, 0, 0)
    stage = stage_of(tk.store, run_id, "batch")
    assert (stage.status, stage.next_poll_at) == (Status.SUSPENDED, T0 + timedelta(seconds=37))
    assert job_of(tk.store, run_id, "batch").available_at == T0 + timedelta(seconds=37)


def test_poll_of_a_stage_not_ready_falls_back_to_its_poll_interval(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.7: without ``next_check_in`` the stage's ``poll_interval`` applies."""
    control = Batch(poll_interval=timedelta(seconds=20), ready_on_check=None)
    tk, run_id = suspended_run(make_tk, control)
    clock.advance(timedelta(seconds=25))

    tk.dispatch(StagePollSuspended())

    assert stage_of(tk.store, run_id, "batch").next_poll_at == T0 + timedelta(seconds=45)


def test_poll_of_a_stage_not_ready_writes_no_event(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: waiting longer is not news."""
    tk, run_id = suspended_run(make_tk, Batch(ready_on_check=None))
    before = event_types(tk.store, run_id)
    clock.advance(timedelta(seconds=30))

    tk.dispatch(StagePollSuspended())

    assert event_types(tk.store, run_id) == before


def test_poll_checks_a_stage_once_per_due_time(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: after a check the stage is not due again until its next poll time."""
    calls = Calls()
    tk, _ = suspended_run(make_tk, Batch(ready_on_check=None), calls)
    clock.advance(timedelta(seconds=30))

    tk.dispatch(StagePollSuspended())
    again = tk.dispatch(StagePollSuspended())

    assert again.checked == 0
    assert calls["batch.check"] == 1


def test_poll_passes_the_suspended_state_to_check_completion(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §4.2: ``check_completion(state, ctx)`` gets the state the stage suspended with."""
    tk, run_id = suspended_run(make_tk, Batch())
    clock.advance(timedelta(seconds=30))

    tk.dispatch(StagePollSuspended())

    # The batch output is state["value"] * 10 with input 3.
    assert tk.store.get_blob(output_key(run_id, "batch")) == (True, {"value": 30})


def test_poll_of_a_reported_error_fails_stage_and_run(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.7: an error from ``check_completion`` fails the stage and the run."""
    tk, run_id = suspended_run(make_tk, Batch(error="batch rejected"))
    clock.advance(timedelta(seconds=30))

    result = tk.dispatch(StagePollSuspended())

    assert (result.checked, result.resumed, result.failed) == (1, 0, 1)
    assert result.resumed_workflow_run_ids == []
    stage = stage_of(tk.store, run_id, "batch")
    assert (stage.status, stage.error) == (Status.FAILED, "batch rejected")
    run = run_of(tk.store, run_id)
    assert (run.status, run.error) == (Status.FAILED, "batch rejected")
    assert job_of(tk.store, run_id, "batch").status == JobStatus.FAILED


def test_poll_failure_writes_stage_failed_and_workflow_failed(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §3.3: a failed check is final: ``will_retry`` is false."""
    tk, run_id = suspended_run(make_tk, Batch(error="batch rejected"))
    clock.advance(timedelta(seconds=30))

    tk.dispatch(StagePollSuspended())

    assert event_types(tk.store, run_id)[-2:] == ["stage:failed", "workflow:failed"]
    [failed] = events_of(tk.store, run_id, "stage:failed")
    assert (failed.payload["error"], failed.payload["will_retry"]) == ("batch rejected", False)


def test_poll_after_max_wait_fails_with_a_timeout(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §4.2, §5.7: when ``max_wait`` passes without completion the stage fails."""
    control = Batch(max_wait=timedelta(minutes=1), ready_on_check=None)
    tk, run_id = suspended_run(make_tk, control)
    clock.advance(timedelta(minutes=1))

    result = tk.dispatch(StagePollSuspended())

    assert result.failed == 1
    run = run_of(tk.store, run_id)
    assert run.status == Status.FAILED
    assert run.error == (
        "TimeoutError: stage 'batch' did not complete before its max wait "
        f"({(T0 + timedelta(minutes=1)).isoformat()})"
    )


def test_poll_within_max_wait_keeps_waiting(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: before ``max_wait`` a stage that is not ready just waits."""
    control = Batch(max_wait=timedelta(minutes=1), ready_on_check=None)
    tk, run_id = suspended_run(make_tk, control)
    clock.advance(timedelta(seconds=30))

    assert tk.dispatch(StagePollSuspended()).failed == 0
    assert stage_of(tk.store, run_id, "batch").status == Status.SUSPENDED


def test_a_max_wait_shorter_than_the_poll_interval_sets_the_first_poll(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §4.2: the stage fails once ``max_wait`` passes, not a poll interval later:
    the first poll is due no later than the end of the wait."""
    control = Batch(
        poll_interval=timedelta(hours=1), max_wait=timedelta(minutes=5), ready_on_check=None
    )
    tk, run_id = suspended_run(make_tk, control)
    assert stage_of(tk.store, run_id, "batch").next_poll_at == T0 + timedelta(minutes=5)
    clock.advance(timedelta(minutes=5))

    result = tk.dispatch(StagePollSuspended())

    assert result.failed == 1
    run = run_of(tk.store, run_id)
    assert (run.status, run.completed_at) == (Status.FAILED, T0 + timedelta(minutes=5))


def test_a_next_check_in_past_max_wait_polls_at_the_end_of_the_wait(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §4.2, §5.7: a not-ready stage is polled again at ``now + next_check_in``,
    but no later than its ``max_wait``, where it times out."""
    control = Batch(
        poll_interval=timedelta(seconds=30),
        max_wait=timedelta(minutes=2),
        ready_on_check=None,
        next_check_in=timedelta(hours=1),
    )
    tk, run_id = suspended_run(make_tk, control)
    clock.advance(timedelta(seconds=30))

    assert tk.dispatch(StagePollSuspended()).failed == 0

    stage = stage_of(tk.store, run_id, "batch")
    assert stage.next_poll_at == T0 + timedelta(minutes=2)
    assert job_of(tk.store, run_id, "batch").available_at == T0 + timedelta(minutes=2)
    clock.advance(timedelta(seconds=90))
    assert tk.dispatch(StagePollSuspended()).failed == 1
    assert run_of(tk.store, run_id).status == Status.FAILED


def test_poll_of_a_raising_check_fails_the_stage(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: ``check_completion`` raising counts as an error."""

    def explode(state: object, ctx: StageContext[Num, NoConfig]) -> CompletionCheck[Num]:
        raise ConnectionError("provider down")

    stage = define_async_batch_stage(
        id="fragile",
        name="Fragile",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=lambda ctx: Suspend({}, poll_interval=timedelta(seconds=1)),
        check_completion=explode,
    )
    tk = make_tk(pipeline("fragile", stage))
    run_id = start(tk, "fragile")
    tk.kernel.execute_next_job("w1")
    clock.advance(timedelta(seconds=1))

    assert tk.dispatch(StagePollSuspended()).failed == 1
    assert run_of(tk.store, run_id).error == "ConnectionError: provider down"


def test_poll_checks_at_most_max_checks(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.7: ``max_checks`` bounds one poll."""
    calls = Calls()
    tk = make_tk(pipeline("batchy", batch(calls, Batch(ready_on_check=None))))
    for value in range(3):
        start(tk, "batchy", value)
    while tk.kernel.execute_next_job("w1") is not None:
        pass
    clock.advance(timedelta(seconds=30))

    first = tk.dispatch(StagePollSuspended(max_checks=2))
    second = tk.dispatch(StagePollSuspended(max_checks=2))

    assert (first.checked, second.checked) == (2, 1)
    assert calls["batch.check"] == 3


def test_poll_with_nothing_suspended_checks_nothing(make_tk: MakeKernel) -> None:
    """SPEC §5.7: nothing due is an empty result."""
    tk = make_tk(pipeline("batchy", batch(Calls(), Batch())))

    result = tk.dispatch(StagePollSuspended())

    assert (result.checked, result.resumed, result.failed, result.resumed_workflow_run_ids) == (
        0,
        0,
        0,
        [],
    )


def test_poll_command_refuses_zero_max_checks() -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match="max_checks: expected an int >= 1, got 0"):
        StagePollSuspended(max_checks=0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(
            lambda: Suspend({}, poll_interval=30),  # type: ignore[arg-type]
            "poll_interval: expected a positive timedelta, got 30",
            id="seconds for poll_interval",
        ),
        pytest.param(
            lambda: Suspend({}, timedelta(seconds=1), max_wait=60_000),  # type: ignore[arg-type]
            "max_wait: expected a positive timedelta, got 60000",
            id="milliseconds for max_wait",
        ),
        pytest.param(
            lambda: Suspend({}, timedelta(seconds=1), next_poll_at="soon"),  # type: ignore[arg-type]
            "next_poll_at: expected an aware UTC datetime, got 'soon'",
            id="text for next_poll_at",
        ),
        pytest.param(
            lambda: CompletionCheck(ready=False, next_check_in=5),  # type: ignore[arg-type]
            "next_check_in: expected a positive timedelta, got 5",
            id="seconds for next_check_in",
        ),
    ],
)
def test_suspend_and_completion_check_name_a_bad_duration(build: Any, message: str) -> None:
    """SPEC §10.1: durations are ``timedelta`` and times aware datetimes; a number
    (the reference's milliseconds) is refused with the field and the value."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        build()


def test_a_check_that_mutates_its_state_changes_nothing_stored(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §3.2, §4.2: the suspended state is the JSON value ``Suspend`` stored; a
    check that changes the object it was given in place changes nothing, on every
    store (so a test on the in-memory store behaves as production does)."""

    def check(state: dict[str, int], ctx: StageContext[Num, NoConfig]) -> CompletionCheck[Num]:
        state["checks"] += 1
        return CompletionCheck(ready=False)

    stage = define_async_batch_stage(
        id="counting",
        name="Counting",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=lambda ctx: Suspend({"checks": 0}, poll_interval=timedelta(seconds=5)),
        check_completion=check,
    )
    tk = make_tk(pipeline("counting", stage))
    run_id = start(tk, "counting")
    tk.kernel.execute_next_job("w1")
    clock.advance(timedelta(seconds=5))

    tk.dispatch(StagePollSuspended())

    assert stage_of(tk.store, run_id, "counting").suspended_state == {"checks": 0}
