"""``bench/end_to_end.py --processes N``: N worker processes on one SQLite file.

Each worker process runs one ``WorkerHost`` (``--concurrency`` slots) on its
own ``SqliteStore`` of the same file and counts its SQL with a trace
callback; the parent creates the runs. Workers publish how many jobs their
host has processed through shared memory, so watching for the end costs no
SQL, and report their statements, write transactions and CPU time at the end.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from bench.e2e_common import DiscardingSink, Figures, SqlTrace, figures
from bench.end_to_end import produce
from bench.store_ops import STAGES, WORKFLOW

_PUBLISH_S = 0.001
"""How often a worker process publishes its host's job count."""


def _worker(
    path: str,
    index: int,
    concurrency: int,
    tick_s: float,
    done: Any,
    ready: Any,
    go: Any,
    stop: Any,
    results: Any,
) -> None:
    store = SqliteStore(path)
    trace = SqlTrace()
    store._conn.set_trace_callback(trace)
    kernel = create_kernel(WORKFLOW, store=store, sink=DiscardingSink())
    host = WorkerHost(
        kernel,
        store,
        worker_id=f"bench-{index}",
        concurrency=concurrency,
        orchestration_interval=timedelta(seconds=tick_s),
    )
    host.start()
    ready.release()
    go.wait()
    statements, writes, cpu = trace.statements, trace.write_transactions, time.process_time()
    while not stop.is_set():
        done[index] = host.stats().jobs_processed
        time.sleep(_PUBLISH_S)
    host.stop()
    done[index] = host.stats().jobs_processed
    cpu = time.process_time() - cpu
    results.put((index, trace.statements - statements, trace.write_transactions - writes, cpu))
    store.close()


def measure_processes(
    path: Path, runs: int, rate: float | None, tick: timedelta, processes: int, concurrency: int
) -> Figures:
    """``processes`` worker processes drain ``runs`` runs the parent creates."""
    SqliteStore(path).close()  # create and migrate the file before the workers open it
    context: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    done = context.Array("q", processes, lock=False)
    ready, go, stop = context.Semaphore(0), context.Event(), context.Event()
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(
                str(path),
                index,
                concurrency,
                tick.total_seconds(),
                done,
                ready,
                go,
                stop,
                results,
            ),
            daemon=True,
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    time.sleep(0.1)  # the hosts' first ticks find nothing: not part of the measure
    store = SqliteStore(path)
    trace = SqlTrace()
    ids: list[str] = []
    try:
        store._conn.set_trace_callback(trace)
        go.set()
        cpu, start = time.process_time(), time.perf_counter()
        produce(store, runs, rate, ids)
        deadline = time.monotonic() + 600
        while sum(done) < runs * STAGES:
            if time.monotonic() > deadline:
                raise SystemExit(f"{sum(done)} of {runs * STAGES} stages in 600 s")
            time.sleep(0.0005)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        stop.set()
        traces = []
        for _ in workers:
            _, statements, writes, worker_cpu = results.get(timeout=60)
            counted = SqlTrace()
            counted.statements, counted.write_transactions = statements, writes
            traces.append(counted)
            cpu += worker_cpu
        for worker in workers:
            worker.join(30)
        store._conn.set_trace_callback(None)
        return figures(store, ids, runs, elapsed, cpu, trace, *traces)
    finally:
        stop.set()
        store.close()
