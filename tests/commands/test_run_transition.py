"""``run.transition`` (SPEC §5.3).

The finish of ``job.execute`` already transitions a run whose group is done
(SPEC §10.1), so most states here are written straight into the store: they
are what a worker dying between the finish and the transition would leave.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from kernel import JobStatus, RunTransition, Status
from kernel.decisions.lifecycle import output_key
from kernel.effects import InsertRun, InsertStage, PutBlob
from testing import FakeClock
from tests.harness import (
    T0,
    MakeKernel,
    event_types,
    insert,
    make_run,
    make_stage,
    outbox,
    run_of,
    stage_of,
    start,
)
from tests.workflows import Calls, add, echo, fan_out, linear, pipeline


def test_transition_of_a_missing_run_is_a_noop(make_tk: MakeKernel) -> None:
    """SPEC §5.3: no run, nothing to do; "nothing to do" is a value, not an error."""
    tk = make_tk(linear(Calls()))

    result = tk.dispatch(RunTransition(workflow_run_id="missing"))

    assert (result.action, result.next_group) == ("noop", None)
    assert tk.store.get_outbox() == []


def test_transition_of_a_pending_run_is_a_noop(make_tk: MakeKernel) -> None:
    """SPEC §5.3: an unclaimed run has no group to advance from."""
    tk = make_tk(linear(Calls()))
    insert(tk.store, InsertRun(make_run(status=Status.PENDING)))

    assert tk.dispatch(RunTransition(workflow_run_id="run-1")).action == "noop"
    assert run_of(tk.store, "run-1").version == 1


def test_transition_waits_while_a_stage_is_active(make_tk: MakeKernel) -> None:
    """SPEC §5.3: no-op while any stage is still PENDING, RUNNING or SUSPENDED."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")
    before = event_types(tk.store, run_id)

    result = tk.dispatch(RunTransition(workflow_run_id=run_id))

    assert result.action == "noop"
    assert event_types(tk.store, run_id) == before
    assert run_of(tk.store, run_id).version == 2


def test_transition_of_a_terminal_run_is_a_noop(make_tk: MakeKernel) -> None:
    """SPEC §5.3: a finished run stays finished."""
    tk = make_tk(linear(Calls()))
    insert(
        tk.store,
        InsertRun(make_run(status=Status.COMPLETED)),
        *(InsertStage(make_stage(s, number=n)) for n, s in enumerate(["first", "second"], 1)),
    )

    assert tk.dispatch(RunTransition(workflow_run_id="run-1")).action == "noop"
    assert tk.store.get_outbox("run-1") == []


def test_transition_advances_to_the_next_group(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.3: the next execution group is created and its jobs are queued."""
    tk = make_tk(linear(Calls()))
    insert(
        tk.store,
        InsertRun(make_run()),
        InsertStage(make_stage("first")),
        PutBlob(output_key("run-1", "first"), {"value": 2}),
    )
    clock.advance(timedelta(seconds=5))

    result = tk.dispatch(RunTransition(workflow_run_id="run-1"))

    assert (result.action, result.next_group) == ("advanced", 2)
    second = stage_of(tk.store, "run-1", "second")
    assert (second.status, second.stage_number, second.execution_group, second.config) == (
        Status.PENDING,
        2,
        2,
        {},
    )
    [job] = [j for j in tk.store.get_jobs("run-1") if j.stage_id == "second"]
    assert (job.status, job.available_at) == (JobStatus.QUEUED, T0 + timedelta(seconds=5))
    assert run_of(tk.store, "run-1").status == Status.RUNNING


def test_transition_advancing_writes_no_event(make_tk: MakeKernel) -> None:
    """SPEC §3.3: there is no event for moving between groups; stages announce themselves."""
    tk = make_tk(linear(Calls()))
    insert(tk.store, InsertRun(make_run()), InsertStage(make_stage("first")))

    tk.dispatch(RunTransition(workflow_run_id="run-1"))

    assert tk.store.get_outbox("run-1") == []


def test_transition_completes_a_run_whose_last_group_is_done(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.3: COMPLETED with the last stage's output and the duration since start."""
    tk = make_tk(linear(Calls()))
    insert(
        tk.store,
        InsertRun(make_run()),
        *(
            InsertStage(make_stage(s, number=n))
            for n, s in enumerate(["first", "second", "third"], 1)
        ),
        PutBlob(output_key("run-1", "third"), {"value": 4}),
    )
    clock.advance(timedelta(seconds=2))

    result = tk.dispatch(RunTransition(workflow_run_id="run-1"))

    assert (result.action, result.next_group) == ("completed", None)
    run = run_of(tk.store, "run-1")
    assert (run.status, run.output, run.duration_ms, run.completed_at) == (
        Status.COMPLETED,
        {"value": 4},
        2000,
        T0 + timedelta(seconds=2),
    )


def test_transition_completion_keeps_the_runs_totals(make_tk: MakeKernel) -> None:
    """SPEC §12.1: totals are the ledger's: counted when calls are recorded and stages
    complete, never summed again from stage metrics when the run completes."""
    tk = make_tk(linear(Calls()))
    metrics = [{"total_cost": "0.25", "total_tokens": 10}, {}, {"total_cost": 1, "calls": 2}]
    insert(
        tk.store,
        InsertRun(make_run(total_cost=Decimal("1.30000000"), total_tokens=42)),
        *(
            InsertStage(make_stage(s, number=n, metrics=m))
            for n, (s, m) in enumerate(zip(["first", "second", "third"], metrics, strict=True), 1)
        ),
    )

    tk.dispatch(RunTransition(workflow_run_id="run-1"))

    run = run_of(tk.store, "run-1")
    assert (run.status, run.total_cost, run.total_tokens) == (
        Status.COMPLETED,
        Decimal("1.30000000"),
        42,
    )


def test_transition_completion_writes_workflow_completed(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.3, §3.3: ``workflow:completed`` carries duration, totals and output."""
    tk = make_tk(linear(Calls()))
    insert(
        tk.store,
        InsertRun(make_run(total_cost=Decimal("0.00045000"), total_tokens=9)),
        *(
            InsertStage(make_stage(s, number=n, metrics={"total_tokens": 3}))
            for n, s in enumerate(["first", "second", "third"], 1)
        ),
        PutBlob(output_key("run-1", "third"), {"value": 4}),
    )
    clock.advance(timedelta(milliseconds=1500))

    tk.dispatch(RunTransition(workflow_run_id="run-1"))

    [event] = outbox(tk.store, "run-1")
    assert event.payload == {
        "type": "workflow:completed",
        "workflow_run_id": "run-1",
        "timestamp": (T0 + timedelta(milliseconds=1500)).isoformat(),
        "duration_ms": 1500,
        "total_cost": "0.00045000",
        "total_tokens": 9,
        "output": {"value": 4},
    }


def test_transition_output_of_a_parallel_last_group_maps_stage_ids(make_tk: MakeKernel) -> None:
    """SPEC §5.3: a parallel last group's output is ``{stage_id: output}``."""
    calls = Calls()
    tk = make_tk(pipeline("split", echo(calls, "start"), [add(calls, "a"), add(calls, "b")]))
    insert(
        tk.store,
        InsertRun(make_run("split")),
        InsertStage(make_stage("start")),
        InsertStage(make_stage("a", number=2)),
        InsertStage(make_stage("b", number=3, group=2)),
        PutBlob(output_key("run-1", "a"), {"value": 2}),
        PutBlob(output_key("run-1", "b"), {"value": 3}),
    )

    assert tk.dispatch(RunTransition(workflow_run_id="run-1")).action == "completed"
    assert run_of(tk.store, "run-1").output == {"a": {"value": 2}, "b": {"value": 3}}


def test_transition_fails_a_run_whose_stage_failed_for_good(make_tk: MakeKernel) -> None:
    """SPEC §5.3: run FAILED with that stage's error, and ``workflow:failed``."""
    tk = make_tk(fan_out(Calls()))
    insert(
        tk.store,
        InsertRun(make_run("fan-out")),
        InsertStage(make_stage("start")),
        InsertStage(make_stage("left", number=2)),
        InsertStage(
            make_stage("right", number=3, group=2, status=Status.FAILED, error="ValueError: x")
        ),
    )

    result = tk.dispatch(RunTransition(workflow_run_id="run-1"))

    assert (result.action, result.next_group) == ("failed", None)
    run = run_of(tk.store, "run-1")
    assert (run.status, run.error) == (Status.FAILED, "ValueError: x")
    [event] = outbox(tk.store, "run-1")
    assert (event.event_type, event.payload["error"]) == ("workflow:failed", "ValueError: x")
    assert not any(s.stage_id == "join" for s in tk.store.get_stages("run-1"))


def test_transition_twice_changes_nothing_the_second_time(make_tk: MakeKernel) -> None:
    """SPEC §5.3: after advancing, the new group is active, so the next call is a noop."""
    tk = make_tk(linear(Calls()))
    insert(tk.store, InsertRun(make_run()), InsertStage(make_stage("first")))

    first = tk.dispatch(RunTransition(workflow_run_id="run-1"))
    second = tk.dispatch(RunTransition(workflow_run_id="run-1"))

    assert (first.action, second.action) == ("advanced", "noop")
    assert len(tk.store.get_jobs("run-1")) == 1
