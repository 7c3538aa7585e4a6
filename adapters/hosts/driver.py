"""The threaded driver of the scheduling step function.

The driver owns one :class:`~adapters.hosts.schedule.WorkerState`. Whatever
happens (a thread's job finished, the time for a tick came, a signal) is fed
to :func:`~adapters.hosts.schedule.step` under one lock; the actions it
returns are then carried out by the thread that fed it, outside the lock:

* ``RunTick`` and ``DequeueJob`` run in threads of their own (they may take
  long: user code runs in a slot thread): one long-lived thread for the ticks
  and one per slot (:mod:`adapters.hosts.lanes`). A dequeue may claim pending
  runs first, then run a chain of jobs, each leased by the previous one's
  finish transaction, and reports each job as it starts and as its result
  commits;
* ``RenewLease``, ``ReleaseLease`` and ``FlushOutbox`` are short store calls;
* ``Stop`` ends :meth:`Driver.run`.

Work made elsewhere (a notification, a run created beside the worker) comes in
through :mod:`adapters.hosts.wakeups`, as ``JobsAvailable``.

One event is fed from inside a kernel transaction: ``NextJobWanted``, when
the finish transaction of a slot's job asks whether to lease the slot's next
job (``keep_going``). The answer (``LeaseNext``) is read at once; any other
action due at that moment is carried out by the slot's thread once the
transaction has ended, so no store call waits for a lock that thread holds.

Threads are daemons so that an abandoned stage (released at the drain
deadline) never keeps the process alive.

While the store is unavailable (``log.outage``), ticks, dequeues and the
listener call it only once per back-off step: the others end at once, as a
failed tick or an empty dequeue, so a stop never waits for a store that
does not answer longer than one call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from adapters.hosts.lanes import Lane
from adapters.hosts.logs import HostLog
from adapters.hosts.schedule import (
    Action,
    DequeueEnded,
    DequeueJob,
    FlushOutbox,
    Happened,
    JobEnd,
    JobFinished,
    JobLeased,
    LeaseNext,
    NextJobWanted,
    ReleaseLease,
    RenewLease,
    RunTick,
    Settings,
    Started,
    Stop,
    StopRequested,
    TickDone,
    Wakeup,
    WorkerState,
    initial_state,
    next_wakeup,
    step,
)
from adapters.hosts.tick import Orchestrator, TickReport
from adapters.hosts.wakeups import Wakeups
from adapters.runner import describe
from kernel.commands import JobExecuteResult, LeaseRelease
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import Job

OnStart = Callable[[Job], None]
OnFinish = Callable[[Job, JobExecuteResult], None]
KeepGoing = Callable[[], bool]
TakeJobs = Callable[[int, OnStart, OnFinish, KeepGoing, bool], object]
"""``take(max_jobs, on_start, on_finish, keep_going, claim)``: lease and execute up to
``max_jobs`` jobs one after another, with the callbacks of ``Kernel.execute_jobs``:
``on_start(job)`` before a job's user code runs, ``on_finish(job, result)`` once its
result committed (also for a job settled without running), and ``keep_going()`` before
each further job is leased; ``claim``: claim pending runs first, in the transaction
that leases the first job (only hosts that tick are asked to). What it returns is
ignored."""

MAX_WAIT_S = 1.0
"""The driver re-checks at least this often, even when the step function expects nothing."""


class _Abandoned(Exception):
    """Raised from ``on_start`` when the step function gave the job back (the drain
    deadline passed while the slot was asking): its user code must not start."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


class Driver:
    """Feeds a step function from threads and carries out its actions."""

    def __init__(
        self,
        kernel: Kernel,
        store: Store,
        *,
        worker_id: str,
        settings: Settings,
        take_jobs: TakeJobs,
        orchestrator: Orchestrator | None,
        log: HostLog,
        on_result: OnFinish | None = None,
    ) -> None:
        self.kernel = kernel
        self.store = store
        self.worker_id = worker_id
        self.log = log
        self._take_jobs = take_jobs
        self._orchestrator = orchestrator
        self._on_result = on_result
        self._state = initial_state(settings)
        self._tick_lane = Lane(f"wfk-{worker_id}-tick", self)
        self._slot_lanes = [
            Lane(f"wfk-{worker_id}-slot-{index}", self) for index in range(settings.concurrency)
        ]
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self._wakeups = Wakeups(self, store, stopped=self._stopped, log=log)
        self._wake_at: datetime | None = None
        """When the waiting loop wakes by itself (``None``: it is not waiting)."""
        self.last_tick: TickReport | None = None
        self.failure: Exception | None = None
        """The last exception a dequeue raised (logged, and the slot freed)."""

    # -- state -------------------------------------------------------------------

    @property
    def state(self) -> WorkerState:
        """The current state (a snapshot: states are immutable)."""
        with self._lock:
            return self._state

    @property
    def stopped(self) -> threading.Event:
        """Set once the step function said ``Stop``."""
        return self._stopped

    def feed(self, happened: Happened) -> tuple[Action, ...]:
        """Step the state with ``happened`` and carry out the actions; returns them."""
        actions = self._step(happened)
        for action in actions:
            self._perform(action)
        return actions

    def _step(self, happened: Happened) -> tuple[Action, ...]:
        """Step the state with ``happened``; returns the actions, for the caller to carry out."""
        with self._lock:
            self._state, actions = step(self._state, self.kernel.clock.now(), happened)
            # Wake the loop only if something falls due before it would wake anyway
            # (a busy slot reports several events per stage: no thread switch for each).
            wake = next_wakeup(self._state)
            if self._wake_at is None or (wake is not None and wake < self._wake_at):
                self._changed.notify_all()
            state = self._state
        self._wakeups.stepped(state)
        return actions

    # -- the loop ------------------------------------------------------------------

    def run(self) -> None:
        """Start, then wake whenever the step function has something due, until it stops."""
        # Subscribed first: a run created once the first tick or dequeue has looked
        # (they start at once) must not go unannounced.
        unsubscribe = self._wakeups.subscribe(self.state)
        try:
            self.feed(Started())
            self._wakeups.start_listening(self.state, name=f"wfk-{self.worker_id}-listen")
            self._loop()
        finally:
            unsubscribe()
            for lane in (self._tick_lane, *self._slot_lanes):
                lane.close()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                if self._stopped.is_set():
                    break
                wake = next_wakeup(self._state)
                now = self.kernel.clock.now()
                timeout = MAX_WAIT_S
                if wake is not None:
                    timeout = min(max((wake - now).total_seconds(), 0.0), MAX_WAIT_S)
                self._wake_at = now + timedelta(seconds=timeout)
                self._changed.wait(timeout)
                self._wake_at = None
            self.feed(Wakeup())

    def request_stop(self, force: bool = False) -> None:
        """Stop dequeuing and drain (``force``: release running jobs now)."""
        self.feed(StopRequested(force=force))

    # -- actions -------------------------------------------------------------------

    def _perform(self, action: Action) -> None:
        match action:
            case RunTick(sweep=sweep):
                self._tick_lane.submit(self._tick, sweep)
            case DequeueJob(slot=slot, max_jobs=max_jobs, claim=claim):
                self._slot_lanes[slot].submit(self._work, slot, max_jobs, claim)
            case RenewLease(job_id=job_id):
                self._renew(job_id)
            case ReleaseLease(job_id=job_id):
                self._release(job_id)
            case LeaseNext():
                pass  # an answer to the slot that asked, not something to do
            case FlushOutbox():
                self._flush()
            case Stop():
                with self._lock:
                    self._stopped.set()
                    self._changed.notify_all()

    def _tick(self, sweep: bool) -> None:
        ok, found_work, backlog = False, False, False
        try:
            if self._orchestrator is not None and self.log.outage.may_try():
                report = self._orchestrator.tick(sweep)
                self.last_tick = report
                ok, found_work, backlog = report.ok, report.found_work, report.backlog
                if ok:
                    self.log.outage.recovered()
        except Exception:  # the tick reports its own failures; this is a last resort
            self.log.exception("orchestration tick failed")
        finally:
            self.feed(TickDone(ok=ok, found_work=found_work, backlog=backlog))

    def _work(self, slot: int, max_jobs: int, claim: bool = False) -> None:
        """One dequeue (claiming pending runs first if ``claim``): every job is reported
        as it starts and as its result commits."""
        running: list[Job] = []  # the job whose user code runs now, if any
        started: set[str] = set()  # jobs of this dequeue whose code ran, result not reported
        deferred: list[Action] = []  # actions due while the kernel held a transaction open

        def catch_up() -> None:
            while deferred:
                self._perform(deferred.pop(0))

        def on_start(job: Job) -> None:
            catch_up()
            # A job of a group follows the one whose code ran just before.
            after = running[0].id if running and running[0].id in started else None
            if ReleaseLease(job.id) in self.feed(JobLeased(slot, job.id, after=after)):
                raise _Abandoned(job)
            running[:] = [job]
            started.add(job.id)
            self.log.debug(
                "stage %s started (attempt %d)",
                job.stage_id,
                job.attempt,
                extra=_job_context(job),
            )

        def keep_going() -> bool:
            # Asked inside the finish transaction: decide now, act once it has ended.
            actions = self._step(NextJobWanted(slot))
            deferred.extend(action for action in actions if not isinstance(action, LeaseNext))
            return LeaseNext(slot) in actions

        def on_finish(job: Job, result: JobExecuteResult) -> None:
            catch_up()
            ran = job.id in started
            started.discard(job.id)
            if running and running[0].id == job.id:
                running.clear()
            self._log_result(job, result.outcome, result.error, ran=ran)
            if self._on_result is not None:
                self._on_result(job, result)
            queued = bool(result.queued_jobs)
            self.feed(JobFinished(slot, job.id, result.outcome, ran=ran, queued=queued))

        if not self.log.outage.may_try():  # the store is unavailable: wait for the next step
            self.feed(DequeueEnded(slot, failed=True))
            return
        failed = False
        try:
            self._take_jobs(max_jobs, on_start, on_finish, keep_going, claim)
            self.log.outage.recovered()
        except _Abandoned as abandoned:
            self.log.info(
                "job went back to the queue before it ran: the drain deadline had passed",
                extra=_job_context(abandoned.job),
            )
        except Exception as exc:  # a store failure must not kill the slot's bookkeeping
            failed = True
            self.failure = exc
            if running:
                self.log.exception(
                    "job failed in the host: %s", describe(exc), extra=_job_context(running[0])
                )
                self.feed(JobFinished(slot, running[0].id, "error"))
            else:
                self.log.exception("dequeue failed: %s", describe(exc))
        finally:
            catch_up()
        self.feed(DequeueEnded(slot, failed=failed))

    def _log_result(self, job: Job, outcome: JobEnd, error: str | None, *, ran: bool) -> None:
        if ran and outcome == "skipped":
            # The stage ran, but its record moved on meanwhile: the run was
            # cancelled, or this worker's lease was reaped and the job handed on.
            self.log.warning(
                "stage %s ran, but its result was discarded: the run ended or the lease "
                "was lost meanwhile",
                job.stage_id,
                extra=_job_context(job),
            )
            return
        self.log.log(
            logging.WARNING if outcome == "failed" else logging.INFO,
            "stage %s %s%s",
            job.stage_id,
            outcome,
            f": {error}" if error else "",
            extra=_job_context(job),
        )

    def _renew(self, job_id: str) -> None:
        try:
            if not self.store.renew_lease(job_id, self.worker_id, self.kernel.clock.now()):
                # Settled by its own finish a moment ago (a race worth no
                # warning), or reaped: then the finish is discarded and says so.
                self.log.debug("lease of job %s not renewed", job_id, extra={"job_id": job_id})
        except Exception:
            self.log.exception(
                "could not renew the lease of job %s", job_id, extra={"job_id": job_id}
            )

    def _release(self, job_id: str) -> None:
        try:
            released = self.kernel.dispatch(
                LeaseRelease(job_ids=(job_id,), worker_id=self.worker_id)
            )
            if released.released:
                self.log.warning(
                    "released job %s back to the queue: the drain deadline passed",
                    job_id,
                    extra={"job_id": job_id},
                )
        except Exception:
            self.log.exception("could not release job %s", job_id, extra={"job_id": job_id})

    def _flush(self) -> None:
        if self._orchestrator is None:
            return
        try:
            self._orchestrator.flush()
        except Exception:
            self.log.exception("final outbox flush failed")


def _job_context(job: Job) -> dict[str, str]:
    return {"workflow_run_id": job.workflow_run_id, "stage_id": job.stage_id, "job_id": job.id}
