"""``run.claimPending`` (SPEC §5.2)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from kernel import JobStatus, RunClaimPending, RunCreate, Status, Workflow
from kernel.effects import InsertRun
from testing import FakeClock
from tests.harness import (
    T0,
    MakeKernel,
    create,
    event_types,
    insert,
    make_run,
    outbox,
    run_of,
    stage_of,
)
from tests.workflows import Calls, add, fan_out, joining, linear, pipeline


def test_claim_moves_a_pending_run_to_running(make_tk: MakeKernel, clock: FakeClock) -> None:
    """SPEC §5.2: a claimed run is RUNNING, started now."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")
    clock.advance(timedelta(seconds=3))

    tk.dispatch(RunClaimPending(worker_id="w1"))

    run = run_of(tk.store, run_id)
    assert (run.status, run.started_at) == (Status.RUNNING, T0 + timedelta(seconds=3))


def test_claim_creates_the_first_group_with_its_jobs(make_tk: MakeKernel) -> None:
    """SPEC §5.2: group-1 stage records (PENDING) and their jobs land together."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")

    result = tk.dispatch(RunClaimPending(worker_id="w1"))

    [claimed] = result.claimed
    assert (claimed.workflow_run_id, claimed.workflow_id) == (run_id, "linear")
    [stage] = tk.store.get_stages(run_id)
    assert (stage.stage_id, stage.status, stage.stage_number, stage.execution_group) == (
        "first",
        Status.PENDING,
        1,
        1,
    )
    [job] = tk.store.get_jobs(run_id)
    assert claimed.job_ids == [job.id]
    assert (job.stage_id, job.status, job.attempt, job.max_attempts, job.available_at) == (
        "first",
        JobStatus.QUEUED,
        0,
        3,
        T0,
    )


def test_claim_queues_one_job_per_stage_of_a_parallel_first_group(make_tk: MakeKernel) -> None:
    """SPEC §4.3, §5.2: a parallel group is one execution group of several stages."""
    calls = Calls()
    a, b = add(calls, "a"), add(calls, "b")
    workflow = pipeline("wide", [a, b], joining(calls, a, b))
    tk = make_tk(workflow)
    run_id = create(tk, "wide")

    [claimed] = tk.dispatch(RunClaimPending(worker_id="w1")).claimed

    assert [s.stage_id for s in tk.store.get_stages(run_id)] == ["a", "b"]
    assert sorted(j.stage_id for j in tk.store.get_jobs(run_id)) == ["a", "b"]
    assert len(claimed.job_ids) == 2


def test_claim_gives_jobs_the_run_priority(make_tk: MakeKernel) -> None:
    """SPEC §3.2: a job carries its run's priority, so urgent runs are dequeued first."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear", priority=8)

    tk.dispatch(RunClaimPending(worker_id="w1"))

    assert [j.priority for j in tk.store.get_jobs(run_id)] == [8]


def test_claim_copies_the_stage_config_onto_its_record(make_tk: MakeKernel) -> None:
    """SPEC §3.2: a stage record holds its own merged config."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear", config={"first": {"amount": 4}})

    tk.dispatch(RunClaimPending(worker_id="w1"))

    assert stage_of(tk.store, run_id, "first").config == {"amount": 4}


def test_claim_writes_workflow_started(make_tk: MakeKernel) -> None:
    """SPEC §5.2, §6.2: ``workflow:started`` follows ``workflow:created`` in the outbox."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")

    tk.dispatch(RunClaimPending(worker_id="w1"))

    events = outbox(tk.store, run_id)
    assert [(e.sequence, e.event_type) for e in events] == [
        (1, "workflow:created"),
        (2, "workflow:started"),
    ]
    assert events[1].payload == {
        "type": "workflow:started",
        "workflow_run_id": run_id,
        "timestamp": T0.isoformat(),
    }


def test_claim_takes_higher_priority_first_then_oldest(
    make_tk: MakeKernel, clock: FakeClock
) -> None:
    """SPEC §5.2: priority descending, then oldest first."""
    tk = make_tk(linear(Calls()))
    old_low = create(tk, "linear", priority=1)
    clock.advance(timedelta(seconds=1))
    old_high = create(tk, "linear", priority=7)
    clock.advance(timedelta(seconds=1))
    new_high = create(tk, "linear", priority=7)
    clock.advance(timedelta(seconds=1))
    middle = create(tk, "linear")

    order = [
        claimed.workflow_run_id
        for _ in range(4)
        for claimed in tk.dispatch(RunClaimPending(worker_id="w1", max_claims=1)).claimed
    ]

    assert order == [old_high, new_high, middle, old_low]


def test_claim_takes_at_most_max_claims(make_tk: MakeKernel) -> None:
    """SPEC §5.2: up to ``max_claims`` runs per command."""
    tk = make_tk(linear(Calls()))
    for value in range(5):
        create(tk, "linear", value)

    first = tk.dispatch(RunClaimPending(worker_id="w1", max_claims=3))
    rest = tk.dispatch(RunClaimPending(worker_id="w1", max_claims=3))

    assert (len(first.claimed), len(rest.claimed)) == (3, 2)
    assert tk.store.list_runs(status=Status.PENDING) == []


def test_two_claims_never_return_the_same_run(make_tk: MakeKernel) -> None:
    """SPEC §5.2: once claimed, a run is not PENDING any more for anyone else."""
    tk = make_tk(linear(Calls()))
    run_id = create(tk, "linear")

    first = tk.dispatch(RunClaimPending(worker_id="w1"))
    second = tk.dispatch(RunClaimPending(worker_id="w2"))

    assert [c.workflow_run_id for c in first.claimed] == [run_id]
    assert second.claimed == []
    assert len(tk.store.get_jobs(run_id)) == 1


def test_concurrent_claims_share_out_runs_without_overlap(make_tk: MakeKernel) -> None:
    """SPEC §5.2: two workers never claim the same run, even at the same moment."""
    tk = make_tk(linear(Calls()))
    run_ids = {create(tk, "linear", value) for value in range(12)}
    claims: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def claim(worker: str) -> None:
        barrier.wait()
        got: list[str] = []
        while batch := tk.dispatch(RunClaimPending(worker_id=worker, max_claims=2)).claimed:
            got += [c.workflow_run_id for c in batch]
        claims[worker] = got

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [run_id for got in claims.values() for run_id in got]
    assert sorted(everything) == sorted(run_ids)
    assert all(len(tk.store.get_jobs(run_id)) == 1 for run_id in run_ids)


def test_claim_with_nothing_pending_claims_nothing(make_tk: MakeKernel) -> None:
    """SPEC §5.2: no pending runs is an empty result, not an error."""
    tk = make_tk(linear(Calls()))

    assert tk.dispatch(RunClaimPending(worker_id="w1")).claimed == []
    assert tk.store.get_outbox() == []


def test_claim_leaves_a_run_whose_workflow_is_not_registered_pending(
    make_tk: MakeKernel,
) -> None:
    """SPEC §19: a worker does not claim runs of workflows it does not know; they stay
    PENDING for a worker that has them (tests/commands/test_rolling_deploys.py)."""
    tk = make_tk(linear(Calls()))
    insert(tk.store, InsertRun(make_run("retired", id="orphan", status=Status.PENDING)))

    result = tk.dispatch(RunClaimPending(worker_id="w1"))

    assert result.claimed == []
    run = run_of(tk.store, "orphan")
    assert (run.status, run.error, run.version) == (Status.PENDING, None, 1)
    assert outbox(tk.store, "orphan") == []


def test_claim_fails_a_run_whose_workflow_has_no_stages(make_tk: MakeKernel) -> None:
    """SPEC §5.2: a workflow with no stages fails its runs with EMPTY_STAGE_GRAPH."""
    # The builder refuses an empty workflow; a registry may still hold one built by hand.
    empty: Workflow[object, object] = Workflow(
        id="empty", name="Empty", description="", input_type=object, output_type=object, groups=()
    )
    tk = make_tk(empty)
    tk.dispatch(RunCreate(workflow_id="empty", input={}))
    [run] = tk.store.list_runs()

    result = tk.dispatch(RunClaimPending(worker_id="w1"))

    assert result.claimed == []
    failed = run_of(tk.store, run.id)
    assert failed.status == Status.FAILED
    assert failed.error == "EMPTY_STAGE_GRAPH: workflow 'empty' has no stages"
    assert event_types(tk.store, run.id) == ["workflow:created", "workflow:failed"]


def test_claim_still_claims_good_runs_next_to_a_broken_one(make_tk: MakeKernel) -> None:
    """SPEC §5.2, §19: a run this worker cannot serve does not block the others."""
    tk = make_tk(linear(Calls()))
    insert(tk.store, InsertRun(make_run("retired", id="orphan", status=Status.PENDING)))
    good = create(tk, "linear")

    result = tk.dispatch(RunClaimPending(worker_id="w1", max_claims=1))

    assert [c.workflow_run_id for c in result.claimed] == [good]
    assert run_of(tk.store, "orphan").status == Status.PENDING


def test_claim_leaves_runs_of_other_statuses_alone(make_tk: MakeKernel) -> None:
    """SPEC §5.2: only PENDING runs are claimed."""
    tk = make_tk(fan_out(Calls()))
    running = create(tk, "fan-out")
    tk.dispatch(RunClaimPending(worker_id="w1"))

    again = tk.dispatch(RunClaimPending(worker_id="w1"))

    assert again.claimed == []
    assert run_of(tk.store, running).version == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"worker_id": ""}, "worker_id: expected a non-empty string, got ''"),
        ({"worker_id": "w", "max_claims": 0}, "max_claims: expected an int >= 1, got 0"),
    ],
)
def test_claim_command_refuses_bad_fields_when_built(
    fields: dict[str, object], message: str
) -> None:
    """SPEC §5: a bad field fails where the command is made."""
    with pytest.raises(ValueError, match=re.escape(message)):
        RunClaimPending(**fields)  # type: ignore[arg-type]
