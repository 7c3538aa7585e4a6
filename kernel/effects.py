"""Effects: what a decision asks the world to do, as plain data.

Store effects are applied by a :class:`~kernel.ports.StoreTransaction` in the
transaction that loaded the decision's state; an update carries the new
record (whose ``version`` is one more than ``expected_version``) and the
store refuses it with :class:`~kernel.errors.StaleVersionError` when the
current version differs. Work items (:class:`ExecuteStage`,
:class:`CheckCompletion`, :class:`Deliver`) are carried out by the kernel
shell outside any transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

from attrs import Attribute, field, frozen

from kernel.ai.ledger import BatchCancel, UsageEntry
from kernel.events import Event
from kernel.outcomes import CheckOutcome, Deliveries, StageRun
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
from kernel.status import JobStatus

R = TypeVar("R")
O = TypeVar("O")


def _next_version(instance: Any, _: Attribute[int], expected: int) -> None:
    record = next(
        getattr(instance, name) for name in ("run", "stage", "schedule") if hasattr(instance, name)
    )
    if record.version != expected + 1:
        raise ValueError(
            f"expected_version: the new record must carry version {expected + 1}, "
            f"got {record.version}"
        )


@frozen
class InsertRun:
    run: WorkflowRun


@frozen
class UpdateRun:
    run: WorkflowRun
    expected_version: int = field(validator=_next_version)


@frozen
class InsertStage:
    stage: WorkflowStage


@frozen
class UpdateStage:
    stage: WorkflowStage
    expected_version: int = field(validator=_next_version)


@frozen
class DeleteStage:
    """Remove a stage record (``run.rerunFrom``)."""

    stage: WorkflowStage


@frozen
class EnqueueJob:
    job: Job


@frozen
class UpdateJob:
    """Write a job's new state (settlement, retry, lease release)."""

    job: Job


@frozen
class AppendOutbox:
    """Write an event to the outbox; the store assigns the per-run sequence.

    Sequences are gap-free per run and follow commit order, because the store
    numbers them while holding the run's write lock.
    """

    event: Event
    event_id: str
    causation_id: str


@frozen
class UpdateOutbox:
    """Record a publication attempt: published, retried or dead-lettered."""

    event: OutboxEvent


@frozen
class PutBlob:
    key: str
    value: Json


@frozen
class DeleteBlob:
    key: str


@frozen
class AppendLog:
    entry: LogEntry


@frozen
class CompleteIdempotency:
    """Mark a key completed with the command's cached result."""

    record: IdempotencyRecord


@frozen
class ReleaseIdempotency:
    """Forget a key whose command failed, so it can be used again: only while it is
    ``IN_PROGRESS``. A ``COMPLETED`` key stays: its command committed (the caller may
    have seen an error all the same, a lost answer), and a retry must replay it."""

    key: str
    command_type: str


@frozen
class InsertSignal:
    """Keep a signal sent to a run: buffered, or already consumed by the stage it
    was delivered to (``run.signal``)."""

    signal: SignalRecord


@frozen
class ConsumeSignal:
    """Mark a buffered signal consumed (``signal.consumed_at`` and ``stage_id`` set).

    The store refuses it with :class:`~kernel.errors.StaleVersionError` when the
    signal is no longer buffered, so a signal is consumed once.
    """

    signal: SignalRecord


@frozen
class InsertSchedule:
    schedule: ScheduleRecord


@frozen
class UpdateSchedule:
    """Write a schedule's new state, version-checked like runs and stages."""

    schedule: ScheduleRecord
    expected_version: int = field(validator=_next_version)


@frozen
class DeleteSchedule:
    schedule_id: str


@frozen
class InsertUsage:
    """Add a row to the usage ledger; its ``call_id`` is new (``usage.record``
    checked)."""

    entry: UsageEntry


@frozen
class InsertBatchCancel:
    """Remember a provider batch to cancel after commit (replaces one with that id)."""

    cancel: BatchCancel


@frozen
class UpdateBatchCancel:
    """A cancel call that failed: counted, with its error, for the next tick."""

    cancel: BatchCancel


@frozen
class DeleteBatchCancel:
    """The provider accepted the cancel: forget it."""

    batch_id: str


@frozen
class PurgeRun:
    """Delete a finished run and everything it owns (``runs.purge``): its stages, jobs,
    logs, outbox events, usage rows, signals and stored values (blob keys under
    ``runs/<run id>/``).

    The store refuses it with :class:`~kernel.errors.StaleVersionError` when the
    run is gone or its version is no longer ``expected_version``.
    """

    run_id: str
    expected_version: int


StoreEffect = (
    InsertRun
    | UpdateRun
    | InsertStage
    | UpdateStage
    | DeleteStage
    | EnqueueJob
    | UpdateJob
    | AppendOutbox
    | UpdateOutbox
    | PutBlob
    | DeleteBlob
    | AppendLog
    | CompleteIdempotency
    | ReleaseIdempotency
    | InsertSignal
    | ConsumeSignal
    | InsertSchedule
    | UpdateSchedule
    | DeleteSchedule
    | InsertUsage
    | InsertBatchCancel
    | UpdateBatchCancel
    | DeleteBatchCancel
    | PurgeRun
)


def queued_job_id(effect: StoreEffect) -> str | None:
    """The id of the job ``effect`` puts in the queue (new, or back: a retry, a release);
    ``None`` if it queues none."""
    if isinstance(effect, EnqueueJob | UpdateJob) and effect.job.status == JobStatus.QUEUED:
        return effect.job.id
    return None


class OutsideWorld(Protocol):
    """What the shell does between transactions: run user code, publish events.

    Each work item below asks for exactly one of these; the kernel shell
    implements them with its stage runner and event sink.
    """

    def execute_stage(self, work: ExecuteStage) -> StageRun: ...

    def check_completion(self, work: CheckCompletion) -> CheckOutcome: ...

    def deliver(self, work: Deliver) -> Deliveries: ...

    def cancel_batches(self, work: CancelBatches) -> Mapping[str, str | None]: ...


class Work(Generic[O]):
    """Work a decision asks the shell to do outside any transaction; its outcome is an ``O``."""

    def carry_out(self, world: OutsideWorld) -> O:
        """Do the work through ``world`` and return what came of it."""
        raise NotImplementedError


@frozen(kw_only=True)
class ExecuteStage(Work[StageRun]):
    """Run a stage's user code (phase 2 of ``job.execute``), outside any transaction."""

    run: WorkflowRun
    stage: WorkflowStage
    job: Job | None
    input: Json
    config: dict[str, Json]
    stages_read: tuple[WorkflowStage, ...] | None = field(default=None, eq=False, repr=False)
    """The run's stage records as the start's transaction left them (``stage`` among
    them), or ``None``. The shell fills it in; the finish decides on these, ``run``
    and ``job`` instead of reading them again when the store confirms that none
    has changed since (``kernel.shell.reads.SnapshotReads``)."""

    def carry_out(self, world: OutsideWorld) -> StageRun:
        return world.execute_stage(self)


@frozen(kw_only=True)
class CheckCompletion(Work[CheckOutcome]):
    """Run an async-batch stage's ``check_completion``, outside any transaction.

    ``input`` and ``config`` are what ``execute`` saw, so the check gets the
    same typed context.
    """

    run: WorkflowRun
    stage: WorkflowStage
    input: Json
    config: dict[str, Json]

    def carry_out(self, world: OutsideWorld) -> CheckOutcome:
        return world.check_completion(self)


@frozen(kw_only=True)
class Deliver(Work[Deliveries]):
    """Publish claimed outbox events through the sink, in order (``outbox.flush``).

    Once a delivery of a run fails, that run's later events in ``events`` are
    not attempted (they are missing from the outcome): a run's events are
    never published out of sequence.
    """

    events: tuple[OutboxEvent, ...]

    def carry_out(self, world: OutsideWorld) -> Deliveries:
        return world.deliver(self)


@frozen(kw_only=True)
class CancelBatches(Work["Mapping[str, str | None]"]):
    """Call each provider's ``cancel`` for pending batch cancels (``batch.cancelPending``),
    outside any transaction. The outcome maps each batch id to ``None`` (cancelled)
    or the error its call raised."""

    cancels: tuple[BatchCancel, ...]

    def carry_out(self, world: OutsideWorld) -> Mapping[str, str | None]:
        return world.cancel_batches(self)


@frozen
class Decision(Generic[R]):
    """What a decision returns on success: a result and the effects that realise it."""

    result: R
    effects: tuple[StoreEffect, ...] = ()
