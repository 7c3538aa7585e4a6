"""Bugs planted on purpose, one at a time, to show the simulator finds them.

Each is a monkeypatch of the real kernel or store, undone when the ``with``
block ends; none is ever used outside tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from attrs import evolve

import kernel.decisions.job_execute.finish as finish
import kernel.decisions.outbox_flush as outbox_flush
from adapters.memory import MemoryTransaction
from kernel.records import Job
from kernel.status import JobStatus
from testing.simulate import snapshot


def _finish_ignores_lease() -> list[tuple[object, str, object]]:
    """The finish does not check that its attempt is still the stage's current one."""
    return [(finish, "same_attempt", lambda record, stage: True)]


def _reaper_ignores_renewals() -> list[tuple[object, str, object]]:
    """The reaper takes every leased job, renewed or not."""

    def stale_jobs(self: MemoryTransaction, leased_before: datetime, limit: int) -> list[Job]:
        return [job for job in self.t.jobs.values() if job.status == JobStatus.LEASED][:limit]

    return [(MemoryTransaction, "stale_jobs", stale_jobs)]


def _flush_marks_failures_published() -> list[tuple[object, str, object]]:
    """The flush records a failed delivery as published (the event is lost)."""
    settle = outbox_flush.settle

    def careless(events: Any, outcomes: Any, max_retries: int, env: Any) -> Any:
        return settle(events, dict.fromkeys(outcomes), max_retries, env)

    return [(outbox_flush, "settle", careless)]


def _rollback_keeps_first_write() -> list[tuple[object, str, object]]:
    """A failed transaction's first effect stays applied."""
    rollback = MemoryTransaction.rollback

    def partial(self: MemoryTransaction) -> None:
        if self._undo:
            del self._undo[0]
        rollback(self)

    return [(MemoryTransaction, "rollback", partial)]


def _lease_without_start() -> list[tuple[object, str, object]]:
    """Leasing a job does not check it is still queued: a leased job is handed out again."""
    lease = MemoryTransaction.lease_next_job

    def lease_any(
        self: MemoryTransaction, worker_id: str, now: datetime, *args: Any, **kw: Any
    ) -> Job | None:
        for job in self.t.jobs.values():
            if job.status == JobStatus.LEASED and job.worker_id != worker_id:
                leased = evolve(job, worker_id=worker_id, locked_at=now)
                self._put_job(leased)
                return leased
        return lease(self, worker_id, now, *args, **kw)

    return [(MemoryTransaction, "lease_next_job", lease_any)]


def _commit_checks_no_versions() -> list[tuple[object, str, object]]:
    """A transaction that read early commits without checking that the rows it writes
    are still the ones it read (its version checks are skipped): last writer wins."""
    return [(snapshot, "first_conflict", lambda rows: None)]


BUGS: dict[str, Callable[[], list[tuple[object, str, object]]]] = {
    "finish ignores lease": _finish_ignores_lease,
    "reaper ignores renewals": _reaper_ignores_renewals,
    "flush marks failures published": _flush_marks_failures_published,
    "rollback keeps first write": _rollback_keeps_first_write,
    "lease hands out leased job": _lease_without_start,
    "commit checks no versions": _commit_checks_no_versions,
}


@contextmanager
def planted(name: str) -> Iterator[None]:
    """Plant the bug called ``name`` for the duration of the block."""
    patches = BUGS[name]()
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in patches]
    try:
        for owner, attribute, value in patches:
            setattr(owner, attribute, value)
        yield
    finally:
        for owner, attribute, value in saved:
            setattr(owner, attribute, value)
