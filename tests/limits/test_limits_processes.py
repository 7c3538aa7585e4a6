"""``max_running`` across real processes (issue 13, "Reliability").

Four forked workers share one database (a SQLite file, or a PostgreSQL schema)
and drain 400 one-stage runs whose stage has ``Limit("psp", max_running=2)``.
Each stage sleeps a little, so leases really overlap. Meanwhile a sampler in
the test process, on a connection of its own, counts the LEASED jobs of the
key again and again: it never sees more than two, and every run completes.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters import create_kernel
from adapters.postgres import PostgresStore
from adapters.sqlite import SqliteStore
from kernel import (
    Limit,
    RunClaimPending,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from kernel.ports import Store
from tests.postgres_support import connect_to, drop_schema, require_postgres

PROCESSES = 4
RUNS = 400
MAX_RUNNING = 2
COUNT_LEASED = "SELECT count(*) FROM jobs WHERE status = 'LEASED' AND limit_key = 'psp'"


@attrs.frozen
class Charge:
    n: int


@attrs.frozen
class NoConfig:
    pass


def _charge(ctx: StageContext[Charge, NoConfig]) -> Charge:
    time.sleep(0.002)  # long enough for leases of other workers to overlap
    return ctx.input


CHARGE_STAGE = define_stage(
    id="charge",
    name="Charge",
    input=Charge,
    output=Charge,
    config=NoConfig,
    execute=_charge,
    limit=Limit("psp", max_running=MAX_RUNNING),
)
CHARGE = WorkflowBuilder("charge", "Charge", input=Charge, output=Charge).pipe(CHARGE_STAGE).build()


@attrs.frozen
class Shared:
    """How to open the shared database, and how to count its leased jobs."""

    open: Callable[[], Store]
    count_leased: Callable[[], int]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    if request.param == "sqlite":
        db = tmp_path / "shared.db"
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        with closing(conn):

            def count_sqlite() -> int:
                return int(conn.execute(COUNT_LEASED).fetchone()[0])

            yield Shared(lambda: SqliteStore(db), count_sqlite)
        return
    dsn = require_postgres()
    schema = f"wfk_limits_{uuid.uuid4().hex[:10]}"
    first = PostgresStore(dsn, schema=schema)
    first.migrate()  # the sampler's connection needs the tables
    first.close()
    try:
        with connect_to(schema) as pg:

            def count_pg() -> int:
                return int(pg.execute(COUNT_LEASED.encode()).fetchone()["count"])  # type: ignore[index]

            yield Shared(lambda: PostgresStore(dsn, schema=schema, pool_size=2), count_pg)
    finally:
        drop_schema(schema)


def _work(shared: Shared, worker_id: str, go: Any, stop: Any) -> None:
    """A worker process: claim runs and execute jobs (each finish leasing the next job
    in its transaction) until told to stop."""
    store = shared.open()
    kernel = create_kernel(CHARGE, store=store)
    go.wait(60)
    while not stop.is_set():
        claimed = kernel.dispatch(RunClaimPending(worker_id=worker_id, max_claims=20)).claimed
        executed = kernel.execute_jobs(worker_id, max_jobs=50)
        if not claimed and not executed:
            time.sleep(0.005)
    store.close()


@pytest.mark.slow
def test_four_workers_never_lease_more_than_max_running_of_one_key(shared: Shared) -> None:
    store = shared.open()
    kernel = create_kernel(CHARGE, store=store)
    for n in range(RUNS):
        kernel.dispatch(RunCreate(workflow_id="charge", input={"n": n}))
    context = multiprocessing.get_context("fork")
    go, stop = context.Event(), context.Event()
    workers = [
        context.Process(target=_work, args=(shared, f"worker-{i}", go, stop))
        for i in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    samples: list[int] = []
    try:
        go.set()
        deadline = time.monotonic() + 60
        while store.list_runs(status=Status.PENDING, limit=1) or store.list_runs(
            status=Status.RUNNING, limit=1
        ):
            samples.append(shared.count_leased())
            assert time.monotonic() < deadline, "the workers did not drain the runs in 60 s"
            assert all(process.is_alive() for process in workers), "a worker died"
    finally:
        stop.set()
        for process in workers:
            process.join(30)
    try:
        assert [process.exitcode for process in workers] == [0] * PROCESSES
        assert max(samples) <= MAX_RUNNING, f"saw {max(samples)} jobs of the key leased at once"
        assert samples.count(MAX_RUNNING) > 0, "the sampler never saw the key full"
        runs = store.list_runs(limit=RUNS + 1)
        assert len(runs) == RUNS
        assert {run.status for run in runs} == {Status.COMPLETED}
    finally:
        store.close()
