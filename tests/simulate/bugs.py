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
import kernel.decisions.run_signal as run_signal
import kernel.decisions.schedules as schedule_decisions
import kernel.decisions.usage_record as usage_record
import kernel.llm_batch_engine as llm_batch_engine
from adapters.memory import MemoryTransaction
from adapters.memory_ledger import LedgerLoads
from adapters.memory_signals import SignalScheduleLoads
from kernel.effects import ConsumeSignal, InsertUsage
from kernel.records import Job, SignalRecord
from kernel.schedules import due_fires
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


def _signal_taken_twice() -> list[tuple[object, str, object]]:
    """The store hands out signals a stage already took as if they were still kept,
    and lets a stage take one again."""

    def buffered(self: MemoryTransaction, run_id: str) -> list[SignalRecord]:
        return [
            evolve(signal, consumed_at=None, stage_id=None)
            for signal in self.t.signals.values()
            if signal.workflow_run_id == run_id
        ]

    apply = SignalScheduleLoads.apply_signal_schedule

    def careless(self: MemoryTransaction, effect: Any) -> None:
        if isinstance(effect, ConsumeSignal):
            self._set(self.t.signals, effect.signal.id, effect.signal)
        else:
            apply(self, effect)

    return [
        (SignalScheduleLoads, "buffered_signals", buffered),
        (SignalScheduleLoads, "apply_signal_schedule", careless),
    ]


def _signal_after_timeout() -> list[tuple[object, str, object]]:
    """``run.signal`` does not check whether the waiting stage's time ran out."""
    decide = run_signal.decide

    def careless(cmd: Any, state: Any, env: Any) -> Any:
        stages = [
            evolve(stage, max_wait_until=None) if run_signal.waiting_for(stage) else stage
            for stage in state.stages
        ]
        return decide(cmd, evolve(state, stages=stages), env)

    return [(run_signal, "decide", careless)]


def _catchup_all_fires_latest() -> list[tuple[object, str, object]]:
    """A ``catchup="all"`` schedule fires only the latest of the times it missed."""

    def latest(schedule: Any, zone: Any, next_fire_at: Any, now: Any, max_fires: int) -> Any:
        return due_fires(evolve(schedule, catchup="latest"), zone, next_fire_at, now, max_fires)

    return [(schedule_decisions, "due_fires", latest)]


def _resubmit_instead_of_adopting() -> list[tuple[object, str, object]]:
    """A retried batch attempt submits its batch again instead of asking the provider
    whether an earlier attempt did (and so pays twice)."""

    def resubmit(self: Any, progress: Any) -> str:
        self.items()
        result: str = self.submit(progress)
        return result

    return [(llm_batch_engine._Attempt, "adopt_or_submit", resubmit)]


def _usage_counted_twice() -> list[tuple[object, str, object]]:
    """``usage.record`` does not look the call id up, and the ledger keeps the last row
    (a batch polled again counts its items again)."""
    decide = usage_record.decide
    apply = LedgerLoads.apply_ledger

    def again(cmd: Any, state: Any, env: Any) -> Any:
        return decide(cmd, evolve(state, recorded=None), env)

    def overwrite(self: MemoryTransaction, effect: Any) -> None:
        if isinstance(effect, InsertUsage):
            self._set(self.t.usage, effect.entry.call_id, effect.entry)
        else:
            apply(self, effect)

    return [(usage_record, "decide", again), (LedgerLoads, "apply_ledger", overwrite)]


FEATURE_BUGS: dict[str, Callable[[], list[tuple[object, str, object]]]] = {
    "signal taken twice": _signal_taken_twice,
    "signal after timeout": _signal_after_timeout,
    "catch-up all fires latest": _catchup_all_fires_latest,
    "batch resubmitted": _resubmit_instead_of_adopting,
    "usage counted twice": _usage_counted_twice,
}
"""Bugs of signals, schedules, AI calls and batches: found on ``tests/simulate/features.py``."""

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
    patches = {**BUGS, **FEATURE_BUGS}[name]()
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in patches]
    try:
        for owner, attribute, value in patches:
            setattr(owner, attribute, value)
        yield
    finally:
        for owner, attribute, value in saved:
            setattr(owner, attribute, value)
