"""The default stage runner: sync functions in the caller's thread, coroutines on a
shared background event loop.

Async stages from several worker threads share one loop, so a stage that
awaits I/O never blocks another; a sync stage blocks only its own thread.
Stage code sees the caller's context variables wherever it runs (an
OpenTelemetry span that is current when the runner is called stays current).

With a timeout (``define_stage(..., timeout=...)``), a coroutine is
cancelled when its time is up. A sync function cannot be stopped from
outside its thread, so it runs in a thread of its own: when its time is up
the caller gets :class:`~kernel.ports.TimedOut` at once, and whatever the
function returns or raises later is dropped and logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import logging
import os
import threading
import traceback
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from kernel.ports import TRACEBACK_LIMIT, Raised, Returned, RunnerOutcome, TimedOut

log = logging.getLogger("workflow_kernel.runner")

T = TypeVar("T")

_RUNNER_FILES = (
    os.path.abspath(__file__),
    os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep,
    os.path.dirname(os.path.abspath(concurrent.futures.__file__)) + os.sep,
    os.path.abspath(threading.__file__),
)
"""Frames of these files before the first user frame are the runner's, not the user's."""


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` for an exception raised by user code."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def user_traceback(exc: BaseException, limit: int = TRACEBACK_LIMIT) -> str:
    """The traceback of ``exc`` from the first frame of user code on, at most ``limit``
    characters: a long one keeps its start and its end (where the error is).

    >>> def stage():
    ...     raise ValueError("cannot process item 1")
    >>> try:
    ...     stage()
    ... except ValueError as exc:
    ...     text = user_traceback(exc)
    >>> text.splitlines()[-1]
    'ValueError: cannot process item 1'
    >>> "in stage" in text
    True
    """
    summary = traceback.TracebackException.from_exception(exc)
    frames = list(summary.stack)
    while frames and frames[0].filename.startswith(_RUNNER_FILES):
        frames.pop(0)
    summary.stack = traceback.StackSummary.from_list(frames)
    text = "".join(summary.format())
    if len(text) <= limit:
        return text
    head = limit // 5
    marker = f"\n... ({len(text) - limit} characters left out) ...\n"
    tail = limit - head - len(marker)
    return text[:head] + marker + text[-tail:]


def _raised(exc: BaseException) -> Raised:
    return Raised(describe(exc), exc, user_traceback(exc))


class DefaultStageRunner:
    """Runs user code and reports ``Returned``, ``Raised`` or ``TimedOut``; never lets
    it escape."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        # Started on first use: users with sync stages only never get a thread.
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="wfk-stage-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(
        self, fn: Callable[..., Any], *args: Any, timeout: timedelta | None = None
    ) -> RunnerOutcome:
        if timeout is not None and not inspect.iscoroutinefunction(fn):
            return self._run_sync_bounded(fn, args, timeout)
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                return self._await(value, timeout)
            return Returned(value)
        except Exception as exc:  # user code may raise anything; it becomes data
            return _raised(exc)

    def _await(self, awaitable: Any, timeout: timedelta | None) -> RunnerOutcome:
        seconds = timeout.total_seconds() if timeout is not None else None
        expired = False

        async def wrapper() -> Any:
            nonlocal expired
            async with asyncio.timeout(seconds) as scope:
                try:
                    return await awaitable
                finally:
                    expired = scope.expired()

        coroutine: Coroutine[Any, Any, Any] = wrapper()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())
        try:
            return Returned(future.result())
        except TimeoutError as exc:
            if expired and timeout is not None:
                return TimedOut(timeout)
            return _raised(exc)
        except Exception as exc:
            return _raised(exc)

    def _run_sync_bounded(
        self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: timedelta
    ) -> RunnerOutcome:
        """Run a sync function in its own thread; stop waiting for it after ``timeout``."""
        done = threading.Event()
        guard = threading.Lock()
        outcome: list[RunnerOutcome] = []
        abandoned: list[bool] = []
        name = getattr(fn, "__qualname__", repr(fn))

        def target() -> None:
            result = self.run(fn, *args)
            with guard:
                outcome.append(result)
                late = bool(abandoned)
            done.set()
            if late:
                what = "raised" if isinstance(result, Raised) else "returned"
                log.warning(
                    "%s %s after its %s timeout; the late result is dropped "
                    "(the attempt already failed with STAGE_TIMEOUT)",
                    name,
                    what,
                    timeout,
                )

        # The caller's context variables (e.g. the stage's current span) go along.
        context = contextvars.copy_context()
        worker = threading.Thread(
            target=context.run, args=(target,), name=f"wfk-stage-{name}", daemon=True
        )
        worker.start()
        done.wait(timeout.total_seconds())
        with guard:
            if outcome:  # finished in time, or just as the wait ended: keep the result
                return outcome[0]
            abandoned.append(True)
        return TimedOut(timeout)

    async def offload(self, fn: Callable[[], T]) -> T:
        """Await ``fn()`` run in a worker thread, so a blocking call made by an async
        stage (``ctx.ai.agenerate_text``) holds up no other stage on the shared loop.
        The caller's context variables go along."""
        return await asyncio.to_thread(fn)

    def close(self) -> None:
        """Stop the background loop, if one was started."""
        with self._lock:
            if self._loop is not None and self._thread is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=5)
                self._loop.close()
                self._loop, self._thread = None, None


def format_traceback(exc: BaseException) -> str:
    """The full traceback of ``exc`` (for logs)."""
    return "".join(traceback.format_exception(exc))
