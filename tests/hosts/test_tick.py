"""The orchestration tick: its safety net transitions RUNNING runs left with no active
stage, read a page at a time; a full claim or a full flush asks for the next tick soon."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapters import create_kernel
from adapters.hosts import tick
from adapters.hosts.logs import HostLog
from adapters.hosts.tick import Orchestrator
from adapters.memory import InMemoryStore
from kernel import Kernel, RunClaimPending, RunCreate, Status
from kernel.decisions.changes import bump_stage
from tests.workflows import Calls, add, pipeline


def stuck_run(kernel: Kernel, store: InMemoryStore) -> str:
    """A RUNNING run whose only active stage was completed without its transition."""
    run_id = kernel.dispatch(RunCreate(workflow_id="two", input={"value": 1})).workflow_run_id
    kernel.dispatch(RunClaimPending(worker_id="w1"))
    (first,) = store.get_stages(run_id)
    running, started = bump_stage(first, status=Status.RUNNING)
    with store.transaction() as tx:
        tx.apply((started, bump_stage(running, status=Status.COMPLETED)[1]))
    return run_id


def test_the_safety_net_reads_running_runs_a_page_at_a_time_up_to_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = InMemoryStore()
    calls = Calls()
    kernel = create_kernel(pipeline("two", add(calls), add(calls, "second")), store=store)
    runs = [stuck_run(kernel, store) for _ in range(6)]
    assert all(run.status == Status.RUNNING for run in map(store.get_run, runs) if run)
    monkeypatch.setattr(tick, "SWEEP_PAGE", 2)
    monkeypatch.setattr(tick, "SWEEP_LIMIT", 5)
    pages: list[int] = []
    list_runs = store.list_runs

    def listed(*args: Any, **kwargs: Any) -> Any:
        page = list_runs(*args, **kwargs)
        pages.append(len(page))
        return page

    monkeypatch.setattr(store, "list_runs", listed)
    host = Orchestrator(
        kernel,
        store,
        worker_id="w1",
        stale_lease_threshold=timedelta(seconds=60),
        max_claims=10,
        log=HostLog("w1"),
    )

    report = host.tick(sweep=True)

    assert pages == [2, 2, 1]
    assert report.transitioned == 5
    advanced = [len(store.get_stages(run_id)) == 2 for run_id in runs]
    assert advanced == [False, True, True, True, True, True]  # newest first


def test_a_tick_whose_flush_was_full_reports_a_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events made faster than one flush per interval publishes: the host ticks again
    ``notified_tick_gap`` later instead of a whole interval later."""
    store = InMemoryStore()
    kernel = create_kernel(pipeline("two", add(Calls())), store=store)
    for _ in range(5):  # one workflow:created event each
        kernel.dispatch(RunCreate(workflow_id="two", input={"value": 1}))
    monkeypatch.setattr(tick, "FLUSH_BATCH", 2)
    monkeypatch.setattr(tick, "FLUSH_ROUNDS", 2)
    host = Orchestrator(
        kernel,
        store,
        worker_id="w1",
        stale_lease_threshold=timedelta(seconds=60),
        max_claims=10,
        log=HostLog("w1"),
    )
    first = host.tick(sweep=False)  # claims the five runs too: more events
    assert (first.published, first.backlog) == (4, True)
    while host.tick(sweep=False).backlog:
        pass
    assert all(event.published_at is not None for event in store.get_outbox())
