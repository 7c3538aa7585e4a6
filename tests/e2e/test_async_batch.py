"""An async-batch stage suspends, is polled as the fake clock moves, and resumes
(SPEC §4.2, §5.7, §9)."""

from __future__ import annotations

from datetime import timedelta

from kernel import JobStatus, StagePollSuspended, Status
from testing import FakeClock
from tests.harness import T0, MakeKernel, create, event_types, run_of, stage_of, start
from tests.workflows import Batch, Calls, add, batch, joining, pipeline


def test_suspended_stage_resumes_when_the_clock_reaches_its_poll(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §4.2: suspend, wait for the poll time, check, resume, complete."""
    calls = Calls()
    tk = make_tk(pipeline("batchy", batch(calls, Batch()), add(calls, "after")))
    run_id = start(tk, "batchy", 2)

    tk.kernel.execute_next_job("w1")
    assert stage_of(tk.store, run_id, "batch").status == Status.SUSPENDED
    assert run_of(tk.store, run_id).status == Status.SUSPENDED
    assert tk.dispatch(StagePollSuspended()).checked == 0

    clock.advance(timedelta(seconds=30))
    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 21})
    assert dict(calls.counts) == {"batch": 1, "batch.check": 1, "after": 1}


def test_run_until_idle_jumps_the_fake_clock_to_each_poll(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §9: with only suspended work left, ``run_until_idle`` advances the clock."""
    calls = Calls()
    control = Batch(poll_interval=timedelta(seconds=30), ready_on_check=3)
    tk = make_tk(pipeline("batchy", batch(calls, control)))
    run_id = create(tk, "batchy", 2)

    tk.run_until_idle()

    assert run_of(tk.store, run_id).status == Status.COMPLETED
    assert calls["batch.check"] == 3
    assert clock.now() == T0 + timedelta(seconds=90)


def test_suspension_and_resumption_are_in_the_outbox(make_tk: MakeKernel) -> None:
    """SPEC §3.3: suspended, then completed, in order."""
    tk = make_tk(pipeline("batchy", batch(Calls(), Batch())))
    run_id = create(tk, "batchy")

    tk.run_until_idle()

    assert event_types(tk.store, run_id) == [
        "workflow:created",
        "workflow:started",
        "stage:started",
        "stage:suspended",
        "workflow:suspended",
        "stage:completed",
        "workflow:completed",
    ]


def test_metrics_of_a_completion_check_count_towards_the_run(make_tk: MakeKernel) -> None:
    """SPEC §4.2: ``CompletionCheck.metrics`` are the stage's metrics."""
    tk = make_tk(pipeline("batchy", batch(Calls(), Batch())))
    run_id = create(tk, "batchy")

    tk.run_until_idle()

    assert run_of(tk.store, run_id).total_tokens == 7


def test_exceeding_max_wait_fails_the_run_with_a_timeout(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §4.2: when ``max_wait`` passes without completion the stage fails."""
    calls = Calls()
    control = Batch(
        poll_interval=timedelta(seconds=30), max_wait=timedelta(minutes=2), ready_on_check=None
    )
    tk = make_tk(pipeline("batchy", batch(calls, control), add(calls, "after")))
    run_id = create(tk, "batchy")

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert run.status == Status.FAILED
    assert (run.error or "").startswith("TimeoutError: stage 'batch' did not complete")
    assert stage_of(tk.store, run_id, "batch").status == Status.FAILED
    assert calls["batch.check"] == 4  # at 30, 60, 90 and 120 seconds
    assert calls["after"] == 0
    assert clock.now() == T0 + timedelta(minutes=2)
    assert [j.status for j in tk.store.get_jobs(run_id)] == [JobStatus.FAILED]


def test_a_suspended_stage_in_a_parallel_group_holds_the_next_group(
    make_tk: MakeKernel,
) -> None:
    """SPEC §4.3, §5.3: the next group opens only when the suspended sibling is done."""
    calls = Calls()
    waiting, quick = batch(calls, Batch(ready_on_check=2)), add(calls, "quick")
    tk = make_tk(pipeline("mixed", [waiting, quick], joining(calls, waiting, quick)))
    run_id = create(tk, "mixed", 1)

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 12})
    assert dict(calls.counts) == {"batch": 1, "quick": 1, "batch.check": 2, "join": 1}
    types = event_types(tk.store, run_id)
    assert types.index("stage:suspended") < types.index("stage:completed")
    assert types[-3:] == ["stage:started", "stage:completed", "workflow:completed"]
