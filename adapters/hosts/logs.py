"""Structured host logging: every record names the worker, and the run and stage it is about.

Records from hosts go to the ``workflow_kernel.hosts`` logger and always
carry the attributes ``worker_id``, ``workflow_run_id``, ``stage_id`` and
``job_id`` (``None`` when a record is not about one), so a formatter or a
JSON handler can rely on them.

A store that cannot be reached is not logged with a traceback at every
failed call: :class:`HostLog` hands such errors to its :class:`Outage`,
which logs one line per back-off step (the tracebacks at DEBUG level).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from kernel.errors import StoreError

LOGGER_NAME = "workflow_kernel.hosts"

CONTEXT_FIELDS = ("worker_id", "workflow_run_id", "stage_id", "job_id")
"""The attributes every host log record carries."""


class HostLog(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter that adds the worker id, and merges per-call ``extra`` over it.

    ``logging.LoggerAdapter`` before Python 3.13 replaces a call's ``extra``
    with the adapter's; this one merges them, so
    ``log.info("...", extra={"workflow_run_id": run_id})`` keeps the worker id.
    """

    def __init__(self, worker_id: str, logger: logging.Logger | None = None) -> None:
        super().__init__(logger or logging.getLogger(LOGGER_NAME), {"worker_id": worker_id})
        self.outage = Outage(self._emit)
        """The store's availability: failures of an unavailable store are logged by it."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log as usual, except an unavailable store's error, which goes to :attr:`outage`."""
        exc = _exception(kwargs.get("exc_info"))
        if store_unavailable(exc):
            assert exc is not None
            try:
                what = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                what = str(msg)
            self.outage.failed(what, exc)
            return
        super().log(level, msg, *args, **kwargs)

    def _emit(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        context: dict[str, Any] = dict.fromkeys(CONTEXT_FIELDS)
        context.update(self.extra or {})
        context.update(kwargs.get("extra") or {})
        kwargs["extra"] = context
        return msg, kwargs


BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds between two attempts to reach a store that is unavailable: each failed
attempt moves one step on, and the last step repeats. Each step logs one line."""


def store_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the store cannot be reached for now.

    That is a ``StoreError`` its adapter marks with ``unavailable = True``
    (PostgreSQL's ``StoreUnavailableError``: a failed connect, a lost
    connection, no pooled connection in time). Hosts do not import the
    adapters, so the mark is an attribute.
    """
    return isinstance(exc, StoreError) and getattr(exc, "unavailable", False) is True


class Outage:
    """A store outage as one worker sees it: one attempt, and one log line, per back-off step.

    The first failure logs a warning and starts the outage. From then on
    :meth:`may_try` lets one caller through per step of :data:`BACKOFF_S`
    (the others skip their store call); when that attempt fails too, one
    line says so and the next step begins. :meth:`recovered` ends the
    outage with one line. Tracebacks go to the DEBUG level only.
    """

    def __init__(self, emit: Callable[..., None], clock: Callable[[], float] = time.monotonic):
        self._emit = emit
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._step = 0
        self._next_try = 0.0
        self._attempting = False
        self._failures = 0
        self._muted = False

    def mute(self) -> None:
        """Log no more outage lines (the host has returned: what its abandoned threads
        still try is nobody's business); the tracebacks stay at DEBUG level."""
        self._muted = True

    @property
    def active(self) -> bool:
        """Whether the store is unavailable (since a failure, until a success)."""
        return self._since is not None

    def may_try(self) -> bool:
        """Whether to call the store now: always, except during an outage between two steps."""
        if self._since is None:
            return True
        with self._lock:
            if self._since is None:
                return True
            now = self._clock()
            if now < self._next_try:
                return False
            # One attempt per step, even if it never reports back.
            self._next_try = now + BACKOFF_S[self._step]
            self._attempting = True
            return True

    def failed(self, what: str, exc: BaseException) -> None:
        """A store call failed because the store is unavailable (``what`` says which call)."""
        with self._lock:
            now = self._clock()
            self._failures += 1
            line: str | None = None
            if self._since is None:
                self._since, self._step, self._attempting = now, 0, False
                line = "first"
            elif self._attempting:
                self._attempting = False
                self._step = min(self._step + 1, len(BACKOFF_S) - 1)
                line = "again"
            # else: a call made before this step began, failing too: counted only
            if line is not None:
                self._next_try = now + BACKOFF_S[self._step]
            since, failures, delay = now - self._since, self._failures, BACKOFF_S[self._step]
        cause = " ".join(str(exc).split())
        if self._muted:
            line = None
        if line == "first":
            self._emit(
                logging.WARNING, "store unavailable: %s; retrying in %s", cause, _seconds(delay)
            )
        elif line == "again":
            self._emit(
                logging.WARNING,
                "store still unavailable after %s (%d failed call(s)): %s; retrying in %s",
                _seconds(since),
                failures,
                cause,
                _seconds(delay),
            )
        self._emit(logging.DEBUG, "%s: store unavailable", what, exc_info=exc)

    def recovered(self) -> None:
        """A store call succeeded: end the outage, if there was one, with one line."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            since, failures = self._clock() - self._since, self._failures
            self._since, self._failures, self._attempting = None, 0, False
        if self._muted:
            return
        self._emit(
            logging.INFO,
            "store available again after %s (%d failed call(s))",
            _seconds(since),
            failures,
        )


def _exception(exc_info: Any) -> BaseException | None:
    """The exception a logging call's ``exc_info`` names, if any."""
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        found = exc_info[1]
        return found if isinstance(found, BaseException) else None
    return sys.exc_info()[1] if exc_info else None


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
