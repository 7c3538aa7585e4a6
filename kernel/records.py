"""The persistent records (SPEC §3.2): immutable values, changed by copy.

Records hold data in JSON form (dicts, lists, strings, numbers); typed
objects only appear inside stage contexts and results. Adapters turn rows
into records with the converter in :mod:`kernel.convert`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from attrs import field, frozen

from kernel.status import JOB_OPEN, RUN_TERMINAL, STAGE_ACTIVE, JobStatus, LogLevel, Status

Json = Any
"""A JSON-serialisable value: dict, list, str, int, float, bool or None."""


@frozen(kw_only=True)
class WorkflowRun:
    """One execution of a workflow."""

    id: str
    workflow_id: str
    workflow_name: str
    workflow_version: str = "1"
    """The version of the workflow it runs (SPEC §16); kept until ``run.rerunFrom`` moves it."""
    status: Status
    input: Json
    config: dict[str, dict[str, Json]] = field(factory=dict)
    priority: int = 5
    metadata: dict[str, Json] = field(factory=dict)
    output: Json = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    total_cost: Decimal = Decimal(0)
    """What the run's AI calls cost (the usage ledger) plus costs its stages reported."""
    total_tokens: int = 0
    budget: Decimal | None = None
    """The most the run may spend on AI calls; ``None``: no limit."""
    version: int = 1

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished for good (completed, failed or cancelled)."""
        return self.status in RUN_TERMINAL


@frozen(kw_only=True)
class WorkflowStage:
    """The record of one stage within one run; unique per (run, stage_id)."""

    id: str
    workflow_run_id: str
    stage_id: str
    stage_name: str
    stage_number: int
    execution_group: int
    status: Status
    config: dict[str, Json] = field(factory=dict)
    output_ref: str | None = None
    suspended_state: Json = None
    next_poll_at: datetime | None = None
    poll_interval: timedelta | None = None
    max_wait_until: datetime | None = None
    metrics: dict[str, Json] = field(factory=dict)
    error: str | None = None
    error_traceback: str | None = None
    """The formatted traceback of the last failed attempt (user frames, at most 20 kB)."""
    attempt: int = 0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    version: int = 1

    @property
    def is_active(self) -> bool:
        """Whether the stage still has work ahead (pending, running or suspended)."""
        return self.status in STAGE_ACTIVE


@frozen(kw_only=True)
class Job:
    """A queued unit of work: execute one stage of one run."""

    id: str
    workflow_run_id: str
    workflow_id: str
    workflow_version: str = "1"
    """Its run's workflow version: a worker leases only jobs of versions it holds."""
    stage_id: str
    status: JobStatus
    priority: int = 5
    attempt: int = 0
    max_attempts: int = 3
    worker_id: str | None = None
    locked_at: datetime | None = None
    available_at: datetime
    payload: dict[str, Json] = field(factory=dict)
    last_error: str | None = None
    reap_count: int = 0
    created_at: datetime
    limit_key: str | None = None
    """The resolved key of its stage's ``Limit`` (SPEC §15); ``None``: not limited."""
    limit_max_running: int | None = None
    """At most this many LEASED jobs with ``limit_key`` at once."""
    limit_rate_count: int | None = None
    """At most this many leases of ``limit_key`` per ``limit_rate_per_us`` microseconds."""
    limit_rate_per_us: int | None = None

    @property
    def is_open(self) -> bool:
        """Whether the job can still run (queued, leased or suspended)."""
        return self.status in JOB_OPEN


@frozen(kw_only=True)
class OutboxEvent:
    """An event written in the same transaction as the change that caused it."""

    id: str
    workflow_run_id: str
    sequence: int
    event_type: str
    payload: dict[str, Json]
    causation_id: str
    occurred_at: datetime
    published_at: datetime | None = None
    retry_count: int = 0
    dlq_at: datetime | None = None


IdempotencyState = Literal["IN_PROGRESS", "COMPLETED"]


@frozen(kw_only=True)
class IdempotencyRecord:
    """A remembered command: (key, command type) is unique."""

    key: str
    command_type: str
    state: IdempotencyState
    fingerprint: str
    result: Json = None
    created_at: datetime


@frozen(kw_only=True)
class LogEntry:
    """A log line written by stage code through ``ctx.log``."""

    id: str
    workflow_run_id: str
    stage_record_id: str | None
    level: LogLevel
    message: str
    metadata: dict[str, Json] = field(factory=dict)
    created_at: datetime


@frozen(kw_only=True)
class SignalRecord:
    """A signal sent to a run (``run.signal``, SPEC §13): kept once it is consumed,
    as the record of what the waiting stage received.

    ``consumed_at`` is ``None`` while the signal is buffered (no stage of the run
    waited for it yet); ``stage_id`` names the stage that consumed it.
    """

    id: str
    workflow_run_id: str
    name: str
    payload: Json
    """The payload structured into the waiting stage's output type, in JSON form."""
    created_at: datetime
    consumed_at: datetime | None = None
    stage_id: str | None = None

    @property
    def is_buffered(self) -> bool:
        """Whether the signal still waits for a stage to consume it."""
        return self.consumed_at is None
