"""The default stage runner: sync functions in the caller's thread, coroutines on a
shared background event loop.

Async stages from several worker threads share one loop, so a stage that
awaits I/O never blocks another; a sync stage blocks only its own thread.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from kernel.ports import Raised, Returned, RunnerOutcome


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` for an exception raised by user code."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class DefaultStageRunner:
    """Runs user code and reports ``Returned`` or ``Raised``; never lets it escape."""

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

    def run(self, fn: Callable[..., Any], *args: Any) -> RunnerOutcome:
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                value = self._await(value)
            return Returned(value)
        except Exception as exc:  # user code may raise anything; it becomes data
            return Raised(describe(exc), exc)

    def _await(self, awaitable: Any) -> Any:
        async def wrapper() -> Any:
            return await awaitable

        coroutine: Coroutine[Any, Any, Any] = wrapper()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())
        return future.result()

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
