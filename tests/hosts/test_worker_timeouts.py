"""A hung stage no longer holds a worker slot: its ``timeout`` frees the slot for the
next job (SPEC §19). Real threads on the in-memory store; every wait is bounded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.memory import InMemoryStore
from kernel import Retry, RunCreate, StageContext, Status, WorkflowBuilder, define_stage
from tests.hosts.waiting import wait_for

MS = timedelta(milliseconds=1)


@attrs.frozen
class Job:
    hang: bool


@attrs.frozen
class Done:
    hung: bool


@attrs.frozen
class NoConfig:
    pass


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets the hung stages' threads end when the test is over."""
    event = threading.Event()
    yield event
    event.set()


def test_a_hung_sync_stage_frees_the_only_slot_for_the_next_run(release: threading.Event) -> None:
    def work(ctx: StageContext[Job, NoConfig]) -> Done:
        if ctx.input.hang:
            release.wait(30)
        return Done(hung=ctx.input.hang)

    stage = define_stage(
        id="work",
        name="Work",
        input=Job,
        output=Done,
        config=NoConfig,
        execute=work,
        timeout=200 * MS,
        retry=Retry(max_attempts=1),
    )
    workflow = WorkflowBuilder("jobs", "Jobs", input=Job, output=Done).pipe(stage).build()
    store = InMemoryStore()
    kernel = create_kernel(workflow, store=store)
    hung = kernel.dispatch(RunCreate(workflow_id="jobs", input={"hang": True})).workflow_run_id
    quick = kernel.dispatch(RunCreate(workflow_id="jobs", input={"hang": False})).workflow_run_id
    host = WorkerHost(
        kernel,
        store,
        worker_id="w1",
        concurrency=1,
        orchestration_interval=20 * MS,
        job_poll_interval=10 * MS,
        drain_timeout=timedelta(seconds=2),
    )

    host.start()
    try:
        wait_for("both runs to end", lambda: all(r.is_terminal for r in store.list_runs()))
    finally:
        stats = host.stop()

    hung_run, quick_run = store.get_run(hung), store.get_run(quick)
    assert hung_run is not None and quick_run is not None
    assert hung_run.status == Status.FAILED
    assert hung_run.error is not None and hung_run.error.startswith("STAGE_TIMEOUT: ")
    assert quick_run.status == Status.COMPLETED
    assert (stats.jobs_processed, stats.busy_slots) == (2, 0)
