"""Process CPU time of claiming and executing a backlog of 3-stage no-op runs on SQLite.

Wall-clock benchmarks (``end_to_end.py``) swing with whatever else the machine
runs; the CPU time the worker's own process spends is steadier, so this is the
benchmark to compare two commits on a busy machine::

    python bench/cpu_execute.py --runs 1500 --repeat 3

It creates the runs first (not measured), then measures ``run.claimPending``
and ``execute_jobs`` until nothing is left, and prints CPU seconds and stage
executions per CPU second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adapters import create_kernel
from adapters.sqlite import SqliteStore
from bench.store_ops import STAGES, WORKFLOW
from kernel import RunClaimPending, RunCreate
from testing.sinks import CollectingEventSink


def measure(path: Path, runs: int) -> float:
    """CPU seconds to claim and execute ``runs`` runs created beforehand."""
    store = SqliteStore(path)
    try:
        kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink())
        for n in range(runs):
            kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": n}))
        start = time.process_time()
        while kernel.dispatch(RunClaimPending(worker_id="bench", max_claims=100)).claimed:
            pass
        executed = 0
        while done := kernel.execute_jobs("bench", max_jobs=100):
            executed += len(done)
        elapsed = time.process_time() - start
    finally:
        store.close()
    if executed != runs * STAGES:
        raise SystemExit(f"executed {executed} stages, expected {runs * STAGES}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1500, help="3-stage runs to execute")
    parser.add_argument("--repeat", type=int, default=3, help="measure this many times")
    args = parser.parse_args(argv)
    print(f"runs={args.runs} stages/run={STAGES} (claim + execute, process CPU time)")
    print("  #  cpu s  stages per cpu s")
    for attempt in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as directory:
            seconds = measure(Path(directory) / "cpu.db", args.runs)
        print(f"{attempt:>3}  {seconds:5.2f}  {args.runs * STAGES / seconds:16.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
