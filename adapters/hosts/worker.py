"""``WorkerHost``: a long-running worker process (SPEC §8).

An orchestration tick every ``orchestration_interval`` and up to
``concurrency`` job slots, scheduled by the pure step function of
:mod:`adapters.hosts.schedule` and driven by threads. SIGTERM or SIGINT (or
:meth:`WorkerHost.stop`) stop dequeuing, let running jobs finish within
``drain_timeout``, give the leases of the rest back to the queue, flush the
outbox, and return. A stop returns within ``drain_timeout`` plus
:data:`STOP_GRACE` whatever the store does: when the last store calls do not
answer by then, the host returns without them (another worker reaps the
leases once they are stale, and flushes the outbox).
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from types import FrameType
from typing import Any, Literal

from attrs import frozen

from adapters.blobs_store import kernels_store
from adapters.hosts.driver import Driver, KeepGoing, OnFinish, OnStart
from adapters.hosts.logs import HostLog
from adapters.hosts.schedule import Settings
from adapters.hosts.tick import Orchestrator
from kernel.dispatch import Kernel
from kernel.ports import JobNotifier, Store
from kernel.shell.job_groups import GROUP_STALL, GroupSizer

MAX_CHAIN = 50
"""Jobs a slot runs back to back by default, each leased by the previous one's finish."""

MAX_GROUP = 16
"""Jobs a slot leases, runs and finishes per transaction at most, while its stages are quick."""

QUICK_TURN_WAIT = timedelta(milliseconds=100)
"""How long a slot with quick stages waits for the slot taking quick groups before it
goes ahead on its own (see ``WorkerHost._take_jobs``)."""

MAX_CLAIMS_PER_TICK = 50
"""Pending runs one tick claims; their jobs go to the shared queue, so claiming is cheap."""

STOP_GRACE = timedelta(seconds=2)
"""How much longer than ``drain_timeout`` a stop waits for the driver's last store calls
(leases given back, outbox flushed) before the host returns without them."""

_JOIN_SLICE_S = 0.2
"""How often :meth:`WorkerHost.run_forever` checks whether to stop waiting for the driver."""


@frozen(kw_only=True)
class WorkerStats:
    """What a worker host has done since it started."""

    worker_id: str
    phase: Literal["new", "running", "draining", "stopped"]
    uptime: timedelta
    jobs_processed: int
    jobs_failed: int
    ticks: int
    tick_errors: int
    leases_renewed: int
    leases_released: int
    busy_slots: int


class WorkerHost:
    """Runs orchestration ticks and job slots for one kernel until stopped.

    >>> from adapters import create_kernel
    >>> from adapters.memory import InMemoryStore
    >>> store = InMemoryStore()
    >>> host = WorkerHost(create_kernel(store=store), store, worker_id="w1")
    >>> host.stats().phase
    'new'

    Args:
        kernel: the kernel whose workflows this worker runs.
        store: the kernel's store (leases are renewed and runs swept through it). The
            store a kernel with ``blobs=`` wraps stands for the kernel's wrapper.
        worker_id: this worker's name in leases, claims and logs.
        concurrency: job slots; a job is leased only when a slot is free.
        orchestration_interval: time between the starts of two ticks.
        job_poll_interval: how long idle slots wait after finding no job
            (with a store that has ``wait_for_jobs``, a notification wakes them
            sooner, and the wait is at least ``orchestration_interval``).
        stale_lease_threshold: a lease not renewed for this long belongs to a
            dead worker; this worker's ticks reap such leases.
        lease_renew_interval: how often the lease of a running job is renewed;
            must be shorter than ``stale_lease_threshold``.
        drain_timeout: how long running jobs may take to finish after a stop.
        max_chain: how many jobs a slot runs back to back: each job's finish
            transaction also leases and starts the slot's next job, so a busy
            slot commits one write transaction per stage. A chain ends when the
            queue is empty, after ``max_chain`` jobs, or at a stop (the job
            that is running finishes, and its finish leases nothing). 1: every
            job is dequeued on its own.
        max_group: group commit. While a slot's stages are quick (a whole group's
            code within 20 ms) and jobs are queued, it leases up to this many
            jobs in one transaction, runs them one after another, and commits
            their finishes together with the next group's lease; a group that
            takes longer shrinks the next, down to one job at a time. Jobs of a
            group not started within 5 s (or ``lease_renew_interval``, if
            shorter) go back to the queue. 1: one job per transaction.
        purge_after: with a duration, the orchestration tick purges runs that
            finished longer ago than that (``runs.purge``, at most once a minute,
            in batches), with everything they own; ``None`` (the default) keeps
            every run.

    Raises:
        ValueError: a bad setting (the message names it).
    """

    def __init__(
        self,
        kernel: Kernel,
        store: Store,
        *,
        worker_id: str,
        concurrency: int = 4,
        orchestration_interval: timedelta = timedelta(seconds=1),
        job_poll_interval: timedelta = timedelta(milliseconds=200),
        stale_lease_threshold: timedelta = timedelta(seconds=60),
        lease_renew_interval: timedelta = timedelta(seconds=15),
        drain_timeout: timedelta = timedelta(seconds=30),
        max_chain: int = MAX_CHAIN,
        max_group: int = MAX_GROUP,
        purge_after: timedelta | None = None,
    ) -> None:
        if not worker_id:
            raise ValueError(f"worker_id: expected a non-empty string, got {worker_id!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency: expected an int >= 1, got {concurrency!r}")
        if isinstance(max_chain, bool) or not isinstance(max_chain, int) or max_chain < 1:
            raise ValueError(f"max_chain: expected an int >= 1, got {max_chain!r}")
        if isinstance(max_group, bool) or not isinstance(max_group, int) or max_group < 1:
            raise ValueError(f"max_group: expected an int >= 1, got {max_group!r}")
        if purge_after is not None and (
            not isinstance(purge_after, timedelta) or purge_after <= timedelta(0)
        ):
            raise ValueError(f"purge_after: expected a timedelta > 0 or None, got {purge_after!r}")
        if lease_renew_interval >= stale_lease_threshold:
            raise ValueError(
                f"lease_renew_interval ({lease_renew_interval}) must be shorter than "
                f"stale_lease_threshold ({stale_lease_threshold}), or live jobs get reaped"
            )
        store = kernels_store(kernel, store)
        if isinstance(store, JobNotifier):
            # Notifications wake idle slots; the poll only catches jobs whose
            # retry backoff ends, which nobody announces.
            job_poll_interval = max(job_poll_interval, orchestration_interval)
        self.worker_id = worker_id
        self.drain_timeout = drain_timeout
        self.settings = Settings(
            concurrency=concurrency,
            orchestration_interval=orchestration_interval,
            job_poll_interval=job_poll_interval,
            lease_renew_interval=lease_renew_interval,
            drain_timeout=drain_timeout,
            max_chain=max_chain,
        )
        self.log = HostLog(worker_id)
        self._kernel = kernel
        self._max_group = max_group
        self._group_stall = min(GROUP_STALL, lease_renew_interval)
        self._sizers = threading.local()
        """Each slot's lane is a thread of its own: its ``GroupSizer`` is thread-local."""
        self._quick_slot = threading.Lock()
        """Held by the slot taking groups of quick jobs (see ``_take_jobs``)."""
        self._orchestrator = Orchestrator(
            kernel,
            store,
            worker_id=worker_id,
            stale_lease_threshold=stale_lease_threshold,
            max_claims=MAX_CLAIMS_PER_TICK,
            log=self.log,
            purge_after=purge_after,
        )
        self._driver = Driver(
            kernel,
            store,
            worker_id=worker_id,
            settings=self.settings,
            take_jobs=self._take_jobs,
            orchestrator=self._orchestrator,
            log=self.log,
        )
        self._thread: threading.Thread | None = None
        self._started = False
        self._signals = 0
        self._give_up_at: float | None = None
        """``time.monotonic()`` after which a stop no longer waits for the driver."""

    def _take_jobs(
        self,
        max_jobs: int,
        on_start: OnStart,
        on_finish: OnFinish,
        keep_going: KeepGoing,
        claim: bool,
    ) -> None:
        orchestrator = self._orchestrator
        sizer: GroupSizer | None = getattr(self._sizers, "sizer", None)
        if sizer is None:
            sizer = GroupSizer(self._max_group, stall=self._group_stall)
            self._sizers.sizer = sizer
        # Quick stages (large groups: half of max_group jobs' code or more within
        # 20 ms, at most 2.5 ms a job with the default max_group) gain nothing
        # from a second slot in the same process: the interpreter runs one thread at
        # a time, and two slots would only split the queue into smaller groups and
        # more transactions. So one slot at a time takes large groups; the others wait
        # their turn. Once stages take longer (smaller groups: their code may wait on
        # I/O, which slots overlap) the chain ends and slots run side by side; a slot
        # that waited QUICK_TURN_WAIT (the one taking quick groups may be stuck in a
        # stage that suddenly hangs) goes ahead on its own.
        full = max(2, sizer.largest // 2)
        quick = self.settings.concurrency > 1 and sizer.size >= full
        quick = quick and self._quick_slot.acquire(timeout=QUICK_TURN_WAIT.total_seconds())
        going = keep_going
        if quick:

            def going() -> bool:
                return sizer.size >= full and keep_going()

        try:
            self._kernel.execute_jobs(
                self.worker_id,
                max_jobs,
                on_start,
                on_finish=on_finish,
                keep_going=going,
                claim_first=orchestrator.claim_command() if claim else None,
                on_claimed=orchestrator.log_claimed,
                groups=sizer,
            )
        finally:
            if quick:
                self._quick_slot.release()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the worker in a background (daemon) thread and return at once.

        Raises:
            RuntimeError: the host was started before.
        """
        self._claim_start()
        self._thread = threading.Thread(
            target=self._run, name=f"wfk-{self.worker_id}-driver", daemon=True
        )
        self._thread.start()

    def stop(self, force: bool = False) -> WorkerStats:
        """Stop dequeuing, drain, release what is left, flush the outbox; returns when done.

        ``force`` skips the drain: running jobs' leases are released at once.
        Waits at most ``drain_timeout`` plus a few seconds.
        """
        if not self._started:
            self._started = True  # a host stopped before it started never starts
            self._driver.request_stop(force=force)
            return self.stats()
        give_up_at = self._note_stop(force)
        # Fed from another thread: a store call the stop makes (the final
        # flush, when nothing runs) must not hold this wait past its bound.
        threading.Thread(
            target=self._driver.request_stop, args=(force,), name="wfk-stop", daemon=True
        ).start()
        self._driver.stopped.wait(max(give_up_at - time.monotonic(), 0.0))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(give_up_at - time.monotonic(), 0.0))
        self.log.outage.mute()
        return self.stats()

    def run_forever(self) -> WorkerStats:
        """Run in the calling thread until stopped, drained and flushed; returns the stats.

        On the main thread, SIGTERM and SIGINT stop the worker (a second
        signal skips the rest of the drain); the previous handlers come back
        on return. Elsewhere, call :meth:`stop` from another thread.
        """
        self._claim_start()
        on_main = threading.current_thread() is threading.main_thread()
        previous = self._install_signal_handlers() if on_main else {}
        crashed: list[BaseException] = []

        def drive() -> None:
            try:
                self._run()
            except BaseException as exc:
                crashed.append(exc)

        # The driver runs in a thread of its own, so that this one can stop
        # waiting for it once a stop has taken drain_timeout + STOP_GRACE.
        self._thread = threading.Thread(
            target=drive, name=f"wfk-{self.worker_id}-driver", daemon=True
        )
        try:
            self._thread.start()
            self._wait_for_driver(self._thread)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.log.outage.mute()
        if crashed:
            raise crashed[0]
        return self.stats()

    def stats(self) -> WorkerStats:
        """Jobs processed, ticks, uptime and more, as of now."""
        state = self._driver.state
        counters = state.counters
        uptime = timedelta(0)
        if state.started_at is not None:
            uptime = self._kernel.clock.now() - state.started_at
        return WorkerStats(
            worker_id=self.worker_id,
            phase=state.phase,
            uptime=uptime,
            jobs_processed=counters.jobs_processed,
            jobs_failed=counters.jobs_failed,
            ticks=counters.ticks,
            tick_errors=counters.tick_errors,
            leases_renewed=counters.leases_renewed,
            leases_released=counters.leases_released,
            busy_slots=state.busy_slots,
        )

    # -- internals -----------------------------------------------------------------

    def _note_stop(self, force: bool) -> float:
        """Record a stop request; returns when a stop stops waiting for the driver."""
        drain = 0.0 if force else self.drain_timeout.total_seconds()
        limit = time.monotonic() + drain + STOP_GRACE.total_seconds()
        if self._give_up_at is None or limit < self._give_up_at:
            self._give_up_at = limit
        return self._give_up_at

    def _wait_for_driver(self, thread: threading.Thread) -> None:
        while thread.is_alive():
            thread.join(_JOIN_SLICE_S)  # short waits: signal handlers run in between
            give_up_at = self._give_up_at
            if give_up_at is not None and time.monotonic() >= give_up_at and thread.is_alive():
                self.log.warning(
                    "stopping without the last store calls: the store did not answer within "
                    "the drain timeout plus %s (running jobs' leases go back once stale, and "
                    "another worker flushes the outbox)",
                    STOP_GRACE,
                )
                return

    def _claim_start(self) -> None:
        if self._started:
            raise RuntimeError(f"worker {self.worker_id!r} was already started")
        self._started = True

    def _run(self) -> None:
        self.log.info(
            "worker started: %d slot(s), tick every %s",
            self.settings.concurrency,
            self.settings.orchestration_interval,
        )
        try:
            self._driver.run()
        except BaseException:
            self.log.exception("worker driver crashed")
            raise
        finally:
            stats = self.stats()
            self.log.info(
                "worker stopped: %d job(s) processed, %d tick(s), up %s",
                stats.jobs_processed,
                stats.ticks,
                stats.uptime,
            )

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        force = self._signals > 1
        self._note_stop(force)
        self.log.warning(
            "%s received: %s",
            signal.Signals(signum).name,
            "releasing running jobs now" if force else f"draining (up to {self.drain_timeout})",
        )
        # The handler runs between two bytecodes of the main thread, which may
        # hold the driver's lock: feed the stop from another thread instead.
        threading.Thread(
            target=self._driver.request_stop, args=(force,), name="wfk-signal", daemon=True
        ).start()
