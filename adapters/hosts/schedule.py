"""A worker's scheduling rules as a pure step function (SPEC §8).

``step(state, now, happened)`` takes what a worker knew, the time, and what
just happened, and returns the worker's new state and what to do next: run
an orchestration tick, ask the queue for a job, let a finishing job lease the
slot's next one, renew or release a lease, flush the outbox, stop. It does no
I/O, reads no clock and starts no thread, like the kernel's decisions;
:class:`~adapters.hosts.worker.WorkerHost`, the serverless calls and a seeded
simulator are thin drivers around it.

Everything a worker remembers is one :class:`WorkerState` value. The store
holds everything that matters, so a crash is simply dropping the state: the
dead worker's leases stop being renewed and another worker's tick reaps them.

Rules, in one place:

* **Never prefetch.** A job is asked for only by a free slot; a slot is
  free, or busy with one dequeue (one ``Kernel.execute_jobs`` call), which
  runs one job at a time.
* **Chains.** A dequeue may run up to ``max_chain`` jobs back to back: each
  job's finish transaction also leases the slot's next job, at the moment the
  slot becomes free, if the step function allows it when asked
  (:class:`NextJobWanted`, answered with :class:`LeaseNext`). It does not
  once a stop was requested, nor past ``max_chain`` or ``max_jobs``: a chain
  ends then, or when the queue is empty. Each job is reported when its result
  commits (:class:`JobFinished`), the next one when it starts (:class:`JobLeased`).
* **Idle slots probe, then fan out one at a time.** After an empty dequeue,
  free slots wait ``job_poll_interval``; then one slot probes. A sign of
  work (a job finished that left jobs in the queue, a tick that enqueued
  work, a notification from the store) makes one free slot ask at once
  instead; each job that a dequeue finds first (not a chain's next job, which
  its finish queued) lets one more free slot ask. Every free slot asking at
  once would mostly find nothing: a new run queues one job at a time. A
  notification from another process while a slot is idle also makes the
  next dequeue claim pending runs first (a new run has no jobs until it is
  claimed). Until its first empty dequeue, a worker asks with every free slot.
* **Runs created in this process start at once.** A run created through
  the worker's own store object, by a thread not of the worker's
  (``JobsAvailable(local=True)``), makes the next dequeue claim pending runs
  first (``DequeueJob(claim=True)``), at once if a slot is free, else when a
  slot finds the queue empty.
* **Leases are renewed** every ``lease_renew_interval`` while a job runs, so
  a long stage on a live worker is never reaped.
* **Stopping** (a signal or ``stop()``) stops ticks, dequeues and chains at
  once; running jobs may finish until ``drain_timeout`` (a dequeue already
  asking may still get a job, which runs too), after which their leases are
  released (and a job leased after that goes back before its code runs).
  Once every slot's dequeue has ended, the outbox is flushed and the driver
  stops.
* **Bounded runs** (the serverless calls) stop by themselves once their job
  or tick budget is spent, or when the queue is empty (``stop_when_idle``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.hosts.messages import (
    Action,
    DequeueEnded,
    DequeueJob,
    FlushOutbox,
    Happened,
    JobFinished,
    JobLeased,
    JobsAvailable,
    LeaseNext,
    NextJobWanted,
    ReleaseLease,
    RenewLease,
    RunTick,
    Started,
    Stop,
    StopRequested,
    TickDone,
    Wakeup,
)
from adapters.hosts.state import (
    Counters,
    Dequeuing,
    Ending,
    Free,
    JobEnd,
    Phase,
    Running,
    Settings,
    Slot,
    WorkerState,
    initial_state,
)
from kernel.copying import evolve

__all__ = [
    "Action",
    "Counters",
    "DequeueEnded",
    "DequeueJob",
    "Dequeuing",
    "Ending",
    "FlushOutbox",
    "Free",
    "Happened",
    "JobEnd",
    "JobFinished",
    "JobLeased",
    "JobsAvailable",
    "LeaseNext",
    "NextJobWanted",
    "Phase",
    "ReleaseLease",
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


# -- the step function -------------------------------------------------------------


def step(
    state: WorkerState, now: datetime, happened: Happened
) -> tuple[WorkerState, tuple[Action, ...]]:
    """The worker's new state and next actions, given ``happened`` at ``now``.

    Pure: the same arguments always give the same answer.

    >>> from datetime import UTC, timedelta
    >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
    >>> state, actions = step(initial_state(Settings(concurrency=2, max_chain=50)), t0, Started())
    >>> actions[0], len(actions)
    (RunTick(sweep=True), 3)
    >>> actions[1:] == (DequeueJob(slot=0, max_jobs=50), DequeueJob(slot=1, max_jobs=50))
    True
    >>> state, actions = step(state, t0, DequeueEnded(0))
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


def _counted(counters: Counters, **increments: int) -> Counters:
    changes = {name: getattr(counters, name) + by for name, by in increments.items()}
    return evolve(counters, **changes)


def _count(state: WorkerState, **increments: int) -> WorkerState:
    return evolve(state, counters=_counted(state.counters, **increments))


def _slots_with(state: WorkerState, index: int, slot: Slot) -> tuple[Slot, ...]:
    slots = list(state.slots)
    slots[index] = slot
    return tuple(slots)


def _with_slot(state: WorkerState, index: int, slot: Slot) -> WorkerState:
    return evolve(state, slots=_slots_with(state, index, slot))


def _slot(state: WorkerState, index: int) -> Slot | None:
    return state.slots[index] if 0 <= index < len(state.slots) else None


def _ended(
    state: WorkerState, now: datetime, outcome: JobEnd, *, look: bool = True, **changes: Any
) -> WorkerState:
    """Count one job that ended, with ``changes``; if it queued jobs (the next group of
    its run, a retry) that its transaction did not lease itself (``look``), look at once."""
    failed = 1 if outcome in ("failed", "error") else 0
    counters = _counted(state.counters, jobs_processed=1, jobs_failed=failed)
    state = evolve(state, counters=counters, **changes)
    return _look(state, now) if look else state


def _look(state: WorkerState, now: datetime) -> WorkerState:
    """There may be work: an idle worker stops waiting for the poll, and one free slot
    asks at once (a probe; each job a probe finds lets one more ask). A worker that has
    not run dry since it started (``idle_until`` unset) asks with every free slot."""
    if state.idle_until is None or state.idle_until <= now:
        return state
    return evolve(state, idle_until=now)


def _absorb(
    state: WorkerState, now: datetime, happened: Happened
) -> tuple[WorkerState, tuple[Action, ...]]:
    """Record what happened; the only actions it gives are answers to the event itself."""
    # Once stopped, the worker no longer tracks its slots: late reports from the
    # threads of abandoned jobs change nothing (a late lease goes straight back).
    tracking = state.phase in ("running", "draining")
    match happened:
        case Started():
            if state.phase == "new":
                state = evolve(state, phase="running", started_at=now)
        case Wakeup():
            pass
        case TickDone(ok=ok, found_work=found_work, backlog=backlog):
            state = evolve(state, tick_running=False)
            state = _count(state, ticks=1, tick_errors=0 if ok else 1)
            if found_work:
                state = _look(state, now)
            if backlog:
                # Runs (or events) are made faster than one tick per interval takes
                # them: tick again as soon as notified_tick_gap allows.
                state = evolve(state, tick_requested=True)
        case JobLeased(slot=index, job_id=job_id, after=after):
            slot = _slot(state, index)
            if tracking and isinstance(slot, Running) and after == slot.job_id:
                # The next job of the slot's group starts: the one before has run,
                # and its result commits with the group's.
                earlier = (*slot.earlier, slot.job_id)
                following = Running(job_id, now, slot.taken + 1, slot.chains, earlier)
                slots = _slots_with(state, index, following)
                return evolve(state, slots=slots, jobs_taken=state.jobs_taken + 1), ()
            if not tracking or not isinstance(slot, Dequeuing):
                # The slot was freed at the drain deadline while its dequeue was
                # still asking: the job goes back before its code starts.
                return _count(state, leases_released=1), (ReleaseLease(job_id),)
            # A stop may have come since the slot asked: the job runs all the same,
            # within the drain (it was asked for before, and it is started already).
            state = evolve(
                state,
                slots=_slots_with(state, index, Running(job_id, now, slot.taken + 1)),
                jobs_taken=state.jobs_taken + 1,
            )
            if not slot.taken:
                # The first job of a dequeue: there may be more, one more free slot asks.
                # (A chain's next job says nothing of the rest of the queue.)
                state = _look(state, now)
        case NextJobWanted(slot=index):
            slot = _slot(state, index)
            if not tracking or not isinstance(slot, Running | Ending | Dequeuing):
                return state, ()
            # Asked again (a finish transaction retried), the answer is decided anew.
            allowed = _may_take_next(state, index, slot.taken)
            match slot:
                case Running(chains=chains):
                    if chains != allowed:
                        state = _with_slot(state, index, evolve(slot, chains=allowed))
                case Ending() | Dequeuing():
                    kept = Dequeuing(slot.taken) if allowed else Ending(slot.taken)
                    if kept != slot:
                        state = _with_slot(state, index, kept)
            return state, (LeaseNext(index),) if allowed else ()
        case JobFinished(slot=index, job_id=job_id, outcome=outcome, ran=ran, queued=look) if (
            tracking
        ):
            match _slot(state, index):
                case Running(job_id=running, taken=taken, chains=chains) if running == job_id:
                    then: Slot = Dequeuing(taken) if chains else Ending(taken)
                    state = _ended(
                        state, now, outcome, look=look, slots=_slots_with(state, index, then)
                    )
                case Running(taken=taken) as current if not ran:
                    # Of the slot's group, settled without running: taken and ended.
                    state = _ended(
                        state,
                        now,
                        outcome,
                        look=look,
                        slots=_slots_with(state, index, evolve(current, taken=taken + 1)),
                        jobs_taken=state.jobs_taken + 1,
                    )
                case Running(earlier=earlier) as current if job_id in earlier:
                    # An earlier job of the slot's group (the slot runs a later one).
                    left = tuple(known for known in earlier if known != job_id)
                    slots = _slots_with(state, index, evolve(current, earlier=left))
                    state = _ended(state, now, outcome, look=look, slots=slots)
                case Ending(taken=taken) if not ran:
                    # Of a group settled without running (after another such job).
                    state = _ended(
                        state,
                        now,
                        outcome,
                        look=look,
                        slots=_slots_with(state, index, Ending(taken + 1)),
                        jobs_taken=state.jobs_taken + 1,
                    )
                case Dequeuing(taken=taken):
                    # Settled without running, straight from a lease: taken and ended.
                    state = _ended(
                        state,
                        now,
                        outcome,
                        look=look,
                        slots=_slots_with(state, index, Ending(taken + 1)),
                        jobs_taken=state.jobs_taken + 1,
                    )
        case DequeueEnded(slot=index, failed=failed) if tracking:
            slot = _slot(state, index)
            if isinstance(slot, Running):  # the call raised while the job was running
                state = _ended(state, now, "error")
            if slot is not None and not isinstance(slot, Free):
                state = _with_slot(state, index, Free())
                if failed or (isinstance(slot, Dequeuing) and not state.claim_wanted):
                    # The queue is empty (and no run created here waits for a claim),
                    # or the store is failing: wait for the poll.
                    state = evolve(
                        state,
                        idle_until=now + state.settings.job_poll_interval,
                        queue_exhausted=state.queue_exhausted or state.settings.stop_when_idle,
                    )
        case JobsAvailable(local=True):
            # A run created beside the worker: the next dequeue claims it, at once if a
            # slot is free. (A host that does not tick does not claim.)
            claims = state.settings.orchestration_interval is not None
            if claims and not state.claim_wanted:
                state = evolve(state, claim_wanted=True)
            state = _look(state, now)
        case JobsAvailable():
            # Idle slots look at once. The news may be a new run, which has no job until
            # it is claimed: a free slot's dequeue claims first, in its lease's
            # transaction (a host that does not tick asks for a tick instead).
            idle = state.can_take_work
            claims = state.settings.orchestration_interval is not None
            state = evolve(
                state,
                claim_wanted=state.claim_wanted or (idle and claims),
                tick_requested=state.tick_requested or (idle and not claims),
            )
            state = _look(state, now)
        case StopRequested(force=force):
            if state.phase == "new":
                return evolve(state, phase="stopped", stop_requested=True), (Stop(),)
            if tracking:
                deadline = now if force else now + state.settings.drain_timeout
                if state.drain_deadline is not None:
                    deadline = min(deadline, state.drain_deadline)
                state = evolve(
                    state, phase="draining", stop_requested=True, drain_deadline=deadline
                )
    return state, ()


def _reserved(state: WorkerState, but: int | None = None) -> int:
    """Jobs the slots (all but ``but``) are about to lease: asking, or allowed to chain."""
    return sum(
        1
        for index, slot in enumerate(state.slots)
        if index != but
        and (isinstance(slot, Dequeuing) or (isinstance(slot, Running) and slot.chains))
    )


def _may_take_next(state: WorkerState, index: int, taken: int) -> bool:
    """Whether a slot whose dequeue took ``taken`` jobs may lease one more."""
    settings = state.settings
    if state.stop_requested or taken >= settings.max_chain:
        return False
    if settings.max_jobs is None:
        return True
    return state.jobs_taken + _reserved(state, but=index) < settings.max_jobs


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
    allowed = free
    if state.idle_until is not None:
        asking = any(isinstance(slot, Dequeuing) for slot in state.slots)
        allowed = 0 if asking else min(free, 1)  # one probe at a time while idle
    if state.settings.max_jobs is not None:
        allowed = min(allowed, state.settings.max_jobs - state.jobs_taken - _reserved(state))
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
    claim = state.claim_wanted
    planned += [
        DequeueJob(index, state.settings.max_chain, claim=claim and index == chosen[0])
        for index in chosen
    ]
    return evolve(state, slots=tuple(slots), claim_wanted=False)


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
