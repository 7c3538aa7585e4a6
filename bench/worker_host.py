"""WorkerHost benchmark: one worker draining a backlog of 3-stage no-op runs.

The runs are created and claimed before the worker starts, so what is
measured is the job slots (with the worker's own orchestration ticks
flushing the outbox beside them): stage executions/s from ``host.start()``
until every stage has run, and write transactions per stage execution
(slots and ticks together). ``--chain 1`` runs one job per dequeue (no
chaining), for comparison with the default chain.

    .venv/bin/python bench/worker_host.py --store sqlite --concurrency 1 2 --runs 500
    .venv/bin/python bench/worker_host.py --store sqlite --chain 1
    .venv/bin/python bench/worker_host.py --store postgres --dsn postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from adapters.hosts import WorkerHost
from bench.counting import CountingStore
from bench.store_ops import STAGES, WORKFLOW
from kernel import RunClaimPending, RunCreate, Status
from kernel.ports import JobNotifier, Store, StoreTransaction
from testing.sinks import CollectingEventSink


class LockedCountingStore(CountingStore):
    """``CountingStore`` whose transaction count is safe to bump from several threads."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        with self._lock:
            self.transactions += 1
        with self.inner.transaction() as tx:
            yield tx

    def renew_lease(self, job_id: str, worker_id: str, now: Any) -> bool:
        with self._lock:
            self.transactions += 1
        return self.inner.renew_lease(job_id, worker_id, now)


class NotifyingCountingStore(LockedCountingStore):
    """The same, for a store that can wake idle workers (PostgreSQL ``LISTEN/NOTIFY``)."""

    def wait_for_jobs(self, timeout: float) -> bool:
        assert isinstance(self.inner, JobNotifier)
        return self.inner.wait_for_jobs(timeout)


def open_store(kind: str, workdir: Path, dsn: str, label: str) -> Store:
    if kind == "postgres":
        from adapters.postgres import PostgresStore

        return PostgresStore(dsn, schema=f"bench_host_{label}_{uuid.uuid4().hex[:8]}")
    from adapters.sqlite import SqliteStore

    return SqliteStore(workdir / f"{label}.db")


def measure(store: Store, concurrency: int, runs: int, chain: int | None) -> dict[str, float]:
    counting: LockedCountingStore = (
        NotifyingCountingStore(store)
        if isinstance(store, JobNotifier)
        else LockedCountingStore(store)
    )
    kernel = create_kernel(WORKFLOW, store=counting, sink=CollectingEventSink())
    for i in range(runs):
        kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": i}))
    while kernel.dispatch(RunClaimPending(worker_id="setup", max_claims=500)).claimed:
        pass
    options: dict[str, Any] = {}
    if chain is not None:
        if "max_chain" not in inspect.signature(WorkerHost).parameters:
            raise SystemExit("--chain: this WorkerHost has no max_chain setting")
        options["max_chain"] = chain
    host = WorkerHost(
        kernel,
        counting,
        worker_id="bench",
        concurrency=concurrency,
        orchestration_interval=timedelta(seconds=1),
        job_poll_interval=timedelta(milliseconds=50),
        **options,
    )
    stages = runs * STAGES
    before = counting.transactions
    start = time.perf_counter()
    host.start()
    deadline = time.monotonic() + 600
    while host.stats().jobs_processed < stages:
        if time.monotonic() > deadline:
            host.stop(force=True)
            raise SystemExit(f"only {host.stats().jobs_processed} of {stages} stages ran in 600 s")
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    transactions = counting.transactions - before
    host.stop()
    completed = len(store.list_runs(status=Status.COMPLETED, limit=runs + 1))
    if completed != runs:
        raise SystemExit(f"{completed} of {runs} runs completed")
    return {"rate": stages / elapsed, "seconds": elapsed, "tx_per_stage": transactions / stages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one WorkerHost draining a backlog")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=500, help="backlog of 3-stage runs")
    parser.add_argument(
        "--chain", type=int, default=None, help="max_chain (default: the WorkerHost's own)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="measure each case this often")
    args = parser.parse_args(argv)
    chain = "default" if args.chain is None else args.chain
    print(f"store={args.store} runs={args.runs} stages/run={STAGES} chain={chain}")
    print(f"{'slots':>6} {'stage exec/s':>13} {'seconds':>8} {'write tx/stage':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in args.concurrency:
            for attempt in range(args.repeat):
                store = open_store(args.store, Path(tmp), args.dsn, f"c{concurrency}_{attempt}")
                try:
                    result = measure(store, concurrency, args.runs, args.chain)
                finally:
                    drop = getattr(store, "drop_schema", None)
                    if drop is not None:
                        drop()
                    store.close()
                print(
                    f"{concurrency:>6} {result['rate']:>13.0f} {result['seconds']:>8.2f} "
                    f"{result['tx_per_stage']:>15.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
