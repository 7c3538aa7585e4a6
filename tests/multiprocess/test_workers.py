"""Several worker processes on one database (SPEC §7; SQLite and PostgreSQL issues).

Forked workers claim, execute and flush concurrently; afterwards every run was
claimed exactly once, every job executed exactly once, every outbox sequence
is gap-free, no job is left behind and no event was published twice.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.postgres import PostgresStore
from adapters.sqlite import SqliteStore
from kernel import JobStatus, Status
from kernel.ports import Store
from tests.multiprocess.harness import published_counts, run_workers
from tests.postgres_support import drop_schema, require_postgres

PROCESSES = 4

Backend = tuple[Callable[[], Store], int]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A store factory every process can call, and how many runs to drain."""
    if request.param == "sqlite":
        db = tmp_path / "shared.db"
        yield (lambda: SqliteStore(db)), 200
        return
    dsn = require_postgres()
    schema = f"wfk_mp_{uuid.uuid4().hex[:10]}"
    yield (lambda: PostgresStore(dsn, schema=schema, pool_size=2)), 300
    drop_schema(schema)


@pytest.mark.slow
def test_four_processes_claim_and_execute_every_run_exactly_once(
    backend: Backend, tmp_path: Path
) -> None:
    factory, runs = backend
    files = run_workers(factory, PROCESSES, runs, tmp_path)

    store = factory()
    try:
        finished = store.list_runs(limit=runs + 1)
        assert len(finished) == runs
        assert Counter(run.status for run in finished) == {Status.COMPLETED: runs}
        for run in finished:
            assert run.output == {"n": int(run.input["n"]) + 3}
            outbox = store.get_outbox(run.id)
            assert [event.sequence for event in outbox] == list(range(1, len(outbox) + 1))
            types = Counter(event.event_type for event in outbox)
            assert types["workflow:started"] == 1, "claimed exactly once"
            assert types["stage:started"] == 3, "each stage executed exactly once"
            assert types["stage:completed"] == 3
            assert types["workflow:completed"] == 1
            assert all(event.published_at is not None for event in outbox)
            assert {job.status for job in store.get_jobs(run.id)} == {JobStatus.COMPLETED}
            assert [stage.attempt for stage in store.get_stages(run.id)] == [1, 1, 1]
        published = published_counts(files)
        assert sum(published.values()) == sum(len(store.get_outbox(r.id)) for r in finished)
        assert max(published.values()) == 1, "no event published twice"
    finally:
        store.close()
