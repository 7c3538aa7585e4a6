"""A raising stage is retried with exponential backoff, then fails its run
(SPEC §5.6)."""

from __future__ import annotations

from datetime import timedelta

from kernel import JobStatus, Status
from testing import FakeClock
from tests.harness import T0, MakeKernel, events_of, job_of, run_of, stage_of, start
from tests.workflows import Calls, add, failing, flaky, pipeline


def test_failing_stage_backs_off_one_then_two_seconds_and_fails_after_three_attempts(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.6: attempt 1 fails at t0 → available t0+1 s; attempt 2 fails at t0+1 s →
    available t0+3 s; attempt 3 fails → stage, job and run FAILED."""
    calls = Calls()
    tk = make_tk(pipeline("doomed", failing(calls, "bad")))
    run_id = start(tk, "doomed")

    assert tk.kernel.execute_next_job("w1") is not None
    job = job_of(tk.store, run_id, "bad")
    assert (job.status, job.attempt, job.available_at) == (
        JobStatus.QUEUED,
        1,
        T0 + timedelta(seconds=1),
    )
    assert stage_of(tk.store, run_id, "bad").status == Status.PENDING
    assert tk.kernel.execute_next_job("w1") is None  # backing off

    clock.advance(timedelta(seconds=1))
    assert tk.kernel.execute_next_job("w1") is not None
    job = job_of(tk.store, run_id, "bad")
    assert (job.status, job.attempt, job.available_at) == (
        JobStatus.QUEUED,
        2,
        T0 + timedelta(seconds=3),
    )

    clock.advance(timedelta(seconds=2))
    assert tk.kernel.execute_next_job("w1") is not None

    assert job_of(tk.store, run_id, "bad").status == JobStatus.FAILED
    assert stage_of(tk.store, run_id, "bad").status == Status.FAILED
    run = run_of(tk.store, run_id)
    assert (run.status, run.error) == (Status.FAILED, "RuntimeError: boom")
    assert calls["bad"] == 3


def test_stage_failed_events_say_will_retry_until_the_last_attempt(make_tk: MakeKernel) -> None:
    """SPEC §5.6: ``will_retry`` is true, true, false over three attempts."""
    tk = make_tk(pipeline("doomed", failing(Calls(), "bad")))
    run_id = start(tk, "doomed")

    tk.run_until_idle()

    failed = events_of(tk.store, run_id, "stage:failed")
    assert [(e.payload["attempt"], e.payload["will_retry"]) for e in failed] == [
        (1, True),
        (2, True),
        (3, False),
    ]
    assert [e.event_type for e in tk.store.get_outbox(run_id)][-2:] == [
        "stage:failed",
        "workflow:failed",
    ]


def test_flaky_stage_succeeds_on_a_retry(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.6: a retry that succeeds completes the stage; the run carries on."""
    calls = Calls()
    tk = make_tk(pipeline("shaky", flaky(calls, "flaky", failures=2), add(calls, "after")))
    run_id = start(tk, "shaky", 5)

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 6})
    assert calls.attempts == [("flaky", 1), ("flaky", 2), ("flaky", 3), ("after", 1)]
    assert clock.now() == T0 + timedelta(seconds=3)
    assert stage_of(tk.store, run_id, "flaky").error is None


def test_user_code_sees_its_attempt_number(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.attempt`` counts attempts from 1."""
    calls = Calls()
    tk = make_tk(pipeline("doomed", failing(calls, "bad")))
    start(tk, "doomed")

    tk.run_until_idle()

    assert [attempt for _, attempt in calls.attempts] == [1, 2, 3]
