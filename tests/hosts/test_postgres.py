"""Hosts on PostgreSQL: notifications wake an idle worker, and a message runs its job once.

Each test works in a schema of its own (``tests.hosts.backends``). Without a
server the tests skip, and fail when ``CI`` is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters import create_kernel
from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
from adapters.hosts import ServerlessHost, WorkerHost
from adapters.postgres import PostgresStore
from adapters.postgres.transaction import PostgresTransaction
from kernel import JobStatus, RunClaimPending, RunCreate, Status
from kernel.dispatch import Kernel
from kernel.records import Job
from tests.hosts.apps import slow_workflow, start_markers
from tests.hosts.backends import Backend
from tests.hosts.waiting import wait_for
from tests.postgres_support import race

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Backend]:
    made = Backend("postgres", tmp_path)
    yield made
    made.close()


class ListeningStore(PostgresStore):
    """A ``PostgresStore`` that says when a worker first waits for notifications."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listening = threading.Event()

    def wait_for_jobs(self, timeout: float) -> bool:
        self.listening.set()
        return super().wait_for_jobs(timeout)


def quiet_host(
    kernel: Kernel, store: PostgresStore, *, worker_id: str, concurrency: int, quiet_s: float
) -> WorkerHost:
    """A host whose ticks and polls come ``quiet_s`` apart: only a notification starts its
    work sooner."""
    return WorkerHost(
        kernel,
        store,
        worker_id=worker_id,
        concurrency=concurrency,
        orchestration_interval=timedelta(seconds=quiet_s),
        job_poll_interval=timedelta(seconds=quiet_s),
    )


def test_an_idle_worker_picks_up_a_new_run_at_once_thanks_to_notifications(
    pg: Backend,
) -> None:
    """With ticks and polls 5 s apart, only ``NOTIFY`` can start the run this quickly: the
    notification of its creation brings the claiming tick forward and wakes the slots."""
    assert pg.schema is not None
    store = ListeningStore(pg.dsn, schema=pg.schema, pool_size=4)
    kernel = create_kernel(document_pipeline, store=store)
    host = quiet_host(kernel, store, worker_id="w1", concurrency=2, quiet_s=5)
    host.start()
    try:
        wait_for("the worker to listen", store.listening.is_set)
        wait_for("the first tick", lambda: host.stats().ticks >= 1)
        wait_for("the slots to go idle", lambda: host.stats().busy_slots == 0)
        time.sleep(0.1)  # LISTEN is sent right after the first wait begins
        began = time.monotonic()
        run_id = kernel.dispatch(
            RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(SAMPLE_DOCUMENTS[0]))
        ).workflow_run_id

        def completed() -> bool:
            run = store.get_run(run_id)
            return run is not None and run.status == Status.COMPLETED

        wait_for("the run to complete", completed, timeout=5)
        elapsed = time.monotonic() - began
    finally:
        stats = host.stop()
        store.close()
    run = pg.open().get_run(run_id)
    assert run is not None and run.started_at is not None
    assert (run.started_at - run.created_at) < timedelta(milliseconds=500)  # claimed at once
    assert elapsed < 1.5, f"took {elapsed:.2f} s"  # not the 5 s tick or poll
    assert stats.jobs_processed == 4


def test_one_message_handled_twice_at_once_runs_its_job_once(
    pg: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handlers (separate stores and kernels, as on two machines) get the same message
    at the same moment. Leasing reads the job and then updates it: the read locks the row,
    so the second handler waits, sees the job LEASED, and skips it."""
    read_job = PostgresTransaction.get_job

    def slow_read(self: PostgresTransaction, job_id: str) -> Job | None:
        job = read_job(self, job_id)
        time.sleep(0.1)  # both handlers read before either writes, unless the read locks
        return job

    setup = pg.open()
    kernel = create_kernel(slow_workflow, store=setup)
    run_id = kernel.dispatch(
        RunCreate(workflow_id=slow_workflow.id, input={"marker_dir": str(tmp_path), "seconds": 0})
    ).workflow_run_id
    kernel.dispatch(RunClaimPending(worker_id="setup"))
    ServerlessHost(kernel, setup, worker_id="setup").process_available_jobs()  # prepare
    slow = next(job for job in setup.get_jobs(run_id) if job.stage_id == "slow")
    message = {
        "workflow_run_id": run_id,
        "workflow_id": slow_workflow.id,
        "stage_id": "slow",
        "job_id": slow.id,
    }
    hosts = []
    for index in range(2):
        store = pg.open()
        hosts.append(
            ServerlessHost(
                create_kernel(slow_workflow, store=store), store, worker_id=f"fn-{index}"
            )
        )
    monkeypatch.setattr(PostgresTransaction, "get_job", slow_read)
    reports = race(2, lambda index: hosts[index].handle_job(message))

    assert len(start_markers(tmp_path)) == 1  # user code ran once
    assert sorted(report.outcome for report in reports) == ["completed", "skipped"]
    (skipped,) = [report for report in reports if report.outcome == "skipped"]
    (winner,) = [report for report in reports if report.outcome == "completed"]
    assert skipped.reason is not None
    assert skipped.reason.startswith(f"job {slow.id!r} is ")  # LEASED or COMPLETED by now
    done = next(job for job in setup.get_jobs(run_id) if job.stage_id == "slow")
    assert done.status == JobStatus.COMPLETED
    assert done.worker_id == f"fn-{reports.index(winner)}"
    started = [e for e in setup.get_outbox(run_id) if e.event_type == "stage:started"]
    assert [e.payload["stage_id"] for e in started] == ["prepare", "slow"]


class ListeningStoreWithoutTurns(ListeningStore):
    """The same, as a store without ``LookTurns`` (``None`` opts out of a protocol)."""

    look_turn = None  # type: ignore[assignment]


def count_empty_claims(kernel: Kernel) -> list[int]:
    """Counts, in ``[0]``, the dequeues of ``kernel`` that claimed first and found nothing."""
    counts = [0]
    execute_jobs = kernel.execute_jobs

    def counting(*args: Any, **kwargs: Any) -> list[Any]:
        done = execute_jobs(*args, **kwargs)
        if kwargs.get("claim_first") is not None and not done:
            counts[0] += 1
        return done

    kernel.execute_jobs = counting  # type: ignore[method-assign]
    return counts


@pytest.mark.parametrize("turns", [True, False], ids=["in turn", "without turns"])
def test_idle_workers_of_several_processes_look_for_a_new_run_in_turn(
    pg: Backend, tmp_path: Path, turns: bool
) -> None:
    """Three idle workers, each on a store of its own (as three processes), ticks and
    polls 30 s apart: the notification of each new run wakes all three. In turn, one
    claims the run; the others' checks come after its claim has committed, and find
    nothing to claim, so none claims and leases for nothing. Without turns (a store
    without ``look_turn``), every idle worker claims at each notification."""
    assert pg.schema is not None
    hosts, stores, empty = [], [], []
    for index in range(3):
        kind = ListeningStore if turns else ListeningStoreWithoutTurns
        store = kind(pg.dsn, schema=pg.schema, pool_size=2)
        stores.append(store)
        kernel = create_kernel(slow_workflow, store=store)
        empty.append(count_empty_claims(kernel))
        hosts.append(quiet_host(kernel, store, worker_id=f"w{index}", concurrency=1, quiet_s=30))
    producer = pg.open()
    kernel = create_kernel(slow_workflow, store=producer)
    runs = 8
    try:
        for host in hosts:
            host.start()
        for store in stores:
            wait_for("the worker to listen", store.listening.is_set)
        wait_for("the first ticks", lambda: all(host.stats().ticks >= 1 for host in hosts))
        time.sleep(0.1)  # LISTEN is sent right after the first wait begins
        for counts in empty:
            counts[0] = 0
        for _ in range(runs):
            run_id = kernel.dispatch(
                RunCreate(
                    workflow_id=slow_workflow.id,
                    input={"marker_dir": str(tmp_path), "seconds": 0},
                )
            ).workflow_run_id

            def completed(run_id: str = run_id) -> bool:
                run = producer.get_run(run_id)
                return run is not None and run.status == Status.COMPLETED

            wait_for("the run to complete", completed, timeout=5)
            wait_for(
                "the workers to go idle", lambda: all(h.stats().busy_slots == 0 for h in hosts)
            )
    finally:
        for host, store in zip(hosts, stores, strict=True):
            host.stop()
            store.close()
    wasted = sum(counts[0] for counts in empty)
    if turns:
        assert wasted <= 2, f"{wasted} empty claims for {runs} runs"
    else:
        assert wasted >= runs, f"only {wasted} empty claims for {runs} runs"


def test_a_run_created_while_the_worker_is_busy_starts_once_its_slot_frees(
    pg: Backend, tmp_path: Path
) -> None:
    """One slot, ticks and polls 30 s apart. The second run is created while the slot
    runs the first run's 0.5 s stage: its notification waits for the slot, which claims
    the second run as soon as it is free, not at the next tick."""
    assert pg.schema is not None
    store = ListeningStore(pg.dsn, schema=pg.schema, pool_size=2)
    kernel = create_kernel(slow_workflow, store=store)
    host = quiet_host(kernel, store, worker_id="w1", concurrency=1, quiet_s=30)

    def create(seconds: float) -> str:
        made = kernel.dispatch(
            RunCreate(
                workflow_id=slow_workflow.id,
                input={"marker_dir": str(tmp_path), "seconds": seconds},
            )
        )
        return made.workflow_run_id

    def completed(run_id: str) -> bool:
        run = store.get_run(run_id)
        return run is not None and run.status == Status.COMPLETED

    host.start()
    try:
        wait_for("the worker to listen", store.listening.is_set)
        wait_for("the first tick", lambda: host.stats().ticks >= 1)
        time.sleep(0.1)  # LISTEN is sent right after the first wait begins
        first = create(0.5)
        wait_for("the slow stage to start", lambda: start_markers(tmp_path))
        second = create(0)
        wait_for("the first run to complete", lambda: completed(first), timeout=5)
        wait_for("the second run to complete", lambda: completed(second), timeout=5)
    finally:
        host.stop()
        store.close()
    assert host.stats().ticks == 1  # no tick claimed the second run
