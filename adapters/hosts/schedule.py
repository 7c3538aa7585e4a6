"""A worker's scheduling rules as a pure step function (SPEC §8).

``step(state, now, happened)`` takes what a worker knew, the time, and what
just happened, and returns the worker's new state and what to do next: run
an orchestration tick, ask the queue for a job, renew or release a lease,
flush the outbox, stop. It does no I/O, reads no clock and starts no thread,
like the kernel's decisions; :class:`~adapters.hosts.worker.WorkerHost`, the
serverless calls and a seeded simulator are thin drivers around it.

Everything a worker remembers is one :class:`WorkerState` value. The store
holds everything that matters, so a crash is simply dropping the state: the
dead worker's leases stop being renewed and another worker's tick reaps them.

Rules, in one place:

* **Never prefetch.** A job is asked for only by a free slot; a slot is
  free, asking (:class:`Dequeuing`) or running one job.
* **Chains.** A dequeue may run up to ``max_chain`` jobs back to back: each
  job's finish transaction also leases the slot's next job, at the moment the
  slot becomes free (:class:`JobChained`). A chain ends when the queue is
  empty, at its limit, or at a stop: a job leased by the finish after a stop
  was requested is handed back before its user code runs.
* **Idle slots probe, then fan out.** After an empty dequeue, free slots
  wait ``job_poll_interval``; then one slot probes. A job found (or a job
  finished, a tick that enqueued work, a notification from the store) makes
  every free slot ask at once. A notification while a slot is idle also
  brings the next tick forward (a new run has no jobs until a tick claims it).
* **Leases are renewed** every ``lease_renew_interval`` while a job runs, so
  a long stage on a live worker is never reaped.
* **Stopping** (a signal or ``stop()``) stops ticks and dequeues at once; a
  job leased after that (by a dequeue or a chain) is released before its user
  code starts; running jobs may finish until ``drain_timeout``, after which
  their leases are released. A slot whose chain was cut short stays busy
  (:class:`Releasing`) until it has reported the chain. Then the outbox is
  flushed and the driver stops.
* **Bounded runs** (the serverless calls) stop by themselves once their job
  or tick budget is spent, or when the queue is empty (``stop_when_idle``).
"""

from __future__ import annotations

from datetime import datetime

from attrs import evolve, frozen

from adapters.hosts.state import (
    Counters,
    Dequeuing,
    Free,
    JobEnd,
    Phase,
    Releasing,
    Running,
    Settings,
    Slot,
    WorkerState,
    initial_state,
)

__all__ = [
    "Action",
    "Counters",
    "DequeueJob",
    "Dequeuing",
    "FlushOutbox",
    "Free",
    "Happened",
    "JobEnd",
    "JobChained",
    "JobFinished",
    "JobLeased",
    "JobsAvailable",
    "NoJobFound",
    "Phase",
    "ReleaseLease",
    "Releasing",
    "RenewLease",
    "RunTick",
    "Running",
    "Settings",
    "Slot",
    "Started",
    "Stop",
    "StopRequested",
    "TickDone",
    "Wakeup",
    "WorkerState",
    "initial_state",
    "next_wakeup",
    "step",
]


# -- what happened ---------------------------------------------------------------


@frozen
class Started:
    """The driver started."""


@frozen
class Wakeup:
    """Time passed (the driver woke up at or after :func:`next_wakeup`)."""


@frozen(kw_only=True)
class TickDone:
    """The orchestration tick ended; ``found_work``: it claimed, resumed, moved or reaped."""

    ok: bool = True
    found_work: bool = False


@frozen
class JobLeased:
    """The job a slot asked for was leased and started; its user code is about to run."""

    slot: int
    job_id: str


@frozen
class JobChained:
    """A slot's job ``finished_job_id`` ended, and its finish transaction leased and started
    ``next_job_id`` for the same slot; its user code is about to run.

    The finished job's outcome is reported with the chain's end (:class:`JobFinished`).
    """

    slot: int
    finished_job_id: str
    next_job_id: str


@frozen
class JobFinished:
    """A slot's dequeue is over: ``job_id``, the job it ran last, ended with ``outcome``.

    ``job_id`` is the slot's current job (:class:`JobLeased` or :class:`JobChained`
    named it), or any job when the slot is :class:`Dequeuing` (settled without user
    code straight from the dequeue), or the job a :class:`Releasing` slot handed back
    (``outcome="released"``). ``earlier``: the outcomes of the other jobs the chain
    settled before it; the chain's jobs are counted here, when their outcomes are known.
    """

    slot: int
    job_id: str
    outcome: JobEnd
    earlier: tuple[JobEnd, ...] = ()


@frozen
class NoJobFound:
    """A slot's dequeue found no job; ``failed``: the dequeue raised."""

    slot: int
    failed: bool = False


@frozen
class JobsAvailable:
    """The store says jobs were queued or a run was created (PostgreSQL ``NOTIFY``)."""


@frozen
class StopRequested:
    """A signal or ``stop()``; ``force`` (a second signal) skips the rest of the drain."""

    force: bool = False


Happened = (
    Started
    | Wakeup
    | TickDone
    | JobLeased
    | JobChained
    | JobFinished
    | NoJobFound
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
    each leased by the previous one's finish transaction (``Kernel.execute_jobs``)."""

    slot: int
    max_jobs: int = 1


@frozen
class RenewLease:
    job_id: str


@frozen
class ReleaseLease:
    """Give a job back to the queue (its stage back to PENDING) without running it further.

    ``running``: its user code is running, and the drain deadline gives up on it;
    ``False``: the job was leased after a stop, and goes back before its code runs.
    """

    job_id: str
    running: bool = True


@frozen
class FlushOutbox:
    """Publish what is left in the outbox before stopping."""


@frozen
class Stop:
    """The worker is done; the driver returns."""


Action = RunTick | DequeueJob | RenewLease | ReleaseLease | FlushOutbox | Stop


# -- the step function -------------------------------------------------------------


def step(
    state: WorkerState, now: datetime, happened: Happened
) -> tuple[WorkerState, tuple[Action, ...]]:
    """The worker's new state and next actions, given ``happened`` at ``now``.

    Pure: the same arguments always give the same answer.

    >>> from datetime import UTC, timedelta
    >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
    >>> state, actions = step(initial_state(Settings(concurrency=2, max_chain=50)), t0, Started())
    >>> actions
    (RunTick(sweep=True), DequeueJob(slot=0, max_jobs=50), DequeueJob(slot=1, max_jobs=50))
    >>> state, actions = step(state, t0, NoJobFound(0))
    >>> actions, state.idle_until == t0 + timedelta(milliseconds=200)
    ((), True)
    """
    state, actions = _absorb(state, now, happened)
    if state.phase == "stopped":
        return state, actions
    planned: list[Action] = list(actions)
    state = _maybe_finish(state)
    if state.phase == "draining":
        state = _maybe_stop(state, now, planned)
        if state.phase == "stopped":
            return state, tuple(planned)
    if state.phase == "running":
        state = _plan_tick(state, now, planned)
        state = _plan_dequeues(state, now, planned)
    state = _plan_renewals(state, now, planned)
    return state, tuple(planned)


def next_wakeup(state: WorkerState) -> datetime | None:
    """When the driver must call :func:`step` with :class:`Wakeup` if nothing happens first.

    ``None``: only an event can give the worker something to do. Right after
    a ``step`` at ``now``, the answer is ``None`` or later than ``now``.
    """
    times: list[datetime] = []
    settings = state.settings
    if state.phase == "stopped" or state.phase == "new":
        return None
    if state.phase == "running":
        if _may_tick(state) and state.last_tick_at is not None:
            assert settings.orchestration_interval is not None
            times.append(state.last_tick_at + settings.orchestration_interval)
            if state.tick_requested:
                times.append(state.last_tick_at + settings.notified_tick_gap)
        if state.idle_until is not None and _dequeue_allowance(state) > 0:
            times.append(state.idle_until)
    if state.phase == "draining" and state.drain_deadline is not None:
        times.append(state.drain_deadline)
    times += [
        slot.renewed_at + settings.lease_renew_interval
        for slot in state.slots
        if isinstance(slot, Running)
    ]
    return min(times) if times else None


# -- step, piece by piece ------------------------------------------------------------


def _count(state: WorkerState, **increments: int) -> WorkerState:
    counters = state.counters
    changes = {name: getattr(counters, name) + by for name, by in increments.items()}
    return evolve(state, counters=evolve(counters, **changes))


def _with_slot(state: WorkerState, index: int, slot: Slot) -> WorkerState:
    slots = list(state.slots)
    slots[index] = slot
    return evolve(state, slots=tuple(slots))


def _slot(state: WorkerState, index: int) -> Slot | None:
    return state.slots[index] if 0 <= index < len(state.slots) else None


def _absorb(
    state: WorkerState, now: datetime, happened: Happened
) -> tuple[WorkerState, tuple[Action, ...]]:
    """Record what happened; the only actions it gives are leases to hand straight back."""
    match happened:
        case Started():
            if state.phase == "new":
                state = evolve(state, phase="running", started_at=now)
        case Wakeup():
            pass
        case TickDone(ok=ok, found_work=found_work):
            state = evolve(state, tick_running=False)
            state = _count(state, ticks=1, tick_errors=0 if ok else 1)
            if found_work:
                state = evolve(state, idle_until=None)
        case JobLeased(slot=index, job_id=job_id):
            slot = _slot(state, index)
            # After a stop request no new user code starts: the job goes back
            # before it runs. A slot that was not asking cannot have leased it.
            if state.stop_requested or state.phase == "stopped" or not isinstance(slot, Dequeuing):
                if isinstance(slot, Dequeuing):
                    state = _with_slot(state, index, Free())
                return _count(state, leases_released=1), (ReleaseLease(job_id, running=False),)
            state = _with_slot(state, index, Running(job_id, now))
            state = evolve(state, jobs_taken=state.jobs_taken + 1, idle_until=None)
        case JobChained(slot=index, finished_job_id=finished, next_job_id=next_job_id):
            slot = _slot(state, index)
            unrun = ReleaseLease(next_job_id, running=False)
            if not isinstance(slot, Running) or slot.job_id != finished:
                # The slot was freed at the drain deadline: the late finish of its
                # abandoned job leased a job this worker no longer runs.
                return _count(state, leases_released=1), (unrun,)
            if not _may_chain(state, slot):
                # The chain ends after the job that just finished: the next job goes
                # back before its code runs; the slot stays busy until it is reported.
                state = _with_slot(state, index, Releasing(next_job_id, slot.chain_index + 1))
                return _count(state, leases_released=1), (unrun,)
            state = _with_slot(state, index, Running(next_job_id, now, slot.chain_index + 1))
            state = evolve(state, jobs_taken=state.jobs_taken + 1, idle_until=None)
        case JobFinished(slot=index, job_id=job_id, outcome=outcome, earlier=earlier):
            slot = _slot(state, index)
            announced = _announced(slot, job_id)
            # A job whose lease was released at the drain deadline is no longer
            # this worker's: its late finish was discarded by the kernel.
            if announced is not None and state.phase != "stopped":
                ended = (*earlier, outcome)
                settled = [end for end in ended if end != "released"]
                # Jobs settled without user code were never announced: count them now.
                taken = max(len(settled) - announced, 0)
                state = _with_slot(state, index, Free())
                # A finished stage may have enqueued the next group: look at once.
                state = evolve(state, jobs_taken=state.jobs_taken + taken, idle_until=None)
                state = _count(
                    state,
                    jobs_processed=len(settled),
                    jobs_failed=sum(1 for end in settled if end in ("failed", "error")),
                )
        case NoJobFound(slot=index):
            if isinstance(_slot(state, index), Dequeuing) and state.phase != "stopped":
                state = _with_slot(state, index, Free())
                state = evolve(
                    state,
                    idle_until=now + state.settings.job_poll_interval,
                    queue_exhausted=state.queue_exhausted or state.settings.stop_when_idle,
                )
        case JobsAvailable():
            # Idle slots look at once; a new run needs a tick to claim it first.
            idle = state.phase == "running" and any(isinstance(s, Free) for s in state.slots)
            state = evolve(state, idle_until=None, tick_requested=state.tick_requested or idle)
        case StopRequested(force=force):
            if state.phase == "new":
                return evolve(state, phase="stopped", stop_requested=True), (Stop(),)
            if state.phase in ("running", "draining"):
                deadline = now if force else now + state.settings.drain_timeout
                if state.drain_deadline is not None:
                    deadline = min(deadline, state.drain_deadline)
                state = evolve(
                    state, phase="draining", stop_requested=True, drain_deadline=deadline
                )
    return state, ()


def _announced(slot: Slot | None, job_id: str) -> int | None:
    """How many of a slot's jobs were counted as taken when they started, if a
    :class:`JobFinished` about ``job_id`` is the slot's to report; else ``None``."""
    match slot:
        case Dequeuing():
            return 0
        case Running(job_id=running, chain_index=index) if running == job_id:
            return index + 1
        case Releasing(job_id=releasing, ran=ran) if releasing == job_id:
            return ran
    return None


def _may_chain(state: WorkerState, slot: Running) -> bool:
    """Whether a running slot may go on with the job its finish leased."""
    settings = state.settings
    if state.stop_requested or state.phase not in ("running", "draining"):
        return False
    if slot.chain_index + 1 >= settings.max_chain:
        return False
    return settings.max_jobs is None or state.jobs_taken < settings.max_jobs


def _may_tick(state: WorkerState) -> bool:
    settings = state.settings
    if settings.orchestration_interval is None or state.tick_running:
        return False
    return settings.max_ticks is None or state.ticks_started < settings.max_ticks


def _done_ticking(state: WorkerState) -> bool:
    settings = state.settings
    if settings.orchestration_interval is None:
        return True
    return settings.max_ticks is not None and state.ticks_started >= settings.max_ticks


def _done_dequeuing(state: WorkerState) -> bool:
    settings = state.settings
    if settings.concurrency == 0 or state.queue_exhausted:
        return True
    return settings.max_jobs is not None and state.jobs_taken >= settings.max_jobs


def _maybe_finish(state: WorkerState) -> WorkerState:
    """A bounded run with nothing more allowed starts draining (no deadline: it is not a stop)."""
    if state.phase == "running" and _done_ticking(state) and _done_dequeuing(state):
        return evolve(state, phase="draining")
    return state


def _maybe_stop(state: WorkerState, now: datetime, planned: list[Action]) -> WorkerState:
    """Stop once drained, or release what still runs when the drain deadline has passed."""
    if state.drain_deadline is not None and now >= state.drain_deadline:
        running = state.running_jobs
        planned += [ReleaseLease(job_id) for job_id in running]
        state = _count(state, leases_released=len(running))
        state = evolve(state, slots=(Free(),) * len(state.slots))
    elif state.busy_slots or state.tick_running:
        return state
    planned += [FlushOutbox(), Stop()]
    return evolve(state, phase="stopped")


def _plan_tick(state: WorkerState, now: datetime, planned: list[Action]) -> WorkerState:
    interval = state.settings.orchestration_interval
    if not _may_tick(state) or interval is None:
        return state
    last = state.last_tick_at
    early = state.tick_requested and (
        last is None or now >= last + state.settings.notified_tick_gap
    )
    if last is not None and now < last + interval and not early:
        return state
    sweep = (
        state.last_sweep_at is None or now >= state.last_sweep_at + state.settings.sweep_interval
    )
    planned.append(RunTick(sweep=sweep))
    return evolve(
        state,
        tick_running=True,
        tick_requested=False,
        last_tick_at=now,
        last_sweep_at=now if sweep else state.last_sweep_at,
        ticks_started=state.ticks_started + 1,
    )


def _dequeue_allowance(state: WorkerState) -> int:
    """How many free slots may ask for a job now (ignoring the idle wait's end time)."""
    if state.phase != "running" or _done_dequeuing(state):
        return 0
    free = sum(1 for slot in state.slots if isinstance(slot, Free))
    asking = sum(1 for slot in state.slots if isinstance(slot, Dequeuing))
    allowed = free
    if state.idle_until is not None:
        allowed = 0 if asking else min(free, 1)  # one probe at a time while idle
    if state.settings.max_jobs is not None:
        allowed = min(allowed, state.settings.max_jobs - state.jobs_taken - asking)
    return max(allowed, 0)


def _plan_dequeues(state: WorkerState, now: datetime, planned: list[Action]) -> WorkerState:
    if state.idle_until is not None and now < state.idle_until:
        return state
    allowed = _dequeue_allowance(state)
    slots = list(state.slots)
    chosen: list[int] = []
    for index, slot in enumerate(slots):
        if len(chosen) == allowed:
            break
        if isinstance(slot, Free):
            slots[index] = Dequeuing()
            chosen.append(index)
    if not chosen:
        return state
    state = evolve(state, slots=tuple(slots))
    budget = _chain_budget(state)
    planned += [DequeueJob(index, budget) for index in chosen]
    return state


def _chain_budget(state: WorkerState) -> int:
    """How many jobs one dequeue may run: ``max_chain``, within what is left of ``max_jobs``
    once every asking slot has one."""
    settings = state.settings
    if settings.max_jobs is None:
        return settings.max_chain
    asking = sum(1 for slot in state.slots if isinstance(slot, Dequeuing))
    left = settings.max_jobs - state.jobs_taken - asking + 1
    return max(min(settings.max_chain, left), 1)


def _plan_renewals(state: WorkerState, now: datetime, planned: list[Action]) -> WorkerState:
    interval = state.settings.lease_renew_interval
    slots = list(state.slots)
    renewed = 0
    for index, slot in enumerate(slots):
        if isinstance(slot, Running) and now >= slot.renewed_at + interval:
            slots[index] = evolve(slot, renewed_at=now)
            planned.append(RenewLease(slot.job_id))
            renewed += 1
    if not renewed:
        return state
    return _count(evolve(state, slots=tuple(slots)), leases_renewed=renewed)
