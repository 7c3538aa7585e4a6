"""The shared ground of the store conformance cases: record factories and ``StoreCase``.

Every case talks to the store through the ``kernel.ports`` protocols only.
Times are fixed offsets from ``T0``, so no case reads a clock.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from attrs import evolve

from kernel.effects import AppendOutbox, InsertRun, StoreEffect
from kernel.events import WorkflowStarted
from kernel.ports import Store
from kernel.records import (
    IdempotencyRecord,
    IdempotencyState,
    Job,
    LogEntry,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import JobStatus, LogLevel, Status

T = TypeVar("T")
Versioned = TypeVar("Versioned", WorkflowRun, WorkflowStage, ScheduleRecord)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
THREADS = 8
LEASE = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    """``seconds`` after the suite's fixed epoch ``T0``."""
    return T0 + timedelta(seconds=seconds)


def make_run(run_id: str = "run-1", created: float = 0, **changes: Any) -> WorkflowRun:
    """A PENDING run created ``created`` seconds after ``T0``."""
    run = WorkflowRun(
        id=run_id,
        workflow_id="wf",
        workflow_name="Workflow",
        status=Status.PENDING,
        input={"pages": 3},
        created_at=at(created),
    )
    return evolve(run, **changes)


def make_stage(run_id: str, stage_id: str, number: int = 1, **changes: Any) -> WorkflowStage:
    """A PENDING stage record of ``run_id``; its record id is ``run_id/stage_id``."""
    stage = WorkflowStage(
        id=f"{run_id}/{stage_id}",
        workflow_run_id=run_id,
        stage_id=stage_id,
        stage_name=stage_id.title(),
        stage_number=number,
        execution_group=number,
        status=Status.PENDING,
        created_at=at(number),
    )
    return evolve(stage, **changes)


def make_job(job_id: str, run_id: str = "run-1", created: float = 0, **changes: Any) -> Job:
    """A QUEUED job of ``run_id``, available from ``T0``."""
    job = Job(
        id=job_id,
        workflow_run_id=run_id,
        workflow_id="wf",
        stage_id="extract",
        status=JobStatus.QUEUED,
        available_at=T0,
        created_at=at(created),
    )
    return evolve(job, **changes)


def append(event_id: str, run_id: str = "run-1", seconds: float = 0) -> AppendOutbox:
    """An effect appending ``workflow:started`` for ``run_id`` as event ``event_id``."""
    event = WorkflowStarted(workflow_run_id=run_id, timestamp=at(seconds))
    return AppendOutbox(event, event_id=event_id, causation_id=f"cmd-{event_id}")


def key(
    name: str = "key-1", state: IdempotencyState = "IN_PROGRESS", result: Any = None
) -> IdempotencyRecord:
    """An idempotency record for ``run.create``."""
    return IdempotencyRecord(
        key=name,
        command_type="run.create",
        state=state,
        fingerprint="f" * 64,
        result=result,
        created_at=T0,
    )


def log(log_id: str, run_id: str = "run-1", seconds: float = 0) -> LogEntry:
    """An INFO log line of ``run_id``."""
    return LogEntry(
        id=log_id,
        workflow_run_id=run_id,
        stage_record_id=None,
        level=LogLevel.INFO,
        message=f"line {log_id}",
        created_at=at(seconds),
    )


def bump(record: Versioned, **changes: Any) -> Versioned:
    """``record`` changed by copy, with its version one higher (what an update carries)."""
    return evolve(record, version=record.version + 1, **changes)


class StoreCase(abc.ABC):
    """Opens a fresh store for each test and closes it afterwards."""

    store: Store
    tmp_path: Path

    @abc.abstractmethod
    def make_store(self) -> Store:
        """A new, empty store; ``self.tmp_path`` is a fresh directory for its files."""

    @pytest.fixture(autouse=True)
    def _open_store(self, tmp_path: Path) -> Iterator[None]:
        self.tmp_path = tmp_path
        self.store = self.make_store()
        yield
        self.store.close()

    # -- helpers -----------------------------------------------------------

    def apply(self, *effects: StoreEffect) -> None:
        """Apply ``effects`` in one committed transaction."""
        with self.store.transaction() as tx:
            tx.apply(effects)

    def add_runs(self, *run_ids: str) -> None:
        """Insert PENDING runs, one second apart."""
        self.apply(*(InsertRun(make_run(rid, created=i)) for i, rid in enumerate(run_ids)))

    def race(self, work: Callable[[int], T], threads: int = THREADS) -> list[T]:
        """Run ``work(i)`` in ``threads`` threads released together; re-raise any error."""
        barrier = threading.Barrier(threads, timeout=30)

        def start(index: int) -> T:
            barrier.wait()
            return work(index)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(start, range(threads)))

    def claim(self, seconds: float, limit: int = 100) -> list[str]:
        """Ids of the outbox events claimed at ``at(seconds)`` in a committed transaction."""
        with self.store.transaction() as tx:
            return [event.id for event in tx.claim_outbox(at(seconds), limit, LEASE)]
