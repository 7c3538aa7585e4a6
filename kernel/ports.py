"""The ports (SPEC §7): what the kernel needs from the world, as Protocols.

Adapters implement them; the kernel imports no adapter. Every store
(in-memory, SQLite, PostgreSQL, third-party) implements :class:`Store` and
passes ``testing.conformance.StoreConformance``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from attrs import frozen

from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.ai.ports import UNKNOWN as UNKNOWN
from kernel.ai.ports import AIProvider as AIProvider
from kernel.ai.ports import BatchProvider as BatchProvider
from kernel.ai.ports import Unknown as Unknown
from kernel.commands import Command
from kernel.effects import StoreEffect
from kernel.events import Event
from kernel.records import (
    IdempotencyRecord,
    Job,
    Json,
    LogEntry,
    OutboxEvent,
    SignalRecord,
    WorkflowRun,
    WorkflowStage,
)
from kernel.schedules import ScheduleRecord
from kernel.status import Status
from kernel.workflows import Workflow


class Clock(Protocol):
    """Tells the time."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...


class IdGenerator(Protocol):
    """Makes fresh, unique ids."""

    def new_id(self) -> str:
        """A new id, never returned before."""
        ...


class EventSink(Protocol):
    """Receives published events. Raising means the delivery failed and is retried."""

    def emit(self, event: Event) -> None:
        """Deliver one event."""
        ...


class Scheduler(Protocol):
    """Runs a command later (hosts may use it for deferred work)."""

    def schedule(self, command: Command[Any], at: datetime) -> None:
        """Dispatch ``command`` at or after ``at``."""
        ...


@frozen
class Returned:
    """User code returned ``value``."""

    value: Any


@frozen
class Raised:
    """User code raised; ``error`` is ``"TypeName: message"``.

    ``traceback`` is the formatted traceback from the first frame of user code
    on (the runner's own frames left out), at most :data:`TRACEBACK_LIMIT`
    characters.
    """

    error: str
    exception: BaseException | None = None
    traceback: str | None = None


@frozen
class TimedOut:
    """User code was still running after ``after``: an async call was cancelled; a
    sync call's thread cannot be stopped, so whatever it returns later is dropped."""

    after: timedelta


RunnerOutcome = Returned | Raised | TimedOut

TRACEBACK_LIMIT = 20_000
"""The most characters of a traceback a failed attempt keeps (SPEC §19)."""


class StageRunner(Protocol):
    """Runs user code, sync or ``async def``, and reports what it did.

    It never lets an exception from user code escape: it returns
    :class:`Raised` instead.
    """

    def run(
        self, fn: Callable[..., Any], *args: Any, timeout: timedelta | None = None
    ) -> RunnerOutcome:
        """Call ``fn(*args)``; await the result if it is awaitable. With ``timeout``,
        give up after that long and return :class:`TimedOut`."""
        ...


@runtime_checkable
class OffloadingRunner(StageRunner, Protocol):
    """A stage runner that can also await blocking work away from the event loop it
    runs ``async def`` stages on (``ctx.ai``'s async forms use it)."""

    def offload(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        """Run ``fn()`` in another thread; the awaitable gives its result or raises."""
        ...


class WorkflowRegistry(Protocol):
    """Finds workflow definitions by id and version (SPEC §16)."""

    def get_workflow(
        self, workflow_id: str, version: str | None = None
    ) -> Workflow[Any, Any] | None:
        """The workflow registered under ``workflow_id`` and ``version`` (without a
        version: the newest, the last registered), or ``None``."""
        ...

    def workflow_ids(self) -> Collection[str]:
        """The ids of every registered workflow (the schedules this host can fire)."""
        ...

    def workflow_versions(self) -> Collection[tuple[str, str]]:
        """Every registered ``(workflow id, version)`` pair (the runs and jobs this
        worker can serve).

        Called for every claim and lease: keep it cheap (no copy per call)."""
        ...


class StoredValues(Protocol):
    """JSON values by key (stage outputs and ``ctx.storage``), each call its own transaction.

    Every :class:`Store` has them; not to be confused with :class:`BlobStore`, the
    port for large payloads' bytes."""

    def get_blob(self, key: str) -> tuple[bool, Json]:
        """``(True, value)`` if ``key`` is stored, else ``(False, None)``."""
        ...

    def put_blob(self, key: str, value: Json) -> None:
        """Store ``value`` under ``key``, replacing any earlier value."""
        ...

    def delete_blob(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        ...


class BlobStore(Protocol):
    """Bytes by reference, outside the database: large run inputs and outputs and stage
    outputs (SPEC §16 "Large payloads"). ``adapters.blobs.FileBlobStore`` keeps them
    in a directory, ``adapters.blobs.MemoryBlobStore`` in memory; an object store
    (S3, GCS) needs only these three methods.
    """

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` durably under ``key`` (a ``/``-separated name, new each time)
        and return the reference that :meth:`get` and :meth:`delete` take."""
        ...

    def get(self, ref: str) -> bytes:
        """The bytes stored under ``ref``; raises ``LookupError`` (``KeyError``) when
        nothing is stored there."""
        ...

    def delete(self, ref: str) -> None:
        """Remove ``ref``; no error if it is absent."""
        ...


@runtime_checkable
class StoreTransaction(Protocol):
    """One open transaction: loads state, then applies a decision's effects.

    Everything read through it and every effect applied to it commits or rolls
    back as one unit. Methods that choose rows for this caller
    (``pending_runs``, ``lease_next_job``, ``claim_outbox``) must never give
    the same row to two concurrent transactions.
    """

    def get_run(self, run_id: str) -> WorkflowRun | None: ...

    def get_stages(self, run_id: str) -> list[WorkflowStage]:
        """The run's stage records in stage-number order."""
        ...

    def get_job(self, job_id: str) -> Job | None: ...

    def get_jobs(self, run_id: str) -> list[Job]:
        """The run's jobs, oldest first."""
        ...

    def get_blob(self, key: str) -> tuple[bool, Json]: ...

    def get_idempotency(self, key: str, command_type: str) -> IdempotencyRecord | None: ...

    def acquire_idempotency(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Insert ``record`` unless (key, command type) exists; return the existing one.

        ``None`` means this caller now holds the key. An existing row stays
        locked by this transaction (another transaction reading it waits), so
        a caller may safely take over an abandoned key in the same transaction.
        """
        ...

    def pending_runs(
        self,
        limit: int,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> list[WorkflowRun]:
        """Up to ``limit`` PENDING runs, highest priority then oldest first, locked for
        this transaction (concurrent callers get different runs).

        With ``workflow_ids``, only runs of those workflows (SPEC §19: a worker
        leaves the runs of workflows it does not know to a worker that has
        them); with ``versions``, only runs whose ``(workflow_id,
        workflow_version)`` is one of those pairs (SPEC §16: rolling deploys).
        ``None`` means no filter; both filters apply when both are given."""
        ...

    def lease_next_job(
        self,
        worker_id: str,
        now: datetime,
        workflow_ids: Collection[str] | None = None,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> Job | None:
        """Lease the next QUEUED job available at ``now`` (priority, then age) to
        ``worker_id``: it becomes LEASED with ``locked_at=now``. Returns the leased job.

        With ``workflow_ids``, only jobs of those workflows (``Job.workflow_id``)
        are candidates; with ``versions``, only jobs whose ``(workflow_id,
        workflow_version)`` is one of those pairs. ``None`` means no filter.

        A job with a ``limit_key`` (SPEC §15) is a candidate only while fewer than
        its ``limit_max_running`` jobs of that key are LEASED and fewer than its
        ``limit_rate_count`` leases of that key fall in ``(now - per, now]``;
        otherwise it stays QUEUED and the jobs behind it are considered. The check
        and the lease are atomic per key: no two transactions fill the same slot."""
        ...

    def running_runs(self, workflow_ids: Collection[str]) -> dict[str, int]:
        """How many runs of each of ``workflow_ids`` are RUNNING (absent: none).

        Taken under a per-workflow lock held until this transaction ends (in the
        order given, which callers sort), so two concurrent claims never both
        fill a workflow's last ``max_running_runs`` slot (SPEC §15)."""
        ...

    def stale_jobs(self, leased_before: datetime, limit: int) -> list[Job]:
        """LEASED jobs whose lease was last taken or renewed before ``leased_before``."""
        ...

    def due_suspended_stages(self, now: datetime, limit: int) -> list[WorkflowStage]:
        """SUSPENDED stages whose ``next_poll_at`` is at or before ``now``, earliest first."""
        ...

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxEvent]:
        """Claim up to ``limit`` unpublished, not dead-lettered events for ``lease``.

        Events come in insertion order. An event claimed by another, still
        live, flush is skipped, and so is every later event of its run (per-run
        order). Applying :class:`~kernel.effects.UpdateOutbox` ends a claim.
        """
        ...

    def dead_letters(self, limit: int) -> list[OutboxEvent]:
        """Dead-lettered events in insertion order."""
        ...

    def buffered_signals(self, run_id: str) -> list[SignalRecord]:
        """The run's signals that no stage has consumed yet, in arrival order."""
        ...

    def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, locked until the transaction ends (a concurrent writer waits)."""
        ...

    def due_schedules(
        self, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
    ) -> list[ScheduleRecord]:
        """Up to ``limit`` enabled schedules whose ``next_fire_at`` is at or before
        ``now``, earliest first, locked for this transaction: a concurrent caller
        skips them (and finds them no longer due once this one commits).

        With ``workflow_ids``, only schedules of those workflows; ``None`` means
        every workflow."""
        ...

    def get_usage_call(self, call_id: str) -> UsageEntry | None:
        """The ledger row of ``call_id``, if it was recorded (``usage.record``)."""
        ...

    def pending_batch_cancels(self, limit: int) -> list[BatchCancel]:
        """Provider batch cancels still to make, oldest ``requested_at`` first."""
        ...

    def purgeable_runs(
        self, finished_before: datetime, statuses: Collection[Status], limit: int
    ) -> list[WorkflowRun]:
        """Up to ``limit`` runs with a status in ``statuses`` (terminal ones) whose
        ``completed_at`` is before ``finished_before`` and whose outbox holds no
        unpublished event (pending or dead-lettered), oldest ``completed_at`` first,
        locked for this transaction: a concurrent caller skips them, and a writer of
        one of them waits until this transaction ends (``runs.purge``)."""
        ...

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        """Apply effects in order; raise ``StaleVersionError`` on a version mismatch.

        After a refused effect (a stale version, a duplicate or missing row), roll
        the transaction back, as the kernel does. ``InMemoryStore`` and
        ``PostgresStore`` keep the effects before the refused one applied, so a
        caller may go on; ``SqliteStore``, which writes the effects of several
        records grouped by kind, may also have written some that come after it.
        """
        ...


@runtime_checkable
class JobNotifier(Protocol):
    """Optional store capability: block until work may be waiting.

    ``PostgresStore`` implements it with ``LISTEN/NOTIFY``: a new run or a
    queued job wakes waiting workers within milliseconds. Hosts fall back to
    polling for stores without it.
    """

    def wait_for_jobs(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; whether a notification came."""
        ...


@runtime_checkable
class LookTurns(Protocol):
    """Optional store capability, beside :class:`JobNotifier`: idle workers of several
    processes, woken by the same notification, look for its work one at a time.

    Without it, every idle worker process claims and leases at each notification,
    and all but one find nothing, each in a transaction of its own. With it, a
    worker takes the turn, learns whether work may be waiting, and keeps the turn
    while it looks; the next worker's check then sees what that look took.
    ``PostgresStore`` implements it with a session advisory lock on its ``LISTEN``
    connection, so a worker that dies gives the turn up with its session.
    """

    def look_turn(self, timeout: float) -> AbstractContextManager[bool]:
        """Wait up to ``timeout`` seconds for the turn. The context's value: whether work
        may be waiting (claimable runs or queued jobs; ``True`` also when the turn did not
        come in time: look anyway). Leaving the context gives the turn to the next
        waiter; the caller leaves once its look has leased a job or found none."""
        ...


@runtime_checkable
class WorkAnnouncer(Protocol):
    """Optional store capability: call back, in this process, after each commit that
    created a run or queued a job.

    ``SqliteStore`` implements it, so a run created through the store a
    ``WorkerHost`` of the same process uses wakes that host at once instead of
    at its next tick. Other processes are not told (they poll, or use
    :class:`JobNotifier`).
    """

    def subscribe_work(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after each such commit, outside any transaction; returns a
        function that unsubscribes. A callback that raises is not called again."""
        ...


class Store(StoredValues, Protocol):
    """Persistence for runs, stages, jobs, outbox, idempotency keys, logs and blobs."""

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """Open a write transaction: commit on normal exit, roll back on an exception."""
        ...

    def renew_lease(self, job_id: str, worker_id: str, now: datetime) -> bool:
        """Move a LEASED job's ``locked_at`` to ``now`` if ``worker_id`` still holds it."""
        ...

    def append_log(self, entry: LogEntry) -> None:
        """Store one log line in its own transaction."""
        ...

    # -- queries for tools, tests and the CLI (each its own read) --

    def get_run(self, run_id: str) -> WorkflowRun | None: ...

    def get_stages(self, run_id: str) -> list[WorkflowStage]: ...

    def list_runs(
        self,
        status: Status | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        """Runs, newest first, optionally filtered.

        ``before`` is a run id (the last one of the previous page): only runs
        listed after it are returned, so pages stay stable while runs are
        created. An unknown ``before`` gives an empty list.
        """
        ...

    def get_logs(self, run_id: str) -> list[LogEntry]: ...

    def get_outbox(self, run_id: str | None = None) -> list[OutboxEvent]:
        """Outbox events in insertion order (per run: by sequence)."""
        ...

    def get_jobs(self, run_id: str) -> list[Job]: ...

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        """Every signal sent to the run (buffered and consumed), in arrival order."""
        ...

    def get_usage(self, run_id: str) -> list[UsageEntry]:
        """The run's usage ledger, in record order."""
        ...

    def get_batch_cancels(self) -> list[BatchCancel]:
        """Every pending provider batch cancel, oldest first."""
        ...

    def get_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by id."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
