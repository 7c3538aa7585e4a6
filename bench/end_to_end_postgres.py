"""End-to-end benchmark on PostgreSQL: runs created while worker processes drain them.

A producer in this process dispatches ``RunCreate`` for N three-stage no-op
runs (flat out, or ``--rate`` per second) through a kernel on a
``PostgresStore`` of its own, while ``--workers`` processes, each a
``WorkerHost`` with ``--slots`` slots on a ``PostgresStore``, claim the runs
(a ``NOTIFY`` for each new run and queued job wakes idle workers), execute
their stages and flush the outbox. Timed from the first create until the
last stage has run. Statements, round trips and write transactions of the
producer and the workers are counted in their psycopg connections
(``bench/pg_counting.py``) from the first create until every host has
stopped (final outbox flushes included). Latency per run is its record's
``completed_at - created_at``: under the flat-out load (queueing included),
then on idle workers (``--idle-runs`` runs created ``--gap-ms`` apart).

Beside it, the raw commit rate of the same server: 4 connections inserting
one row per transaction (``synchronous_commit=on``) for ``--raw-seconds``;
the target is half that rate divided by the write transactions per stage.
Everything happens in a schema of its own, dropped at the end. Before it
measures, it prints how many dead rows the server's catalogs hold (left by
the schemas of earlier tests and benchmarks, where autovacuum is off: they
slow every measure, ``bench/pg_catalog.py``); ``--vacuum-catalogs`` vacuums
them first.

    .venv/bin/python bench/end_to_end_postgres.py --runs 2000
    .venv/bin/python bench/end_to_end_postgres.py --runs 2000 --vacuum-catalogs
    .venv/bin/python bench/end_to_end_postgres.py --runs 20 --workers 2 --idle-runs 0
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.postgres import PostgresStore
from bench.pg_catalog import dead_catalog_rows, vacuum_catalogs
from bench.pg_counting import COUNTS, counting_store
from bench.store_ops import STAGES, WORKFLOW
from kernel import RunCreate
from testing.sinks import CollectingEventSink

DSN = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
COUNTERS = 4
"""Per worker process: statements, round trips, write transactions, CPU microseconds."""
_POLL_S = 0.005
"""How often each worker process publishes its progress and the parent looks at it. Not
shorter: each look takes a core from the processes being measured (the machine has 2)."""


def measures() -> tuple[int, int, int, int]:
    """This process's statements, round trips and write transactions so far, and its CPU
    time in microseconds."""
    return (*COUNTS.snapshot(), int(time.process_time() * 1e6))


def server_cpu() -> float | None:
    """CPU seconds used so far by the processes named ``postgres`` on this machine (the
    server's backends; exited ones through the postmaster's children's times); ``None``
    where ``/proc`` does not show them."""
    ticks = 0
    found = False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" not in text:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


def worker(
    dsn: str, schema: str, index: int, slots: int, tick_ms: float, shared: dict[str, Any]
) -> None:
    """One worker process: a ``WorkerHost`` until ``stop``; publishes its progress
    in ``done[index]`` and, once stopped, what it sent in ``counts``."""
    store = counting_store(dsn, schema=schema, pool_size=slots + 1)
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    host = WorkerHost(
        kernel,
        store,
        worker_id=f"w{index}",
        concurrency=slots,
        orchestration_interval=timedelta(milliseconds=tick_ms),
    )
    host.start()
    store.wait_for_jobs(0)  # listening from now on
    with shared["ready"].get_lock():
        shared["ready"].value += 1
    shared["go"].wait()
    base = measures()
    done = shared["done"]
    while not shared["stop"].wait(_POLL_S):
        done[index] = host.stats().jobs_processed
    host.stop()
    done[index] = host.stats().jobs_processed
    counts = shared["counts"]
    for offset, (now, then) in enumerate(zip(measures(), base, strict=True)):
        counts[index * COUNTERS + offset] = now - then
    store.close()


class Workers:
    """``count`` worker processes on one schema, started and waiting for ``go``."""

    def __init__(self, dsn: str, schema: str, count: int, slots: int, tick_ms: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = count
        self.shared: dict[str, Any] = {
            "ready": context.Value("i", 0),
            "go": context.Event(),
            "stop": context.Event(),
            "done": context.Array("q", count),
            "counts": context.Array("q", count * COUNTERS),
        }
        self.processes = [
            context.Process(target=worker, args=(dsn, schema, i, slots, tick_ms, self.shared))
            for i in range(count)
        ]
        for process in self.processes:
            process.start()
        deadline = time.monotonic() + 60
        while self.shared["ready"].value < count:
            if time.monotonic() > deadline or not all(p.is_alive() for p in self.processes):
                self.stop()
                raise SystemExit("worker processes did not start")
            time.sleep(0.01)
        time.sleep(0.2)  # their first ticks (which find nothing) are not part of the measure
        self.shared["go"].set()

    def done(self) -> int:
        return sum(self.shared["done"])

    def stop(self) -> list[int]:
        """Stop (each host drains and flushes); their :func:`measures`, summed."""
        self.shared["stop"].set()
        for process in self.processes:
            process.join(60)
        counts = list(self.shared["counts"])
        return [sum(counts[offset::COUNTERS]) for offset in range(COUNTERS)]


def wait_for(workers: Workers, stages: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while workers.done() < stages:
        if time.monotonic() > deadline:
            workers.stop()
            raise SystemExit(f"{workers.done()} of {stages} stages in {timeout:g} s")
        time.sleep(_POLL_S)


def produce(store: PostgresStore, runs: int, rate: float | None, ids: list[str]) -> None:
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    start = time.perf_counter()
    for i in range(runs):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        ids.append(
            kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": i})).workflow_run_id
        )


def latencies(store: PostgresStore, ids: list[str]) -> tuple[float, float]:
    millis = []
    for run_id in ids:
        run = store.get_run(run_id)
        if run is None or run.completed_at is None:
            raise SystemExit(f"run {run_id} did not complete")
        millis.append((run.completed_at - run.created_at).total_seconds() * 1000)
    if len(millis) == 1:
        return millis[0], millis[0]
    return statistics.median(millis), statistics.quantiles(millis, n=100)[98]


def measure(args: argparse.Namespace, schema: str) -> dict[str, float]:
    """Drain ``args.runs`` runs created while the workers run."""
    producer_store = counting_store(args.dsn, schema=schema, pool_size=1)
    try:
        producer_store.migrate()
        workers = Workers(args.dsn, schema, args.workers, args.slots, args.tick_ms)
        stages = args.runs * STAGES
        ids: list[str] = []
        producer = threading.Thread(
            target=produce, args=(producer_store, args.runs, args.rate, ids), daemon=True
        )
        before = measures()
        server_before = server_cpu()
        start = time.perf_counter()
        producer.start()
        wait_for(workers, stages)
        elapsed = time.perf_counter() - start
        producer.join()
        mine = [now - then for now, then in zip(measures(), before, strict=True)]
        theirs = workers.stop()
        server_after = server_cpu()
        statements, round_trips, writes, cpu_us = (a + b for a, b in zip(mine, theirs, strict=True))
        p50, p99 = latencies(producer_store, ids)
    finally:
        producer_store.close()
    return {
        "seconds": elapsed,
        "rate": stages / elapsed,
        "tx_per_stage": writes / stages,
        "round_trips_per_stage": round_trips / stages,
        "statements_per_stage": statements / stages,
        "p50_ms": p50,
        "p99_ms": p99,
        "client_cpu_ms": cpu_us / 1000 / stages,
        "server_cpu_ms": (
            (server_after - server_before) * 1000 / stages
            if server_after is not None and server_before is not None
            else float("nan")
        ),
    }


def idle_latency(args: argparse.Namespace, schema: str) -> tuple[float, float, list[float]]:
    """p50/p99 create→completed of runs created one at a time on idle workers, and the
    workers' statements, round trips and write transactions per run (their polls and
    ticks meanwhile included)."""
    store = PostgresStore(args.dsn, schema=schema, pool_size=1)
    try:
        workers = Workers(args.dsn, schema, args.workers, args.slots, args.tick_ms)
        kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
        ids = []
        base = workers.done()
        for i in range(args.idle_runs):
            created = kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": i}))
            ids.append(created.workflow_run_id)
            time.sleep(args.gap_ms / 1000)
        wait_for(workers, base + args.idle_runs * STAGES)
        sent = workers.stop()[:3]
        p50, p99 = latencies(store, ids)
        return p50, p99, [count / args.idle_runs for count in sent]
    finally:
        store.close()


def raw_commit_rate(dsn: str, schema: str, seconds: float, connections: int = 4) -> float:
    """Single-row INSERT transactions per second, ``connections`` sessions side by side."""
    table = sql.Identifier(schema, "raw_commits")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n int)"
            ).format(table)
        )
    insert = sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(table)
    counts = [0] * connections
    barrier = threading.Barrier(connections)

    def commit_rows(index: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET synchronous_commit TO on")
            barrier.wait()
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                conn.execute(insert, (index,))
                counts[index] += 1

    threads = [threading.Thread(target=commit_rows, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="runs created while worker processes drain them")
    parser.add_argument(
        "--dsn", default=DSN, help="default: $WFK_POSTGRES_DSN or the local test db"
    )
    parser.add_argument("--runs", type=int, default=2000, help="3-stage runs to create")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--slots", type=int, default=1, help="job slots per worker")
    parser.add_argument("--repeat", type=int, default=1, help="measure this many times")
    parser.add_argument(
        "--rate", type=float, default=None, help="runs created per second (default: flat out)"
    )
    parser.add_argument(
        "--tick-ms", type=float, default=1000.0, help="orchestration interval (WorkerHost: 1000)"
    )
    parser.add_argument("--idle-runs", type=int, default=100, help="runs for the idle latency")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="pause between idle creates")
    parser.add_argument("--raw-seconds", type=float, default=3.0, help="0: skip the commit rate")
    parser.add_argument(
        "--vacuum-catalogs",
        action="store_true",
        help="VACUUM the server's catalogs first (their dead rows slow every measure)",
    )
    args = parser.parse_args(argv)
    rate = "max" if args.rate is None else f"{args.rate:g}/s"
    schema = f"wfk_bench_{uuid.uuid4().hex[:10]}"
    print(
        f"store=postgres runs={args.runs} stages/run={STAGES} workers={args.workers} "
        f"slots/worker={args.slots} create rate={rate} tick={args.tick_ms:g} ms"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"schema {schema} (dropped at the end)")
    with psycopg.connect(args.dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
    server = f"postgresql {version[0] if version else '?'}"
    print(f"{server}, synchronous_commit={commit[0] if commit else '?'}")
    dead = f"{dead_catalog_rows(args.dsn):,} dead rows"
    if args.vacuum_catalogs:
        refused = vacuum_catalogs(args.dsn)
        after = f"{dead_catalog_rows(args.dsn):,} after a VACUUM"
        dead += f", {after}" if refused is None else f" (not vacuumed: {refused})"
    print(f"catalogs: {dead} (autovacuum={autovacuum[0] if autovacuum else '?'})")
    print("latency: create -> completed, from the run records' created_at/completed_at")
    print(
        "CPU ms/stage: producer and workers (client), and the local server's processes "
        "(all their work, any database)"
    )
    print(
        f"{'#':>3} {'seconds':>8} {'stage exec/s':>13} {'write tx/stage':>15} "
        f"{'round trips/stage':>18} {'stmts/stage':>12} {'p50 ms':>9} {'p99 ms':>9} "
        f"{'client cpu':>11} {'server cpu':>11}"
    )
    results = []
    try:
        for attempt in range(args.repeat):
            r = measure(args, schema)
            results.append(r)
            print(
                f"{attempt + 1:>3} {r['seconds']:>8.2f} {r['rate']:>13.0f} "
                f"{r['tx_per_stage']:>15.2f} {r['round_trips_per_stage']:>18.2f} "
                f"{r['statements_per_stage']:>12.1f} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
                f"{r['client_cpu_ms']:>11.2f} {r['server_cpu_ms']:>11.2f}"
            )
        if args.idle_runs:
            p50, p99, (statements, trips, writes) = idle_latency(args, schema)
            print(
                f"idle workers ({args.idle_runs} runs, one every {args.gap_ms:g} ms): "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; per run, the workers sent "
                f"{statements:.1f} statements in {trips:.1f} round trips, "
                f"{writes:.1f} write transactions"
            )
        if args.raw_seconds > 0:
            raw = raw_commit_rate(args.dsn, schema, args.raw_seconds)
            tx = statistics.median(r["tx_per_stage"] for r in results)
            print(f"raw commit rate (single-row INSERT, 4 connections): {raw:.0f} tx/s")
            target = raw / 2 / tx
            print(
                f"target, 50 % of raw commit rate / write tx per stage: {target:.0f} stage exec/s"
            )
    finally:
        store = PostgresStore(args.dsn, schema=schema, pool_size=1)
        store.drop_schema()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
