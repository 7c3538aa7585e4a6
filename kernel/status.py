"""Statuses of runs, stages and jobs, and the transitions allowed between them.

The tables are the one home of the lifecycle rules: decisions consult them,
and a test walks every pair.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Status(enum.StrEnum):
    """Status of a run or a stage (SPEC §3.1)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


class JobStatus(enum.StrEnum):
    """Status of a queued unit of work for one stage (SPEC §10.1)."""

    QUEUED = "QUEUED"
    LEASED = "LEASED"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class LogLevel(enum.StrEnum):
    """Level of a stage log line."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


RUN_TERMINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
STAGE_ACTIVE: frozenset[Status] = frozenset({Status.PENDING, Status.RUNNING, Status.SUSPENDED})
JOB_OPEN: frozenset[JobStatus] = frozenset(
    {JobStatus.QUEUED, JobStatus.LEASED, JobStatus.SUSPENDED}
)

RUN_TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset(
        {Status.RUNNING, Status.SUSPENDED, Status.COMPLETED, Status.FAILED, Status.CANCELLED}
    ),
    Status.SUSPENDED: frozenset(
        {Status.RUNNING, Status.SUSPENDED, Status.COMPLETED, Status.FAILED, Status.CANCELLED}
    ),
    # rerun-from re-opens a finished run.
    Status.COMPLETED: frozenset({Status.RUNNING}),
    Status.FAILED: frozenset({Status.RUNNING}),
    Status.CANCELLED: frozenset(),
    Status.SKIPPED: frozenset(),
}

STAGE_TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.CANCELLED, Status.SKIPPED, Status.FAILED}),
    # RUNNING -> PENDING: retry with backoff, or a lease reaped after a crash.
    Status.RUNNING: frozenset(
        {
            Status.PENDING,
            Status.RUNNING,
            Status.SUSPENDED,
            Status.COMPLETED,
            Status.FAILED,
            Status.CANCELLED,
        }
    ),
    Status.SUSPENDED: frozenset(
        {Status.SUSPENDED, Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.RUNNING}
    ),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.SKIPPED: frozenset(),
}


def can_run_move(src: Status, dst: Status) -> bool:
    """Whether a run may go from ``src`` to ``dst``.

    >>> can_run_move(Status.PENDING, Status.RUNNING)
    True
    >>> can_run_move(Status.CANCELLED, Status.RUNNING)
    False
    """
    return dst in RUN_TRANSITIONS[src]


def can_stage_move(src: Status, dst: Status) -> bool:
    """Whether a stage may go from ``src`` to ``dst``.

    >>> can_stage_move(Status.RUNNING, Status.COMPLETED)
    True
    >>> can_stage_move(Status.COMPLETED, Status.RUNNING)
    False
    """
    return dst in STAGE_TRANSITIONS[src]
