"""Several worker processes on one database: the shared harness.

Each process opens its own store (new connections after the fork), claims
runs, executes jobs and flushes the outbox until no run is left. Published
events are appended to a per-process file, so the test can prove that no event
was published twice.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import attrs

from adapters import create_kernel
from kernel import (
    OutboxFlush,
    RunClaimPending,
    RunCreate,
    Stage,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from kernel.events import Event
from kernel.ports import Store

StoreFactory = Callable[[], Store]


@attrs.frozen
class Count:
    n: int


@attrs.frozen
class NoConfig:
    pass


def _increment(ctx: StageContext[Count, NoConfig]) -> Count:
    return Count(ctx.input.n + 1)


def _stage(stage_id: str) -> Stage[Count, Count, NoConfig]:
    return define_stage(
        id=stage_id, name=stage_id, input=Count, output=Count, config=NoConfig, execute=_increment
    )


THREE_STAGES = (
    WorkflowBuilder("count", "Count", "three increments", input=Count, output=Count)
    .pipe(_stage("one"))
    .pipe(_stage("two"))
    .pipe(_stage("three"))
    .build()
)


class FileSink:
    """Appends each published event as one JSON line (one file per process)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def emit(self, event: Event) -> None:
        with self.path.open("a") as out:
            out.write(
                json.dumps(
                    {
                        "run": event.workflow_run_id,
                        "type": event.type,
                        "at": event.timestamp.isoformat(),
                        "stage": event.stage_key,
                    }
                )
                + "\n"
            )


def _worker(factory: StoreFactory, worker_id: str, events_file: Path, deadline: float) -> None:
    store = factory()
    kernel = create_kernel(THREE_STAGES, store=store, sink=FileSink(events_file))
    idle_rounds = 0
    while time.monotonic() < deadline:
        claimed = kernel.dispatch(RunClaimPending(worker_id=worker_id, max_claims=5)).claimed
        executed = kernel.execute_next_job(worker_id)
        kernel.dispatch(OutboxFlush(max_events=50))
        if claimed or executed is not None:
            idle_rounds = 0
            continue
        idle_rounds += 1
        if idle_rounds >= 5 and not _unfinished(store):
            break
        time.sleep(0.005)
    kernel.dispatch(OutboxFlush(max_events=10_000))
    store.close()


def _unfinished(store: Store) -> bool:
    return any(
        store.list_runs(status=status, limit=1) for status in (Status.PENDING, Status.RUNNING)
    )


def run_workers(
    factory: StoreFactory, processes: int, runs: int, workdir: Path, timeout: float = 120.0
) -> list[Path]:
    """Create ``runs`` runs, then let ``processes`` forked workers drain them."""
    setup = factory()
    kernel = create_kernel(THREE_STAGES, store=setup)
    for i in range(runs):
        kernel.dispatch(RunCreate(workflow_id="count", input={"n": i}))
    setup.close()
    context = multiprocessing.get_context("fork")
    deadline = time.monotonic() + timeout
    files = [workdir / f"events-{i}.jsonl" for i in range(processes)]
    workers = [
        context.Process(target=_worker, args=(factory, f"worker-{i}", files[i], deadline))
        for i in range(processes)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout + 30)
        assert process.exitcode == 0, f"worker exited with {process.exitcode}"
    return files


def published_counts(files: list[Path]) -> Counter[tuple[str, str, str | None]]:
    """How often each (run, event type, stage) was published, across all processes."""
    counts: Counter[tuple[str, str, str | None]] = Counter()
    for path in files:
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                counts[(row["run"], row["type"], row["stage"])] += 1
    return counts
