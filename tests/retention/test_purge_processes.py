"""A purge beside four busy worker processes on one database (issue 13, "Reliability").

Before the workers start, the database holds runs of several kinds, all
created ten days ago: finished ones with every event published (the only ones
a purge may delete), finished ones whose last event was dead-lettered,
pending ones of a workflow no worker knows, and runs never worked on that the
workers take up now. Runs created now join them. While four forked workers
claim, execute and flush, the test process purges runs older than a day in
small batches. Afterwards exactly the old published runs are gone, with all
their rows, and every other run is whole: each live run completed once, with a
gap-free outbox.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters import create_kernel
from adapters.postgres import PostgresStore
from adapters.sqlite import SqliteStore
from kernel import OutboxFlush, RunClaimPending, RunCreate, RunsPurge, Status
from kernel.ports import Store
from testing import FakeClock, SequentialIds, create_test_kernel
from tests.harness import RefusingSink
from tests.multiprocess.harness import THREE_STAGES
from tests.postgres_support import drop_schema, require_postgres
from tests.workflows import Calls, add, pipeline

PROCESSES = 4
DAY = timedelta(days=1)
StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens the shared database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        db = tmp_path / "shared.db"
        yield lambda: SqliteStore(db)
        return
    dsn = require_postgres()
    schema = f"wfk_purge_{uuid.uuid4().hex[:10]}"
    yield lambda: PostgresStore(dsn, schema=schema, pool_size=2)
    drop_schema(schema)


def _work(factory: StoreFactory, worker_id: str, go: Any, stop: Any) -> None:
    """A worker process: once the purger is ready (``go``), claim, execute and flush
    until told to stop."""
    store = factory()
    kernel = create_kernel(THREE_STAGES, store=store)
    go.wait(60)
    while not stop.is_set():
        claimed = kernel.dispatch(RunClaimPending(worker_id=worker_id, max_claims=5)).claimed
        executed = kernel.execute_next_job(worker_id)
        kernel.dispatch(OutboxFlush(max_events=50))
        if not claimed and executed is None:
            time.sleep(0.005)
    kernel.dispatch(OutboxFlush(max_events=10_000))
    store.close()


def _make_runs(factory: StoreFactory) -> dict[str, list[str]]:
    """The runs of every kind, by kind (see the module's docstring)."""
    store = factory()
    past = FakeClock(datetime.now(UTC) - 10 * DAY)

    def old_kernel(prefix: str, *workflows: Any, **options: Any) -> Any:
        return create_test_kernel(
            *(workflows or (THREE_STAGES,)),
            store=store,
            clock=past,
            ids=SequentialIds(prefix),
            **options,
        )

    def create(tk: Any, count: int, workflow_id: str = "count") -> list[str]:
        field = "n" if workflow_id == "count" else "value"
        return [
            tk.dispatch(RunCreate(workflow_id=workflow_id, input={field: i})).workflow_run_id
            for i in range(count)
        ]

    try:
        published = old_kernel("published")
        kinds = {"published": create(published, 40)}
        published.run_until_idle()
        dead = old_kernel("dead", sink=RefusingSink({"workflow:completed"}, max_retries=1))
        kinds["dead"] = create(dead, 4)
        dead.run_until_idle()
        elsewhere = old_kernel("elsewhere", pipeline("elsewhere", add(Calls())))
        kinds["elsewhere"] = create(elsewhere, 4, "elsewhere")
        kinds["late"] = create(old_kernel("late"), 20)
        now = create_kernel(THREE_STAGES, store=store, ids=SequentialIds("live"))
        kinds["live"] = [
            now.dispatch(RunCreate(workflow_id="count", input={"n": i})).workflow_run_id
            for i in range(60)
        ]
        return kinds
    finally:
        store.close()


def _purge_beside(store: Store, workers: list[Any]) -> tuple[list[str], int]:
    """Purge in batches of 3 until the workers have drained their runs; the runs purged
    and how many batches ran while some live run was still RUNNING."""
    kernel = create_kernel(store=store)
    purged: list[str] = []
    overlapping = 0
    deadline = time.monotonic() + 60
    # The first batch waits for the workers to be under way, so that on a machine
    # where they start slowly the purge does not finish before they begin.
    while not store.list_runs(status=Status.RUNNING, workflow_id="count", limit=1):
        if time.monotonic() > deadline:
            raise AssertionError("no worker started a run within 60 s")
        assert all(process.is_alive() for process in workers), "a worker died"
        time.sleep(0.001)
    while time.monotonic() < deadline:
        running = bool(store.list_runs(status=Status.RUNNING, workflow_id="count", limit=1))
        pending = bool(store.list_runs(status=Status.PENDING, workflow_id="count", limit=1))
        result = kernel.dispatch(RunsPurge(older_than=DAY, limit=3))
        purged.extend(result.run_ids)
        overlapping += bool(result.purged and running)
        if not (running or pending) and result.purged < 3:
            return purged, overlapping
        if not result.purged:
            time.sleep(0.01)
        assert all(process.is_alive() for process in workers), "a worker died"
    raise AssertionError("the workers did not drain their runs within 60 s")


def _whole(store: Store, run_id: str) -> bool:
    """A completed run with everything: three stages done once, a gap-free outbox."""
    run = store.get_run(run_id)
    outbox = store.get_outbox(run_id)
    types = Counter(event.event_type for event in outbox)
    return (
        run is not None
        and run.status == Status.COMPLETED
        and [event.sequence for event in outbox] == list(range(1, len(outbox) + 1))
        and types["workflow:started"] == 1
        and types["stage:completed"] == 3
        and [stage.attempt for stage in store.get_stages(run_id)] == [1, 1, 1]
    )


@pytest.mark.slow
def test_a_purge_beside_four_busy_workers_deletes_only_what_it_should(
    factory: StoreFactory,
) -> None:
    kinds = _make_runs(factory)
    context = multiprocessing.get_context("fork")
    go, stop = context.Event(), context.Event()
    workers = [
        context.Process(target=_work, args=(factory, f"worker-{i}", go, stop))
        for i in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    store = factory()
    try:
        try:
            # Started together: on a busy machine, workers that ran ahead could drain
            # every run before the purger had opened its store.
            go.set()
            purged, overlapping = _purge_beside(store, workers)
        finally:
            stop.set()
            for process in workers:
                process.join(30)
        assert [process.exitcode for process in workers] == [0] * PROCESSES

        assert sorted(purged) == sorted(kinds["published"])
        assert overlapping > 0, "no purge ran while the workers were busy"
        for run_id in kinds["published"]:
            assert store.get_run(run_id) is None
            assert (store.get_stages(run_id), store.get_jobs(run_id)) == ([], [])
            assert (store.get_outbox(run_id), store.get_logs(run_id)) == ([], [])
        for run_id in kinds["dead"]:
            run = store.get_run(run_id)
            assert run is not None and run.status == Status.COMPLETED
            assert any(event.dlq_at is not None for event in store.get_outbox(run_id))
        for run_id in kinds["elsewhere"]:
            run = store.get_run(run_id)
            assert run is not None and run.status == Status.PENDING
        broken = [r for r in kinds["late"] + kinds["live"] if not _whole(store, r)]
        assert broken == []
        assert store.get_run(kinds["late"][0]).created_at < datetime.now(UTC) - 9 * DAY  # type: ignore[union-attr]
    finally:
        store.close()
