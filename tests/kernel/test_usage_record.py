"""``usage.record`` and the totals it keeps (SPEC §11, §12.1 "Totals are the ledger's").

Every paid provider call is recorded at once, in its own transaction: into the
ledger, the run's ``total_cost``/``total_tokens`` and the stage's metrics.
Stage code that reports its own figures (``StageResult(metrics=...)``) adds
them when it completes; the run's completion adds nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from attrs import evolve

from kernel import (
    CompletionCheck,
    RunCancel,
    RunCreate,
    RunNotFoundError,
    RunRerunFrom,
    StageContext,
    StageResult,
    Status,
    Suspend,
    Usage,
    UsageRecord,
    UsageRecordResult,
    define_async_batch_stage,
)
from kernel.ai.ledger import UsageEntry
from kernel.decisions.totals import same_attempt
from kernel.events import WorkflowCompleted, event_from_payload, event_payload
from testing import FakeClock, create_test_kernel
from tests.harness import T0, TK, events_of, make_stage, run_of, stage_of
from tests.workflows import Calls, NoConfig, Num, custom, echo, pipeline

CALL = Usage(100, 20, cached_input_tokens=40, reasoning_tokens=5)
"""125 tokens."""


def usage_record(
    run_id: str,
    call_id: str,
    cost: str,
    *,
    stage_id: str = "ask",
    attempt: int = 1,
    usage: Usage = CALL,
    note: str | None = None,
) -> UsageRecord:
    return UsageRecord(
        call_id=call_id,
        workflow_run_id=run_id,
        stage_id=stage_id,
        attempt=attempt,
        model="fake:small",
        kind="text",
        usage=usage,
        cost=Decimal(cost),
        priced=True,
        note=note,
    )


class Paying:
    """Stage code that records its calls through the kernel, as ``ctx.ai`` does after
    each provider call, then does what the test says."""

    def __init__(self) -> None:
        self.tk: TK | None = None

    def stage(
        self,
        id: str,
        costs: Callable[[int], list[str]],
        then: Callable[[StageContext[Num, NoConfig]], Any] = lambda ctx: ctx.input,
    ) -> Any:
        """A Num → Num stage whose attempt ``n`` records a call for each of ``costs(n)``
        (call ids ``{id}-{attempt}-{i}``), then returns ``then(ctx)``."""

        def execute(ctx: StageContext[Num, NoConfig]) -> Any:
            assert self.tk is not None
            for i, cost in enumerate(costs(ctx.attempt)):
                call_id = f"{id}-{ctx.attempt}-{i}"
                self.tk.dispatch(
                    usage_record(
                        ctx.workflow_run_id, call_id, cost, stage_id=id, attempt=ctx.attempt
                    )
                )
            return then(ctx)

        return custom(id, execute)

    def kernel(self, *workflows: Any) -> TK:
        self.tk = create_test_kernel(*workflows, clock=FakeClock(T0))
        return self.tk


def one_stage_run(paying: Paying) -> tuple[TK, str]:
    """A kernel with workflow ``ask`` (one stage ``ask``, which records nothing) and a
    created run of it that has not started."""
    tk = paying.kernel(pipeline("ask", paying.stage("ask", lambda attempt: [])))
    return tk, tk.dispatch(RunCreate(workflow_id="ask", input={"value": 1})).workflow_run_id


# -- recording ----------------------------------------------------------------------


def test_a_recorded_call_adds_to_the_ledger_the_run_and_the_stage() -> None:
    """SPEC §11: the call is a ledger row (stamped with the kernel's time), and adds its
    cost and tokens to the run and its cost, tokens and one call to the stage."""
    paying = Paying()
    tk, run_id = one_stage_run(paying)
    tk.run_until_idle()
    tk.clock.advance(timedelta(seconds=3))

    first = tk.dispatch(usage_record(run_id, "c1", "0.00045000"))
    second = tk.dispatch(usage_record(run_id, "c2", "0.001", usage=Usage(7, 3), note="no usage"))

    assert first == UsageRecordResult(
        recorded=True, run_total_cost=Decimal("0.00045000"), budget_left=None
    )
    assert second.run_total_cost == Decimal("0.00145000")
    run = run_of(tk.store, run_id)
    assert (run.total_cost, run.total_tokens) == (Decimal("0.00145000"), 125 + 10)
    assert stage_of(tk.store, run_id, "ask").metrics == {
        "total_cost": "0.00145000",
        "total_tokens": 135,
        "calls": 2,
    }
    assert tk.store.get_usage(run_id) == [
        UsageEntry(
            call_id="c1",
            workflow_run_id=run_id,
            stage_id="ask",
            attempt=1,
            model="fake:small",
            kind="text",
            usage=CALL,
            cost=Decimal("0.00045000"),
            priced=True,
            recorded_at=T0 + timedelta(seconds=3),
        ),
        UsageEntry(
            call_id="c2",
            workflow_run_id=run_id,
            stage_id="ask",
            attempt=1,
            model="fake:small",
            kind="text",
            usage=Usage(7, 3),
            cost=Decimal("0.001"),
            priced=True,
            recorded_at=T0 + timedelta(seconds=3),
            note="no usage",
        ),
    ]


def test_recording_a_call_id_again_changes_nothing() -> None:
    """SPEC §11: ``call_id`` is the key: the second record is ``recorded=False`` and
    writes nothing (not even a version bump)."""
    paying = Paying()
    tk, run_id = one_stage_run(paying)
    tk.run_until_idle()
    tk.dispatch(usage_record(run_id, "c1", "0.5"))
    run, stage = run_of(tk.store, run_id), stage_of(tk.store, run_id, "ask")

    again = tk.dispatch(usage_record(run_id, "c1", "0.5"))

    assert again == UsageRecordResult(
        recorded=False, run_total_cost=Decimal("0.5"), budget_left=None
    )
    assert (run_of(tk.store, run_id), stage_of(tk.store, run_id, "ask")) == (run, stage)
    assert [entry.call_id for entry in tk.store.get_usage(run_id)] == ["c1"]


@pytest.mark.parametrize("end", ["completed", "cancelled"])
def test_a_terminal_run_still_records_what_was_paid(end: str) -> None:
    """SPEC §12.1: paid is paid: a call that lands after its run completed or was
    cancelled is recorded and counted all the same."""
    paying = Paying()
    tk, run_id = one_stage_run(paying)
    if end == "completed":
        tk.run_until_idle()
    else:
        tk.dispatch(RunCancel(workflow_run_id=run_id))
    status = run_of(tk.store, run_id).status

    result = tk.dispatch(usage_record(run_id, "late", "0.25"))

    assert result.recorded
    run = run_of(tk.store, run_id)
    assert (run.status, run.total_cost, run.total_tokens) == (status, Decimal("0.25"), 125)
    assert [entry.call_id for entry in tk.store.get_usage(run_id)] == ["late"]


def test_a_call_of_a_stage_without_a_record_still_counts_for_the_run() -> None:
    """SPEC §12.1: a stage that has no record on the run yet (the run has not reached
    it) cannot hold the call's metrics, but the ledger and the run still count it."""
    paying = Paying()
    tk, run_id = one_stage_run(paying)

    tk.dispatch(usage_record(run_id, "c1", "0.1", stage_id="ask"))

    assert tk.store.get_stages(run_id) == []
    assert run_of(tk.store, run_id).total_cost == Decimal("0.1")
    assert [entry.stage_id for entry in tk.store.get_usage(run_id)] == ["ask"]


def test_a_call_for_an_unknown_run_is_refused_and_nothing_is_written() -> None:
    """SPEC §6.5: ``RunNotFoundError`` names the run; no ledger row is left behind."""
    paying = Paying()
    tk, _ = one_stage_run(paying)

    with pytest.raises(RunNotFoundError, match="workflow run 'nope' does not exist"):
        tk.dispatch(usage_record("nope", "c1", "0.1"))

    assert tk.store.get_usage("nope") == []
    with tk.store.transaction() as tx:
        assert tx.get_usage_call("c1") is None


def test_a_call_id_recorded_for_another_run_is_refused() -> None:
    """A ``call_id`` names one call of one run: reusing it for another run is a bug in
    the caller, reported with both run ids, not silently dropped."""
    paying = Paying()
    tk, first = one_stage_run(paying)
    second = tk.dispatch(RunCreate(workflow_id="ask", input={"value": 2})).workflow_run_id
    tk.dispatch(usage_record(first, "c1", "0.1"))

    with pytest.raises(ValueError, match=re.escape(f"recorded for run {first!r}, not {second!r}")):
        tk.dispatch(usage_record(second, "c1", "0.1"))

    assert run_of(tk.store, second).total_cost == Decimal(0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cost", Decimal("-0.01"), "cost: expected a finite Decimal >= 0, got Decimal('-0.01')"),
        ("cost", Decimal("NaN"), "cost: expected a finite Decimal >= 0, got Decimal('NaN')"),
        ("cost", 0.25, "cost: expected a finite Decimal >= 0, got 0.25"),
        ("kind", "chat", "kind: expected one of text|object|embed|batch, got 'chat'"),
        ("usage", {"input_tokens": 1}, "usage: expected a Usage, got {'input_tokens': 1}"),
        ("call_id", "", "call_id: expected a non-empty string, got ''"),
        ("attempt", -1, "attempt: expected an int >= 0, got -1"),
        ("priced", "yes", "priced: expected a bool, got 'yes'"),
    ],
)
def test_a_bad_usage_record_is_refused_when_built(field: str, value: Any, message: str) -> None:
    """SPEC §5: commands are checked when built; the message names field and value."""
    good = usage_record("run-1", "c1", "0.1")

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        evolve(good, **{field: value})


# -- totals across attempts, completion and reruns ------------------------------------


def test_calls_of_a_failed_attempt_stay_counted_after_the_retry_succeeds() -> None:
    """SPEC §12.1: the first attempt pays for a call and fails; the retry pays for two
    and reports a figure of its own. Every call counts once, on the run and on the
    stage, and the attempts' calls do not make the retry's finish look stale."""
    paying = Paying()

    def then(ctx: StageContext[Num, NoConfig]) -> Any:
        if ctx.attempt == 1:
            raise RuntimeError("the model's answer was useless")
        return StageResult(ctx.input, metrics={"total_cost": 0.5, "total_tokens": 10})

    costs = {1: ["0.001"], 2: ["0.002", "0.003"]}
    tk = paying.kernel(pipeline("ask", paying.stage("ask", lambda n: costs[n], then)))
    run_id = tk.dispatch(RunCreate(workflow_id="ask", input={"value": 1})).workflow_run_id

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.total_cost, run.total_tokens) == (
        Status.COMPLETED,
        Decimal("0.506"),
        3 * 125 + 10,
    )
    stage = stage_of(tk.store, run_id, "ask")
    assert (stage.status, stage.attempt) == (Status.COMPLETED, 2)
    assert stage.metrics == {"total_cost": "0.506", "total_tokens": 385, "calls": 3}
    assert [(e.call_id, e.attempt) for e in tk.store.get_usage(run_id)] == [
        ("ask-1-0", 1),
        ("ask-2-0", 2),
        ("ask-2-1", 2),
    ]


def test_reported_metrics_and_recorded_calls_are_each_counted_once() -> None:
    """SPEC §12.1: a stage's recorded calls and the figures it reports itself both
    count, once each: ``workflow:completed`` carries the run's totals as they stand."""
    paying = Paying()

    def then(ctx: StageContext[Num, NoConfig]) -> Any:
        return StageResult(ctx.input, metrics={"total_cost": "0.5", "total_tokens": 10})

    calls = Calls()
    tk = paying.kernel(
        pipeline("ask", paying.stage("ask", lambda n: ["0.001"], then), echo(calls, "after"))
    )
    run_id = tk.dispatch(RunCreate(workflow_id="ask", input={"value": 1})).workflow_run_id

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.total_cost, run.total_tokens) == (Decimal("0.501"), 135)
    [completed] = events_of(tk.store, run_id, "workflow:completed")
    assert (completed.payload["total_cost"], completed.payload["total_tokens"]) == ("0.501", 135)
    assert stage_of(tk.store, run_id, "after").metrics == {}


def test_a_rerun_keeps_what_the_replaced_stages_paid() -> None:
    """SPEC §5.5, §12.1: ``run.rerunFrom`` deletes the stage records but not the spend:
    the rerun stage's new calls add to it, and its new record counts only its own."""
    paying = Paying()
    calls = Calls()
    tk = paying.kernel(pipeline("ask", echo(calls, "first"), paying.stage("ask", lambda n: ["1"])))
    run_id = tk.dispatch(RunCreate(workflow_id="ask", input={"value": 1})).workflow_run_id
    tk.run_until_idle()
    assert run_of(tk.store, run_id).total_cost == Decimal(1)

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="ask"))
    assert run_of(tk.store, run_id).total_cost == Decimal(1)
    tk.clock.advance(timedelta(seconds=1))
    # The rerun's attempt 1 makes call id "ask-1-0" again: already paid, not again.
    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.total_cost, run.total_tokens) == (Status.COMPLETED, Decimal(1), 125)
    assert stage_of(tk.store, run_id, "ask").metrics == {}


def test_a_rerun_with_new_calls_adds_them() -> None:
    """SPEC §12.1: calls made by the rerun (new call ids) are paid on top."""
    paying = Paying()
    reruns = [0]

    def costs(attempt: int) -> list[str]:
        return ["1"] if reruns[0] == 0 else []

    def then(ctx: StageContext[Num, NoConfig]) -> Any:
        assert paying.tk is not None
        if reruns[0]:
            paying.tk.dispatch(
                usage_record(ctx.workflow_run_id, "rerun-call", "0.5", stage_id="ask")
            )
        return ctx.input

    tk = paying.kernel(pipeline("ask", paying.stage("ask", costs, then)))
    run_id = tk.dispatch(RunCreate(workflow_id="ask", input={"value": 1})).workflow_run_id
    tk.run_until_idle()
    reruns[0] = 1

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="ask"))
    tk.run_until_idle()

    assert run_of(tk.store, run_id).total_cost == Decimal("1.5")
    assert stage_of(tk.store, run_id, "ask").metrics == {
        "total_cost": "0.5",
        "total_tokens": 125,
        "calls": 1,
    }


def test_calls_recorded_during_a_completion_check_do_not_void_the_check() -> None:
    """SPEC §12: a batch stage records its items' usage while its check runs; the
    check's result still completes the stage at once (it is not taken for another
    poller's claim and checked again)."""
    paying = Paying()
    checks: list[int] = []

    def execute(ctx: StageContext[Num, NoConfig]) -> Any:
        return Suspend(state={"value": ctx.input.value}, poll_interval=timedelta(seconds=30))

    def check(state: Any, ctx: StageContext[Num, NoConfig]) -> CompletionCheck[Num]:
        assert paying.tk is not None
        checks.append(ctx.attempt)
        for item in ("a", "b"):
            paying.tk.dispatch(
                usage_record(ctx.workflow_run_id, f"batch:{item}", "0.0005", stage_id="batch")
            )
        return CompletionCheck(ready=True, output=Num(state["value"]), metrics={"items": 2})

    stage = define_async_batch_stage(
        id="batch",
        name="Batch",
        input=Num,
        output=Num,
        config=NoConfig,
        execute=execute,
        check_completion=check,
    )
    tk = paying.kernel(pipeline("batch", stage))
    run_id = tk.dispatch(RunCreate(workflow_id="batch", input={"value": 1})).workflow_run_id

    tk.run_until_idle()

    assert checks == [1]
    assert run_of(tk.store, run_id).status == Status.COMPLETED
    assert run_of(tk.store, run_id).total_cost == Decimal("0.0010")
    assert stage_of(tk.store, run_id, "batch").metrics == {
        "total_cost": "0.0010",
        "total_tokens": 250,
        "calls": 2,
        "items": 2,
    }


# -- what makes a finish stale ----------------------------------------------------


def test_only_recorded_calls_leave_an_attempt_current() -> None:
    """A finish is discarded when its stage record changed since the start; calls
    recorded meanwhile are the one change that does not count: each bumps the
    version by one and counts one call."""
    started = make_stage("ask", status=Status.RUNNING, version=2)
    with_calls = evolve(started, version=4, metrics={"calls": 2, "total_tokens": 9})
    released_and_restarted = evolve(started, version=4)
    restarted_with_a_call = evolve(started, version=5, metrics={"calls": 1})
    cancelled = evolve(started, version=3, status=Status.CANCELLED)
    other_attempt = evolve(started, attempt=2)

    assert same_attempt(started, started)
    assert same_attempt(with_calls, started)
    assert not same_attempt(released_and_restarted, started)
    assert not same_attempt(restarted_with_a_call, started)
    assert not same_attempt(cancelled, started)
    assert not same_attempt(other_attempt, started)


# -- the completed event's money ------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        pytest.param("0.00045000", Decimal("0.00045000"), id="decimal string"),
        pytest.param(0.25, Decimal("0.25"), id="float of an older payload"),
        pytest.param(3, Decimal(3), id="int"),
    ],
)
def test_workflow_completed_total_cost_travels_as_a_decimal_string(
    stored: Any, read: Decimal
) -> None:
    """SPEC §12.1: ``WorkflowCompleted.total_cost`` is a ``Decimal``; its outbox payload
    holds the exact decimal string, and reading the payload back gives the Decimal
    (older payloads held a float)."""
    event = WorkflowCompleted(
        workflow_run_id="r1", timestamp=T0, duration_ms=5, total_cost=read, total_tokens=9
    )
    payload = event_payload(event)

    assert payload["total_cost"] == str(read)
    assert event_from_payload(payload) == event
    older = event_from_payload({**payload, "total_cost": stored})
    assert older == event
    assert isinstance(older, WorkflowCompleted) and type(older.total_cost) is Decimal
