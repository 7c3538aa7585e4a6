"""Listing benchmark: pages of ``list_runs`` over 100,000 runs, SQLite and PostgreSQL.

Fills a SQLite file and a PostgreSQL schema with N runs of three workflows in
mixed statuses (the store's own insert statement and row encoding, run with
``executemany`` in one transaction), then times, as the median of several
calls, what a dashboard asks for: the first page, a page 1,000 runs deep
(``before`` = the 1,000th run), a page 1,500 deep in the runs of one status
and of one workflow (and of both), and ``get_run`` by id. Each row also
names the index the database walks for it (``EXPLAIN``). PostgreSQL is
skipped, with a note, when the server is unreachable.

``--write-cost`` measures instead what the two listing indexes of schema
version 4 cost the writes: the same runs created (one transaction each) and
taken through PENDING -> RUNNING -> (cost update) -> COMPLETED, on a store
with and one without ``runs_status``/``runs_workflow``, alternately.

    .venv/bin/python bench/list_runs.py
    .venv/bin/python bench/list_runs.py --runs 100000 --repeat 9 --store sqlite
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.sqlite import SqliteStore
from adapters.sqlite.queries import QUERIES as SQLITE_QUERIES
from adapters.sqlite.transaction import RUNS
from kernel.effects import InsertRun, UpdateRun
from kernel.ports import Store
from kernel.records import WorkflowRun
from kernel.status import Status

PAGE = 50
"""Runs per page, as the dashboard asks."""

WORKFLOWS = ("invoices", "reports", "emails")
STATUSES = (
    (Status.COMPLETED, 0.84),
    (Status.FAILED, 0.06),
    (Status.RUNNING, 0.03),
    (Status.PENDING, 0.03),
    (Status.SUSPENDED, 0.02),
    (Status.CANCELLED, 0.02),
)
"""The mix of statuses: mostly finished runs, as in a store that has been in use."""

FILTERED_STATUS = Status.FAILED
FILTERED_WORKFLOW = "reports"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
DSN = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "wfk_bench_list_runs"


def make_runs(count: int, seed: int = 7) -> list[WorkflowRun]:
    """``count`` runs in insertion order, about 3 s apart; one in ten shares its
    ``created_at`` with the run before (ties are broken by insertion order)."""
    rng = random.Random(seed)
    statuses = [status for status, _ in STATUSES]
    weights = [weight for _, weight in STATUSES]
    runs: list[WorkflowRun] = []
    created = T0
    for n in range(count):
        if n % 10:
            created += timedelta(milliseconds=rng.randint(1, 6000))
        status = rng.choices(statuses, weights)[0]
        runs.append(
            WorkflowRun(
                id=f"run-{n:06d}-{rng.getrandbits(32):08x}",
                workflow_id=WORKFLOWS[rng.randrange(len(WORKFLOWS))],
                workflow_name="Bench",
                status=status,
                input={"document": f"doc-{n}", "pages": rng.randint(1, 40)},
                config={"extract": {"model": "small"}},
                priority=rng.choice((0, 0, 0, 5)),
                metadata={"tenant": f"t-{n % 17}"},
                output={"ok": True} if status is Status.COMPLETED else None,
                error="ValueError: bad page" if status is Status.FAILED else None,
                created_at=created,
                started_at=None if status is Status.PENDING else created + timedelta(seconds=1),
                total_cost=Decimal("0.01"),
                total_tokens=120,
                version=3,
            )
        )
    return runs


@attrs.frozen
class Query:
    """One timed call: what it asks, the statement it runs and its parameters."""

    label: str
    call: Callable[[Store], object]
    statement: str
    values: dict[str, Any]


def queries(runs: list[WorkflowRun]) -> list[Query]:
    """The dashboard's calls, their ``before`` runs picked from the known order."""
    newest = sorted(range(len(runs)), key=lambda n: (runs[n].created_at, n), reverse=True)
    ordered = [runs[n] for n in newest]
    by_status = [run for run in ordered if run.status is FILTERED_STATUS]
    by_workflow = [run for run in ordered if run.workflow_id == FILTERED_WORKFLOW]
    by_both = [run for run in by_status if run.workflow_id == FILTERED_WORKFLOW]
    deep, deep_filtered = ordered[999].id, 1499
    both_depth = min(deep_filtered, len(by_both) - PAGE - 1)
    status, workflow = FILTERED_STATUS, FILTERED_WORKFLOW
    some_id = ordered[len(ordered) // 2].id

    def values(**given: Any) -> dict[str, Any]:
        base = {"status": None, "workflow_id": None, "limit": PAGE, "before": None}
        return base | {k: v.value if isinstance(v, Status) else v for k, v in given.items()}

    return [
        Query(
            "first page",
            lambda s: s.list_runs(limit=PAGE),
            "list_runs",
            values(),
        ),
        Query(
            "page 1,000 runs deep",
            lambda s: s.list_runs(limit=PAGE, before=deep),
            "list_runs",
            values(before=deep),
        ),
        Query(
            f"status={status.value}, 1,500 deep",
            lambda s: s.list_runs(status, limit=PAGE, before=by_status[deep_filtered].id),
            "list_runs_by_status",
            values(status=status, before=by_status[deep_filtered].id),
        ),
        Query(
            f"workflow={workflow}, 1,500 deep",
            lambda s: s.list_runs(None, workflow, PAGE, before=by_workflow[deep_filtered].id),
            "list_runs_by_workflow",
            values(workflow_id=workflow, before=by_workflow[deep_filtered].id),
        ),
        Query(
            f"both, {both_depth + 1:,} deep",
            lambda s: s.list_runs(status, workflow, PAGE, before=by_both[both_depth].id),
            "list_runs_by_status_and_workflow",
            values(status=status, workflow_id=workflow, before=by_both[both_depth].id),
        ),
        Query("get_run by id", lambda s: s.get_run(some_id), "get_run", {"id": some_id}),
    ]


def median_ms(call: Callable[[], object], repeat: int) -> float:
    call()  # warm: statement caches, pages in memory
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


# -- SQLite ----------------------------------------------------------------------


@contextmanager
def sqlite_store(runs: list[WorkflowRun], directory: Path) -> Iterator[tuple[Store, float]]:
    path = directory / "runs.db"
    SqliteStore(path).close()  # creates the file at the latest schema
    start = time.perf_counter()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQLITE_QUERIES.insert_run, (RUNS.encode(run) for run in runs))
        conn.execute("COMMIT")
    filled = time.perf_counter() - start
    store = SqliteStore(path)
    try:
        yield store, filled
    finally:
        store.close()


def sqlite_index(store: Store, query: Query) -> str:
    assert isinstance(store, SqliteStore)
    statement = getattr(SQLITE_QUERIES, query.statement)
    with closing(sqlite3.connect(store.path)) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", query.values).fetchall()
    return str(plan[0][-1]).replace("SEARCH runs USING ", "")


# -- PostgreSQL --------------------------------------------------------------------


def postgres_problem() -> str | None:
    import psycopg

    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return None


@contextmanager
def postgres_store(runs: list[WorkflowRun]) -> Iterator[tuple[Store, float]]:
    import psycopg
    from psycopg import sql

    from adapters.postgres import PostgresStore
    from adapters.postgres.queries import QUERIES
    from adapters.postgres.rows import params

    store = PostgresStore(DSN, schema=SCHEMA)
    store.drop_schema()
    store.migrate()
    start = time.perf_counter()
    with psycopg.connect(DSN) as conn:  # one transaction, committed on exit
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
        with conn.cursor() as cursor:
            cursor.executemany(QUERIES["insert_run"], [params(run) for run in runs])
        # As autovacuum would after such a load: the planner needs the statistics.
        conn.execute("ANALYZE runs")
    filled = time.perf_counter() - start
    try:
        yield store, filled
    finally:
        store.drop_schema()
        store.close()


def postgres_index(store: Store, query: Query) -> str:
    import psycopg
    from psycopg import sql

    from adapters.postgres.queries import QUERIES

    with psycopg.connect(DSN) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
        rows = conn.execute(b"EXPLAIN " + QUERIES[query.statement], query.values).fetchall()
    scans = [str(row[0]).strip() for row in rows if "Scan" in row[0]]
    page = [scan for scan in scans if "runs_pkey" not in scan] or scans
    return page[0].removeprefix("->").split("  (cost")[0].strip()


# -- what the listing indexes cost the writes -----------------------------------------

LISTING_INDEXES = {
    "sqlite": ("runs_status", "runs_workflow"),
    "postgres": ("runs_status_idx", "runs_workflow_idx"),
}


def lifecycle(store: Store, runs: list[WorkflowRun]) -> tuple[float, float]:
    """Create each run, then update it three times, a transaction each; the mean
    microseconds of an insert and of an update."""
    start = time.perf_counter()
    for run in runs:
        with store.transaction() as tx:
            tx.apply([InsertRun(attrs.evolve(run, status=Status.PENDING, version=1))])
    inserted = time.perf_counter()
    for run in runs:
        current = attrs.evolve(run, status=Status.PENDING, version=1)
        for changes in (
            {"status": Status.RUNNING},
            {"total_cost": 0.02},
            {"status": Status.COMPLETED},
        ):
            updated = attrs.evolve(current, version=current.version + 1, **changes)
            with store.transaction() as tx:
                tx.apply([UpdateRun(updated, expected_version=current.version)])
            current = updated
    done = time.perf_counter()
    return (inserted - start) / len(runs) * 1e6, (done - inserted) / (3 * len(runs)) * 1e6


def sqlite_lifecycle(runs: list[WorkflowRun], indexed: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        SqliteStore(path).close()
        if not indexed:
            with closing(sqlite3.connect(path)) as conn:
                for index in LISTING_INDEXES["sqlite"]:
                    conn.execute(f"DROP INDEX {index}")
        store = SqliteStore(path)
        try:
            return lifecycle(store, runs)
        finally:
            store.close()


def postgres_lifecycle(runs: list[WorkflowRun], indexed: bool) -> tuple[float, float]:
    import psycopg
    from psycopg import sql

    from adapters.postgres import PostgresStore

    store = PostgresStore(DSN, schema=SCHEMA)
    store.drop_schema()
    store.migrate()
    if not indexed:
        with psycopg.connect(DSN, autocommit=True) as conn:
            for index in LISTING_INDEXES["postgres"]:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(SCHEMA, index)))
    try:
        return lifecycle(store, runs)
    finally:
        store.drop_schema()
        store.close()


def write_cost(
    name: str,
    measure_once: Callable[[list[WorkflowRun], bool], tuple[float, float]],
    runs: list[WorkflowRun],
    rounds: int,
) -> None:
    samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(rounds):
        for indexed in (False, True):
            samples[indexed].append(measure_once(runs, indexed))
    print(f"\n{name}: {len(runs):,} runs, 1 insert + 3 updates each, median of {rounds} rounds")
    print(f"  {'schema':<40} {'insert µs':>9} {'update µs':>9}")
    for indexed, label in (
        (False, "without runs_status, runs_workflow"),
        (True, "version 4 (with them)"),
    ):
        insert = statistics.median(sample[0] for sample in samples[indexed])
        update = statistics.median(sample[1] for sample in samples[indexed])
        print(f"  {label:<40} {insert:9.0f} {update:9.0f}")


# -- report ------------------------------------------------------------------------


def measure(
    name: str,
    opened: Any,
    index_of: Callable[[Store, Query], str],
    runs: list[WorkflowRun],
    repeat: int,
) -> None:
    with opened as (store, filled):
        print(f"\n{name}: {len(runs):,} runs filled in {filled:.1f} s")
        print(f"  {'query':<34} {'median ms':>9}  rows  index")
        for query in queries(runs):
            result = query.call(store)
            rows = len(result) if isinstance(result, list) else int(result is not None)
            elapsed = median_ms(lambda q=query: q.call(store), repeat)  # type: ignore[misc]
            print(f"  {query.label:<34} {elapsed:9.3f}  {rows:4}  {index_of(store, query)}")


def main_write_cost(count: int, which: str, rounds: int) -> int:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"reproduce: .venv/bin/python bench/list_runs.py --write-cost {count} --store {which}")
    runs = make_runs(count)
    if which in ("sqlite", "both"):
        write_cost("SQLite (file, WAL)", sqlite_lifecycle, runs, rounds)
    if which in ("postgres", "both"):
        problem = postgres_problem()
        if problem is not None:
            print(f"\nPostgreSQL skipped: {DSN} is unreachable ({problem})")
        else:
            write_cost("PostgreSQL", postgres_lifecycle, runs, rounds)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs to fill each store with")
    parser.add_argument("--repeat", type=int, default=9, help="timed calls per query (median)")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--write-cost",
        type=int,
        metavar="RUNS",
        help="measure what the listing indexes cost RUNS run lifecycles instead",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--write-cost rounds (median)")
    args = parser.parse_args(argv)
    if args.write_cost is not None:
        return main_write_cost(args.write_cost, args.store, args.rounds)
    if args.runs < 10_000:
        parser.error(f"--runs: expected at least 10000 (pages 1,500 deep), got {args.runs}")
    print(f"list_runs: page={PAGE} runs={args.runs:,} repeat={args.repeat} (median)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print(
        f"reproduce: .venv/bin/python bench/list_runs.py --runs {args.runs} --repeat {args.repeat}"
    )
    runs = make_runs(args.runs)
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            opened = sqlite_store(runs, Path(tmp))
            measure("SQLite (file, WAL)", opened, sqlite_index, runs, args.repeat)
    if args.store in ("postgres", "both"):
        problem = postgres_problem()
        if problem is not None:
            print(f"\nPostgreSQL skipped: {DSN} is unreachable ({problem})")
        else:
            opened = postgres_store(runs)
            measure(f"PostgreSQL ({DSN})", opened, postgres_index, runs, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
