"""Leasing several jobs in one go (``ManyLeases``), on each store that can.

Jobs before the first with a limit key are leased together; that job alone,
so its limit applies. Whatever the store sends, the jobs leased are those
that as many ``lease_next_job`` calls in a row would lease.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.postgres import PostgresStore
from adapters.sqlite import SqliteStore
from kernel.effects import EnqueueJob, InsertRun
from kernel.ports import Store
from tests.harness import T0, insert, make_job, make_run
from tests.postgres_support import drop_schema, fresh_schema, require_postgres


@contextmanager
def _sqlite(tmp_path: Path, name: str) -> Iterator[Store]:
    store = SqliteStore(tmp_path / f"{name}.db")
    yield store
    store.close()


@contextmanager
def _postgres(name: str) -> Iterator[Store]:
    schema = fresh_schema()
    store = PostgresStore(require_postgres(), schema=schema)
    yield store
    store.close()
    drop_schema(schema)


def _queue(store: Store, keys: list[str | None], max_running: int = 1) -> None:
    runs = [make_run(id=f"run-{n}") for n in range(len(keys))]
    jobs = [
        make_job(
            "a",
            run_id=f"run-{n}",
            created_at=T0 + timedelta(seconds=n),
            limit_key=key,
            limit_max_running=None if key is None else max_running,
        )
        for n, key in enumerate(keys)
    ]
    insert(store, *(InsertRun(run) for run in runs), *(EnqueueJob(job) for job in jobs))


@pytest.mark.parametrize(
    "keys",
    [
        [None, None, None, None, None],
        [None, "k", None, "k", None],
        ["k", "k", None, None, "j"],
        [None, None, "k", "k", "k"],
    ],
)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_leasing_several_jobs_at_once_leases_what_one_at_a_time_would(
    tmp_path: Path, kind: str, keys: list[str | None]
) -> None:
    """Here a key allows one running job."""
    chosen: list[list[str]] = []
    for way in ("many", "one"):
        opened = _sqlite(tmp_path, way) if kind == "sqlite" else _postgres(way)
        with opened as store:
            _queue(store, keys)
            leased: list[str] = []
            with store.transaction() as tx:
                while len(leased) < 5:
                    wanted, at_limit = 5 - len(leased), True
                    if way == "many":
                        got, at_limit = tx.lease_next_jobs(  # type: ignore[attr-defined]
                            "w", T0 + timedelta(minutes=1), wanted
                        )
                    else:
                        one = tx.lease_next_job("w", T0 + timedelta(minutes=1))
                        got = [] if one is None else [one]
                    leased += [job.workflow_run_id for job in got]
                    if not got or (len(got) < wanted and not at_limit):
                        break  # as Reads.lease_jobs: fewer, not at a limit, is all there is
            chosen.append(leased)
    assert chosen[0] == chosen[1]
    assert len(chosen[0]) == len({key for key in keys if key}) + keys.count(None)
