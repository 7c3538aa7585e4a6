"""A worker host whose only queued job is held by its limit does not spin: its idle
slot asks again at its poll interval, and takes the job once the key has room."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from attrs import evolve

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.memory import InMemoryStore, MemoryTransaction
from kernel import Limit, RunClaimPending, RunCreate, Status
from kernel.effects import UpdateJob
from kernel.status import JobStatus
from tests.hosts.waiting import wait_for
from tests.limits.test_limits import limited_workflow


class CountingStore(InMemoryStore):
    """Counts the transactions opened on it."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        self.transactions += 1
        with super().transaction() as tx:
            yield tx


def test_a_host_polls_at_its_interval_while_its_only_job_is_held() -> None:
    seen: list[int] = []
    store = CountingStore()
    kernel = create_kernel(limited_workflow(Limit("psp", max_running=1), seen), store=store)
    held, waiting = (
        kernel.dispatch(RunCreate(workflow_id="orders", input={"customer": "a", "n": n}))
        for n in (1, 2)
    )
    kernel.dispatch(RunClaimPending(worker_id="elsewhere", max_claims=10))
    with store.transaction() as tx:  # another worker holds the key's only slot
        taken = tx.lease_next_job("elsewhere", datetime.now(UTC))
    assert taken is not None and taken.workflow_run_id == held.workflow_run_id
    host = WorkerHost(
        kernel,
        store,
        worker_id="w1",
        concurrency=1,
        job_poll_interval=timedelta(milliseconds=100),
        orchestration_interval=timedelta(seconds=30),
    )
    host.start()
    try:
        time.sleep(0.2)  # let the host settle into its idle loop
        before = store.transactions
        time.sleep(0.5)
        # About five polls in 0.5 s; a host spinning on the held job would open thousands.
        assert store.transactions - before < 30
        assert seen == []
        with store.transaction() as tx:
            tx.apply([UpdateJob(evolve(taken, status=JobStatus.COMPLETED))])
        # The slot is free: the next poll leases the waiting job.
        wait_for("the waiting job to run", lambda: seen == [2])

        def completed() -> bool:
            run = store.get_run(waiting.workflow_run_id)
            return run is not None and run.status == Status.COMPLETED

        wait_for("its run to complete", completed)
    finally:
        host.stop()
