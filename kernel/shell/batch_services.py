"""What an LLM batch stage's engine code uses from the kernel during one attempt or
check (:class:`kernel.llm_batch.BatchServices`): the batch providers, the prices, the
run's spend, the kernel's ``dispatch`` and clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from kernel.ai.prices import PriceTable
from kernel.commands import Dispatch
from kernel.ports import BatchProvider, Clock, Store


class StoreBatchServices:
    """Batch services for one stage record of run ``workflow_run_id``.

    The spend is read outside any transaction, just before a submission (SPEC
    §12.1: the batch check compares recorded spend only).
    """

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        dispatch: Dispatch,
        providers: Mapping[str, BatchProvider],
        prices: PriceTable,
        workflow_run_id: str,
        stage_record_id: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._dispatch = dispatch
        self._providers = providers
        self._prices = prices
        self._run_id = workflow_run_id
        self.stage_record_id = stage_record_id

    def provider(self, name: str) -> BatchProvider | None:
        return self._providers.get(name)

    def prices(self) -> PriceTable:
        return self._prices

    def spend(self) -> tuple[Decimal, Decimal | None]:
        run = self._store.get_run(self._run_id)
        if run is None:
            return Decimal(0), None
        return run.total_cost, run.budget

    @property
    def dispatch(self) -> Dispatch:
        return self._dispatch

    def now(self) -> datetime:
        return self._clock.now()


__all__ = ["StoreBatchServices"]
