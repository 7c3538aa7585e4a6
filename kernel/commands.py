"""The commands (SPEC §5) and their results.

Each command class is generic in its result type, so
``kernel.dispatch(RunCancel(...))`` is typed ``RunCancelResult``. Fields are
checked when a command is built; messages name the field and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, get_args

from attrs import Attribute, field, frozen

from kernel.ai.types import Usage, UsageKind
from kernel.errors import InvalidInputError
from kernel.records import Job, Json
from kernel.schedules import Schedule
from kernel.status import RUN_TERMINAL, Status

R_co = TypeVar("R_co", covariant=True)


def _at_least(minimum: int) -> Any:
    def check(_: object, attribute: Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{attribute.name}: expected an int >= {minimum}, got {value!r}")

    return check


def _text(_: object, attribute: Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name}: expected a non-empty string, got {value!r}")


def _optional_text(_: object, attribute: Attribute[str | None], value: str | None) -> None:
    if value is not None:
        _text(_, attribute, value)  # type: ignore[arg-type]


def _optional_mapping(_: object, attribute: Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ValueError(f"{attribute.name}: expected a mapping, got {value!r}")


def _config_map(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{attribute.name}: expected a mapping of stage id to values, got {value!r}"
        )
    for stage_id, values in value.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"{attribute.name}.{stage_id}: expected a mapping, got {values!r}")


def _optional_budget(_: object, attribute: Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        # InvalidInputError is a ValueError: refused when built, like every field.
        raise InvalidInputError([f"{attribute.name}: expected a Decimal > 0, got {value!r}"])


def _optional_version(_: object, attribute: Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InvalidInputError([f"{attribute.name}: expected a non-empty string, got {value!r}"])


def _cost(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{attribute.name}: expected a finite Decimal >= 0, got {value!r}")


def _usage_kind(_: object, attribute: Attribute[Any], value: Any) -> None:
    if value not in get_args(UsageKind):
        kinds = "|".join(get_args(UsageKind))
        raise ValueError(f"{attribute.name}: expected one of {kinds}, got {value!r}")


def _usage(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, Usage):
        raise ValueError(f"{attribute.name}: expected a Usage, got {value!r}")


def _flag(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name}: expected a bool, got {value!r}")


class Command(Generic[R_co]):
    """Base of every command; ``type`` is the dotted name (``"run.create"``)."""

    type: ClassVar[str]


R = TypeVar("R")


class Dispatch(Protocol):
    """Runs one command and returns its result: a kernel's ``dispatch``.

    Code the kernel runs outside any transaction (``ctx.ai`` recording a
    call, progress reports, batch stages) dispatches its own commands
    through this, each in its own transaction.
    """

    def __call__(self, cmd: Command[R], /) -> R: ...


# -- results -----------------------------------------------------------------


@frozen(kw_only=True)
class RunCreateResult:
    workflow_run_id: str
    status: Status


@frozen(kw_only=True)
class ClaimedRun:
    workflow_run_id: str
    workflow_id: str
    job_ids: list[str]


@frozen(kw_only=True)
class RunClaimPendingResult:
    claimed: list[ClaimedRun]


TransitionAction = Literal["advanced", "completed", "failed", "noop"]


@frozen(kw_only=True)
class RunTransitionResult:
    action: TransitionAction
    next_group: int | None = None


@frozen(kw_only=True)
class RunCancelResult:
    cancelled: bool


@frozen(kw_only=True)
class RunRerunFromResult:
    deleted_stages: list[str]


JobOutcome = Literal["completed", "suspended", "failed", "skipped"]


@frozen(kw_only=True)
class JobExecuteResult:
    outcome: JobOutcome
    output: Json = None
    error: str | None = None
    next_poll_at: datetime | None = None
    queued_jobs: tuple[str, ...] = ()
    """Jobs this execution put in the queue (its run's next stages, a retry) that its
    transaction did not lease as well (``Kernel.execute_jobs`` leases a slot's next jobs
    in the same transaction): a host with free slots may look for them at once."""


@frozen(kw_only=True)
class StagePollSuspendedResult:
    checked: int
    resumed: int
    failed: int
    resumed_workflow_run_ids: list[str]


@frozen(kw_only=True)
class LeaseReapStaleResult:
    released: int


@frozen(kw_only=True)
class OutboxFlushResult:
    published: int
    failed: int = 0
    """Deliveries that failed in this flush (retried later, or dead-lettered)."""


@frozen(kw_only=True)
class PluginReplayDLQResult:
    replayed: int


@frozen(kw_only=True)
class LeaseReleaseResult:
    released: int
    """How many of the named jobs this worker held and gave back."""


@frozen(kw_only=True)
class JobLeaseResult:
    job: Job | None
    """The leased job, or ``None`` when nothing was leased."""
    reason: str | None = None
    """Why nothing was leased (the job is missing, another worker's, or not queued)."""


@frozen(kw_only=True)
class StageReportProgressResult:
    recorded: bool
    """Whether a ``stage:progress`` event was written: ``False`` when the attempt that
    reported is no longer the stage's running one (it finished, timed out or was
    cancelled or reaped)."""


@frozen(kw_only=True)
class RunSignalResult:
    delivered: bool
    """A stage waited for the signal: it completed with the payload."""
    buffered: bool
    """No stage waited yet: the signal is kept for the first one that will."""


@frozen(kw_only=True)
class ScheduleUpsertResult:
    created: bool
    """``False``: a schedule with this id existed and was replaced."""
    next_fire_at: datetime | None
    """``None`` for a paused schedule."""


@frozen(kw_only=True)
class ScheduleDeleteResult:
    deleted: bool
    """``False``: no schedule had this id."""


@frozen(kw_only=True)
class ScheduleTickResult:
    created: list[str]
    """The ids of the runs this tick created, oldest fire time first."""
    skipped: int
    """Fire times skipped because the schedule's previous run was still going."""
    problems: list[str] = field(factory=list)
    """One line per fire that created nothing because the workflow no longer takes
    the schedule's input or config (the schedule moves on past it), and per
    schedule whose time zone is gone (it stays due)."""


# -- commands ----------------------------------------------------------------


@frozen(kw_only=True)
class RunCreate(Command[RunCreateResult]):
    """Create a PENDING run of a registered workflow (SPEC §5.1)."""

    type: ClassVar[str] = "run.create"
    workflow_id: str = field(validator=_text)
    input: Json
    idempotency_key: str | None = field(default=None, validator=_optional_text)
    config: dict[str, dict[str, Json]] | None = None
    priority: int = field(default=5, validator=_at_least(0))
    metadata: dict[str, Json] | None = field(default=None, validator=_optional_mapping)
    budget: Decimal | None = field(default=None, validator=_optional_budget)
    """The most this run may spend on AI calls (price-table currency); ``None``:
    the workflow's default budget, if it has one."""
    version: str | None = field(default=None, validator=_optional_version)
    """The workflow version to run (SPEC §16); ``None``: the newest registered."""


@frozen(kw_only=True)
class RunClaimPending(Command[RunClaimPendingResult]):
    """Claim pending runs and enqueue their first group (SPEC §5.2)."""

    type: ClassVar[str] = "run.claimPending"
    worker_id: str = field(validator=_text)
    max_claims: int = field(default=10, validator=_at_least(1))


@frozen(kw_only=True)
class RunTransition(Command[RunTransitionResult]):
    """Advance, complete or fail a run whose current group is done (SPEC §5.3)."""

    type: ClassVar[str] = "run.transition"
    workflow_run_id: str = field(validator=_text)


@frozen(kw_only=True)
class RunCancel(Command[RunCancelResult]):
    """Cancel a live run; no further user code runs for it (SPEC §5.4)."""

    type: ClassVar[str] = "run.cancel"
    workflow_run_id: str = field(validator=_text)
    reason: str | None = None


@frozen(kw_only=True)
class RunRerunFrom(Command[RunRerunFromResult]):
    """Re-run a finished run from one stage's group onwards (SPEC §5.5)."""

    type: ClassVar[str] = "run.rerunFrom"
    workflow_run_id: str = field(validator=_text)
    from_stage_id: str = field(validator=_text)
    version: str | None = field(default=None, validator=_optional_version)
    """Move the run to this workflow version (SPEC §16); ``None``: keep its own."""


@frozen(kw_only=True)
class JobExecute(Command[JobExecuteResult]):
    """Execute one stage: start, run user code, finish (SPEC §5.6)."""

    type: ClassVar[str] = "job.execute"
    workflow_run_id: str = field(validator=_text)
    workflow_id: str = field(validator=_text)
    stage_id: str = field(validator=_text)
    config: dict[str, dict[str, Json]] = field(factory=dict, validator=_config_map)
    job_id: str | None = field(default=None, validator=_optional_text)
    idempotency_key: str | None = field(default=None, validator=_optional_text)


@frozen(kw_only=True)
class StagePollSuspended(Command[StagePollSuspendedResult]):
    """Check suspended stages whose poll time has come (SPEC §5.7)."""

    type: ClassVar[str] = "stage.pollSuspended"
    max_checks: int = field(default=50, validator=_at_least(1))


@frozen(kw_only=True)
class LeaseReapStale(Command[LeaseReapStaleResult]):
    """Re-queue jobs whose worker stopped renewing their lease (SPEC §5.8)."""

    type: ClassVar[str] = "lease.reapStale"
    stale_threshold_ms: int = field(validator=_at_least(0))
    max_reaps: int = field(default=20, validator=_at_least(1))
    max_jobs: int = field(default=100, validator=_at_least(1))
    """At most this many stale jobs per command; the next tick takes the rest."""


@frozen(kw_only=True)
class OutboxFlush(Command[OutboxFlushResult]):
    """Publish outbox events through the event sink (SPEC §5.9)."""

    type: ClassVar[str] = "outbox.flush"
    max_events: int = field(default=100, validator=_at_least(1))


@frozen(kw_only=True)
class PluginReplayDLQ(Command[PluginReplayDLQResult]):
    """Give dead-lettered events another chance (SPEC §5.10)."""

    type: ClassVar[str] = "plugin.replayDLQ"
    max_events: int = field(default=100, validator=_at_least(1))


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _job_ids(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{attribute.name}: expected a tuple of non-empty strings, got {value!r}")


@frozen(kw_only=True)
class LeaseRelease(Command[LeaseReleaseResult]):
    """Give back the named jobs a worker still holds (a host stopping on purpose).

    Like a reaped job, a released one is available at once and gets its
    attempt back, but it does not count as a reap.
    """

    type: ClassVar[str] = "lease.release"
    job_ids: tuple[str, ...] = field(converter=_as_tuple, validator=_job_ids)
    worker_id: str = field(validator=_text)


@frozen(kw_only=True)
class JobLease(Command[JobLeaseResult]):
    """Lease one named job of ``(workflow_run_id, stage_id)`` if it is queued
    (a serverless call handling a queue message)."""

    type: ClassVar[str] = "job.lease"
    job_id: str = field(validator=_text)
    worker_id: str = field(validator=_text)
    workflow_run_id: str = field(validator=_text)
    stage_id: str = field(validator=_text)


def _unit_number(_: object, attribute: Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name}: expected a number from 0 to 1, got {value!r}")


@frozen(kw_only=True)
class StageReportProgress(Command[StageReportProgressResult]):
    """Publish ``stage:progress`` for a running attempt (SPEC §19): what
    ``ctx.progress`` sends while the stage runs, in a small transaction of its own.

    Nothing else changes: the stage record keeps its version, so the attempt's
    finish is never refused because it reported progress.
    """

    type: ClassVar[str] = "stage.progress"
    workflow_run_id: str = field(validator=_text)
    stage_id: str = field(validator=_text)
    attempt: int = field(validator=_at_least(1))
    progress: float = field(validator=_unit_number)
    message: str
    details: dict[str, Json] | None = field(default=None, validator=_optional_mapping)
    reported_at: datetime | None = None
    """When ``ctx.progress`` was called (the event's time); ``None``: now."""


def _schedule(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, Schedule):
        raise ValueError(f"{attribute.name}: expected a kernel.Schedule, got {value!r}")


@frozen
class RunSignal(Command[RunSignalResult]):
    """Send the signal ``signal`` with ``payload`` to a run (SPEC §13): the signal
    stage waiting for it completes with the payload, or the signal is buffered
    until one waits."""

    type: ClassVar[str] = "run.signal"
    workflow_run_id: str = field(validator=_text)
    signal: str = field(validator=_text)
    payload: Json = None
    idempotency_key: str | None = field(default=None, validator=_optional_text, kw_only=True)


@frozen
class ScheduleUpsert(Command[ScheduleUpsertResult]):
    """Create or replace a schedule (SPEC §14)."""

    type: ClassVar[str] = "schedule.upsert"
    schedule: Schedule = field(validator=_schedule)


@frozen
class ScheduleDelete(Command[ScheduleDeleteResult]):
    """Remove a schedule; runs it created are left as they are."""

    type: ClassVar[str] = "schedule.delete"
    schedule_id: str = field(validator=_text)


@frozen
class ScheduleTick(Command[ScheduleTickResult]):
    """Create a run for every due fire time of every schedule (SPEC §14)."""

    type: ClassVar[str] = "schedule.tick"
    max_fires: int = field(default=100, validator=_at_least(1))


@frozen(kw_only=True)
class UsageRecordResult:
    recorded: bool
    """``False``: this ``call_id`` was recorded before; nothing changed."""
    run_total_cost: Decimal
    """The run's spend after this call."""
    budget_left: Decimal | None
    """The run's budget minus its spend (may be negative); ``None`` without a budget."""


@frozen(kw_only=True)
class UsageRecord(Command[UsageRecordResult]):
    """Write one completed provider call to the usage ledger (SPEC §11).

    ``call_id`` is made before the request is sent: recording it twice is a
    no-op. Accepted on a terminal run too (paid is paid).
    """

    type: ClassVar[str] = "usage.record"
    call_id: str = field(validator=_text)
    workflow_run_id: str = field(validator=_text)
    stage_id: str = field(validator=_text)
    attempt: int = field(validator=_at_least(0))
    model: str = field(validator=_text)
    kind: UsageKind = field(validator=_usage_kind)
    usage: Usage = field(validator=_usage)
    cost: Decimal = field(validator=_cost)
    priced: bool = field(validator=_flag)
    note: str | None = None
    """What was odd about the call's usage (say, the provider reported none)."""


@frozen(kw_only=True)
class BatchIntentResult:
    recorded: bool
    """``True``: the intent is on the stage (now, or from before) and the caller may
    submit under its tag, unless ``batch_id`` is set. ``False``: the stage moved on
    (another attempt, a cancel, a rerun): nothing may be submitted."""
    batch_id: str | None = None
    """The batch already recorded under this tag: adopt it, submit nothing."""
    reason: str | None = None
    """Why nothing was recorded."""
    earlier: bool = False
    """``True``: the intent was recorded before this command (by this attempt, or by a
    worker that held the same attempt before its lease was reaped), so a batch may
    have been submitted under the tag already: ask the provider (``find``) before
    submitting."""


@frozen(kw_only=True)
class BatchIntent(Command[BatchIntentResult]):
    """Record, in its own transaction, that an LLM batch stage is about to submit a
    batch under ``tag`` (SPEC §12): ``state`` becomes the stage's ``suspended_state``.

    The attempt (or the poll) that dispatches it submits only once this is
    committed, so any later attempt finds the tag and asks the provider for it.
    """

    type: ClassVar[str] = "batch.intent"
    workflow_run_id: str = field(validator=_text)
    stage_id: str = field(validator=_text)
    attempt: int = field(validator=_at_least(0))
    provider: str = field(validator=_text)
    tag: str = field(validator=_text)
    generation: int = field(validator=_at_least(1))
    state: dict[str, Json]
    """The stage's batch state with this intent in it (``batch_id`` still ``None``)."""


@frozen(kw_only=True)
class BatchCancelPendingResult:
    cancelled: int
    """Provider batches whose ``cancel`` call succeeded (their pending cancel is gone)."""
    failed: int
    """Cancel calls that failed: each stays pending for the next call."""


@frozen(kw_only=True)
class BatchCancelPending(Command[BatchCancelPendingResult]):
    """Call the provider's ``cancel`` for pending batch cancels (``run.cancel`` and
    ``BATCH_TIMEOUT`` record them), outside any transaction; forget the ones that
    succeeded, count a failure on the others (SPEC §12.1). Hosts dispatch it each tick."""

    type: ClassVar[str] = "batch.cancelPending"
    max_cancels: int = field(default=100, validator=_at_least(1))


# -- retention (SPEC §16, §16.1) ------------------------------------------------

PURGEABLE: tuple[Status, ...] = (Status.COMPLETED, Status.CANCELLED, Status.FAILED)
"""The statuses ``runs.purge`` deletes by default: every terminal one."""


def _older_than(_: object, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInputError([f"{attribute.name}: expected a timedelta > 0, got {value!r}"])


def _terminal_statuses(_: object, attribute: Attribute[Any], value: Any) -> None:
    names = ", ".join(PURGEABLE)
    if not isinstance(value, tuple) or not value:
        raise InvalidInputError(
            [f"{attribute.name}: expected one or more of {names}, got {value!r}"]
        )
    wrong = [status for status in value if status not in RUN_TERMINAL]
    if wrong:
        raise InvalidInputError(
            [
                f"{attribute.name}: only finished runs can be purged, expected some of "
                f"{names}, got {', '.join(str(status) for status in wrong)}"
            ]
        )


def _status_tuple(value: Any) -> Any:
    """A list or set of statuses as a tuple (anything else is left to the validator)."""
    return tuple(value) if isinstance(value, list | set | frozenset) else value


def _purge_limit(_: object, attribute: Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError([f"{attribute.name}: expected an int >= 1, got {value!r}"])


@frozen(kw_only=True)
class RunsPurgeResult:
    purged: int
    """Runs deleted with everything they owned (0 for a dry run)."""
    run_ids: tuple[str, ...]
    """The runs deleted (a dry run: the runs that would be), oldest finish first."""
    finished_before: datetime
    """The cutoff: runs that finished before it were candidates."""


@frozen(kw_only=True)
class RunsPurge(Command[RunsPurgeResult]):
    """Delete up to ``limit`` runs that finished before now - ``older_than`` with a status
    in ``statuses``, oldest first, with their stages, jobs, logs, outbox events,
    usage rows, signals and stored values (SPEC §16).

    A run whose outbox still holds an unpublished event (pending or dead-lettered)
    is kept until the event is published; a run that has not finished is never
    touched. ``dry_run=True`` deletes nothing and lists the runs that would go.
    Call it again until ``purged < limit`` to purge everything due.
    """

    type: ClassVar[str] = "runs.purge"
    older_than: timedelta = field(validator=_older_than)
    statuses: tuple[Status, ...] = field(
        default=PURGEABLE,
        converter=_status_tuple,
        validator=_terminal_statuses,
    )
    limit: int = field(default=1000, validator=_purge_limit)
    dry_run: bool = field(default=False, validator=_flag)
