"""A stage attempt that runs past its ``timeout`` fails with ``STAGE_TIMEOUT`` and frees
its worker (SPEC §19). These tests use real time: a timeout is wall-clock time."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest

from kernel import Retry, StageContext, Status, WorkflowBuilder, define_stage
from tests.harness import MakeKernel, events_of, job_of, run_of, stage_of, start
from tests.workflows import Calls, NoConfig, Num

SHORT = timedelta(milliseconds=200)


def timed_workflow(execute: Any, retry: Retry | None = None) -> Any:
    stage = define_stage(
        id="slow",
        name="Slow",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute,
        timeout=SHORT,
        retry=retry,
    )
    return WorkflowBuilder("timed", "Timed", input=Num, output=Num).pipe(stage).build()


def test_a_hung_sync_stage_fails_with_stage_timeout_and_its_late_result_is_dropped(
    make_tk: MakeKernel, caplog: pytest.LogCaptureFixture
) -> None:
    """The thread cannot be killed: the attempt fails at once, the late return is logged."""
    release = threading.Event()
    finished = threading.Event()

    def hang(ctx: StageContext[Num, NoConfig]) -> Num:
        release.wait(10)
        finished.set()
        return ctx.input

    tk = make_tk(timed_workflow(hang, Retry(max_attempts=1)))
    run_id = start(tk, "timed")

    with caplog.at_level(logging.WARNING, logger="workflow_kernel.runner"):
        assert tk.kernel.execute_next_job("w1") is not None
        stage = stage_of(tk.store, run_id, "slow")
        assert stage.status == Status.FAILED
        assert stage.error == (
            "STAGE_TIMEOUT: stage 'slow' attempt 1 was still running after 0:00:00.200000"
        )
        assert run_of(tk.store, run_id).status == Status.FAILED

        release.set()
        assert finished.wait(5)
        for _ in range(50):  # the log line follows the return in the stage's thread
            if caplog.records:
                break
            threading.Event().wait(0.02)
    [line] = [r for r in caplog.records if "late result is dropped" in r.getMessage()]
    assert "returned after its 0:00:00.200000 timeout" in line.getMessage()
    assert stage_of(tk.store, run_id, "slow").status == Status.FAILED


def test_a_timed_out_attempt_is_retried_under_the_policy(make_tk: MakeKernel) -> None:
    """STAGE_TIMEOUT is an ordinary failure: the next attempt may finish in time."""
    calls = Calls()

    def slow_first(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit("slow", ctx.attempt)
        if ctx.attempt == 1:
            threading.Event().wait(1)
        return ctx.input

    tk = make_tk(timed_workflow(slow_first, Retry(max_attempts=2, backoff=timedelta(seconds=1))))
    run_id = start(tk, "timed")

    assert tk.kernel.execute_next_job("w1") is not None
    failed = events_of(tk.store, run_id, "stage:failed")
    assert [(e.payload["error"].split(":")[0], e.payload["will_retry"]) for e in failed] == [
        ("STAGE_TIMEOUT", True)
    ]
    job = job_of(tk.store, run_id, "slow")
    tk.clock.advance(job.available_at - tk.clock.now())
    tk.run_until_idle()

    assert run_of(tk.store, run_id).status == Status.COMPLETED
    assert calls["slow"] == 2


def test_an_async_stage_past_its_timeout_is_cancelled(make_tk: MakeKernel) -> None:
    cancelled = threading.Event()

    async def sleepy(ctx: StageContext[Num, NoConfig]) -> Num:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ctx.input

    tk = make_tk(timed_workflow(sleepy, Retry(max_attempts=1)))
    run_id = start(tk, "timed")

    assert tk.kernel.execute_next_job("w1") is not None

    assert cancelled.wait(5)
    stage = stage_of(tk.store, run_id, "slow")
    assert (stage.status, stage.error.split(":")[0] if stage.error else None) == (
        Status.FAILED,
        "STAGE_TIMEOUT",
    )


def test_an_async_stage_raising_its_own_timeout_error_is_not_a_stage_timeout(
    make_tk: MakeKernel,
) -> None:
    async def own_timeout(ctx: StageContext[Num, NoConfig]) -> Num:
        raise TimeoutError("the API took too long")

    tk = make_tk(timed_workflow(own_timeout, Retry(max_attempts=1)))
    run_id = start(tk, "timed")

    tk.run_until_idle()

    assert stage_of(tk.store, run_id, "slow").error == "TimeoutError: the API took too long"


def test_a_stage_that_finishes_in_time_is_not_affected(make_tk: MakeKernel) -> None:
    tk = make_tk(timed_workflow(lambda ctx: Num(ctx.input.value + 1)))
    run_id = start(tk, "timed", value=41)

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 42})
