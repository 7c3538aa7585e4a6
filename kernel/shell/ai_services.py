"""What ``ctx.ai`` uses from the world during one stage attempt: call ids, the run's
spend read from the store, ``usage.record`` through the kernel's dispatch, and the
stage runner's offload for the async forms."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from kernel.ai.client import Offload
from kernel.commands import Dispatch, UsageRecord
from kernel.ports import IdGenerator, Store

T = TypeVar("T")


async def run_here(fn: Callable[[], T]) -> T:
    """The offload of a runner that has none: ``fn`` runs on the event loop's thread
    (it blocks other coroutines while it waits)."""
    return fn()


class StoreAIServices:
    """``ctx.ai``'s services for one stage attempt of run ``workflow_run_id``.

    The spend is read outside any transaction, just before each call: two
    attempts of one run calling at once may both pass a budget check that only
    one of them should have, by the price of one call (SPEC §11: the call that
    crosses the budget is recorded in full; the next one is refused).
    """

    def __init__(
        self,
        store: Store,
        ids: IdGenerator,
        dispatch: Dispatch,
        offload: Offload | None,
        workflow_run_id: str,
    ) -> None:
        self._store = store
        self._ids = ids
        self._dispatch = dispatch
        self._offload = offload
        self._run_id = workflow_run_id

    def new_call_id(self) -> str:
        return self._ids.new_id()

    def spend(self) -> tuple[Decimal, Decimal | None]:
        run = self._store.get_run(self._run_id)
        if run is None:  # purged while the stage ran: nothing recorded, no budget to keep
            return Decimal(0), None
        return run.total_cost, run.budget

    def record(self, call: UsageRecord) -> None:
        self._dispatch(call)

    def offload(self, fn: Callable[[], T]) -> Awaitable[T]:
        if self._offload is None:
            return run_here(fn)
        result: Awaitable[T] = self._offload(fn)
        return result


__all__ = ["StoreAIServices", "run_here"]
