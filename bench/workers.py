"""Multi-process benchmark: worker processes sharing one database.

For each worker count, measures throughput (stage executions/s draining a
backlog of 3-stage runs) and, on an otherwise idle system, the latency from
``run.create`` to the run's completion (p50/p99, from the records' own
``created_at``/``completed_at``). Workers block on ``LISTEN/NOTIFY`` when the
store offers it (PostgreSQL), else poll every 5 ms.

    .venv/bin/python bench/workers.py --store postgres --workers 1 2 4
    .venv/bin/python bench/workers.py --store sqlite --workers 1 2 4
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from bench.store_ops import WORKFLOW
from kernel import OutboxFlush, RunClaimPending, RunCreate, Status
from kernel.ports import JobNotifier, Store
from testing.sinks import CollectingEventSink


def open_store(kind: str, where: str) -> Store:
    if kind == "postgres":
        from adapters.postgres import PostgresStore

        dsn, schema = where.split("#", 1)
        return PostgresStore(dsn, schema=schema, pool_size=2)
    from adapters.sqlite import SqliteStore

    return SqliteStore(where)


def worker(kind: str, where: str, worker_id: str, stop: Any) -> None:
    store = open_store(kind, where)
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    idle = 0
    while not stop.is_set():
        claimed = kernel.dispatch(RunClaimPending(worker_id=worker_id, max_claims=10)).claimed
        executed = kernel.execute_jobs(worker_id, max_jobs=50)
        if claimed or executed:
            idle = 0
            continue
        idle += 1
        if idle % 20 == 1:
            kernel.dispatch(OutboxFlush(max_events=1000))
        if isinstance(store, JobNotifier):
            store.wait_for_jobs(0.05)
        else:
            time.sleep(0.005)
    store.close()


def start_workers(kind: str, where: str, count: int) -> tuple[list[Any], Any]:
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    processes = [
        context.Process(target=worker, args=(kind, where, f"w{i}", stop)) for i in range(count)
    ]
    for process in processes:
        process.start()
    return processes, stop


def stop_workers(processes: list[Any], stop: Any) -> None:
    stop.set()
    for process in processes:
        process.join(30)


def wait_until_done(store: Store, runs: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(store.list_runs(status=Status.COMPLETED, limit=runs + 1)) >= runs:
            return
        time.sleep(0.02)
    raise SystemExit(f"runs did not complete within {timeout} s")


def throughput(kind: str, where: str, workers: int, runs: int) -> float:
    store = open_store(kind, where)
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    for i in range(runs):
        kernel.dispatch(RunCreate(workflow_id="bench", input={"n": i}))
    start = time.perf_counter()
    processes, stop = start_workers(kind, where, workers)
    wait_until_done(store, runs)
    elapsed = time.perf_counter() - start
    stop_workers(processes, stop)
    store.close()
    return runs * 3 / elapsed


def latency(kind: str, where: str, workers: int, runs: int, gap: float) -> tuple[float, float]:
    store = open_store(kind, where)
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    processes, stop = start_workers(kind, where, workers)
    time.sleep(0.5)  # let the workers connect and start listening
    ids = []
    for i in range(runs):
        ids.append(kernel.dispatch(RunCreate(workflow_id="bench", input={"n": i})).workflow_run_id)
        time.sleep(gap)
    wait_until_done(store, runs)
    stop_workers(processes, stop)
    millis = []
    for run_id in ids:
        run = store.get_run(run_id)
        assert run is not None and run.completed_at is not None
        millis.append((run.completed_at - run.created_at).total_seconds() * 1000)
    store.close()
    cuts = statistics.quantiles(millis, n=100)
    return statistics.median(millis), cuts[98]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="worker processes sharing one database")
    parser.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=1000, help="backlog for throughput")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between creates")
    args = parser.parse_args(argv)
    print(f"store={args.store} stages/run=3 backlog={args.runs} latency runs={args.latency_runs}")
    print(f"{'workers':>8} {'stage exec/s':>13} {'p50 ms':>8} {'p99 ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.workers:
            wheres = []
            for label in ("t", "l"):
                if args.store == "postgres":
                    wheres.append(f"{args.dsn}#bench_{label}{uuid.uuid4().hex[:8]}")
                else:
                    wheres.append(str(Path(tmp) / f"{label}{count}.db"))
            rate = throughput(args.store, wheres[0], count, args.runs)
            p50, p99 = latency(args.store, wheres[1], count, args.latency_runs, args.gap_ms / 1000)
            print(f"{count:>8} {rate:>13.0f} {p50:>8.1f} {p99:>8.1f}")
            if args.store == "postgres":
                for where in wheres:
                    store = open_store(args.store, where)
                    drop = getattr(store, "drop_schema", None)
                    if drop is not None:
                        drop()
                    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
