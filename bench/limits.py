"""Limits benchmark (SPEC §15): how fast the lease transaction leases under limits.

Each measured cycle is one transaction that leases the next job
(``lease_next_job``) and completes it, so a key's slot is free again for the
next cycle; one process, one connection. Scenarios, each over ``--jobs``
queued jobs:

- ``no limit``: jobs without a limit (the baseline);
- ``1,000 keys``: each job keyed ``customer-<i % 1000>``, ``max_running=1``;
- ``hot key``: every job keyed ``openai``, ``max_running=10``;
- ``hot key + rate``: the same with ``Rate(1_000_000, per=1 min)`` too (each
  lease also records its time in the rate window);
- ``behind held``: 10 jobs of a key with ``max_running=10`` stay leased
  and ``--held`` more of it are queued ahead of the unlimited jobs measured:
  each lease passes over the held jobs first.

    .venv/bin/python bench/limits.py                     # sqlite and postgres
    .venv/bin/python bench/limits.py --stores sqlite --jobs 5000
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from attrs import evolve

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel.effects import EnqueueJob, InsertRun, UpdateJob
from kernel.ports import Store
from kernel.records import Job, WorkflowRun
from kernel.status import JobStatus, Status

DSN = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE_US = 60_000_000

Keyer = Callable[[int], dict[str, Any]]
"""The limit fields of job number ``i`` of a scenario."""

SCENARIOS: dict[str, Keyer] = {
    "no limit": lambda i: {},
    "1,000 keys": lambda i: {"limit_key": f"customer-{i % 1000}", "limit_max_running": 1},
    "hot key": lambda i: {"limit_key": "openai", "limit_max_running": 10},
    "hot key + rate": lambda i: {
        "limit_key": "openai",
        "limit_max_running": 10,
        "limit_rate_count": 1_000_000,
        "limit_rate_per_us": MINUTE_US,
    },
}


@contextmanager
def open_store(kind: str) -> Iterator[Store]:
    if kind == "sqlite":
        from adapters.sqlite import SqliteStore

        with tempfile.TemporaryDirectory() as directory:
            store = SqliteStore(Path(directory) / "limits.db")
            try:
                yield store
            finally:
                store.close()
        return
    from adapters.postgres import PostgresStore

    schema = f"wfk_bench_limits_{uuid.uuid4().hex[:8]}"
    pg = PostgresStore(DSN, schema=schema, pool_size=1)
    try:
        yield pg
    finally:
        pg.drop_schema()
        pg.close()


def job(i: int, **fields: Any) -> Job:
    return Job(
        id=f"job-{i:07}",
        workflow_run_id="run-1",
        workflow_id="wf",
        stage_id="s",
        status=JobStatus.QUEUED,
        available_at=T0,
        created_at=T0 + timedelta(microseconds=i),
        **fields,
    )


def fill(store: Store, jobs: list[Job]) -> None:
    for start in range(0, len(jobs), 500):
        with store.transaction() as tx:
            tx.apply([EnqueueJob(j) for j in jobs[start : start + 500]])
    schema = getattr(store, "schema", None)
    if schema is not None:
        # Statistics, as autovacuum keeps them on a live table: without them the
        # planner may sort the whole queue instead of walking jobs_queued_idx.
        import psycopg

        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'ANALYZE "{schema}".jobs'.encode())


def drain(store: Store, count: int) -> float:
    """Lease and complete ``count`` jobs, one transaction each; leases per second."""
    now = T0 + timedelta(seconds=1)
    started = time.perf_counter()
    for n in range(count):
        with store.transaction() as tx:
            leased = tx.lease_next_job("bench", now + timedelta(microseconds=n))
            assert leased is not None, f"no job leased at cycle {n}"
            tx.apply([UpdateJob(evolve(leased, status=JobStatus.COMPLETED))])
    return count / (time.perf_counter() - started)


def measure(kind: str, name: str, jobs: int, held: int) -> float:
    with open_store(kind) as store:
        run = WorkflowRun(
            id="run-1", workflow_id="wf", workflow_name="wf", status=Status.RUNNING,
            input=None, created_at=T0,
        )  # fmt: skip
        with store.transaction() as tx:
            tx.apply([InsertRun(run)])
        if name == "behind full key":
            full = {"limit_key": "hot", "limit_max_running": 10}
            fill(store, [job(i, **full) for i in range(10 + held)])
            with store.transaction() as tx:
                for _ in range(10):
                    assert tx.lease_next_job("holder", T0) is not None
            fill(store, [job(10 + held + i) for i in range(jobs)])
        else:
            fill(store, [job(i, **SCENARIOS[name](i)) for i in range(jobs)])
        return drain(store, jobs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="lease rate under limits")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=3000, help="jobs leased per scenario")
    parser.add_argument("--held", type=int, default=1000, help="held jobs ahead (last scenario)")
    args = parser.parse_args(argv)
    names = [*SCENARIOS, "behind full key"]
    kinds = args.stores.split(",")
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"# leases/s, one lease+complete transaction per job, {args.jobs} jobs per scenario")
    print(f"| scenario | {' | '.join(kinds)} |")
    print(f"|---|{'---:|' * len(kinds)}")
    for name in names:
        label = f"behind {args.held} held jobs" if name == "behind full key" else name
        rates = [measure(kind, name, args.jobs, args.held) for kind in kinds]
        print(f"| {label} | {' | '.join(f'{rate:,.0f}' for rate in rates)} |", flush=True)


if __name__ == "__main__":
    main()
