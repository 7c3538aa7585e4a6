"""How a worker hears of work made elsewhere, so that idle slots need not wait for a poll.

Two optional store capabilities (``kernel.ports``):

- ``WorkAnnouncer`` (SQLite): a run created, or a job queued, through the very
  store object the worker uses, by a thread that is not the worker's own, is
  announced in this process (``JobsAvailable(local=True)``).
- ``JobNotifier`` (PostgreSQL ``LISTEN/NOTIFY``): a thread waits for
  notifications from any process (``JobsAvailable()``). With ``LookTurns`` too,
  a notified worker with a free slot looks only in its turn: it takes the turn,
  looks only if the turn's check finds work, and keeps the turn until that look
  has leased a job or found none, so the idle workers of other processes, woken
  by the same notification, check after it and find the run claimed and the job
  leased (one round trip each, instead of a claim and a lease that find nothing).
  A notified worker with no free slot waits for one (the news is for a slot that
  can act on it; later notifications wait in the store meanwhile), then does the
  same, instead of waking at every notification while its slots are busy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from adapters.hosts.lanes import lane_owner
from adapters.hosts.logs import HostLog
from adapters.hosts.messages import Action, Happened, JobsAvailable
from adapters.hosts.state import WorkerState
from kernel.ports import JobNotifier, LookTurns, Store, WorkAnnouncer

WAIT_FOR_JOBS_S = 1.0
"""How long one ``store.wait_for_jobs`` call blocks before the listener re-checks for a stop."""

LOOK_TURN_WAIT_S = 1.0
"""How long a notified idle worker waits for the look turn (``LookTurns``) before it looks
anyway: other processes' looks hold it for milliseconds, unless one is stuck."""

LOOK_TURN_HOLD_S = 0.5
"""How long a worker keeps the look turn waiting for its own look to lease a job or end."""


class Host(Protocol):
    """What the wake-ups need of the driver they feed."""

    @property
    def state(self) -> WorkerState: ...

    def feed(self, happened: Happened) -> tuple[Action, ...]: ...


class Wakeups:
    """The wake-ups of one driver: its subscription and its listening thread."""

    def __init__(self, host: Host, store: Store, *, stopped: threading.Event, log: HostLog) -> None:
        self._host = host
        self._store = store
        self._stopped = stopped
        self._log = log
        self._changed = threading.Condition()
        """Notified once the state the listener waits for (``_awaited``) has come."""
        self._awaited: Callable[[WorkerState], bool] | None = None

    def subscribe(self, state: WorkerState) -> Callable[[], None]:
        """Subscribe to this process's announcements (``WorkAnnouncer``); returns the
        function that unsubscribes."""
        if isinstance(self._store, WorkAnnouncer) and _wants_wakeups(state):
            return self._store.subscribe_work(self._announced)
        return lambda: None

    def start_listening(self, state: WorkerState, name: str) -> None:
        """Start the listening thread, if the store notifies (``JobNotifier``)."""
        if isinstance(self._store, JobNotifier) and _wants_wakeups(state):
            threading.Thread(target=self._listen, name=name, daemon=True).start()

    def stepped(self, state: WorkerState) -> None:
        """The driver's state changed to ``state`` (called outside the driver's lock)."""
        awaited = self._awaited
        if awaited is not None and awaited(state):
            with self._changed:
                self._changed.notify_all()

    def _announced(self) -> None:
        # The worker's own commits are not news: a finished job wakes idle slots
        # (JobFinished) and so does a tick that claimed runs (TickDone).
        if not self._stopped.is_set() and lane_owner() is not self._host:
            self._host.feed(JobsAvailable(local=True))

    def _listen(self) -> None:
        """Wake idle slots when the store announces queued jobs (PostgreSQL ``NOTIFY``)."""
        store = self._store
        assert isinstance(store, JobNotifier)
        while not self._stopped.is_set():
            if not self._log.outage.may_try():
                self._stopped.wait(WAIT_FOR_JOBS_S)
                continue
            try:
                woke = store.wait_for_jobs(WAIT_FOR_JOBS_S)
                self._log.outage.recovered()
                if woke:
                    self._notified()
            except Exception:
                self._log.exception("waiting for job notifications failed; polling instead")
                self._stopped.wait(WAIT_FOR_JOBS_S)

    def _notified(self) -> None:
        """A notification came. A busy worker waits for a free slot first (the step
        function would drop the news now; later ones wait in the store meanwhile), then
        looks in turn (``LookTurns``), or lets the step function decide."""
        store = self._store
        if not self._host.state.can_take_work and not self._wait(_can_take_work, WAIT_FOR_JOBS_S):
            self._host.feed(JobsAvailable())  # still busy
            return
        if not isinstance(store, LookTurns):
            self._host.feed(JobsAvailable())
            return
        with store.look_turn(LOOK_TURN_WAIT_S) as work:
            if work:
                # Keep the turn until the look has leased a job or found none.
                self._host.feed(JobsAvailable())
                self._wait(_not_looking, LOOK_TURN_HOLD_S)

    def _wait(self, until: Callable[[WorkerState], bool], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds (less if the worker stops) for a state that
        satisfies ``until``; whether it came."""
        deadline = time.monotonic() + timeout
        self._awaited = until
        try:
            with self._changed:
                while not until(self._host.state):
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stopped.is_set():
                        return False
                    self._changed.wait(min(left, WAIT_FOR_JOBS_S / 10))
                return True
        finally:
            self._awaited = None


def _wants_wakeups(state: WorkerState) -> bool:
    # A bounded run stops at its first empty dequeue: nothing to be woken for.
    return state.settings.concurrency > 0 and not state.settings.stop_when_idle


def _can_take_work(state: WorkerState) -> bool:
    return state.can_take_work


def _not_looking(state: WorkerState) -> bool:
    return not state.looking
