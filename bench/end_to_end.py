"""End-to-end benchmark: runs created while ``WorkerHost``s drain them.

A producer dispatches ``RunCreate`` for N three-stage no-op runs (through a
kernel of its own, on a ``SqliteStore``) while a ``WorkerHost`` claims them in
its orchestration ticks, executes their jobs and flushes the outbox. Timed
from the first create until the last stage has run (the last run is
COMPLETED in that stage's finish transaction). Write transactions and SQL
statements are counted with ``sqlite3``'s trace callback on the stores'
connections, from the first create until the hosts have stopped (their final
outbox flush included); CPU time is the process time of every process taking
part. Latency per run is its record's ``completed_at - created_at``.

Modes:

* default: the producer (a thread) creates runs flat out, or ``--rate`` per
  second, while one host in the same process, with ``--concurrency`` job
  slots, drains them;
* ``--processes N``: N worker processes, each a host on the same file, with
  the producer in the parent process (:mod:`bench.e2e_processes`);
* ``--idle``: one run at a time on an idle worker in the same process: create,
  wait until the host has executed its three stages, pause, and again;
* ``--memory``: the worker's resident memory after 1,000 stage executions
  and after ``--memory-stages`` (100,000 by default);
* ``--sqlite-time`` (default mode): also the CPU time spent inside ``sqlite3``
  calls per stage (:mod:`bench.sqlite_time`; the counting slows the run), and
  with ``--sqlite-statements N`` the N statements that took most of it, per stage;
* ``--replay`` (default mode): then the statements of the measure, recorded with
  their parameters, run again alone on a new file (:mod:`bench.sqlite_replay`):
  what the SQL of a stage costs with no engine around it;
* ``--raw-seconds S`` (default and ``--processes`` modes): after the measures,
  SQLite's raw commit rate on this machine (single-row INSERT transactions for
  S seconds, one connection, the store's settings), and that rate divided by the
  last measure's write transactions per stage: the stage executions per second
  if commits were all a stage cost.

    .venv/bin/python bench/end_to_end.py --runs 2000 --repeat 3
    .venv/bin/python bench/end_to_end.py --runs 2000 --concurrency 2
    .venv/bin/python bench/end_to_end.py --runs 2000 --processes 2
    .venv/bin/python bench/end_to_end.py --idle --runs 200
    .venv/bin/python bench/end_to_end.py --memory
    .venv/bin/python bench/end_to_end.py --runs 2000 --sqlite-time --sqlite-statements 10
    .venv/bin/python bench/end_to_end.py --runs 2000 --replay
    .venv/bin/python bench/end_to_end.py --runs 2000 --raw-seconds 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, MutableSequence
from contextlib import nullcontext
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

from attrs import evolve

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.sqlite import SqliteStore
from bench.e2e_common import (
    DiscardingSink,
    Figures,
    SqlTrace,
    figures,
    raw_commit_rate,
    rss_kib,
)
from bench.sqlite_replay import RECORDING, recorded_connections, replay, state_of
from bench.sqlite_time import CALL_TIME, timed_connections
from bench.store_ops import STAGES, WORKFLOW
from kernel import RunCreate

__all__ = ["SqlTrace", "measure"]

_SPIN_S = 0.005
"""How often the benchmark's main thread looks at the host's counters (no SQL). Not
shorter: each look takes the GIL from the threads being measured (at 0.5 ms the
looks cost about 10 % of the worker's CPU time); at most 5 ms on the end time of a
measure of several seconds, and latencies come from the run records, not from this."""


def produce(
    store: SqliteStore,
    runs: int,
    rate: float | None,
    ids: MutableSequence[str],
    may_create: Callable[[int], bool] = lambda _: True,
) -> None:
    """Create ``runs`` runs, at ``rate`` per second (``None``: flat out), appending their
    ids to ``ids``; before the i-th, wait until ``may_create(i)``."""
    kernel = create_kernel(WORKFLOW, store=store, sink=DiscardingSink())
    start = time.perf_counter()
    for i in range(runs):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        while not may_create(i):
            time.sleep(_SPIN_S)
        created = kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": i}))
        ids.append(created.workflow_run_id)


def _host(store: SqliteStore, tick: timedelta, concurrency: int) -> WorkerHost:
    kernel = create_kernel(WORKFLOW, store=store, sink=DiscardingSink())
    return WorkerHost(
        kernel, store, worker_id="bench", concurrency=concurrency, orchestration_interval=tick
    )


def _wait_for(host: WorkerHost, stages: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while host.stats().jobs_processed < stages:  # no SQL: the trace counts only the work
        if time.monotonic() > deadline:
            host.stop(force=True)
            raise SystemExit(f"{host.stats().jobs_processed} of {stages} stages in {timeout_s} s")
        time.sleep(_SPIN_S)


def measure(
    path: Path,
    runs: int,
    rate: float | None,
    tick: timedelta,
    *,
    concurrency: int = 1,
    sqlite_time: bool = False,
    record: bool = False,
) -> Figures:
    """A producer thread creates ``runs`` runs while one host in this process drains them;
    with ``sqlite_time``, the CPU time spent inside ``sqlite3`` calls is counted too
    (:mod:`bench.sqlite_time`); with ``record``, the statements are recorded and then
    replayed alone on a new file beside ``path`` (:mod:`bench.sqlite_replay`)."""
    if sqlite_time and record:
        raise ValueError("sqlite_time and record: expected one of them, got both")
    connections = (
        timed_connections() if sqlite_time else recorded_connections() if record else nullcontext()
    )
    with connections:
        store = SqliteStore(path)
    trace = SqlTrace()
    ids: list[str] = []
    try:
        host = _host(store, tick, concurrency)
        producer = threading.Thread(target=produce, args=(store, runs, rate, ids), daemon=True)
        host.start()
        time.sleep(0.05)  # the host's first tick finds nothing: not part of the measure
        store._conn.set_trace_callback(trace)
        CALL_TIME.reset()
        if record:
            RECORDING.start()
        cpu, start = time.process_time(), time.perf_counter()
        producer.start()
        _wait_for(host, runs * STAGES)
        elapsed = time.perf_counter() - start
        host.stop()
        producer.join()
        cpu = time.process_time() - cpu
        inside = CALL_TIME.seconds, CALL_TIME.calls
        calls = RECORDING.stop() if record else []
        store._conn.set_trace_callback(None)
        measured = figures(store, ids, runs, elapsed, cpu, trace)
        if sqlite_time:
            return evolve(measured, sqlite_calls=inside)
        if record:
            again = replay(calls, path.with_suffix(".replay.db"), state_of(store._conn))
            return evolve(measured, replayed=(again.cpu_seconds, again.statements))
        return measured
    finally:
        store.close()


def measure_idle(path: Path, runs: int, tick: timedelta, gap_s: float) -> Figures:
    """One run at a time: create it, wait until its three stages ran, pause ``gap_s``."""
    store = SqliteStore(path)
    trace = SqlTrace()
    ids: list[str] = []
    try:
        host = _host(store, tick, 1)
        kernel = create_kernel(WORKFLOW, store=store, sink=DiscardingSink())
        host.start()
        time.sleep(0.1)  # the host's first tick finds nothing, and its slot goes idle
        store._conn.set_trace_callback(trace)
        cpu, start = time.process_time(), time.perf_counter()
        for i in range(runs):
            created = kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": i}))
            ids.append(created.workflow_run_id)
            _wait_for(host, (i + 1) * STAGES)
            time.sleep(gap_s)
        elapsed = time.perf_counter() - start
        host.stop()
        cpu = time.process_time() - cpu
        store._conn.set_trace_callback(None)
        return figures(store, ids, runs, elapsed, cpu, trace)
    finally:
        store.close()


def measure_memory(path: Path, stages: int, tick: timedelta) -> list[tuple[int, int]]:
    """(stage executions, resident KiB) after 1,000 stages, after 10,000 (if fewer than
    ``stages``) and after ``stages``; the producer keeps a few hundred runs waiting."""
    store = SqliteStore(path)
    try:
        host = _host(store, tick, 1)
        runs = -(-stages // STAGES)
        ids: deque[str] = deque(maxlen=1)  # a list of every id would grow the process

        def may_create(i: int) -> bool:
            return i - host.stats().jobs_processed // STAGES < 300

        producer = threading.Thread(
            target=produce, args=(store, runs, None, ids, may_create), daemon=True
        )
        host.start()
        producer.start()
        samples = []
        for mark in sorted({1000, min(10_000, stages), stages}):
            _wait_for(host, mark, timeout_s=3600.0)
            samples.append((mark, rss_kib()))
            print(f"  after {samples[-1][0]:>7,} stages: RSS {samples[-1][1] / 1024:7.1f} MiB")
        host.stop()
        producer.join()
        return samples
    finally:
        store.close()


def _print_header(args: argparse.Namespace) -> None:
    rate = "max" if args.rate is None else f"{args.rate:g}/s"
    mode = "idle (one run at a time)" if args.idle else f"create rate={rate}"
    processes = f" processes={args.processes}" if args.processes else ""
    print(
        f"store=sqlite runs={args.runs} stages/run={STAGES} slots={args.concurrency}{processes} "
        f"{mode} tick={args.tick_ms:g} ms"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print("latency: create -> completed, from the run records' created_at/completed_at")
    print(
        f"{'#':>3} {'completed':>9} {'seconds':>8} {'stage exec/s':>13} {'write tx/stage':>15} "
        f"{'stmts/stage':>12} {'cpu ms/stage':>13} {'p50 ms':>9} {'p99 ms':>9}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="runs created while WorkerHosts drain them")
    parser.add_argument("--runs", type=int, default=None, help="3-stage runs (2000; idle: 200)")
    parser.add_argument("--store", choices=["sqlite"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=1, help="measure this many times")
    parser.add_argument("--rate", type=float, default=None, help="runs created per second")
    parser.add_argument("--tick-ms", type=float, default=1000.0, help="orchestration interval")
    parser.add_argument("--concurrency", type=int, default=1, help="job slots per host")
    parser.add_argument("--processes", type=int, default=0, help="worker processes (0: none)")
    parser.add_argument("--idle", action="store_true", help="one run at a time, idle worker")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="--idle: pause between runs")
    parser.add_argument("--memory", action="store_true", help="worker RSS after N stages")
    parser.add_argument("--memory-stages", type=int, default=100_000)
    parser.add_argument(
        "--sqlite-time",
        action="store_true",
        help="also the CPU time inside sqlite3 calls (costs time of its own)",
    )
    parser.add_argument(
        "--sqlite-statements",
        type=int,
        default=0,
        metavar="N",
        help="with --sqlite-time: the N statements that took most of that time",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="then the same statements replayed alone on a new file: what the SQL costs",
    )
    parser.add_argument(
        "--raw-seconds",
        type=float,
        default=0.0,
        help="then SQLite's raw commit rate for this long (0: skip; not with --idle)",
    )
    args = parser.parse_args(argv)
    if args.sqlite_statements < 0 or (args.sqlite_statements and not args.sqlite_time):
        parser.error(
            "--sqlite-statements: expected >= 0, and only with --sqlite-time, "
            f"got {args.sqlite_statements}"
        )
    if args.raw_seconds < 0 or (args.raw_seconds and (args.idle or args.memory)):
        parser.error(
            f"--raw-seconds: expected >= 0, not with --idle or --memory, got {args.raw_seconds:g}"
        )
    if args.replay and (args.idle or args.memory or args.processes or args.sqlite_time):
        parser.error(
            "--replay: only in the default mode (not with --idle, --memory, --processes "
            "or --sqlite-time)"
        )
    tick = timedelta(milliseconds=args.tick_ms)
    if args.runs is None:
        args.runs = 200 if args.idle else 2000
    with tempfile.TemporaryDirectory() as tmp:
        if args.memory:
            print(f"worker RSS, one host, 1 slot, {args.memory_stages:,} stage executions")
            samples = measure_memory(Path(tmp) / "memory.db", args.memory_stages, tick)
            steps = pairwise(samples) if len(samples) > 2 else iter(())
            for (first, before), (last, after) in steps:
                print(f"  grew {(after - before) / 1024:+.1f} MiB from {first:,} to {last:,}")
            grown = (samples[-1][1] - samples[0][1]) / 1024
            print(f"  grew {grown:+.1f} MiB from 1,000 to {samples[-1][0]:,} stages")
            return 0
        _print_header(args)
        failed = False
        r: Figures | None = None
        for attempt in range(args.repeat):
            path = Path(tmp) / f"e2e{attempt}.db"
            if args.processes:
                from bench.e2e_processes import measure_processes

                r = measure_processes(
                    path, args.runs, args.rate, tick, args.processes, args.concurrency
                )
            elif args.idle:
                r = measure_idle(path, args.runs, tick, args.gap_ms / 1000)
            else:
                r = measure(
                    path,
                    args.runs,
                    args.rate,
                    tick,
                    concurrency=args.concurrency,
                    sqlite_time=args.sqlite_time,
                    record=args.replay,
                )
            failed = failed or r.completed != args.runs
            print(f"{attempt + 1:>3} {r.row()}")
            if r.sqlite_calls is not None:
                seconds, calls = r.sqlite_calls
                print(
                    f"    inside sqlite3 calls: {seconds * 1000 / r.stages:.3f} ms CPU and "
                    f"{calls / r.stages:.1f} calls per stage"
                )
                for label, spent, made in CALL_TIME.top(args.sqlite_statements):
                    print(
                        f"      {spent * 1000 / r.stages:6.3f} ms {made / r.stages:5.2f} calls"
                        f"  {label}"
                    )
            if r.replayed is not None:
                seconds, statements = r.replayed
                print(
                    f"    the same {statements:,} statements replayed alone on a new file: "
                    f"{seconds * 1000 / r.stages:.3f} ms CPU per stage, "
                    f"at most {r.stages / seconds:,.0f} stage exec/s"
                )
        if args.raw_seconds and r is not None:
            raw = raw_commit_rate(Path(tmp) / "raw.db", args.raw_seconds)
            per_stage = r.write_transactions / r.stages
            print(
                "raw commit rate (single-row INSERT, one connection, WAL, synchronous=NORMAL): "
                f"{raw:,.0f} tx/s"
            )
            print(
                f"raw commit rate / write tx per stage ({per_stage:.2f}): "
                f"{raw / per_stage:,.0f} stage exec/s"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
