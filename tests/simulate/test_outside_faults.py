"""What the simulation injects besides crashes: reads that commit late (optimistic
concurrency), commits whose answer is lost, commands and messages delivered twice,
cancels and reruns (SPEC §17)."""

from __future__ import annotations

from pathlib import Path

from kernel.commands import RunCancel, RunCreate
from testing import create_test_kernel, replay, simulate
from testing.simulate.store import SimStore
from tests.simulate.workflows import demo_workflows, numbers

WORKFLOWS = demo_workflows()
KNOWN = Path(__file__).parent / "regressions"


def test_a_transaction_that_read_early_conflicts_at_commit_and_the_kernel_reads_again() -> None:
    store = SimStore()
    tk = create_test_kernel(*WORKFLOWS, store=store)
    run_id = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1})).workflow_run_id
    read_before = store.snapshot()  # actor A loads ...
    assert tk.dispatch(RunCancel(workflow_run_id=run_id)).cancelled  # ... B commits ...
    store.read_early = read_before  # ... and A commits what it decided on its old read
    again = tk.dispatch(RunCancel(workflow_run_id=run_id))
    assert store.conflicts == [f"runs {run_id!r} changed since it was read"]
    assert not again.cancelled  # decided again on the live tables: already cancelled
    types = [event.event_type for event in store.get_outbox(run_id)]
    assert types.count("workflow:cancelled") == 1


def test_a_transaction_that_read_early_without_a_conflict_commits() -> None:
    store = SimStore()
    tk = create_test_kernel(*WORKFLOWS, store=store)
    first = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1})).workflow_run_id
    store.read_early = store.snapshot()
    second = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 2})).workflow_run_id
    assert store.conflicts == []
    assert {run.id for run in store.list_runs()} == {first, second}


def test_seeds_interleave_early_reads_and_some_of_them_conflict() -> None:
    early = conflicted = 0
    for seed in range(40):
        trace = simulate(*WORKFLOWS, seed=seed, inputs=numbers).trace
        early += sum(" fault stale " in line for line in trace)
        conflicted += sum("its early read conflicted" in line for line in trace)
    assert early > 50 and conflicted > 0


def test_a_message_delivered_twice_runs_its_job_once_and_a_resent_create_changes_nothing() -> None:
    lines = [
        "t=0.100s w1 start: started as w1",
        't=0.200s client create r1 linear {"value":1}',
        "t=0.300s fault message r1/first twice: fn will get it twice",
        "t=0.400s w1 tick claim: claimed 1",
        "t=0.500s fn deliver r1/first: ",
        "t=0.600s fn deliver r1/first: ",
        "t=0.700s client resend r1: ",
    ]
    trace = replay(*WORKFLOWS, trace=lines).trace
    assert trace[4].endswith(": completed")
    assert trace[5] == "t=0.600s fn deliver r1/first: skipped: the stage's job is COMPLETED"
    assert trace[6].startswith("t=0.700s client resend r1: answered run id-")


def test_cancels_and_reruns_keep_every_invariant() -> None:
    seen: set[str] = set()
    for seed in range(30):
        trace = simulate(*WORKFLOWS, seed=seed, inputs=numbers).trace
        seen |= {line.split(": ")[1] for line in trace if " client rerun " in line}
        seen |= {line.split(": ")[1] for line in trace if " client cancel " in line}
    assert "cancelled" in seen and any(said.startswith("rerun, deleted") for said in seen)


def test_a_create_whose_answer_was_lost_is_not_created_twice_when_sent_again() -> None:
    """Found by the simulator: a command whose commit went through but whose caller
    saw an error released its (COMPLETED) key, so the client's retry made a second run.
    A release now leaves a completed key, and the retry replays the run id."""
    replay(*WORKFLOWS, trace=KNOWN / "answer-lost-create.json")
