"""What a worker remembers, and how it is configured: plain, immutable values.

:mod:`adapters.hosts.schedule` steps a :class:`WorkerState` from one value to
the next; nothing else changes it. Dropping the value is a crash.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from attrs import Attribute, field, frozen

Phase = Literal["new", "running", "draining", "stopped"]
"""``new`` → ``running`` → ``draining`` (no new work; finish or release) → ``stopped``."""

JobEnd = Literal["completed", "suspended", "failed", "skipped", "error"]
"""How a job ended: the ``job.execute`` outcome, or ``error`` if the host's call raised."""


def _non_negative(_: object, attribute: Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name}: expected an int >= 0, got {value!r}")


def _positive_int(_: object, attribute: Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name}: expected an int >= 1, got {value!r}")


def _optional_positive_int(_: object, attribute: Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name}: expected an int >= 1 or None, got {value!r}")


def _positive_duration(_: object, attribute: Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(f"{attribute.name}: expected a positive timedelta, got {value!r}")


def _optional_positive_duration(_: object, attribute: Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise ValueError(f"{attribute.name}: expected a positive timedelta or None, got {value!r}")


def _non_negative_duration(_: object, attribute: Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValueError(f"{attribute.name}: expected a timedelta >= 0, got {value!r}")


@frozen(kw_only=True)
class Settings:
    """How a worker schedules its work; every interval is a ``timedelta``.

    ``orchestration_interval=None`` turns ticks off and ``concurrency=0``
    turns job slots off. ``max_jobs``, ``max_ticks`` and ``stop_when_idle``
    bound a run: it stops once nothing more is allowed (all three unset: it
    runs until asked to stop).

    ``max_chain`` lets a slot run jobs back to back: each job's finish
    transaction also leases the slot's next job (``Kernel.execute_jobs``), so
    a busy slot commits one write transaction per job. The slot is free at
    that moment, so this is not prefetching; and the step function is asked
    first (:class:`~adapters.hosts.schedule.NextJobWanted`), so a stopping
    worker leases nothing more. 1 turns chaining off.
    """

    concurrency: int = field(default=4, validator=_non_negative)
    orchestration_interval: timedelta | None = field(
        default=timedelta(seconds=1), validator=_optional_positive_duration
    )
    job_poll_interval: timedelta = field(
        default=timedelta(milliseconds=200), validator=_positive_duration
    )
    lease_renew_interval: timedelta = field(
        default=timedelta(seconds=15), validator=_positive_duration
    )
    drain_timeout: timedelta = field(
        default=timedelta(seconds=30), validator=_non_negative_duration
    )
    sweep_interval: timedelta = field(default=timedelta(seconds=30), validator=_positive_duration)
    """How often a tick also runs the safety net over RUNNING runs (the first tick always does)."""
    notified_tick_gap: timedelta = field(
        default=timedelta(milliseconds=50), validator=_positive_duration
    )
    """A tick whose claim or outbox flush was full, or a notification from another process
    while a slot is idle, brings the next tick forward (a new run must be claimed before
    its jobs exist), but never closer than this to the last tick."""
    max_chain: int = field(default=1, validator=_positive_int)
    """How many jobs a slot may run one after another from one dequeue."""
    max_jobs: int | None = field(default=None, validator=_optional_positive_int)
    max_ticks: int | None = field(default=None, validator=_optional_positive_int)
    stop_when_idle: bool = False


# -- slots ---------------------------------------------------------------------
#
# One dequeue (``DequeueJob``) is one ``Kernel.execute_jobs`` call: the slot is
# busy from the dequeue until the driver reports its end (``DequeueEnded``),
# and runs one job at a time in between.


@frozen
class Free:
    """A slot with nothing to do."""


@frozen
class Dequeuing:
    """A slot waiting for a job: the first of its dequeue, or the next one, which the
    finish transaction of its last job leases (the step function allowed it).

    ``taken``: the jobs this dequeue leased before.
    """

    taken: int = 0


@frozen
class Running:
    """A slot running ``job_id``, whose lease was last taken or renewed at ``renewed_at``.

    ``taken``: the jobs this dequeue leased, this one included. ``chains``: the
    job's finish transaction may lease the slot's next job (the step function
    said so when the kernel asked).
    """

    job_id: str
    renewed_at: datetime
    taken: int = 1
    chains: bool = False
    earlier: tuple[str, ...] = ()
    """Jobs of the slot's group whose code ran before this one's; their results commit
    with the group's (their leases need no renewal: their code is done)."""


@frozen
class Ending:
    """A slot whose dequeue has no job running and leases no more: it is busy until the
    driver reports the end (unless the kernel asks for one more job first, after a job
    it settled without running).

    ``taken``: the jobs this dequeue leased.
    """

    taken: int


Slot = Free | Dequeuing | Running | Ending


@frozen(kw_only=True)
class Counters:
    """What a worker has done so far (its stats, without uptime)."""

    jobs_processed: int = 0
    jobs_failed: int = 0
    ticks: int = 0
    tick_errors: int = 0
    leases_renewed: int = 0
    leases_released: int = 0


@frozen(kw_only=True)
class WorkerState:
    """Everything one worker remembers; dropping it is a crash (the store keeps the rest)."""

    settings: Settings
    slots: tuple[Slot, ...]
    phase: Phase = "new"
    started_at: datetime | None = None
    idle_until: datetime | None = None
    """Free slots wait until then after an empty dequeue; ``None``: ask at once."""
    tick_running: bool = False
    tick_requested: bool = False
    """A full claim or flush, or a notification from another process while a slot was
    idle: tick as soon as ``notified_tick_gap`` allows."""
    claim_wanted: bool = False
    """A run may have been created in this process since the last claim a slot made: the
    next dequeue claims pending runs first, and a slot that finds the queue empty asks
    again at once to do so."""
    last_tick_at: datetime | None = None
    last_sweep_at: datetime | None = None
    ticks_started: int = 0
    jobs_taken: int = 0
    """Jobs leased (run, or settled without running): what ``max_jobs`` counts."""
    queue_exhausted: bool = False
    """``stop_when_idle`` runs: a dequeue found nothing, so no slot asks again."""
    stop_requested: bool = False
    drain_deadline: datetime | None = None
    counters: Counters = Counters()

    @property
    def busy_slots(self) -> int:
        """Slots whose dequeue has not ended (waiting for a job, running one, or ending)."""
        return sum(1 for slot in self.slots if not isinstance(slot, Free))

    @property
    def can_take_work(self) -> bool:
        """Whether the worker runs and has a free slot: news of work sets one looking."""
        return self.phase == "running" and any(isinstance(slot, Free) for slot in self.slots)

    @property
    def looking(self) -> bool:
        """Whether a slot waits for the first job of its dequeue (a look under way)."""
        return any(isinstance(slot, Dequeuing) and slot.taken == 0 for slot in self.slots)

    @property
    def running_jobs(self) -> tuple[str, ...]:
        """The ids of the jobs this worker is running."""
        return tuple(slot.job_id for slot in self.slots if isinstance(slot, Running))


def initial_state(settings: Settings) -> WorkerState:
    """A worker that has not started: every slot free."""
    return WorkerState(settings=settings, slots=(Free(),) * settings.concurrency)
