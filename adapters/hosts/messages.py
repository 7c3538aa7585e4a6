"""What a worker's step function hears (what happened) and answers (what to do).

Plain frozen values: drivers build the first kind from threads, timers and
kernel callbacks, and carry out the second (see :mod:`adapters.hosts.schedule`).
"""

from __future__ import annotations

from attrs import frozen

from adapters.hosts.state import JobEnd

# -- what happened ---------------------------------------------------------------


@frozen
class Started:
    """The driver started."""


@frozen
class Wakeup:
    """Time passed (the driver woke up at or after :func:`~adapters.hosts.schedule.next_wakeup`)."""


@frozen(kw_only=True)
class TickDone:
    """The orchestration tick ended; ``found_work``: it claimed, resumed, moved or reaped.
    ``backlog``: its claim or its outbox flush was full, so more PENDING runs or more
    events may be waiting."""

    ok: bool = True
    found_work: bool = False
    backlog: bool = False


@frozen
class JobLeased:
    """A job of the slot's dequeue was leased and started; its user code is about to run.

    The dequeue's first job, or one its last job's finish transaction leased, or
    (``after``: the job whose code ran just before, in the same group) the next
    job of a group whose finishes commit together.
    """

    slot: int
    job_id: str
    after: str | None = None


@frozen
class NextJobWanted:
    """The kernel asks whether the slot's dequeue may lease one more job (``keep_going``):
    from inside the finish transaction of the slot's running job, or after a job it
    settled without running. The answer is :class:`LeaseNext`, or no such action."""

    slot: int


@frozen
class JobFinished:
    """A job of the slot's dequeue ended with ``outcome``, and that result committed.

    ``job_id`` is the job the slot runs (:class:`JobLeased` named it), an earlier
    job of the slot's group (several jobs whose finishes commit together), or one
    the kernel settled without running it (its run had ended, for example).
    """

    slot: int
    job_id: str
    outcome: JobEnd
    ran: bool = True
    """Whether the job's code ran (``False``: the kernel settled it straight from its
    lease, as when its run had ended)."""
    queued: bool = True
    """Whether the result's transaction left jobs in the queue that it did not lease
    itself (``JobExecuteResult.queued_jobs``): a free slot looks for them at once.
    ``True`` where it is not known."""


@frozen
class DequeueEnded:
    """The slot's dequeue is over (``Kernel.execute_jobs`` returned); ``failed``: it raised.

    A slot still waiting for a job found the queue empty. A slot still running a
    job lost it to the failure: the job counts as ended in ``error``.
    """

    slot: int
    failed: bool = False


@frozen
class JobsAvailable:
    """The store says jobs were queued or a run was created.

    ``local``: announced in this process, by a transaction of the store object
    the worker uses, that none of the worker's own threads committed
    (``WorkAnnouncer``): a run created by the application beside its worker.
    Otherwise a notification from another process (PostgreSQL ``NOTIFY``).
    """

    local: bool = False


@frozen
class StopRequested:
    """A signal or ``stop()``; ``force`` (a second signal) skips the rest of the drain."""

    force: bool = False


Happened = (
    Started
    | Wakeup
    | TickDone
    | JobLeased
    | NextJobWanted
    | JobFinished
    | DequeueEnded
    | JobsAvailable
    | StopRequested
)


# -- what to do ------------------------------------------------------------------


@frozen
class RunTick:
    """Run one orchestration tick; ``sweep``: include the safety net over RUNNING runs."""

    sweep: bool


@frozen
class DequeueJob:
    """Lease the next job for ``slot`` and execute it, and up to ``max_jobs - 1`` more,
    each leased by the previous one's finish transaction (``Kernel.execute_jobs``).

    ``claim``: claim pending runs first (``run.claimPending``, as a tick does), so
    that a run created in this process starts at once instead of at the next tick.
    """

    slot: int
    max_jobs: int = 1
    claim: bool = False


@frozen
class LeaseNext:
    """The answer to :class:`NextJobWanted`: the slot's dequeue may lease one more job."""

    slot: int


@frozen
class RenewLease:
    job_id: str


@frozen
class ReleaseLease:
    """Give a job back to the queue (its stage back to PENDING): the drain deadline passed.

    Its user code may still be running (its result will be discarded), or be
    about to start (the driver does not start it then).
    """

    job_id: str


@frozen
class FlushOutbox:
    """Publish what is left in the outbox before stopping."""


@frozen
class Stop:
    """The worker is done; the driver returns."""


Action = RunTick | DequeueJob | LeaseNext | RenewLease | ReleaseLease | FlushOutbox | Stop
