"""``run.rerunFrom`` (SPEC §5.5, §10.1)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from kernel import (
    InvalidStateError,
    JobStatus,
    RunCancel,
    RunNotFoundError,
    RunRerunFrom,
    StageNotFoundError,
    Status,
    WorkflowNotFoundError,
)
from kernel.decisions.lifecycle import output_key
from kernel.effects import InsertRun
from testing import FakeClock
from tests.harness import (
    T0,
    MakeKernel,
    create,
    insert,
    make_run,
    outbox,
    run_of,
    start,
)
from tests.workflows import Calls, add, costly, failing, fan_out, flaky, linear, pipeline


def test_rerun_deletes_the_target_group_and_every_later_one(make_tk: MakeKernel) -> None:
    """SPEC §5.5, §10.1: ``deleted_stages`` lists the deleted stage ids."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    tk.run_until_idle()

    result = tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="second"))

    assert result.deleted_stages == ["second", "third"]
    assert [(s.stage_id, s.status) for s in tk.store.get_stages(run_id)] == [
        ("first", Status.COMPLETED),
        ("second", Status.PENDING),
    ]


def test_rerun_keeps_earlier_outputs_and_drops_later_ones(make_tk: MakeKernel) -> None:
    """SPEC §5.5: stored outputs of the rerun groups are deleted, earlier ones kept."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    tk.run_until_idle()

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="second"))

    assert tk.store.get_blob(output_key(run_id, "first")) == (True, {"value": 2})
    assert tk.store.get_blob(output_key(run_id, "second")) == (False, None)
    assert tk.store.get_blob(output_key(run_id, "third")) == (False, None)


def test_rerun_reopens_the_run_and_queues_the_target_group(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.5: the run is RUNNING again, its result cleared, the target group queued."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    tk.run_until_idle()
    clock.advance(timedelta(minutes=1))

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="second"))

    run = run_of(tk.store, run_id)
    assert (run.status, run.output, run.completed_at, run.duration_ms) == (
        Status.RUNNING,
        None,
        None,
        None,
    )
    assert run.started_at == T0 + timedelta(minutes=1)
    queued = [j for j in tk.store.get_jobs(run_id) if j.status == JobStatus.QUEUED]
    assert [j.stage_id for j in queued] == ["second"]


def test_rerun_keeps_the_spend_of_the_finished_run(make_tk: MakeKernel) -> None:
    """SPEC §5.5, §12.1: unlike its output and duration, a rerun run's cost and tokens
    are kept: what the deleted stages spent was paid (paid is paid), and the rerun
    stages add to it."""
    calls = Calls()
    tk = make_tk(pipeline("costs", costly(calls, "first"), costly(calls, "second")))
    run_id = create(tk, "costs")
    tk.run_until_idle()
    assert (run_of(tk.store, run_id).total_cost, run_of(tk.store, run_id).total_tokens) == (
        Decimal("1.0"),
        20,
    )

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="second"))

    run = run_of(tk.store, run_id)
    assert (run.total_cost, run.total_tokens) == (Decimal("1.0"), 20)
    tk.run_until_idle()
    run = run_of(tk.store, run_id)
    assert (run.status, run.total_cost, run.total_tokens) == (Status.COMPLETED, Decimal("1.5"), 30)


def test_rerun_writes_workflow_started(make_tk: MakeKernel) -> None:
    """SPEC §5.5: the rerun is announced with ``workflow:started``."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    tk.run_until_idle()
    count = len(outbox(tk.store, run_id))

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="third"))

    events = outbox(tk.store, run_id)
    assert [(e.sequence, e.event_type) for e in events[count:]] == [(count + 1, "workflow:started")]


def test_rerun_executes_only_the_target_and_later_stages(make_tk: MakeKernel) -> None:
    """SPEC §5.5: earlier stages are not executed again."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = create(tk, "linear")
    tk.run_until_idle()

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="second"))
    tk.run_until_idle()

    assert dict(calls.counts) == {"first": 1, "second": 2, "third": 2}
    assert run_of(tk.store, run_id).output == {"value": 4}


def test_rerun_from_a_parallel_stage_reruns_its_whole_group(make_tk: MakeKernel) -> None:
    """SPEC §5.5: the target stage's execution group is rerun as a whole."""
    calls = Calls()
    tk = make_tk(fan_out(calls))
    run_id = create(tk, "fan-out")
    tk.run_until_idle()

    result = tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="right"))
    tk.run_until_idle()

    assert result.deleted_stages == ["left", "right", "join"]
    assert dict(calls.counts) == {"start": 1, "left": 2, "right": 2, "join": 2}


def test_rerun_of_a_failed_run_can_complete_it(make_tk: MakeKernel) -> None:
    """SPEC §5.5: a FAILED run may be rerun; its error is cleared and it can complete."""
    calls = Calls()
    tk = make_tk(pipeline("fragile", add(calls, "first"), flaky(calls, "flaky", failures=3)))
    run_id = create(tk, "fragile")
    tk.run_until_idle()
    assert run_of(tk.store, run_id).status == Status.FAILED

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="flaky"))
    assert run_of(tk.store, run_id).error is None
    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.error, run.output) == (Status.COMPLETED, None, {"value": 2})
    assert dict(calls.counts) == {"first": 1, "flaky": 4}


def test_rerun_past_a_failed_stage_raises_invalid_state(make_tk: MakeKernel) -> None:
    """SPEC §5.5: a rerun keeps the outputs of earlier groups, so each of them must
    have completed; rerunning past the stage that failed is refused."""
    calls = Calls()
    tk = make_tk(pipeline("broken", failing(calls, "second"), add(calls, "third")))
    run_id = create(tk, "broken")
    tk.run_until_idle()
    before = run_of(tk.store, run_id)

    with pytest.raises(InvalidStateError, match="earlier stage 'second' is FAILED, not COMPLETED"):
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="third"))

    assert run_of(tk.store, run_id) == before


def test_rerun_of_a_missing_run_raises_run_not_found(make_tk: MakeKernel) -> None:
    """SPEC §10.1: a missing run raises ``RunNotFoundError``."""
    tk = make_tk(linear(Calls()))

    with pytest.raises(RunNotFoundError, match="workflow run 'missing' does not exist"):
        tk.dispatch(RunRerunFrom(workflow_run_id="missing", from_stage_id="first"))


def test_rerun_from_an_unknown_stage_raises_stage_not_found(make_tk: MakeKernel) -> None:
    """SPEC §10.1: an unknown stage raises ``StageNotFoundError``."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    tk.run_until_idle()

    with pytest.raises(StageNotFoundError, match="stage 'fourth' is not part of workflow 'linear'"):
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="fourth"))


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING])
def test_rerun_of_a_live_run_raises_invalid_state(make_tk: MakeKernel, status: Status) -> None:
    """SPEC §10.1: a PENDING or RUNNING run cannot be rerun."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear") if status == Status.PENDING else start(tk, "linear")

    with pytest.raises(InvalidStateError, match=f"is {status}"):
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="first"))


def test_rerun_of_a_cancelled_run_raises_invalid_state(make_tk: MakeKernel) -> None:
    """SPEC §5.5: only COMPLETED or FAILED runs can be rerun."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")
    tk.dispatch(RunCancel(workflow_run_id=run_id))

    with pytest.raises(InvalidStateError, match="only COMPLETED or FAILED runs"):
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="first"))


def test_rerun_of_a_run_of_an_unregistered_workflow_raises_workflow_not_found(
    make_tk: MakeKernel,
) -> None:
    """SPEC §6.5: the run's workflow must be registered to know its groups."""
    tk = make_tk(linear(Calls()))
    insert(tk.store, InsertRun(make_run("retired", status=Status.COMPLETED)))

    with pytest.raises(WorkflowNotFoundError, match="workflow 'retired' is not registered"):
        tk.dispatch(RunRerunFrom(workflow_run_id="run-1", from_stage_id="first"))


def test_rerun_command_refuses_an_empty_stage_id() -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match="from_stage_id: expected a non-empty string, got ''"):
        RunRerunFrom(workflow_run_id="r", from_stage_id="")
