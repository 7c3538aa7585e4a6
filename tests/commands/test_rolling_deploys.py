"""Rolling deploys (SPEC §19): a worker claims and leases only the workflows it knows.

During a deploy, workers of the old and the new version share one store. Runs
and jobs of a workflow that only the new version registers stay ``PENDING``
and ``QUEUED`` for a worker that has it, instead of being failed for good
(``WORKFLOW_NOT_FOUND``) by an old worker that happened to look first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from adapters.runner import DefaultStageRunner
from kernel import JobStatus, RunClaimPending, Status, Workflow
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.workflows import Registry
from testing import CollectingEventSink, FakeClock, SequentialIds, TestKernel
from tests.harness import TK, create, event_types, job_of, run_of
from tests.workflows import Calls, fan_out, linear

Deploy = Callable[..., TK]
"""``deploy(version, *workflows)``: a worker of one app version on the shared store."""


@pytest.fixture
def deploy(store: Store, clock: FakeClock, sink: CollectingEventSink) -> Iterator[Deploy]:
    """Kernels of several app versions over one store; each draws ids of its own, as
    separate processes would."""
    runners: list[DefaultStageRunner] = []

    def make(version: str, *workflows: Workflow[Any, Any]) -> TK:
        runner = DefaultStageRunner()
        runners.append(runner)
        kernel = Kernel(
            registry=Registry(workflows),
            store=store,
            clock=clock,
            ids=SequentialIds(version),
            sink=sink,
            runner=runner,
        )
        return TestKernel(kernel, store, clock, sink)

    yield make
    for runner in runners:
        runner.close()


def test_a_worker_leaves_pending_runs_of_unknown_workflows(deploy: Deploy) -> None:
    """The old worker claims the run of the workflow it has; the other run stays PENDING,
    untouched, until a worker that registers its workflow claims it."""
    calls = Calls()
    new = deploy("new", linear(calls), fan_out(calls))
    old = deploy("old", linear(calls))
    known = create(new, "linear")
    unknown = create(new, "fan-out")

    claimed = old.dispatch(RunClaimPending(worker_id="old")).claimed

    assert [c.workflow_run_id for c in claimed] == [known]
    assert run_of(old.store, known).status == Status.RUNNING
    left = run_of(old.store, unknown)
    assert (left.status, left.error, left.started_at) == (Status.PENDING, None, None)
    assert old.store.get_stages(unknown) == []
    assert old.store.get_jobs(unknown) == []
    assert event_types(old.store, unknown) == ["workflow:created"]

    [later] = new.dispatch(RunClaimPending(worker_id="new")).claimed

    assert (later.workflow_run_id, later.workflow_id) == (unknown, "fan-out")
    assert run_of(new.store, unknown).status == Status.RUNNING


def test_unknown_runs_do_not_take_a_claims_places(deploy: Deploy) -> None:
    """Runs the worker cannot serve are filtered by the store, not after it: older or
    higher-priority ones do not use up ``max_claims``."""
    calls = Calls()
    new = deploy("new", linear(calls), fan_out(calls))
    old = deploy("old", linear(calls))
    unknown = [create(new, "fan-out", priority=9) for _ in range(3)]
    known = create(new, "linear")

    claimed = old.dispatch(RunClaimPending(worker_id="old", max_claims=1)).claimed

    assert [c.workflow_run_id for c in claimed] == [known]
    assert {run_of(old.store, run_id).status for run_id in unknown} == {Status.PENDING}


def test_a_worker_leaves_queued_jobs_of_unknown_workflows(deploy: Deploy) -> None:
    """The old worker runs its own run to the end, leasing each next job in the finish
    transaction, and never leases the other workflow's job: it stays QUEUED for the new
    worker, which then runs that run."""
    calls = Calls()
    new = deploy("new", linear(calls), fan_out(calls))
    old = deploy("old", linear(calls))
    unknown = create(new, "fan-out", value=1)
    known = create(new, "linear", value=1)
    # The new version claims both runs: the fan-out's first job is queued first.
    assert len(new.dispatch(RunClaimPending(worker_id="new")).claimed) == 2

    done = old.kernel.execute_jobs("old")

    assert [(job.workflow_id, job.stage_id) for job, _ in done] == [
        ("linear", "first"),
        ("linear", "second"),
        ("linear", "third"),
    ]
    assert run_of(old.store, known).status == Status.COMPLETED
    waiting = job_of(old.store, unknown, "start")
    assert (waiting.status, waiting.worker_id, waiting.attempt) == (JobStatus.QUEUED, None, 0)
    assert run_of(old.store, unknown).status == Status.RUNNING
    assert old.kernel.execute_next_job("old") is None
    assert calls["start"] == 0

    finished = new.kernel.execute_jobs("new")

    assert [job.stage_id for job, _ in finished] == ["start", "left", "right", "join"]
    assert {job.workflow_id for job, _ in finished} == {"fan-out"}
    assert run_of(new.store, unknown).status == Status.COMPLETED


def test_a_worker_that_knows_nothing_claims_and_leases_nothing(deploy: Deploy) -> None:
    """An empty registry serves no workflow: nothing is claimed, leased or failed."""
    calls = Calls()
    new = deploy("new", linear(calls))
    empty = deploy("empty")
    pending = create(new, "linear")

    assert empty.dispatch(RunClaimPending(worker_id="empty")).claimed == []
    assert run_of(empty.store, pending).status == Status.PENDING

    new.dispatch(RunClaimPending(worker_id="new"))
    assert empty.kernel.execute_jobs("empty") == []
    assert job_of(empty.store, pending, "first").status == JobStatus.QUEUED
