"""End-to-end benchmark: runs created while one ``WorkerHost`` drains them.

A producer thread dispatches ``RunCreate`` for N three-stage no-op runs
(through a kernel of its own, on the same ``SqliteStore``) while one
``WorkerHost`` with one slot, in the same process, claims them in its
orchestration ticks, executes their jobs and flushes the outbox. Timed from
the first create until the last stage has run (the last run is COMPLETED in
that stage's finish transaction). Write transactions and SQL statements are
counted with ``sqlite3``'s trace callback on the store's connection, from the
first create until ``host.stop()`` returns (its final outbox flush included).
Latency per run is its record's ``completed_at - created_at``.

    .venv/bin/python bench/end_to_end.py --runs 2000 --repeat 3
    .venv/bin/python bench/end_to_end.py --runs 2000 --rate 500 --tick-ms 100
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from bench.store_ops import STAGES, WORKFLOW
from kernel import RunCreate, Status
from testing.sinks import CollectingEventSink

_WRITE = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_CTE_WRITE = re.compile(r"^\s*(?:--[^\n]*\n\s*)*WITH\b.*\b(?:INSERT|UPDATE|DELETE)\b", re.I | re.S)


class SqlTrace:
    """Counts statements, and write transactions, from a ``sqlite3`` trace callback.

    A write transaction is a ``COMMIT`` that followed a write since its
    ``BEGIN``, or a write run outside ``BEGIN``/``COMMIT`` (autocommit). The
    store serialises all use of its connection, so the callback never races.
    """

    def __init__(self) -> None:
        self.statements = 0
        self.write_transactions = 0
        self.commits = 0
        self._in_transaction = False
        self._wrote = False

    def __call__(self, sql: str) -> None:
        self.statements += 1
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            self._in_transaction, self._wrote = True, False
        elif head.startswith(("COMMIT", "END")):
            self.commits += 1
            self.write_transactions += self._wrote
            self._in_transaction, self._wrote = False, False
        elif head.startswith("ROLLBACK"):
            self._in_transaction, self._wrote = False, False
        elif _WRITE.match(sql) or _CTE_WRITE.match(sql):
            if self._in_transaction:
                self._wrote = True
            else:
                self.write_transactions += 1


def produce(store: SqliteStore, runs: int, rate: float | None, ids: list[str]) -> None:
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    start = time.perf_counter()
    for i in range(runs):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        created = kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": i}))
        ids.append(created.workflow_run_id)


def measure(path: Path, runs: int, rate: float | None, tick: timedelta) -> dict[str, float]:
    store = SqliteStore(path)
    trace = SqlTrace()
    try:
        kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
        host = WorkerHost(
            kernel, store, worker_id="bench", concurrency=1, orchestration_interval=tick
        )
        ids: list[str] = []
        producer = threading.Thread(target=produce, args=(store, runs, rate, ids), daemon=True)
        stages = runs * STAGES
        host.start()
        time.sleep(0.05)  # the host's first tick finds nothing: not part of the measure
        store._conn.set_trace_callback(trace)
        start = time.perf_counter()
        producer.start()
        deadline = time.monotonic() + 600
        while host.stats().jobs_processed < stages:  # no SQL: the trace counts only the work
            if time.monotonic() > deadline:
                host.stop(force=True)
                raise SystemExit(f"{host.stats().jobs_processed} of {stages} stages in 600 s")
            time.sleep(0.001)
        elapsed = time.perf_counter() - start
        host.stop()
        producer.join()
        store._conn.set_trace_callback(None)
        completed = len(store.list_runs(status=Status.COMPLETED, limit=runs + 1))
        if completed != runs or len(ids) != runs:
            raise SystemExit(f"{completed} of {runs} runs completed ({len(ids)} created)")
        millis = []
        for run_id in ids:
            run = store.get_run(run_id)
            assert run is not None and run.completed_at is not None
            millis.append((run.completed_at - run.created_at).total_seconds() * 1000)
    finally:
        store.close()
    cuts = statistics.quantiles(millis, n=100) if len(millis) > 1 else millis * 99
    return {
        "completed": completed,
        "seconds": elapsed,
        "rate": stages / elapsed,
        "tx_per_stage": trace.write_transactions / stages,
        "statements_per_stage": trace.statements / stages,
        "p50_ms": statistics.median(millis),
        "p99_ms": cuts[98],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="runs created while one WorkerHost drains them")
    parser.add_argument("--runs", type=int, default=2000, help="3-stage runs to create")
    parser.add_argument("--store", choices=["sqlite"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=1, help="measure this many times")
    parser.add_argument(
        "--rate", type=float, default=None, help="runs created per second (default: flat out)"
    )
    parser.add_argument(
        "--tick-ms", type=float, default=1000.0, help="orchestration interval (WorkerHost: 1000)"
    )
    args = parser.parse_args(argv)
    rate = "max" if args.rate is None else f"{args.rate:g}/s"
    print(
        f"store={args.store} runs={args.runs} stages/run={STAGES} slots=1 "
        f"create rate={rate} tick={args.tick_ms:g} ms"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print("latency: create -> completed, from the run records' created_at/completed_at")
    print(
        f"{'#':>3} {'completed':>9} {'seconds':>8} {'stage exec/s':>13} {'write tx/stage':>15} "
        f"{'stmts/stage':>12} {'p50 ms':>9} {'p99 ms':>9}"
    )
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(args.repeat):
            tick = timedelta(milliseconds=args.tick_ms)
            r = measure(Path(tmp) / f"e2e{attempt}.db", args.runs, args.rate, tick)
            failed = failed or r["completed"] != args.runs
            print(
                f"{attempt + 1:>3} {r['completed']:>9.0f} {r['seconds']:>8.2f} {r['rate']:>13.0f} "
                f"{r['tx_per_stage']:>15.2f} {r['statements_per_stage']:>12.1f} "
                f"{r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
