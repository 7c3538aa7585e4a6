"""Store benchmark: the full in-process cycle of N runs of a 3-stage no-op workflow.

create → claim → execute each stage (``Kernel.execute_jobs``: the finish
transaction of one job, with the run's transition folded in, also leases and
starts the next) → flush. Prints runs/s, stage executions/s and write
transactions per stage execution, measured on this machine.

    .venv/bin/python bench/store_ops.py --store sqlite --runs 2000
    .venv/bin/python bench/store_ops.py --store memory
    .venv/bin/python bench/store_ops.py --store sqlite --profile   # pyinstrument
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from bench.counting import CountingStore
from kernel import (
    OutboxFlush,
    RunClaimPending,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from kernel.ports import Store
from testing.sinks import CollectingEventSink


@attrs.frozen
class Payload:
    n: int


@attrs.frozen
class NoConfig:
    pass


def _noop(ctx: StageContext[Payload, NoConfig]) -> Payload:
    return ctx.input


def _stage(stage_id: str) -> Any:
    return define_stage(
        id=stage_id, name=stage_id, input=Payload, output=Payload, config=NoConfig, execute=_noop
    )


WORKFLOW = (
    WorkflowBuilder("bench", "Bench", "three no-op stages", input=Payload, output=Payload)
    .pipe(_stage("a"))
    .pipe(_stage("b"))
    .pipe(_stage("c"))
    .build()
)
STAGES = 3


def make_store(kind: str, workdir: Path, dsn: str, synchronous: str = "NORMAL") -> Store:
    if kind == "memory":
        from adapters.memory import InMemoryStore

        return InMemoryStore()
    if kind == "sqlite":
        from adapters.sqlite import SqliteStore

        return SqliteStore(str(workdir / "bench.db"), synchronous=synchronous)  # type: ignore[arg-type]
    if kind == "postgres":
        import uuid

        from adapters.postgres import PostgresStore

        return PostgresStore(dsn, schema=f"bench_{uuid.uuid4().hex[:8]}")
    raise SystemExit(f"--store: expected memory, sqlite or postgres, got {kind!r}")


def timed(label: str, timings: dict[str, float], fn: Callable[[], int]) -> int:
    start = time.perf_counter()
    count = fn()
    timings[label] = time.perf_counter() - start
    return count


def cycle(store: CountingStore, runs: int) -> dict[str, Any]:
    sink = CollectingEventSink()
    kernel = create_kernel(WORKFLOW, store=store, sink=sink)
    timings: dict[str, float] = {}
    tx: dict[str, int] = {}

    def create() -> int:
        for i in range(runs):
            kernel.dispatch(RunCreate(workflow_id="bench", input={"n": i}))
        return runs

    def claim() -> int:
        total = 0
        while claimed := kernel.dispatch(RunClaimPending(worker_id="w", max_claims=100)).claimed:
            total += len(claimed)
        return total

    def execute() -> int:
        done = 0
        while batch := kernel.execute_jobs("w", max_jobs=1000):
            done += len(batch)
        return done

    def flush() -> int:
        published = 0
        while n := kernel.dispatch(OutboxFlush(max_events=500)).published:
            published += n
        return published

    counts: dict[str, int] = {}
    for label, fn in (("create", create), ("claim", claim), ("execute", execute), ("flush", flush)):
        before = store.transactions
        counts[label] = timed(label, timings, fn)
        tx[label] = store.transactions - before
    completed = len(store.list_runs(status=Status.COMPLETED, limit=runs + 1))
    return {"timings": timings, "tx": tx, "counts": counts, "completed": completed}


def report(kind: str, runs: int, result: dict[str, Any]) -> None:
    timings, tx, counts = result["timings"], result["tx"], result["counts"]
    total = sum(timings.values())
    executions = counts["execute"]
    print(f"store={kind} runs={runs} stages/run={STAGES} completed={result['completed']}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    for label in ("create", "claim", "execute", "flush"):
        print(
            f"  {label:<8} {timings[label] * 1000:9.1f} ms  {tx[label]:6d} write tx  "
            f"({counts[label]} items)"
        )
    print(f"  total    {total * 1000:9.1f} ms")
    print(f"runs/s:                         {runs / total:10.0f}")
    print(f"stage executions/s (cycle):     {executions / total:10.0f}")
    print(f"stage executions/s (execute):   {executions / timings['execute']:10.0f}")
    print(f"write tx per stage (execute):   {tx['execute'] / max(executions, 1):10.2f}")
    print(f"write tx per stage (all):       {sum(tx.values()) / max(executions, 1):10.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", default="sqlite", choices=["memory", "sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", action="store_true", help="profile with pyinstrument")
    parser.add_argument(
        "--synchronous", default="NORMAL", choices=["NORMAL", "FULL"], help="SQLite durability"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = CountingStore(make_store(args.store, Path(tmp), args.dsn, args.synchronous))
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
            result = cycle(store, args.runs)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        else:
            result = cycle(store, args.runs)
        report(args.store, args.runs, result)
        store.close()
    return 0 if result["completed"] == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
