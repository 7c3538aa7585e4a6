"""``Kernel.execute_jobs``: a worker's chain of jobs, one write transaction per stage.

The finish transaction of each job also leases and starts the next one; the
chain ends when no job is available, at ``max_jobs``, or when ``keep_going()``
says so inside the finish transaction (a host that is stopping).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kernel import JobExecuteResult, JobStatus, RunClaimPending, Status
from kernel.commands import RunClaimPendingResult
from kernel.ports import StoreTransaction
from kernel.records import Job
from tests.harness import MakeKernel, create, event_types, job_of, run_of, start
from tests.workflows import Calls, fan_out, linear


def test_a_chain_runs_every_stage_of_a_sequential_run(make_tk: MakeKernel) -> None:
    """Each finish opens the next group and the same transaction leases its job."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear", value=1)

    done = tk.kernel.execute_jobs("w1")

    assert [job.stage_id for job, _ in done] == ["first", "second", "third"]
    assert [result.outcome for _, result in done] == ["completed"] * 3
    assert run_of(tk.store, run_id).status == Status.COMPLETED
    assert run_of(tk.store, run_id).output == {"value": 4}


def test_on_finish_reports_each_result_after_it_commits(make_tk: MakeKernel) -> None:
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")
    seen: list[tuple[str, str, Status]] = []

    def on_finish(job: Job, result: JobExecuteResult) -> None:
        # The result is already committed: the stage record shows it.
        stage = next(s for s in tk.store.get_stages(run_id) if s.stage_id == job.stage_id)
        seen.append((job.stage_id, result.outcome, stage.status))

    done = tk.kernel.execute_jobs("w1", on_finish=on_finish)

    assert seen == [(job.stage_id, "completed", Status.COMPLETED) for job, _ in done]


def test_keep_going_false_ends_the_chain_before_the_next_lease(make_tk: MakeKernel) -> None:
    """A stopping host: the next job stays queued and no ``stage:started`` is written for it."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")

    done = tk.kernel.execute_jobs("w1", keep_going=lambda: False)

    assert [job.stage_id for job, _ in done] == ["first"]
    assert job_of(tk.store, run_id, "second").status == JobStatus.QUEUED
    assert event_types(tk.store, run_id).count("stage:started") == 1
    assert calls.counts["second"] == 0


def test_max_jobs_bounds_the_chain(make_tk: MakeKernel) -> None:
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")

    done = tk.kernel.execute_jobs("w1", max_jobs=2)

    assert [job.stage_id for job, _ in done] == ["first", "second"]
    assert job_of(tk.store, run_id, "third").status == JobStatus.QUEUED


def test_a_result_names_the_jobs_its_finish_left_in_the_queue(make_tk: MakeKernel) -> None:
    """What a host's free slots may look for at once: the next group's jobs that the
    finish's own transaction did not lease."""
    tk = make_tk(fan_out(Calls()))
    run_id = start(tk, "fan-out")

    [(_, result)] = tk.kernel.execute_jobs("w1", max_jobs=1)

    left, right = job_of(tk.store, run_id, "left"), job_of(tk.store, run_id, "right")
    assert (left.status, right.status) == (JobStatus.QUEUED, JobStatus.QUEUED)
    assert sorted(result.queued_jobs) == sorted([left.id, right.id])


def test_a_job_the_same_transaction_leases_is_not_left_in_the_queue(make_tk: MakeKernel) -> None:
    tk = make_tk(fan_out(Calls()))
    run_id = start(tk, "fan-out")

    (_, started), (next_job, _) = tk.kernel.execute_jobs("w1", max_jobs=2)

    other = "right" if next_job.stage_id == "left" else "left"
    assert started.queued_jobs == (job_of(tk.store, run_id, other).id,)


def test_a_sequential_chain_leaves_nothing_in_the_queue(make_tk: MakeKernel) -> None:
    """Each finish queues the next stage and leases it itself; the last queues nothing."""
    tk = make_tk(linear(Calls()))
    start(tk, "linear")

    done = tk.kernel.execute_jobs("w1")

    assert [result.queued_jobs for _, result in done] == [(), (), ()]


def test_an_idle_worker_gets_an_empty_chain(make_tk: MakeKernel) -> None:
    tk = make_tk(linear(Calls()))
    assert tk.kernel.execute_jobs("w1") == []


def test_claim_first_claims_a_new_run_and_starts_it_in_one_transaction(
    make_tk: MakeKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker told of a new run claims it and leases its first job together: four
    write transactions for three stages, the claim's among them."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = create(tk, "linear", value=1)
    store, opened = tk.kernel.store, []
    transaction = store.transaction

    @contextmanager
    def counted() -> Iterator[StoreTransaction]:
        opened.append(1)
        with transaction() as tx:
            yield tx

    monkeypatch.setattr(store, "transaction", counted)
    claims: list[RunClaimPendingResult] = []

    done = tk.kernel.execute_jobs(
        "w1", claim_first=RunClaimPending(worker_id="w1"), on_claimed=claims.append
    )

    assert [job.stage_id for job, _ in done] == ["first", "second", "third"]
    assert run_of(tk.store, run_id).status == Status.COMPLETED
    assert [[c.workflow_run_id for c in claim.claimed] for claim in claims] == [[run_id]]
    assert len(opened) == 4


def test_claim_first_with_nothing_pending_claims_nothing_and_leases_what_is_queued(
    make_tk: MakeKernel,
) -> None:
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")  # claimed already: its first job is queued
    claims: list[Any] = []

    done = tk.kernel.execute_jobs(
        "w1", max_jobs=1, claim_first=RunClaimPending(worker_id="w1"), on_claimed=claims.append
    )

    assert [job.stage_id for job, _ in done] == ["first"]
    assert [claim.claimed for claim in claims] == [[]]
    assert job_of(tk.store, run_id, "second").status == JobStatus.QUEUED
