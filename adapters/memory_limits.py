"""Limits in ``InMemoryStore`` (SPEC §15): which queued job may be leased now, and the
record of each limited lease (the rate window), used by ``MemoryTransaction``.

One lock serialises the store's transactions, so counting and leasing in one
transaction cannot race. Only LEASED jobs count toward a key's
``max_running``; the rate window is ``(now - per, now]`` over the key's
recorded lease times (``_Tables.lease_times``: a tuple per key, replaced
whole so the undo log restores it), pruned as leases are recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta

from kernel.records import Job, WorkflowRun
from kernel.status import JobStatus, Status


def leased_by_key(jobs: Iterable[Job]) -> Counter[str]:
    """How many LEASED jobs each limit key has."""
    return Counter(
        job.limit_key for job in jobs if job.status == JobStatus.LEASED and job.limit_key
    )


def _window_start(job: Job, now: datetime) -> datetime:
    assert job.limit_rate_per_us is not None
    return now - timedelta(microseconds=job.limit_rate_per_us)


def has_room(
    job: Job,
    leased: Mapping[str, int],
    lease_times: Mapping[str, tuple[datetime, ...]],
    now: datetime,
) -> bool:
    """Whether ``job``'s limit lets it be leased at ``now``."""
    key = job.limit_key
    if key is None:
        return True
    if job.limit_max_running is not None and leased.get(key, 0) >= job.limit_max_running:
        return False
    if job.limit_rate_count is not None:
        start = _window_start(job, now)
        recent = sum(1 for at in lease_times.get(key, ()) if start < at <= now)
        if recent >= job.limit_rate_count:
            return False
    return True


def first_with_room(
    ordered: Iterable[Job],
    jobs: Iterable[Job],
    lease_times: Mapping[str, tuple[datetime, ...]],
    now: datetime,
) -> Job | None:
    """The first of ``ordered`` (in lease order) whose limit has room; held keys are
    passed over, so they never block other keys' jobs behind them."""
    leased = leased_by_key(jobs)
    for job in ordered:
        if has_room(job, leased, lease_times, now):
            return job
    return None


def record_lease(
    job: Job,
    now: datetime,
    lease_times: Mapping[str, tuple[datetime, ...]],
    put: Callable[[str, tuple[datetime, ...]], None],
) -> None:
    """Remember the lease of a rate-limited ``job`` at ``now`` (dropping lease times
    that left its window); ``put`` writes the key's new tuple through the undo log."""
    key = job.limit_key
    if key is None or job.limit_rate_count is None:
        return
    start = _window_start(job, now)
    kept = tuple(at for at in lease_times.get(key, ()) if at > start)
    put(key, (*kept, now))


def running_runs(runs: Iterable[WorkflowRun], workflow_ids: Collection[str]) -> dict[str, int]:
    """RUNNING runs per workflow id among ``workflow_ids`` (absent: none)."""
    counts: dict[str, int] = {}
    wanted = set(workflow_ids)
    for run in runs:
        if run.status == Status.RUNNING and run.workflow_id in wanted:
            counts[run.workflow_id] = counts.get(run.workflow_id, 0) + 1
    return counts
