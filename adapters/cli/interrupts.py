"""Ctrl-C while a command runs a worker here (``--wait``, ``wfk demo``): drain, then abandon.

The first Ctrl-C stops taking jobs and lets the running ones finish (their
results commit); the second gives the jobs still running back to the queue
through the kernel (``lease.release``), so another worker takes them at
once instead of waiting for the reaper to notice a dead lease.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from adapters.hosts import WorkerHost
from kernel.commands import LeaseRelease
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.status import JobStatus

DRAINING = "draining… (Ctrl-C again to abandon)"
"""What the first Ctrl-C prints (on stderr)."""

STOP_CHECK_S = 0.1


class Interrupts:
    """Counts Ctrl-C (SIGINT) while :meth:`catching`, instead of raising ``KeyboardInterrupt``.

    Only the main thread can take signals; elsewhere nothing is caught and
    the count stays 0.
    """

    def __init__(self) -> None:
        self.count = 0
        self._event = threading.Event()

    @contextmanager
    def catching(self) -> Iterator[Interrupts]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds; a Ctrl-C ends the sleep early."""
        if self._event.wait(timeout):
            self._event.clear()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        # Only count: the handler runs between two bytecodes of the main thread,
        # which may hold a lock the worker needs. The watch loop acts on it.
        self.count += 1
        self._event.set()


class Stopping:
    """A worker host being stopped from the watch loop, without blocking it."""

    def __init__(self, host: WorkerHost) -> None:
        self.host = host
        self._draining: threading.Thread | None = None

    @property
    def draining(self) -> bool:
        return self._draining is not None

    @property
    def drained(self) -> bool:
        """Whether a drain began and has ended (the host stopped)."""
        return self._draining is not None and not self._draining.is_alive()

    def drain(self) -> None:
        """Start draining in the background: no new job; running ones finish."""
        if self._draining is None:
            self._draining = threading.Thread(target=self.host.stop, name="wfk-drain", daemon=True)
            self._draining.start()

    def stop(self, interrupts: Interrupts) -> None:
        """Stop the host (draining); one more Ctrl-C meanwhile releases what still runs."""
        self.drain()
        seen = interrupts.count
        while self._draining is not None and self._draining.is_alive():
            if interrupts.count > seen:
                self.host.stop(force=True)
                return
            interrupts.wait(STOP_CHECK_S)


def abandon(kernel: Kernel, store: Store, host: WorkerHost, run_ids: Sequence[str]) -> int:
    """Stop the host at once, giving its running jobs back; returns how many went back.

    The host releases the jobs its slots run (``lease.release``); any job of
    ``run_ids`` still leased to it afterwards is released here too.
    """
    released = host.stop(force=True).leases_released
    for run_id in run_ids:
        held = tuple(
            job.id
            for job in store.get_jobs(run_id)
            if job.status == JobStatus.LEASED and job.worker_id == host.worker_id
        )
        if held:
            released += kernel.dispatch(
                LeaseRelease(job_ids=held, worker_id=host.worker_id)
            ).released
    return released
