"""The threaded driver of the scheduling step function.

The driver owns one :class:`~adapters.hosts.schedule.WorkerState`. Whatever
happens (a thread's job finished, the time for a tick came, a signal) is fed
to :func:`~adapters.hosts.schedule.step` under one lock; the actions it
returns are then carried out by the thread that fed it, outside the lock:

* ``RunTick`` and ``DequeueJob`` start a daemon thread each (they may take
  long: user code runs in a slot thread); a slot thread may run a chain of
  jobs, each leased by the previous one's finish transaction;
* ``RenewLease``, ``ReleaseLease`` and ``FlushOutbox`` are short store calls;
* ``Stop`` ends :meth:`Driver.run`.

Threads are daemons so that an abandoned stage (released at the drain
deadline) never keeps the process alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from adapters.hosts.leases import release_leases
from adapters.hosts.logs import HostLog
from adapters.hosts.schedule import (
    Action,
    DequeueJob,
    FlushOutbox,
    Happened,
    JobChained,
    JobEnd,
    JobFinished,
    JobLeased,
    JobsAvailable,
    NoJobFound,
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
from adapters.runner import describe
from kernel.commands import JobExecuteResult
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import Job
from kernel.status import JobStatus

OnStart = Callable[[Job], None]
TakeJobs = Callable[[OnStart, int], "list[tuple[Job, JobExecuteResult]]"]
"""``take(on_start, max_jobs)``: lease and execute up to ``max_jobs`` jobs one after
another, calling ``on_start(job)`` before each job's user code runs (the contract of
``Kernel.execute_jobs``); returns the jobs settled, in order (empty: no job)."""
OnResult = Callable[[Job, JobExecuteResult], None]

MAX_WAIT_S = 1.0
"""The driver re-checks at least this often, even when the step function expects nothing."""

WAIT_FOR_JOBS_S = 1.0
"""How long one ``store.wait_for_jobs`` call blocks before the listener re-checks for a stop."""


@runtime_checkable
class JobWaiter(Protocol):
    """A store that can block until jobs are queued (``PostgresStore``: ``LISTEN``/``NOTIFY``)."""

    def wait_for_jobs(self, timeout: float) -> bool:
        """Return once a job was queued (``True``) or after ``timeout`` seconds (``False``)."""
        ...


class _Released(Exception):
    """Raised from ``on_start`` when the step function handed the job straight back."""


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
        on_result: OnResult | None = None,
    ) -> None:
        self.kernel = kernel
        self.store = store
        self.worker_id = worker_id
        self.log = log
        self._take_jobs = take_jobs
        self._orchestrator = orchestrator
        self._on_result = on_result
        self._state = initial_state(settings)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self.last_tick: TickReport | None = None

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
        with self._lock:
            self._state, actions = step(self._state, self.kernel.clock.now(), happened)
            self._changed.notify_all()
        for action in actions:
            self._perform(action)
        return actions

    # -- the loop ------------------------------------------------------------------

    def run(self) -> None:
        """Start, then wake whenever the step function has something due, until it stops."""
        self.feed(Started())
        if self._waits_for_jobs():
            threading.Thread(
                target=self._listen, name=f"wfk-{self.worker_id}-listen", daemon=True
            ).start()
        while not self._stopped.is_set():
            with self._lock:
                if self._stopped.is_set():
                    break
                wake = next_wakeup(self._state)
                timeout = MAX_WAIT_S
                if wake is not None:
                    due = (wake - self.kernel.clock.now()).total_seconds()
                    timeout = min(max(due, 0.0), MAX_WAIT_S)
                self._changed.wait(timeout)
            self.feed(Wakeup())

    def request_stop(self, force: bool = False) -> None:
        """Stop dequeuing and drain (``force``: release running jobs now)."""
        self.feed(StopRequested(force=force))

    # -- actions -------------------------------------------------------------------

    def _perform(self, action: Action) -> None:
        match action:
            case RunTick(sweep=sweep):
                self._spawn(f"wfk-{self.worker_id}-tick", self._tick, sweep)
            case DequeueJob(slot=slot, max_jobs=max_jobs):
                self._spawn(f"wfk-{self.worker_id}-slot-{slot}", self._work, slot, max_jobs)
            case RenewLease(job_id=job_id):
                self._renew(job_id)
            case ReleaseLease(job_id=job_id, running=running):
                self._release(job_id, running)
            case FlushOutbox():
                self._flush()
            case Stop():
                with self._lock:
                    self._stopped.set()
                    self._changed.notify_all()

    @staticmethod
    def _spawn(name: str, target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def _tick(self, sweep: bool) -> None:
        ok, found_work = False, False
        try:
            if self._orchestrator is not None:
                report = self._orchestrator.tick(sweep)
                self.last_tick = report
                ok, found_work = report.ok, report.found_work
        except Exception:  # the tick reports its own failures; this is a last resort
            self.log.exception("orchestration tick failed")
        finally:
            self.feed(TickDone(ok=ok, found_work=found_work))

    def _work(self, slot: int, max_jobs: int) -> None:
        started: list[Job] = []  # the jobs whose user code was about to run, in order

        def on_start(job: Job) -> None:
            if started:
                happened: Happened = JobChained(slot, started[-1].id, job.id)
            else:
                happened = JobLeased(slot, job.id)
            started.append(job)
            if ReleaseLease(job.id, running=False) in self.feed(happened):
                raise _Released(job.id)
            self.log.debug(
                "stage %s started (attempt %d)",
                job.stage_id,
                job.attempt,
                extra=_job_context(job),
            )

        try:
            done = self._take_jobs(on_start, max_jobs)
        except _Released:
            # The chain ended at a stop. Its earlier jobs finished, but the
            # exception took their results with it: read their outcomes back.
            released = started.pop()
            self.log.info(
                "job went back to the queue before it ran: the worker is stopping",
                extra=_job_context(released),
            )
            # A chained job: the slot waits for this report (unless the worker is
            # gone: then it was an abandoned job's finish that leased it).
            if started and not self._stopped.is_set():
                earlier = self._read_back(started)
                self.feed(JobFinished(slot, released.id, "released", earlier))
            return
        except Exception as exc:  # a store failure must not kill the slot's bookkeeping
            if started:
                current = started.pop()
                earlier = self._read_back(started)
                self.log.exception(
                    "job failed in the host: %s", describe(exc), extra=_job_context(current)
                )
                self.feed(JobFinished(slot, current.id, "error", earlier))
            else:
                self.log.exception("dequeue failed: %s", describe(exc))
                self.feed(NoJobFound(slot, failed=True))
            return
        if not done:
            self.feed(NoJobFound(slot))
            return
        announced = {job.id for job in started}
        for job, result in done:
            self._log_result(job, result.outcome, result.error, ran=job.id in announced)
            if self._on_result is not None:
                self._on_result(job, result)
        # The slot's current job is the last one that ran (jobs settled without user
        # code may follow it in ``done``), or, if none ran, the last one settled.
        last = len(done) - 1
        if started:
            last = max(i for i, (job, _) in enumerate(done) if job.id == started[-1].id)
        job, result = done[last]
        earlier = tuple(r.outcome for i, (_, r) in enumerate(done) if i != last)
        self.feed(JobFinished(slot, job.id, result.outcome, earlier))

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

    def _read_back(self, jobs: list[Job]) -> tuple[JobEnd, ...]:
        """The outcomes of chained jobs that finished but whose results were lost with an
        exception, read back from their job records (one read per run); logged too."""
        current: dict[str, Job] = {}
        outcomes: list[JobEnd] = []
        for job in jobs:
            if job.id not in current:
                try:
                    current.update((j.id, j) for j in self.store.get_jobs(job.workflow_run_id))
                except Exception:
                    self.log.exception(
                        "could not read back the outcome of a finished job",
                        extra=_job_context(job),
                    )
            now = current.get(job.id)
            outcome = settled_outcome(job, now, self.worker_id)
            self._log_result(job, outcome, now.last_error if now else None, ran=True)
            outcomes.append(outcome)
        return tuple(outcomes)

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

    def _release(self, job_id: str, running: bool) -> None:
        try:
            released = release_leases(self.kernel, [job_id], self.worker_id)
            if released and running:  # an unrun job is logged by its slot, with its context
                self.log.warning(
                    "released job %s back to the queue: its stage still ran at the drain deadline",
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

    # -- LISTEN/NOTIFY ---------------------------------------------------------------

    def _waits_for_jobs(self) -> bool:
        # A bounded run stops at its first empty dequeue: nothing to wait for.
        settings = self._state.settings
        return (
            isinstance(self.store, JobWaiter)
            and settings.concurrency > 0
            and not settings.stop_when_idle
        )

    def _listen(self) -> None:
        """Wake idle slots when the store announces queued jobs (PostgreSQL ``NOTIFY``)."""
        store = self.store
        assert isinstance(store, JobWaiter)
        while not self._stopped.is_set():
            try:
                if store.wait_for_jobs(WAIT_FOR_JOBS_S):
                    self.feed(JobsAvailable())
            except Exception:
                self.log.exception("waiting for job notifications failed; polling instead")
                self._stopped.wait(WAIT_FOR_JOBS_S)


def settled_outcome(leased: Job, now: Job | None, worker_id: str) -> JobEnd:
    """The ``job.execute`` outcome a worker's finished job had, judged from its record.

    ``leased`` is the job as the worker leased it, ``now`` as it is after the
    finish (``None``: unknown, counted as ``skipped``). A job another worker
    holds or settled, a reaped or cancelled one, was ``skipped`` (its result was
    discarded); a job queued again without a reap failed and will be retried.
    """
    if now is None:
        return "skipped"
    match now.status:
        case JobStatus.COMPLETED if now.worker_id == worker_id:
            return "completed"
        case JobStatus.SUSPENDED:
            return "suspended"
        case JobStatus.FAILED | JobStatus.QUEUED if now.reap_count == leased.reap_count:
            return "failed"  # for good, or queued again to retry after a backoff
    return "skipped"


def _job_context(job: Job) -> dict[str, str]:
    return {"workflow_run_id": job.workflow_run_id, "stage_id": job.stage_id, "job_id": job.id}
