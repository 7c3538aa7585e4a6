"""The simulation's stage runner: user code runs in the scheduler's own thread.

``DefaultStageRunner`` runs ``async def`` stages on a background event loop
and bounded sync stages on threads of their own; a simulation has one thread
and a virtual clock, so :class:`InlineRunner` awaits coroutines on a private
loop in the calling thread and calls sync code directly. A stage's real-time
``timeout`` cannot fire (virtual time passes only between steps; the
``slow_stage`` fault makes a stage take long instead). Faster, and no thread
can reorder anything.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from adapters.runner import describe, user_traceback
from kernel.ports import Raised, Returned, RunnerOutcome

T = TypeVar("T")


_LOOP: list[asyncio.AbstractEventLoop] = []
"""The one event loop every simulation in this process awaits stages on (made on first use)."""


def _loop() -> asyncio.AbstractEventLoop:
    if not _LOOP:
        _LOOP.append(asyncio.new_event_loop())
    return _LOOP[0]


class InlineRunner:
    """Runs user code inline, reporting ``Returned`` or ``Raised``; never lets it escape."""

    def run(
        self, fn: Callable[..., Any], *args: Any, timeout: timedelta | None = None
    ) -> RunnerOutcome:
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                value = _loop().run_until_complete(_awaited(value))
            return Returned(value)
        except Exception as exc:  # user code may raise anything; it becomes data
            return Raised(describe(exc), exc, user_traceback(exc))

    async def offload(self, fn: Callable[[], T]) -> T:
        """Call ``fn()`` at once: blocking work is fine in a simulation."""
        return fn()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
