"""``job.execute``: start, user code, finish (SPEC §5.6)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from kernel import (
    CompletionCheck,
    InvalidInputError,
    JobExecute,
    JobStatus,
    RunCancel,
    RunNotFoundError,
    StageContext,
    StageNotFoundError,
    StagePollSuspended,
    StageResult,
    Status,
    Suspend,
    WorkflowNotFoundError,
    define_async_batch_stage,
    define_stage,
)
from kernel.decisions.lifecycle import output_key
from kernel.effects import EnqueueJob, InsertRun
from testing import FakeClock
from tests.harness import (
    T0,
    MakeKernel,
    event_types,
    events_of,
    insert,
    job_of,
    make_job,
    make_run,
    outbox,
    payload_without_time,
    run_of,
    stage_of,
    start,
)
from tests.workflows import (
    Batch,
    Calls,
    NoConfig,
    Num,
    add,
    batch,
    custom,
    doubled,
    failing,
    linear,
    pipeline,
)


def execute(tk: Any, run_id: str, stage_id: str, **fields: Any) -> Any:
    """Dispatch ``job.execute`` for one stage of a run, with the run's config map."""
    run = run_of(tk.store, run_id)
    return tk.dispatch(
        JobExecute(
            workflow_run_id=run_id,
            workflow_id=run.workflow_id,
            stage_id=stage_id,
            config=run.config,
            **fields,
        )
    )


def batch_like(id: str, execute_fn: Any) -> Any:
    """An async-batch stage running ``execute_fn``; its checks never report ready."""
    return define_async_batch_stage(
        id=id,
        name=id.title(),
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute_fn,
        check_completion=lambda state, ctx: CompletionCheck(ready=False),
    )


# -- completed -----------------------------------------------------------------------


def test_execute_completes_the_stage_with_its_output(make_tk: MakeKernel) -> None:
    """SPEC §5.6: outcome ``completed`` with the output in JSON form."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear", 10)

    result = execute(tk, run_id, "first")

    assert (result.outcome, result.output, result.error, result.next_poll_at) == (
        "completed",
        {"value": 11},
        None,
        None,
    )
    assert calls["first"] == 1


def test_execute_names_the_job_it_queued_for_the_next_stage(make_tk: MakeKernel) -> None:
    """A host may look for it at once (``queued_jobs``); the last stage queues none."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", 10)

    first = execute(tk, run_id, "first")

    assert first.queued_jobs == (job_of(tk.store, run_id, "second").id,)
    execute(tk, run_id, "second")
    assert execute(tk, run_id, "third").queued_jobs == ()


def test_execute_stores_the_output_and_completes_the_stage_record(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.6: the stage is COMPLETED and its output kept in the blob store."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", 10)

    execute(tk, run_id, "first")

    stage = stage_of(tk.store, run_id, "first")
    assert (stage.status, stage.attempt, stage.output_ref, stage.completed_at) == (
        Status.COMPLETED,
        1,
        output_key(run_id, "first"),
        T0,
    )
    assert tk.store.get_blob(output_key(run_id, "first")) == (True, {"value": 11})


def test_execute_writes_stage_started_then_stage_completed(make_tk: MakeKernel) -> None:
    """SPEC §5.6, §3.3: the start and the finish each write their event."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")

    execute(tk, run_id, "first")

    started, completed = outbox(tk.store, run_id)[2:]
    assert (started.sequence, completed.sequence) == (3, 4)
    assert payload_without_time(started) == {
        "type": "stage:started",
        "workflow_run_id": run_id,
        "stage_id": "first",
        "stage_name": "First",
        "stage_number": 1,
    }
    assert payload_without_time(completed) == {
        "type": "stage:completed",
        "workflow_run_id": run_id,
        "stage_id": "first",
        "stage_name": "First",
        "duration_ms": 0,
    }


def test_execute_commits_running_before_user_code_runs(make_tk: MakeKernel) -> None:
    """SPEC §5.6: observers see RUNNING and ``stage:started`` while the stage works."""
    seen: list[tuple[Status, list[str]]] = []
    kernels: list[Any] = []

    def observe(ctx: StageContext[Num, NoConfig]) -> Num:
        store = kernels[0].store
        seen.append(
            (
                stage_of(store, ctx.workflow_run_id, "observe").status,
                event_types(store, ctx.workflow_run_id),
            )
        )
        return ctx.input

    tk = make_tk(pipeline("observed", custom("observe", observe)))
    kernels.append(tk)
    run_id = start(tk, "observed")

    execute(tk, run_id, "observe")

    assert seen == [(Status.RUNNING, ["workflow:created", "workflow:started", "stage:started"])]


def test_execute_measures_the_stage_duration_on_the_clock(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §3.2: a stage's duration runs from its start to its finish."""

    def slow(ctx: StageContext[Num, NoConfig]) -> Num:
        clock.advance(timedelta(milliseconds=250))
        return ctx.input

    tk = make_tk(pipeline("slow", custom("slow", slow)))
    run_id = start(tk, "slow")

    execute(tk, run_id, "slow")

    assert stage_of(tk.store, run_id, "slow").duration_ms == 250
    assert events_of(tk.store, run_id, "stage:completed")[0].payload["duration_ms"] == 250


def test_execute_of_the_last_stage_completes_the_run(make_tk: MakeKernel) -> None:
    """SPEC §10.1: the finish transitions the run when its group is done."""
    tk = make_tk(pipeline("one", add(Calls(), "only")))
    run_id = start(tk, "one", 5)

    execute(tk, run_id, "only")

    run = run_of(tk.store, run_id)
    assert (run.status, run.output) == (Status.COMPLETED, {"value": 6})
    assert event_types(tk.store, run_id)[-2:] == ["stage:completed", "workflow:completed"]


def test_execute_of_a_middle_stage_queues_the_next_group(make_tk: MakeKernel) -> None:
    """SPEC §10.1: the finish opens the next group in the same transaction."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")

    execute(tk, run_id, "first")

    assert stage_of(tk.store, run_id, "second").status == Status.PENDING
    assert job_of(tk.store, run_id, "second").status == JobStatus.QUEUED


def test_execute_with_a_job_settles_the_job(make_tk: MakeKernel) -> None:
    """SPEC §5.6: with ``job_id`` the job is completed in the finish transaction."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")
    job = job_of(tk.store, run_id, "first")

    execute(tk, run_id, "first", job_id=job.id)

    settled = job_of(tk.store, run_id, "first")
    assert (settled.status, settled.attempt) == (JobStatus.COMPLETED, 1)


def test_execute_gives_the_stage_its_merged_config(make_tk: MakeKernel) -> None:
    """SPEC §10.1: the stage sees its own config entry merged with its defaults."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", 1, config={"first": {"amount": 40}})

    assert execute(tk, run_id, "first").output == {"value": 41}


def test_execute_falls_back_to_config_defaults(make_tk: MakeKernel) -> None:
    """SPEC §10.1: a config map without the stage's entry leaves its defaults."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", 1)

    result = tk.dispatch(
        JobExecute(workflow_run_id=run_id, workflow_id="linear", stage_id="first", config={})
    )

    assert result.output == {"value": 2}


def test_execute_feeds_a_stage_the_previous_output(make_tk: MakeKernel) -> None:
    """SPEC §4.3: a stage after a single stage receives that stage's output."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", 1)
    execute(tk, run_id, "first")

    assert execute(tk, run_id, "second").output == {"value": 3}


def test_execute_feeds_a_stage_after_a_parallel_group_a_mapping(make_tk: MakeKernel) -> None:
    """SPEC §4.3: after a parallel group the input is ``{stage_id: output}``."""
    received: list[Any] = []

    def collect(ctx: StageContext[dict[str, Any], NoConfig]) -> Num:
        received.append(ctx.input)
        return Num(sum(item["value"] for item in ctx.input.values()))

    gather = define_stage(
        id="gather", name="Gather", input=dict, output=Num, config=NoConfig, execute=collect
    )
    calls = Calls()
    tk = make_tk(pipeline("gathered", [add(calls, "a"), add(calls, "b")], gather))
    run_id = start(tk, "gathered", 1, config={"b": {"amount": 5}})
    execute(tk, run_id, "a")
    execute(tk, run_id, "b")

    assert execute(tk, run_id, "gather").output == {"value": 8}
    assert received == [{"a": {"value": 2}, "b": {"value": 6}}]


def test_execute_runs_an_async_stage(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``execute`` may be an ``async def``."""
    tk = make_tk(pipeline("async", doubled(Calls())))
    run_id = start(tk, "async", 21)

    assert execute(tk, run_id, "double").output == {"value": 42}


def test_execute_passes_the_context_identity(make_tk: MakeKernel) -> None:
    """SPEC §4.1: the context names the run, stage, position and attempt."""
    seen: list[tuple[str, str, str, int, int]] = []

    def note(ctx: StageContext[Num, NoConfig]) -> Num:
        seen.append(
            (ctx.workflow_run_id, ctx.stage_id, ctx.stage_name, ctx.stage_number, ctx.attempt)
        )
        return ctx.input

    calls = Calls()
    tk = make_tk(pipeline("ctx", add(calls, "first"), custom("note", note)))
    run_id = start(tk, "ctx")
    execute(tk, run_id, "first")

    execute(tk, run_id, "note")

    assert seen == [(run_id, "note", "Note", 2, 1)]


def test_execute_of_a_mapping_output_structures_it(make_tk: MakeKernel) -> None:
    """SPEC §4.1: a mapping that structures into the output type is an output."""
    tk = make_tk(pipeline("mapping", custom("map", lambda ctx: {"value": ctx.input.value + 7})))
    run_id = start(tk, "mapping", 1)

    assert execute(tk, run_id, "map").output == {"value": 8}


# -- failed ---------------------------------------------------------------------------


def test_execute_of_a_raising_stage_reports_failed(make_tk: MakeKernel) -> None:
    """SPEC §4.1: raising marks the attempt failed; the error names type and message."""
    tk = make_tk(pipeline("bad", failing(Calls(), "bad", "disk full")))
    run_id = start(tk, "bad")

    result = execute(tk, run_id, "bad", job_id=job_of(tk.store, run_id, "bad").id)

    assert (result.outcome, result.error, result.output) == (
        "failed",
        "RuntimeError: disk full",
        None,
    )


def test_execute_failure_with_attempts_left_requeues_with_backoff(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.6: the job is re-queued with backoff and the stage is PENDING again."""
    tk = make_tk(pipeline("bad", failing(Calls(), "bad")))
    run_id = start(tk, "bad")
    clock.advance(timedelta(seconds=10))

    execute(tk, run_id, "bad", job_id=job_of(tk.store, run_id, "bad").id)

    job = job_of(tk.store, run_id, "bad")
    assert (job.status, job.attempt, job.last_error) == (
        JobStatus.QUEUED,
        1,
        "RuntimeError: boom",
    )
    assert job.available_at == T0 + timedelta(seconds=11)
    stage = stage_of(tk.store, run_id, "bad")
    assert (stage.status, stage.error) == (Status.PENDING, "RuntimeError: boom")
    assert run_of(tk.store, run_id).status == Status.RUNNING


def test_execute_failure_with_attempts_left_writes_will_retry(make_tk: MakeKernel) -> None:
    """SPEC §5.6: ``stage:failed`` says whether the stage will be retried."""
    tk = make_tk(pipeline("bad", failing(Calls(), "bad")))
    run_id = start(tk, "bad")

    execute(tk, run_id, "bad", job_id=job_of(tk.store, run_id, "bad").id)

    assert event_types(tk.store, run_id)[-2:] == ["stage:started", "stage:failed"]
    [failed] = events_of(tk.store, run_id, "stage:failed")
    payload = payload_without_time(failed)
    traceback = payload.pop("traceback")
    assert payload == {
        "type": "stage:failed",
        "workflow_run_id": run_id,
        "stage_id": "bad",
        "stage_name": "Bad",
        "error": "RuntimeError: boom",
        "attempt": 1,
        "will_retry": True,
    }
    assert traceback.endswith("RuntimeError: boom\n")


def test_execute_failure_with_attempts_left_names_its_job_back_in_the_queue(
    make_tk: MakeKernel,
) -> None:
    tk = make_tk(pipeline("bad", failing(Calls(), "bad")))
    run_id = start(tk, "bad")
    job = job_of(tk.store, run_id, "bad")

    result = execute(tk, run_id, "bad", job_id=job.id)

    assert job_of(tk.store, run_id, "bad").status == JobStatus.QUEUED
    assert result.queued_jobs == (job.id,)


def test_execute_failure_without_a_job_fails_the_stage_and_run(make_tk: MakeKernel) -> None:
    """SPEC §5.6: without a job there is nothing to re-queue, so the failure is final."""
    tk = make_tk(pipeline("bad", failing(Calls(), "bad")))
    run_id = start(tk, "bad")

    execute(tk, run_id, "bad")

    assert stage_of(tk.store, run_id, "bad").status == Status.FAILED
    run = run_of(tk.store, run_id)
    assert (run.status, run.error) == (Status.FAILED, "RuntimeError: boom")
    assert event_types(tk.store, run_id)[-2:] == ["stage:failed", "workflow:failed"]
    assert events_of(tk.store, run_id, "stage:failed")[0].payload["will_retry"] is False


def test_execute_of_a_wrongly_typed_output_fails(make_tk: MakeKernel) -> None:
    """SPEC §4.1: an output that does not structure into the output type is a failure."""
    tk = make_tk(pipeline("typo", custom("typo", lambda ctx: {"value": "many"})))
    run_id = start(tk, "typo")

    result = execute(tk, run_id, "typo")

    assert result.error == (
        "InvalidOutputError: stage 'typo' returned output.value: expected int, got 'many'"
    )


def test_execute_of_suspend_from_a_plain_stage_fails(make_tk: MakeKernel) -> None:
    """SPEC §4.1: only async-batch stages may return ``Suspend``."""
    tk = make_tk(
        pipeline(
            "sneaky",
            custom("sneaky", lambda ctx: Suspend({}, poll_interval=timedelta(seconds=1))),
        )
    )
    run_id = start(tk, "sneaky")

    result = execute(tk, run_id, "sneaky")

    assert result.outcome == "failed"
    assert "returned Suspend but is not an async-batch stage" in (result.error or "")


def test_suspend_from_a_plain_stage_fails_without_a_retry(make_tk: MakeKernel) -> None:
    """SPEC §4.1, §5.6: like an output of the wrong type, ``Suspend`` from a stage that
    cannot be polled fails for good at once: no backoff and no second attempt."""
    calls = Calls()

    def sneaky(ctx: StageContext[Num, NoConfig]) -> Suspend:
        calls.hit("sneaky")
        return Suspend({}, poll_interval=timedelta(seconds=1))

    tk = make_tk(pipeline("sneaky", custom("sneaky", sneaky)))
    run_id = start(tk, "sneaky")

    tk.run_until_idle()

    assert calls["sneaky"] == 1
    assert job_of(tk.store, run_id, "sneaky").status == JobStatus.FAILED
    [failed] = events_of(tk.store, run_id, "stage:failed")
    assert failed.payload["will_retry"] is False


def test_a_stage_that_mutates_its_input_changes_nothing_stored(make_tk: MakeKernel) -> None:
    """SPEC §3.2: the run input is the JSON value ``run.create`` stored; a stage that
    changes the object it was given in place changes nothing, on every store, so a
    retry sees the same input."""
    seen: list[object] = []

    def mutate(ctx: StageContext[dict[str, Any], NoConfig]) -> dict[str, Any]:
        seen.append(dict(ctx.input))
        ctx.input["value"] = -1
        raise RuntimeError("try again")

    stage = define_stage(
        id="mutate", name="Mutate", input=dict, output=dict, config=NoConfig, execute=mutate
    )
    tk = make_tk(pipeline("mutate", stage, input=dict))
    run_id = start(tk, "mutate", 7)

    tk.run_until_idle()

    assert seen == [{"value": 7}] * 3
    assert run_of(tk.store, run_id).input == {"value": 7}


class Opaque:
    """A value that no store can write as JSON."""

    def __repr__(self) -> str:
        return "Opaque()"


def test_execute_of_metrics_no_store_can_write_fails_the_attempt(make_tk: MakeKernel) -> None:
    """SPEC §3.2, §4.1: metrics are stored as JSON; a value that is not JSON fails the
    attempt for good, like a wrongly typed output, on every store (the finish
    transaction does not break, leaving the stage RUNNING and its job leased)."""
    tk = make_tk(
        pipeline(
            "opaque",
            custom("opaque", lambda ctx: StageResult(ctx.input, metrics={"model": Opaque()})),
        )
    )
    run_id = start(tk, "opaque")

    taken = tk.kernel.execute_next_job("w1")

    assert taken is not None
    assert taken[1].error == (
        "InvalidOutputError: stage 'opaque' returned metrics['model']: "
        "expected a JSON value, got Opaque()"
    )
    assert stage_of(tk.store, run_id, "opaque").status == Status.FAILED
    assert job_of(tk.store, run_id, "opaque").status == JobStatus.FAILED
    assert run_of(tk.store, run_id).status == Status.FAILED


@pytest.mark.parametrize(
    ("metrics", "problem"),
    [
        pytest.param(
            {"total_cost": "lots"},
            "metrics['total_cost']: expected a number or a decimal string >= 0, got 'lots'",
            id="cost",
        ),
        pytest.param(
            {"total_cost": -0.5},
            "metrics['total_cost']: expected a number or a decimal string >= 0, got -0.5",
            id="negative cost",
        ),
        pytest.param(
            {"total_tokens": 1.5},
            "metrics['total_tokens']: expected an int >= 0, got 1.5",
            id="tokens",
        ),
        pytest.param(
            {"calls": "two"}, "metrics['calls']: expected an int >= 0, got 'two'", id="calls"
        ),
    ],
)
def test_execute_of_run_totals_of_the_wrong_type_fails_the_attempt(
    make_tk: MakeKernel, metrics: dict[str, Any], problem: str
) -> None:
    """SPEC §4.1, §12.1: ``total_cost``, ``total_tokens`` and ``calls`` add up into the
    stage and the run, so a value that cannot be added fails the attempt for good where
    it is returned (not the run's completion, which would leave the finishing stage
    RUNNING)."""
    tk = make_tk(
        pipeline("totals", custom("totals", lambda ctx: StageResult(ctx.input, metrics=metrics)))
    )
    run_id = start(tk, "totals")

    taken = tk.kernel.execute_next_job("w1")

    assert taken is not None
    assert taken[1].error == f"InvalidOutputError: stage 'totals' returned {problem}"
    assert (stage_of(tk.store, run_id, "totals").status, run_of(tk.store, run_id).status) == (
        Status.FAILED,
        Status.FAILED,
    )


def test_execute_of_a_suspend_state_no_store_can_write_fails_the_attempt(
    make_tk: MakeKernel,
) -> None:
    """SPEC §4.2: the suspended state is stored as JSON; a value that is not JSON
    fails the attempt instead of the finish transaction."""
    suspend = Suspend({"handle": Opaque()}, poll_interval=timedelta(seconds=5))
    tk = make_tk(pipeline("opaque", batch_like("opaque", lambda ctx: suspend)))
    run_id = start(tk, "opaque")

    taken = tk.kernel.execute_next_job("w1")

    assert taken is not None
    assert taken[1].error == (
        "InvalidOutputError: stage 'opaque' returned state['handle']: "
        "expected a JSON value, got Opaque()"
    )
    assert stage_of(tk.store, run_id, "opaque").status == Status.FAILED


def test_progress_details_no_store_can_write_fail_the_attempt(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.progress`` details become a JSON event payload; a value that
    is not JSON is refused where it is reported, so the attempt fails there."""

    def report(ctx: StageContext[Num, NoConfig]) -> Num:
        ctx.progress(0.5, "half way", {"at": Opaque()})
        return ctx.input

    tk = make_tk(pipeline("opaque", custom("opaque", report)))
    run_id = start(tk, "opaque")

    result = execute(tk, run_id, "opaque")

    assert result.error == "ValueError: details['at']: expected a JSON value, got Opaque()"
    assert events_of(tk.store, run_id, "stage:progress") == []


def test_check_completion_gets_the_suspended_state_in_json_form(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §3.2, §4.2: records hold JSON, so ``check_completion`` receives the state
    as the stored JSON value on every store, whatever object ``Suspend`` was given."""
    seen: list[object] = []

    def check(state: object, ctx: StageContext[Num, NoConfig]) -> CompletionCheck[Num]:
        seen.append(state)
        return CompletionCheck(ready=True, output=Num(1))

    stage = define_async_batch_stage(
        id="typed",
        name="Typed",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=lambda ctx: Suspend(ctx.input, poll_interval=timedelta(seconds=5)),
        check_completion=check,
    )
    tk = make_tk(pipeline("typed", stage))
    run_id = start(tk, "typed", 3)
    tk.kernel.execute_next_job("w1")
    clock.advance(timedelta(seconds=5))

    tk.dispatch(StagePollSuspended())

    assert stage_of(tk.store, run_id, "typed").status == Status.COMPLETED
    assert seen == [{"value": 3}]


# -- suspended ------------------------------------------------------------------------


def test_execute_of_a_suspending_stage_parks_it(make_tk: MakeKernel) -> None:
    """SPEC §4.2, §5.6: the stage is SUSPENDED with its state and poll times."""
    control = Batch(poll_interval=timedelta(seconds=30), max_wait=timedelta(minutes=5))
    tk = make_tk(pipeline("batchy", batch(Calls(), control)))
    run_id = start(tk, "batchy", 4)

    result = execute(tk, run_id, "batch", job_id=job_of(tk.store, run_id, "batch").id)

    assert (result.outcome, result.next_poll_at) == ("suspended", T0 + timedelta(seconds=30))
    stage = stage_of(tk.store, run_id, "batch")
    assert (stage.status, stage.suspended_state, stage.poll_interval) == (
        Status.SUSPENDED,
        {"value": 4},
        timedelta(seconds=30),
    )
    assert (stage.next_poll_at, stage.max_wait_until) == (
        T0 + timedelta(seconds=30),
        T0 + timedelta(minutes=5),
    )
    job = job_of(tk.store, run_id, "batch")
    assert (job.status, job.available_at) == (JobStatus.SUSPENDED, T0 + timedelta(seconds=30))


def test_execute_of_a_suspending_stage_suspends_the_run(make_tk: MakeKernel) -> None:
    """SPEC §3.3: ``stage:suspended`` and, with nothing else running, ``workflow:suspended``."""
    tk = make_tk(pipeline("batchy", batch(Calls(), Batch())))
    run_id = start(tk, "batchy")

    execute(tk, run_id, "batch")

    assert run_of(tk.store, run_id).status == Status.SUSPENDED
    suspended, parked = outbox(tk.store, run_id)[-2:]
    assert payload_without_time(suspended) == {
        "type": "stage:suspended",
        "workflow_run_id": run_id,
        "stage_id": "batch",
        "stage_name": "Batch",
        "next_poll_at": (T0 + timedelta(seconds=30)).isoformat(),
        "signal": None,
    }
    assert payload_without_time(parked) == {
        "type": "workflow:suspended",
        "workflow_run_id": run_id,
        "stage_id": "batch",
    }


def test_execute_honours_an_explicit_next_poll_at(make_tk: MakeKernel) -> None:
    """SPEC §4.2: ``Suspend(next_poll_at=...)`` wins over ``now + poll_interval``."""
    when = T0 + timedelta(hours=2)
    tk = make_tk(
        pipeline(
            "dated",
            batch_like("dated", lambda ctx: Suspend({}, timedelta(seconds=5), next_poll_at=when)),
        )
    )
    run_id = start(tk, "dated")

    assert execute(tk, run_id, "dated").next_poll_at == when


# -- skipped --------------------------------------------------------------------------


def test_execute_for_a_cancelled_run_is_skipped_without_user_code(make_tk: MakeKernel) -> None:
    """SPEC §5.6: user code never runs for a terminal run (outcome ``skipped``)."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")
    job = job_of(tk.store, run_id, "first")
    tk.dispatch(RunCancel(workflow_run_id=run_id))
    events = event_types(tk.store, run_id)

    result = execute(tk, run_id, "first", job_id=job.id)

    assert result.outcome == "skipped"
    assert calls.total == 0
    assert event_types(tk.store, run_id) == events


def test_execute_of_a_completed_stage_is_skipped(make_tk: MakeKernel) -> None:
    """SPEC §5.6: a stage that already completed is not run twice."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")
    execute(tk, run_id, "first")

    assert execute(tk, run_id, "first").outcome == "skipped"
    assert calls["first"] == 1


def test_execute_of_a_suspended_stage_is_skipped(make_tk: MakeKernel) -> None:
    """SPEC §4.2: a suspended stage resumes through polling, not by executing again."""
    calls = Calls()
    tk = make_tk(pipeline("batchy", batch(calls, Batch())))
    run_id = start(tk, "batchy")
    execute(tk, run_id, "batch")

    assert execute(tk, run_id, "batch").outcome == "skipped"
    assert calls["batch"] == 1


# -- errors ---------------------------------------------------------------------------


def test_execute_for_a_missing_run_raises_run_not_found(make_tk: MakeKernel) -> None:
    """SPEC §6.5: the run must exist; nothing is written."""
    tk = make_tk(linear(Calls()))

    with pytest.raises(RunNotFoundError, match="workflow run 'ghost' does not exist"):
        tk.dispatch(JobExecute(workflow_run_id="ghost", workflow_id="linear", stage_id="first"))

    assert tk.store.get_outbox() == []


def test_execute_for_an_unknown_workflow_raises_workflow_not_found(make_tk: MakeKernel) -> None:
    """SPEC §6.5: the workflow must be registered; the run is left as it was."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")
    before = event_types(tk.store, run_id)

    with pytest.raises(WorkflowNotFoundError, match="workflow 'other' is not registered"):
        tk.dispatch(JobExecute(workflow_run_id=run_id, workflow_id="other", stage_id="first"))

    assert event_types(tk.store, run_id) == before


def test_execute_naming_another_workflow_never_runs_its_code_on_the_run(
    make_tk: MakeKernel,
) -> None:
    """A ``workflow_id`` that is registered but is not the run's own is refused, naming
    both workflows; no code runs and nothing is written (issue: kernel shell redesign)."""
    theirs = Calls()
    tk = make_tk(linear(Calls()), pipeline("other", add(theirs, "first")))
    run_id = start(tk, "linear")
    before = (event_types(tk.store, run_id), tk.store.get_stages(run_id))

    expected = "workflow_id: run .* belongs to workflow 'linear', not 'other'"
    with pytest.raises(InvalidInputError, match=expected):
        tk.dispatch(JobExecute(workflow_run_id=run_id, workflow_id="other", stage_id="first"))

    assert theirs.attempts == []
    assert (event_types(tk.store, run_id), tk.store.get_stages(run_id)) == before


def test_execute_for_an_unknown_stage_raises_stage_not_found(make_tk: MakeKernel) -> None:
    """SPEC §6.5: the stage must belong to the workflow; no stage record is created."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")

    with pytest.raises(StageNotFoundError, match="stage 'fifth' is not part of workflow 'linear'"):
        execute(tk, run_id, "fifth")

    assert [s.stage_id for s in tk.store.get_stages(run_id)] == ["first"]


@pytest.mark.parametrize("field", ["workflow_run_id", "workflow_id", "stage_id"])
def test_execute_command_refuses_empty_ids(field: str) -> None:
    """SPEC §5: a bad field fails where the command is made."""
    values = {"workflow_run_id": "r", "workflow_id": "w", "stage_id": "s", field: ""}

    with pytest.raises(ValueError, match=f"{field}: expected a non-empty string, got ''"):
        JobExecute(
            workflow_run_id=values["workflow_run_id"],
            workflow_id=values["workflow_id"],
            stage_id=values["stage_id"],
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(None, "config: expected a mapping of stage id to values, got None", id="none"),
        pytest.param({"s": 5}, "config.s: expected a mapping, got 5", id="entry not a mapping"),
    ],
)
def test_execute_command_refuses_a_config_that_is_not_a_config_map(
    config: Any, message: str
) -> None:
    """SPEC §10.1: ``JobExecute.config`` is the run's config map (``{stage_id: values}``);
    anything else fails where the command is made, not inside the start transaction."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        JobExecute(workflow_run_id="r", workflow_id="w", stage_id="s", config=config)


def test_a_job_of_a_workflow_the_worker_does_not_know_is_not_leased(
    make_tk: MakeKernel,
) -> None:
    """SPEC §19: the queued job stays QUEUED, unleased, for a worker that registers its
    workflow; its run is left as it is (tests/commands/test_rolling_deploys.py). A job
    leased anyway (``job.lease``) is still failed with its run: tests/kernel/test_shell_rules.py."""
    tk = make_tk(linear(Calls()))
    insert(
        tk.store,
        InsertRun(make_run("retired")),
        EnqueueJob(make_job("first", workflow_id="retired")),
    )

    assert tk.kernel.execute_next_job("w1") is None

    [job] = tk.store.get_jobs("run-1")
    assert (job.status, job.worker_id) == (JobStatus.QUEUED, None)
    assert run_of(tk.store, "run-1").status == Status.RUNNING
    assert event_types(tk.store, "run-1") == []
