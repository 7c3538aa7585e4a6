"""Retry policies: per stage, per workflow, and exceptions never retried (SPEC §19)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kernel import (
    JobStatus,
    Retry,
    Stage,
    StageContext,
    Status,
    Workflow,
    WorkflowBuilder,
    define_stage,
)
from testing import FakeClock
from tests.harness import T0, MakeKernel, events_of, job_of, run_of, stage_of, start
from tests.workflows import Calls, NoConfig, Num


class NotWorthRetrying(Exception):
    """A failure another attempt cannot fix."""


class SubclassOfIt(NotWorthRetrying):
    pass


def raising(
    calls: Calls, id: str, error: Exception, retry: Retry | None = None
) -> Stage[Num, Num, NoConfig]:
    def execute(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit(id, ctx.attempt)
        raise error

    return define_stage(
        id=id, name=id.title(), input=Num, output=Num, config=NoConfig, execute=execute, retry=retry
    )


def workflow(
    id: str, *stages: Stage[Any, Any, Any], retry: Retry | None = None
) -> Workflow[Any, Any]:
    builder: WorkflowBuilder[Any, Any, Any] = WorkflowBuilder(
        id, id.title(), input=Num, output=object, retry=retry
    )
    for stage in stages:
        builder = builder.pipe(stage)
    return builder.build()


def backoff_timeline(tk: Any, clock: FakeClock, run_id: str, stage_id: str) -> list[float]:
    """Run every attempt as soon as it is due; the waits between them, in seconds."""
    waits: list[float] = []
    while tk.kernel.execute_next_job("w1") is not None:
        job = job_of(tk.store, run_id, stage_id)
        if job.status != JobStatus.QUEUED:
            break
        wait = job.available_at - clock.now()
        waits.append(wait.total_seconds())
        clock.advance(wait)
    return waits


def test_a_stage_policy_sets_attempts_and_the_backoff_timeline(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """backoff * factor ** (n - 1), capped at max_backoff, for max_attempts attempts."""
    calls = Calls()
    policy = Retry(
        max_attempts=5, backoff=timedelta(seconds=2), factor=3, max_backoff=timedelta(seconds=10)
    )
    tk = make_tk(workflow("patient", raising(calls, "bad", RuntimeError("boom"), policy)))
    run_id = start(tk, "patient")

    assert backoff_timeline(tk, clock, run_id, "bad") == [2.0, 6.0, 10.0, 10.0]

    assert calls["bad"] == 5
    assert job_of(tk.store, run_id, "bad").max_attempts == 5
    assert run_of(tk.store, run_id).status == Status.FAILED


def test_one_attempt_means_no_retry(make_tk: MakeKernel) -> None:
    calls = Calls()
    tk = make_tk(
        workflow("once", raising(calls, "bad", RuntimeError("boom"), Retry(max_attempts=1)))
    )
    run_id = start(tk, "once")

    tk.run_until_idle()

    assert calls["bad"] == 1
    [failed] = events_of(tk.store, run_id, "stage:failed")
    assert failed.payload["will_retry"] is False


def test_the_workflow_default_applies_to_stages_without_their_own(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """``WorkflowBuilder(..., retry=...)`` is the default; a stage's own policy wins."""
    calls = Calls()
    default = Retry(max_attempts=2, backoff=timedelta(seconds=7))
    own = Retry(max_attempts=4, backoff=timedelta(seconds=1), factor=1)
    first = raising(calls, "first", RuntimeError("boom"))
    second = raising(calls, "second", RuntimeError("boom"), own)
    tk = make_tk(workflow("defaults", first, retry=default), workflow("own", second, retry=default))

    run_id = start(tk, "defaults")
    assert backoff_timeline(tk, clock, run_id, "first") == [7.0]
    assert calls["first"] == 2

    run_id = start(tk, "own")
    assert backoff_timeline(tk, clock, run_id, "second") == [1.0, 1.0, 1.0]
    assert calls["second"] == 4


def test_the_default_policy_is_three_attempts_one_then_two_seconds_apart(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    calls = Calls()
    tk = make_tk(workflow("plain", raising(calls, "bad", RuntimeError("boom"))))
    run_id = start(tk, "plain")

    assert backoff_timeline(tk, clock, run_id, "bad") == [1.0, 2.0]
    assert calls["bad"] == 3


def test_a_non_retryable_exception_fails_the_stage_at_once(make_tk: MakeKernel) -> None:
    """An instance of a class in ``non_retryable`` (or of a subclass) is not retried."""
    calls = Calls()
    policy = Retry(max_attempts=5, non_retryable=(NotWorthRetrying,))
    tk = make_tk(workflow("hopeless", raising(calls, "bad", SubclassOfIt("bad data"), policy)))
    run_id = start(tk, "hopeless")

    tk.run_until_idle()

    assert calls["bad"] == 1
    assert job_of(tk.store, run_id, "bad").status == JobStatus.FAILED
    assert stage_of(tk.store, run_id, "bad").status == Status.FAILED
    [failed] = events_of(tk.store, run_id, "stage:failed")
    assert (failed.payload["error"], failed.payload["will_retry"]) == (
        "SubclassOfIt: bad data",
        False,
    )
    assert run_of(tk.store, run_id).error == "SubclassOfIt: bad data"


def test_other_exceptions_are_still_retried_under_a_non_retryable_policy(
    make_tk: MakeKernel,
) -> None:
    calls = Calls()
    policy = Retry(max_attempts=2, non_retryable=(NotWorthRetrying,))
    tk = make_tk(workflow("mixed", raising(calls, "bad", KeyError("page"), policy)))
    start(tk, "mixed")

    tk.run_until_idle()

    assert calls["bad"] == 2


def test_a_run_created_before_a_policy_change_keeps_its_jobs_attempts(
    make_tk: MakeKernel,
) -> None:
    """A job's attempts are fixed when it is enqueued, from the policy of that moment."""
    calls = Calls()
    tk = make_tk(workflow("fixed", raising(calls, "bad", RuntimeError("x"), Retry(max_attempts=2))))
    run_id = start(tk, "fixed")

    assert job_of(tk.store, run_id, "bad").max_attempts == 2
    assert job_of(tk.store, run_id, "bad").available_at == T0
