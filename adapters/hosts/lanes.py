"""Long-lived threads that run a driver's calls one after another.

A worker's ticks and each of its job slots run one call at a time (the step
function never starts a second dequeue on a busy slot, nor a tick while one
runs), so each gets one thread for the worker's life instead of one per call:
starting a thread per dequeue costs time on the path of every new run, and
the short-lived threads' memory arenas left the process growing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

_log = logging.getLogger("workflow_kernel.worker")

Call = tuple[Callable[..., None], tuple[object, ...]]

_current = threading.local()


class Lane:
    """One daemon thread, started on the first call, that runs the calls given to it
    in order until :meth:`close`.

    ``owner`` marks the thread: :func:`lane_owner` returns it from inside a call.
    """

    def __init__(self, name: str, owner: object) -> None:
        self.name = name
        self._owner = owner
        self._calls: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, target: Callable[..., None], *args: object) -> None:
        """Run ``target(*args)`` in the lane's thread after the calls before it (after
        :meth:`close`, in a thread of its own)."""
        with self._lock:
            if self._closed:
                threading.Thread(target=target, args=args, name=self.name, daemon=True).start()
                return
            self._calls.put((target, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def close(self) -> None:
        """End the thread once the calls given so far have run."""
        with self._lock:
            self._closed = True
        self._calls.put(None)

    def _run(self) -> None:
        _current.owner = self._owner
        try:
            while (call := self._calls.get()) is not None:
                target, args = call
                try:
                    target(*args)
                except Exception:  # the driver's calls log their own; this is a last resort
                    _log.exception("%s: a call raised", self.name)
        finally:
            with self._lock:
                # A call that raised BaseException ends the thread: the next call starts
                # another (calls already queued wait for it).
                self._thread = None
                if not self._closed and not self._calls.empty():
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()


def lane_owner() -> object | None:
    """The owner of the lane whose thread calls this (``None`` outside any lane)."""
    return getattr(_current, "owner", None)
