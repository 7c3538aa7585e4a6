"""Process CPU time of claiming and executing a backlog of 3-stage no-op runs.

Wall-clock benchmarks (``end_to_end.py``) swing with whatever else the machine
runs; the CPU time the worker's own process spends is steadier, so this is the
benchmark to compare two commits on a busy machine::

    python bench/cpu_execute.py --runs 1500 --repeat 3
    python bench/cpu_execute.py --postgres postgresql://postgres@127.0.0.1/test --group 16

It creates the runs first (not measured), then measures ``run.claimPending``
and ``execute_jobs`` until nothing is left, and prints CPU seconds, stage
executions per CPU second and CPU milliseconds per stage execution. On SQLite
(a temporary file) by default; with ``--postgres``, in a schema of its own on
that server, dropped at the end (the server's own CPU time is not counted).
``--group N`` leases, runs and finishes up to N jobs per transaction, as a
``WorkerHost`` does (its default ``max_group`` is 16).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adapters import create_kernel
from adapters.sqlite import SqliteStore
from bench.store_ops import STAGES, WORKFLOW
from kernel import RunClaimPending, RunCreate
from kernel.ports import Store
from kernel.shell.job_groups import GroupSizer
from testing.sinks import CollectingEventSink


def open_store(directory: str, dsn: str | None) -> Store:
    """A SQLite file in ``directory``, or a new schema on the server at ``dsn``."""
    if dsn is None:
        return SqliteStore(Path(directory) / "cpu.db")
    from adapters.postgres import PostgresStore

    return PostgresStore(dsn, schema=f"wfk_cpu_{uuid.uuid4().hex[:10]}", pool_size=1)


def measure(store: Store, runs: int, group: int | None) -> float:
    """CPU seconds to claim and execute ``runs`` runs created beforehand."""
    kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
    for n in range(runs):
        kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": n}))
    sizer = GroupSizer(group) if group is not None else None
    start = time.process_time()
    while kernel.dispatch(RunClaimPending(worker_id="bench", max_claims=100)).claimed:
        pass
    executed = 0
    while done := kernel.execute_jobs("bench", max_jobs=100, groups=sizer):
        executed += len(done)
    elapsed = time.process_time() - start
    if executed != runs * STAGES:
        raise SystemExit(f"executed {executed} stages, expected {runs * STAGES}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1500, help="3-stage runs to execute")
    parser.add_argument("--repeat", type=int, default=3, help="measure this many times")
    parser.add_argument("--postgres", metavar="DSN", help="a PostgreSQL server instead of SQLite")
    parser.add_argument("--group", type=int, help="jobs per transaction, at most (default 1)")
    args = parser.parse_args(argv)
    where = "postgres" if args.postgres else "sqlite"
    print(
        f"store={where} runs={args.runs} stages/run={STAGES} group={args.group or 1} "
        "(claim + execute, process CPU time)"
    )
    print("  #  cpu s  stages per cpu s  cpu ms per stage")
    stages = args.runs * STAGES
    for attempt in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as directory:
            store = open_store(directory, args.postgres)
            try:
                seconds = measure(store, args.runs, args.group)
            finally:
                drop = getattr(store, "drop_schema", None)
                if drop is not None:
                    drop()
                store.close()
        per_stage = seconds * 1000 / stages
        print(f"{attempt:>3}  {seconds:5.2f}  {stages / seconds:16.0f}  {per_stage:16.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
