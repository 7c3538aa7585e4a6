"""Limits on PostgreSQL (SPEC §15): keep a limited lease only if its key still has
room once the key's advisory lock is held, and count a workflow's RUNNING runs
under its lock for ``max_running_runs``.

The lease statement (``lease_next_job``) already passes over keys that look
full, but its counts see committed leases only: two workers could both take
a key's last slot. So a lease of a limited job takes the key's transaction
lock and counts again in a new statement (which sees every lease committed
before the lock was granted, and its own). Over the limit, the job goes back
to the queue untouched (no attempt used) and the lease statement runs again
with the key in its ``held`` list, so the next candidate is another key's.
A transaction that already holds row locks only tries the key's lock (a
busy key counts as held): waiting there could close a cycle with a worker
that holds the key and waits for one of those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from kernel.records import Job

Rows = Callable[[str, dict[str, Any]], list[dict[str, Any]]]
"""Runs a named query of ``queries.sql`` in the transaction and returns its rows."""

LIMIT_KEYS = 87150
"""Advisory lock class of limit keys."""
WORKFLOW_RUNS = 87151
"""Advisory lock class of workflows' ``max_running_runs``."""

MAX_TRIES = 8
"""Held keys a lease passes over before it reports no job (the queue then waits
for the worker's next poll, never spins)."""


def lock_key(rows: Rows, space: int, key: str, *, wait: bool) -> bool:
    """Take the transaction-level advisory lock on ``key``; ``wait=False`` only tries."""
    if wait:
        rows("advisory_lock", {"space": space, "key": key})
        return True
    return bool(rows("advisory_try_lock", {"space": space, "key": key})[0]["locked"])


def has_room(rows: Rows, job: Job, now_us: int) -> bool:
    """Whether ``job``, leased by this transaction, stays within its key's limit
    (counted under the key's lock: its own lease is among the LEASED)."""
    assert job.limit_key is not None
    per_us = job.limit_rate_per_us or 0
    counts = rows("limit_room", {"limit_key": job.limit_key, "now_us": now_us, "per_us": per_us})
    leased, recent = int(counts[0]["leased"]), int(counts[0]["recent"])
    if job.limit_max_running is not None and leased > job.limit_max_running:
        return False
    return job.limit_rate_count is None or recent < job.limit_rate_count


def keep_lease(rows: Rows, job: Job, now_us: int, *, wait: bool) -> bool:
    """Lock ``job``'s key and keep its lease if the key has room (recording a
    rate-limited lease); otherwise give the job back to the queue."""
    assert job.limit_key is not None
    if lock_key(rows, LIMIT_KEYS, job.limit_key, wait=wait) and has_room(rows, job, now_us):
        if job.limit_rate_count is not None:
            values = {"limit_key": job.limit_key, "now_us": now_us}
            rows("record_limit_lease", {**values, "per_us": job.limit_rate_per_us})
        return True
    rows("unlease_job", {"id": job.id})
    return False


def running_runs(rows: Rows, workflow_ids: Collection[str]) -> dict[str, int]:
    """RUNNING runs per workflow id, counted under each id's lock (sorted order)."""
    ordered = sorted(set(workflow_ids))
    for workflow_id in ordered:
        lock_key(rows, WORKFLOW_RUNS, workflow_id, wait=True)
    counted = rows("running_runs", {"workflow_ids": ordered})
    return {row["workflow_id"]: int(row["running"]) for row in counted}
